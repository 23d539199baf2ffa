from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from ponder.agents import close_agents, install_agent
from ponder.backends.fake import FakeBackend
from ponder.context import Ctx, Sampling
from ponder.errors import ConfigError
from ponder.strategies import get_strategy
from ponder.strategies.moa import AGGREGATE_AND_SYNTHESIZE
from ponder.types import GenerationRequest
from tests.conftest import make_problem

QUESTION = "What is 2 + 3?"
CHECKED = "Counting on from 2: 3, 4, 5. I checked it twice. The answer is 5."
FIRST_LAYER = [CHECKED, "Two and three is four. The answer is 4.", "It is 4. The answer is 4."]


def references(request: GenerationRequest) -> list[str]:
    system = request.messages[0]["content"] if request.messages[0]["role"] == "system" else ""
    if "Responses from models:" not in system:
        return []
    return re.findall(r"^\d+\. (.*)$", system.split("Responses from models:", 1)[1], flags=re.MULTILINE)


def critical_reader(request: GenerationRequest, index: int) -> str:
    """Adopts the answer of a reference that shows its check; with nothing to read, it guesses 4."""
    checked = [ref for ref in references(request) if "checked" in ref]
    return CHECKED if checked else "I think it is 4. The answer is 4."


def proposer(request: GenerationRequest, index: int) -> str:
    """Layer 1: one careful sample in three. With references it is a critical reader."""
    return critical_reader(request, index) if references(request) else FIRST_LAYER[index % 3]


@pytest.fixture
async def agents() -> AsyncIterator[None]:
    yield
    await close_agents()


async def test_the_aggregator_synthesises_from_the_proposers_responses(agents: None) -> None:
    problem = make_problem(QUESTION)
    aggregator = FakeBackend(critical_reader, name="aggregator")
    install_agent("fake:aggregator", aggregator)
    run_model = FakeBackend(FIRST_LAYER)
    ctx = Ctx(run_model, problem)
    result = await get_strategy("moa")(problem, ctx, proposers=3, layers=2, aggregator="fake:aggregator")
    assert result.answer == "5"  # the proposers' majority says 4; alone, the aggregator guesses 4
    assert result.votes == {"5": 1.0, "4": 2.0} and result.confidence == pytest.approx(1 / 3)
    request = aggregator.calls[0].request
    assert request.messages[0]["content"].startswith(AGGREGATE_AND_SYNTHESIZE)
    assert [ref.rstrip() for ref in references(request)] == FIRST_LAYER
    assert request.messages[1:] == problem.messages
    assert len(run_model.calls) == 1 and run_model.calls[0].request.n == 3  # one batched proposer request


async def test_a_middle_layer_refines_the_first_layers_answers() -> None:
    problem = make_problem(QUESTION)
    two = await get_strategy("moa")(problem, Ctx(FakeBackend(proposer), problem), proposers=3, layers=2)
    three = await get_strategy("moa")(problem, Ctx(FakeBackend(proposer), problem), proposers=3, layers=3)
    assert two.info["layers"] == [["5", "4", "4"]] and two.confidence == pytest.approx(1 / 3)
    assert three.info["layers"] == [["5", "4", "4"], ["5", "5", "5"]] and three.confidence == 1.0
    assert three.answer == "5" and len(three.traces) == 7


async def test_every_agents_tokens_are_counted(agents: None) -> None:
    problem = make_problem(QUESTION)
    first, second = FakeBackend(FIRST_LAYER, name="a"), FakeBackend(["The answer is 4."], name="b")
    aggregator = FakeBackend(critical_reader, name="aggregator")
    for spec, backend in [("fake:a", first), ("fake:b", second), ("fake:aggregator", aggregator)]:
        install_agent(spec, backend)
    ctx = Ctx(FakeBackend(), problem)
    result = await get_strategy("moa")(problem, ctx, agents="fake:a,fake:b", proposers=3, layers=3,
                                       aggregator="fake:aggregator")
    assert [c.request.n for c in first.calls] == [2, 2] and [c.request.n for c in second.calls] == [1, 1]
    calls = first.calls + second.calls + aggregator.calls
    assert ctx.usage.completion_tokens == sum(c.tokens_sent for c in calls) > 0
    assert ctx.usage.calls == len(calls) == 5
    assert result.info["agents"] == ["fake:a", "fake:b", "fake:a"] and result.info["aggregator"] == "fake:aggregator"


async def test_an_exhausted_budget_aggregates_the_last_complete_layer() -> None:
    problem = make_problem(QUESTION)
    backend = FakeBackend(proposer)
    # the first layer's 3 proposals of up to 32 tokens fit in 96 and spend 41: a second layer (96) cannot
    # start, the aggregator (32) can, so the last complete layer is aggregated
    ctx = Ctx(backend, problem, token_budget=96, sampling=Sampling(max_tokens=32))
    result = await get_strategy("moa")(problem, ctx, proposers=3, layers=3)
    assert result.info["stopped"] == "budget" and result.info["layers"] == [["5", "4", "4"]]
    assert result.answer == "5" and len(backend.calls) == 2 and ctx.usage.completion_tokens <= 96


@pytest.mark.parametrize(("params", "message"), [
    ({"proposers": 0}, "'proposers' must be >= 1, got 0"),
    ({"layers": 1}, "'layers' must be >= 2, got 1"),
    ({"aggregator": "fake,fake"}, "aggregator takes one model spec"),
    ({"agents": "local:model.bin"}, "'agents'.*must be a .gguf"),
])
async def test_bad_parameters_are_refused(params: dict[str, object], message: str) -> None:
    problem = make_problem(QUESTION)
    with pytest.raises(ConfigError, match=message):
        await get_strategy("moa")(problem, Ctx(FakeBackend(), problem), **params)
