from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from ponder.agents import close_agents, install_agent
from ponder.backends.fake import FakeBackend
from ponder.context import Ctx, Sampling
from ponder.errors import ConfigError
from ponder.strategies import get_strategy
from ponder.strategies.debate import DISCUSSION_INTRO, read_stance, recalibrate
from ponder.types import GenerationRequest
from tests.conftest import make_problem

QUESTION = "What is 2 + 3?"


def reply(answer: str, confidence: str, because: str = "I added them") -> str:
    return f"{because}. The answer is {answer}.\nConfidence: {confidence}"


def prompt_of(request: GenerationRequest) -> str:
    return request.messages[-1]["content"]


def persuadable(initial: str, confidence: str) -> Callable[[GenerationRequest, int], str]:
    """An agent that answers ``initial`` until a discussion shows it a checked solution with 5."""

    def script(request: GenerationRequest, index: int) -> str:
        prompt = prompt_of(request)
        if DISCUSSION_INTRO in prompt and "the answer is 5 because I checked by counting" in prompt:
            return reply("5", "0.9", "I agree with the agent who counted: 2 and 3 more make 5")
        return reply(initial, confidence)

    return script


@pytest.fixture
async def agents() -> AsyncIterator[None]:
    yield
    await close_agents()


def test_recalibration_follows_the_paper() -> None:
    assert [recalibrate(p) for p in (1.0, 0.95, 0.9, 0.85, 0.8, 0.7, 0.61, 0.6, 0.2, 0.0)] == [
        1.0, 0.8, 0.8, 0.5, 0.5, 0.3, 0.3, 0.1, 0.1, 0.1]


def test_read_stance_takes_answer_and_confidence_apart() -> None:
    problem = make_problem(QUESTION)
    stance = read_stance("2 plus 3 is 5. The answer is 5.\nConfidence: 0.9", problem)
    assert (stance.answer, stance.confidence, stance.stated) == ("5", 0.9, True)
    json_reply = '{"reasoning": "2 + 3 = 5", "answer": "5", "confidence_level": "85%"}'
    assert (read_stance(json_reply, problem).answer, read_stance(json_reply, problem).confidence) == ("5", 0.85)
    assert read_stance("The answer is 7. My confidence level is 80%", problem).confidence == 0.8
    unsure = read_stance("The answer is 6.", problem)
    assert (unsure.answer, unsure.confidence, unsure.stated, unsure.weight) == ("6", 0.0, False, 0.1)
    assert read_stance("**Confidence:** 0.85\nThe answer is 5.", problem).confidence == 0.85
    # hostile output: blank runs after the keyword must not make the parser backtrack for ages
    assert not read_stance("confidence" + " " * 20_000 + "is" + " \t" * 20_000, problem).stated


async def test_recalibrated_weights_let_one_sure_agent_beat_a_hesitant_majority() -> None:
    problem = make_problem(QUESTION)
    # Raw confidences favour 4 (0.65 + 0.7 > 0.95) and so does the majority; recalibrated ones favour 5.
    script = [reply("5", "0.95"), reply("4", "0.65"), reply("4", "0.7")]
    debate = get_strategy("debate")
    result = await debate(problem, Ctx(FakeBackend(script), problem), rounds=0)
    assert result.answer == "5"
    assert result.votes == pytest.approx({"5": 0.8, "4": 0.6})
    assert result.confidence == pytest.approx(0.8 / 1.4)
    majority = await get_strategy("self-consistency")(problem, Ctx(FakeBackend(script), problem), n=3)
    assert majority.answer == "4"


