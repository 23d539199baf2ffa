"""Self-Refine: the critique must fix a wrong first answer; the stop rule, final choice and budget must hold."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from ponder.backends.fake import FakeBackend
from ponder.context import Ctx
from ponder.errors import ConfigError
from ponder.strategies import get_strategy
from ponder.strategies.self_refine import VERDICT_QUESTION
from ponder.types import GenerationRequest, Trace
from tests.conftest import make_problem

FIRST = "3 + 4 = 8. The answer is 8."
FIXED = "Fixing the sum: 3 + 4 = 7. The answer is 7."
APPROVE = "Every step checks out. It is correct."
OBJECT = "The sum is wrong: 3 + 4 is not 8."


def _last(request: GenerationRequest) -> str:
    return request.messages[-1]["content"]


def role(request: GenerationRequest) -> str:
    if VERDICT_QUESTION in _last(request):
        return "verdict"
    if "Review your solution above" in _last(request):
        return "feedback"
    if "Using this feedback" in _last(request):
        return "refine"
    return "solve"


def critic(approves: Callable[[str], bool]) -> Callable[[GenerationRequest, int], str]:
    """Answers 8 first, refines to 7; the critique approves an answer when ``approves(answer text)``."""

    def script(request: GenerationRequest, index: int) -> str:
        kind = role(request)
        if kind == "solve":
            return FIRST
        if kind == "refine":
            return FIXED
        if kind == "feedback":
            return APPROVE if approves(request.messages[-2]["content"]) else OBJECT
        return "Yes, 7 is right." if APPROVE in request.messages[-2]["content"] else "No, 8 is wrong."

    return script


def fair(text: str) -> bool:
    return "answer is 7" in text


async def test_critique_fixes_the_first_answer_and_stops_when_approved() -> None:
    problem = make_problem()
    unrefined = await get_strategy("self-refine")(problem, Ctx(FakeBackend(critic(fair)), problem), max_iters=0)
    assert unrefined.answer == "8"
    backend = FakeBackend(critic(fair))
    ctx = Ctx(backend, problem)
    result = await get_strategy("self-refine")(problem, ctx, max_iters=4)
    assert result.answer == "7"
    assert result.info["stopped"] == "passed" and result.info["refinements"] == 1
    assert [r["answer"] for r in result.info["history"]] == ["8", "7"]
    assert [r["passed"] for r in result.info["history"]] == [False, True]
    # solve, feedback, refine, feedback: stopped early, 4 of the 9 calls max_iters=4 allows
    assert [role(c.request) for c in backend.calls] == ["solve", "feedback", "refine", "feedback"]
    # the refinement saw the critique
    assert OBJECT in _last(backend.calls[2].request)
    assert ctx.usage.calls == 4 and ctx.usage.completion_tokens == sum(c.tokens_sent for c in backend.calls)
    assert [t.answer for t in result.traces] == ["8", "7"]


async def test_refinement_history_is_kept_in_the_prompt() -> None:
    problem = make_problem()
    backend = FakeBackend(critic(lambda text: False))
    ctx = Ctx(backend, problem)
    result = await get_strategy("self-refine")(problem, ctx, max_iters=2)
    assert result.info["stopped"] == "max_iters"
    # the last refinement is not critiqued: solve, (feedback, refine) x 2
    assert [role(c.request) for c in backend.calls] == ["solve", "feedback", "refine", "feedback", "refine"]
    second_refine = backend.calls[-1].request.messages
    assert [m["content"] for m in second_refine if m["role"] == "assistant"] == [FIRST, FIXED]
    short = FakeBackend(critic(lambda text: False))
    await get_strategy("self-refine")(problem, Ctx(short, problem), max_iters=2, history="last")
    assert [m["content"] for m in short.calls[-1].request.messages if m["role"] == "assistant"] == [FIXED]


async def test_judge_stop_rule_reads_p_yes_and_flags_the_text_fallback() -> None:
    problem = make_problem()
    backend = FakeBackend(critic(fair))
    ctx = Ctx(backend, problem)
    result = await get_strategy("self-refine")(problem, ctx, stop="judge")
    assert result.answer == "7" and result.confidence == pytest.approx(1.0)
    assert [role(c.request) for c in backend.calls] == ["solve", "feedback", "verdict", "refine", "feedback",
                                                        "verdict"]
    assert result.info["judge_from_logprobs"] is True and "warning" not in result.info
    verdicts = [c for c in ctx.calls if role(c.request) in ("verdict", "feedback")]
    assert all(t.answer is None for c in verdicts for t in c.traces)  # critiques and verdicts are not answers
    plain = await get_strategy("self-refine")(problem, Ctx(FakeBackend(critic(fair), logprobs=False), problem),
                                              stop="judge")
    assert plain.answer == "7"
    assert plain.info["judge_from_logprobs"] is False and plain.info["judge_text_fallbacks"] == 2
    assert "warning" in plain.info


P_YES = {"8": 0.3, "7": 0.9, "9": 0.2}


class GradedJudge(FakeBackend):
    """A fake whose verdicts carry a graded P(Yes): 0.3 for 8, 0.9 for 7, 0.2 for 9."""

    async def complete(self, request: GenerationRequest) -> list[Trace]:
        traces = await super().complete(request)
        if role(request) == "verdict":
            answer = request.messages[-4]["content"].rsplit("answer is ", 1)[1].rstrip(".")
            p = P_YES[answer]
            traces[0].top_logprobs[0] = [("Yes", math.log(p)), ("No", math.log(1 - p))]
        return traces


def wandering(request: GenerationRequest, index: int) -> str:
    kind = role(request)
    if kind == "solve":
        return FIRST
    if kind == "refine":
        earlier = sum(m["role"] == "assistant" for m in request.messages)  # the full history grows by one a round
        return FIXED if earlier == 1 else "Now 3 + 4 = 9. The answer is 9."
    return OBJECT if kind == "feedback" else "Yes"


async def test_final_best_keeps_the_best_judged_round() -> None:
    problem = make_problem()
    last = await get_strategy("self-refine")(problem, Ctx(GradedJudge(wandering), problem), max_iters=2,
                                             stop="judge", threshold=0.95)
    assert last.answer == "9"
    backend = GradedJudge(wandering)
    best = await get_strategy("self-refine")(problem, Ctx(backend, problem), max_iters=2, stop="judge",
                                             threshold=0.95, final="best")
    assert best.answer == "7" and best.confidence == pytest.approx(0.9)
    assert [r["score"] for r in best.info["history"]] == pytest.approx([0.3, 0.9, 0.2])
    assert best.info["chosen_round"] == 1
    assert [role(c.request) for c in backend.calls][-2:] == ["feedback", "verdict"]  # the last one was judged


async def test_budget_stops_the_loop_and_is_respected() -> None:
    problem = make_problem()
    backend = FakeBackend(critic(lambda text: False))
    ctx = Ctx(backend, problem)
    result = await get_strategy("self-refine")(problem, ctx, max_iters=10, budget=40)
    assert result.info["stopped"] == "budget"
    assert ctx.usage.completion_tokens <= 40 and result.info["tokens"] == ctx.usage.completion_tokens
    assert result.answer in ("7", "8")
    # every call was capped to what was left of the budget
    spent = 0
    for call in backend.calls:
        assert call.request.max_tokens is not None and call.request.max_tokens <= 40 - spent
        spent += call.tokens_sent


async def test_bad_parameters_name_themselves() -> None:
    problem = make_problem()
    ctx = Ctx(FakeBackend(), problem)
    strategy = get_strategy("self-refine")
    with pytest.raises(ConfigError, match="max_iters"):
        await strategy(problem, ctx, max_iters=-1)
    with pytest.raises(ConfigError, match="stop=judge"):
        await strategy(problem, ctx, final="best")
    with pytest.raises(ConfigError, match="threshold"):
        await strategy(problem, ctx, stop="judge", threshold=1.5)
    with pytest.raises(ConfigError, match="budget"):
        await strategy(problem, ctx, budget=-5)
    assert ctx.usage.calls == 0
