"""FOBAR on the fake backend: backward checks overturn a wrong forward majority."""

from __future__ import annotations

import re

import pytest

from ponder.backends.fake import FakeBackend, Scripted
from ponder.context import Ctx
from ponder.errors import ConfigError
from ponder.strategies import get_strategy
from ponder.strategies.fobar import BACKWARD_TEMPLATE, mask_numbers
from ponder.types import GenerationRequest
from tests.conftest import make_problem

QUESTION = "Tom has 17 apples and buys 25 more. How many apples does he have?"
FORWARD = ["The answer is 32.", "The answer is 42.", "The answer is 32.", "The answer is 42.", "The answer is 32."]


def solver(backward_skill: str = "exact") -> object:
    """Forward: the majority (3 of 5) says 32, two say 42. Backward: the model solves "x + other = A" for x.
    ``exact`` solves it right; ``lost`` never recovers the masked number."""

    def script(request: GenerationRequest, index: int) -> str | Scripted:
        prompt = request.messages[-1]["content"]
        if "unknown variable x" not in prompt:
            return FORWARD[index % len(FORWARD)]
        candidate = int(re.search(r"answer to the above question is (\d+)", prompt).group(1))  # type: ignore[union-attr]
        question = prompt.split("\n")[0]
        others = [int(v) for v in re.findall(r"\d+", question)]
        x = candidate - sum(others) if backward_skill == "exact" else 1000 + index
        return f"Solving x + {sum(others)} = {candidate} gives x = {x}. The answer is {x}."

    return script


async def test_backward_verification_overturns_the_forward_majority() -> None:
    problem = make_problem(QUESTION, gold="42")
    majority = await get_strategy("self-consistency")(problem, Ctx(FakeBackend(solver()), problem), n=5)
    assert majority.answer == "32"
    ctx = Ctx(FakeBackend(solver()), problem)
    result = await get_strategy("fobar")(problem, ctx, n=5, backward_n=4)
    assert result.answer == "42"
    assert result.info["forward"] == {"32": 0.6, "42": 0.4}
    assert result.info["backward"] == {"32": 0.0, "42": 1.0}
    assert [m["number"] for m in result.info["masked"]] == ["17", "25"]
    assert result.votes == {"32": 0.0, "42": 1.0} and result.confidence == 1.0
    # forward call, then 2 candidates x 2 masked questions, 2 chains each; every token counted by ctx
    assert ctx.usage.calls == 1 + 4 and ctx.usage.traces == 5 + 8
    assert ctx.usage.completion_tokens == sum(t.completion_tokens for c in ctx.calls for t in c.traces)
    # backward chains answer the masked question, not the problem: maj@k / pass@k count only the forward five
    traces = [t for c in ctx.calls for t in c.traces]
    assert [t.aux for t in traces] == [False] * 5 + [True] * 8
    assert all(t.answer is None for t in traces[5:])
    backward_prompts = [c.request.messages[-1]["content"] for c in ctx.calls[1:]]
    assert "Tom has x apples and buys 25 more." in backward_prompts[0]
    assert backward_prompts[0].endswith(BACKWARD_TEMPLATE.format(answer="32"))


async def test_combination_weighs_forward_against_backward() -> None:
    problem = make_problem(QUESTION, gold="42")
    forward_only = await get_strategy("fobar")(problem, Ctx(FakeBackend(solver()), problem), n=5, alpha=1.0)
    assert forward_only.answer == "32" and forward_only.votes == {"32": 0.6, "42": 0.4}
    # geometric combination: a candidate that never survives the backward check scores 0 whatever its votes
    mixed = await get_strategy("fobar")(problem, Ctx(FakeBackend(solver()), problem), n=5, alpha=0.9)
    assert mixed.answer == "42"


async def test_forward_vote_decides_when_backward_reasoning_never_recovers_x() -> None:
    problem = make_problem(QUESTION, gold="42")
    result = await get_strategy("fobar")(problem, Ctx(FakeBackend(solver("lost")), problem), n=5, backward_n=2)
    assert result.answer == "32" and "no backward chain" in result.info["fallback"]
    assert result.info["backward"] == {"32": 0.0, "42": 0.0}


async def test_question_without_numbers_uses_the_forward_vote() -> None:
    problem = make_problem("Which is heavier, a kilogram of iron or of feathers?", gold="same")
    script = ["The answer is same.", "The answer is iron.", "The answer is same."]
    ctx = Ctx(FakeBackend(script), problem)
    result = await get_strategy("fobar")(problem, ctx, n=3)
    assert result.answer == "same" and "no number" in result.info["fallback"] and ctx.usage.calls == 1


def test_mask_numbers() -> None:
    masks = mask_numbers("A 3rd shelf holds 1,200 books and 4.5 kg of x2 dust; 7 more.", limit=4)
    assert [(m.number, m.question) for m in masks] == [
        ("1200", "A 3rd shelf holds x books and 4.5 kg of x2 dust; 7 more."),
        ("4.5", "A 3rd shelf holds 1,200 books and x kg of x2 dust; 7 more."),
        ("7", "A 3rd shelf holds 1,200 books and 4.5 kg of x2 dust; x more."),
    ]
    assert len(mask_numbers("1 2 3 4 5 6", limit=2)) == 2


async def test_parameters_are_validated() -> None:
    problem = make_problem()
    with pytest.raises(ConfigError, match="alpha"):
        await get_strategy("fobar")(problem, Ctx(FakeBackend(), problem), alpha=1.5)
    with pytest.raises(ConfigError, match="backward_n"):
        await get_strategy("fobar")(problem, Ctx(FakeBackend(), problem), backward_n=0)
    with pytest.raises(ConfigError, match="max_masks"):
        await get_strategy("fobar")(problem, Ctx(FakeBackend(), problem), max_masks=0)