async def test_a_round_of_discussion_changes_the_team_answer(agents: None) -> None:
    problem = make_problem(QUESTION)
    right = FakeBackend([reply("5", "1.0", "I checked by counting: 3, then 4, 5")], name="right")
    wrong_a = FakeBackend(persuadable("4", "0.9"), name="wrong-a")
    wrong_b = FakeBackend(persuadable("4", "0.9"), name="wrong-b")
    for spec, backend in [("fake:right", right), ("fake:a", wrong_a), ("fake:b", wrong_b)]:
        install_agent(spec, backend)
    debate = get_strategy("debate")
    ctx = Ctx(FakeBackend(), problem)
    no_talk = await debate(problem, ctx, agents="fake:right,fake:a,fake:b", rounds=0)
    assert no_talk.answer == "4"  # 0.8 + 0.8 outweighs 1.0 before anyone is convinced
    ctx = Ctx(FakeBackend(), problem)
    result = await debate(problem, ctx, agents="fake:right,fake:a,fake:b")
    assert result.answer == "5" and result.confidence == 1.0
    assert result.info["discussion_rounds"] == 1 and result.info["stopped"] == "consensus"
    assert [s["answer"] for s in result.info["rounds"][0]] == ["5", "4", "4"]
    assert [s["answer"] for s in result.info["rounds"][1]] == ["5", "5", "5"]
    shown = prompt_of(wrong_a.calls[-1].request)
    assert "There are 2 agents who think the answer is 4." in shown
    assert "There is 1 agent who thinks the answer is 5." in shown
    assert "My confidence level is 0.9." in shown and "My confidence level is 1." in shown


async def test_discussion_stops_at_consensus_or_after_the_round_cap() -> None:
    problem = make_problem(QUESTION)
    agreeing = FakeBackend([reply("5", "0.9")])
    result = await get_strategy("debate")(problem, Ctx(agreeing, problem))
    assert result.info["discussion_rounds"] == 0 and result.info["stopped"] == "consensus"
    assert len(agreeing.calls) == 1 and agreeing.calls[0].request.n == 3  # one batched request for three agents
    stubborn = FakeBackend([reply("5", "0.9"), reply("4", "0.9"), reply("6", "0.9")])
    result = await get_strategy("debate")(problem, Ctx(stubborn, problem), rounds=2)
    assert result.info["discussion_rounds"] == 2 and result.info["stopped"] == "rounds"
    assert len(stubborn.calls) == 3 and len(result.traces) == 9


async def test_two_agent_models_are_both_counted_in_the_problems_usage(agents: None) -> None:
    problem = make_problem(QUESTION)
    first = FakeBackend([reply("5", "0.9", "Two and three make five")], name="first")
    second = FakeBackend(persuadable("4", "0.8"), name="second")
    install_agent("fake:first", first)
    install_agent("fake:second", second)
    run_model = FakeBackend()
    ctx = Ctx(run_model, problem)
    result = await get_strategy("debate")(problem, ctx, agents="fake:first,fake:second", n_agents=2, rounds=1)
    assert not run_model.calls
    sent = sum(c.tokens_sent for c in first.calls + second.calls)
    assert first.calls and second.calls and sent > 0
    assert ctx.usage.completion_tokens == sent
    assert ctx.usage.calls == len(first.calls) + len(second.calls) == 4
    assert result.info["agents"] == ["fake:first", "fake:second"]


async def test_the_parsed_answer_is_what_the_run_judges() -> None:
    problem = make_problem(QUESTION, gold="5")
    backend = FakeBackend(['{"reasoning": "2 + 3 = 5", "answer": "5", "confidence_level": 0.9}'])
    ctx = Ctx(backend, problem)
    result = await get_strategy("debate")(problem, ctx, n_agents=2)
    assert result.answer == "5"
    assert all(t.answer == "5" for c in ctx.calls for t in c.traces)  # not "0.9", the last number


async def test_an_exhausted_budget_settles_with_the_last_complete_round() -> None:
    problem = make_problem(QUESTION)
    backend = FakeBackend([reply("5", "1.0"), reply("4", "0.7"), reply("4", "0.7")])
    # the first round's 3 replies of up to 32 tokens fit in 96; no discussion round can start after them
    ctx = Ctx(backend, problem, token_budget=96, sampling=Sampling(max_tokens=32))
    result = await get_strategy("debate")(problem, ctx)
    assert result.info["stopped"] == "budget" and result.info["discussion_rounds"] == 0
    assert result.answer == "5" and len(backend.calls) == 1


@pytest.mark.parametrize(("params", "message"), [
    ({"n_agents": 1}, "'n_agents' must be >= 2, got 1"),
    ({"rounds": -1}, "'rounds' must be >= 0, got -1"),
    ({"agents": "fake,nonsense"}, "'agents'.*unknown --model 'nonsense'"),
])
async def test_bad_parameters_are_refused(params: dict[str, object], message: str) -> None:
    problem = make_problem(QUESTION)
    with pytest.raises(ConfigError, match=message):
        await get_strategy("debate")(problem, Ctx(FakeBackend(), problem), **params)
