"""CQoT: a plan that fails the critical questions must be replaced before the model answers from it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ponder.backends.fake import FakeBackend
from ponder.context import Ctx, Sampling
from ponder.errors import ConfigError
from ponder.strategies import get_strategy
from ponder.strategies.cqot import CRITICAL_QUESTIONS, read_assessment
from ponder.types import GenerationRequest
from tests.conftest import make_problem

BAD_PLAN = "Step 1: 3 + 4 means taking 3 away from 4. Step 2: write down what is left."
GOOD_PLAN = "Step 1: 3 + 4 means adding 3 and 4. Step 2: count on from 4 by 3."


def _last(request: GenerationRequest) -> str:
    return request.messages[-1]["content"]


def role(request: GenerationRequest) -> str:
    content = _last(request)
    if "Critical question:" in content:
        return "question"
    if "Be strict" in content:
        return "assess"
    if "fails these critical questions" in content:
        return "revise"
    if "Answer by strictly following" in content:
        return "answer"
    return "plan"


def verdicts(yes: int) -> str:
    return "\n".join(f"{i}. {'Yes' if i <= yes else 'No'}" for i in range(1, 9))


def pipeline(plans: list[str], yes_for: Callable[[str], int]) -> Callable[[GenerationRequest, int], str]:
    """Plans in order; an assessment with ``yes_for(plan)`` Yes; answers follow the plan they are given."""

    def script(request: GenerationRequest, index: int) -> str:
        kind, content = role(request), _last(request)
        if kind == "plan":
            return plans[min(index, len(plans) - 1)]
        if kind == "revise":
            return GOOD_PLAN
        if kind == "assess":
            return verdicts(yes_for(content))
        if kind == "question":
            failing = "taking 3 away" in content and "premises backed" in content
            return "No, see step 1." if failing else "Yes, step 2."
        return "4 - 3 = 1. The answer is 1." if "taking 3 away" in content else "4 + 3 = 7. The answer is 7."

    return script


def strict(plan_prompt: str) -> int:
    return 3 if "taking 3 away" in plan_prompt else 8


async def test_a_failed_plan_is_replaced_before_answering() -> None:
    problem = make_problem()
    lenient = await get_strategy("cqot")(problem, Ctx(FakeBackend(pipeline([BAD_PLAN, GOOD_PLAN], strict)), problem),
                                         min_yes=3, relaxed_min_yes=3)
    assert lenient.answer == "1" and lenient.info["plans"] == 1  # the questions do not bite: the bad plan stands
    backend = FakeBackend(pipeline([BAD_PLAN, GOOD_PLAN], strict))
    ctx = Ctx(backend, problem)
    result = await get_strategy("cqot")(problem, ctx)
    assert result.answer == "7" and result.confidence == pytest.approx(1.0)
    assert result.info["stopped"] == "passed" and result.info["plans"] == 2 and result.info["accepted"]
    first, second = result.info["assessments"]
    assert first == {"yes": 3, "required": 7, "failed": [4, 5, 6, 7, 8]}
    assert second["yes"] == 8
    assert [role(c.request) for c in backend.calls] == ["plan", "assess", "plan", "assess", "answer"]
    assert GOOD_PLAN in _last(backend.calls[-1].request)  # the answer follows the accepted plan
    assert backend.calls[1].request.temperature == pytest.approx(0.2)
    assert ctx.usage.calls == 5 and ctx.usage.completion_tokens == sum(c.tokens_sent for c in backend.calls)
    assert [t.answer for t in result.traces] == ["7"]


async def test_revise_shows_the_failed_questions() -> None:
    problem = make_problem()
    backend = FakeBackend(pipeline([BAD_PLAN], strict))
    result = await get_strategy("cqot")(problem, Ctx(backend, problem), on_fail="revise")
    assert result.answer == "7"
    assert [role(c.request) for c in backend.calls] == ["plan", "assess", "revise", "assess", "answer"]
    revision = _last(backend.calls[2].request)
    assert BAD_PLAN in revision and CRITICAL_QUESTIONS[4] in revision and CRITICAL_QUESTIONS[0] not in revision


async def test_each_question_by_p_yes_and_the_flagged_fallback() -> None:
    problem = make_problem()
    backend = FakeBackend(pipeline([BAD_PLAN, GOOD_PLAN], strict))
    ctx = Ctx(backend, problem)
    result = await get_strategy("cqot")(problem, ctx, assess="each", min_yes=8)
    assert result.answer == "7"
    assert result.info["assessments"][0] == {"yes": 7, "required": 8, "failed": [2]}
    assert result.info["judge_from_logprobs"] is True and "warning" not in result.info
    assert sum(role(c.request) == "question" for c in backend.calls) == 16
    assert [t.answer for c in ctx.calls for t in c.traces] == [None] * 18 + ["7"]  # plans and verdicts are not answers
    plain = await get_strategy("cqot")(
        problem, Ctx(FakeBackend(pipeline([BAD_PLAN, GOOD_PLAN], strict), logprobs=False), problem),
        assess="each", min_yes=8)
    assert plain.answer == "7"
    assert plain.info["judge_from_logprobs"] is False and plain.info["judge_text_fallbacks"] == 16
    assert "warning" in plain.info


async def test_the_bar_drops_after_relax_after_replans_and_max_iters_ends_the_loop() -> None:
    problem = make_problem()
    backend = FakeBackend(pipeline([GOOD_PLAN], lambda plan: 5))
    result = await get_strategy("cqot")(problem, Ctx(backend, problem), relax_after=1)
    assert [a["required"] for a in result.info["assessments"]] == [7, 7, 5]
    assert result.info["plans"] == 3 and result.info["stopped"] == "passed"
    stuck = await get_strategy("cqot")(problem, Ctx(FakeBackend(pipeline([GOOD_PLAN], lambda plan: 2)), problem),
                                       max_iters=2)
    assert stuck.info["plans"] == 3 and stuck.info["stopped"] == "max_iters" and not stuck.info["accepted"]
    assert stuck.answer == "7"  # the last plan is used anyway, as in the authors' pipeline


async def test_budget_ends_the_loop_but_keeps_room_for_the_answer() -> None:
    problem = make_problem()
    backend = FakeBackend(pipeline([BAD_PLAN], strict))
    ctx = Ctx(backend, problem, sampling=Sampling(max_tokens=32))
    result = await get_strategy("cqot")(problem, ctx, budget=150)
    assert result.info["stopped"] == "budget"
    assert 1 < result.info["plans"] < 11
    assert role(backend.calls[-1].request) == "answer" and result.answer == "1"
    assert ctx.usage.completion_tokens <= 150 and result.info["tokens"] == ctx.usage.completion_tokens


def test_read_assessment() -> None:
    assert read_assessment(verdicts(6)) == [True] * 6 + [False] * 2
    echoed = "\n".join(f"{i}. {q} {'No' if i == 3 else 'Yes'}" for i, q in enumerate(CRITICAL_QUESTIONS, 1))
    assert read_assessment(echoed) == [True, True, False, True, True, True, True, True]
    assert read_assessment("**Q2:** No\n**Q1:** yes") == [True, False, None, None, None, None, None, None]
    assert read_assessment("Yes, yes, no") == [True, True, False, None, None, None, None, None]
    assert read_assessment("I cannot say.") == [None] * 8


async def test_bad_parameters_name_themselves() -> None:
    problem = make_problem()
    ctx = Ctx(FakeBackend(), problem)
    strategy = get_strategy("cqot")
    with pytest.raises(ConfigError, match="min_yes"):
        await strategy(problem, ctx, min_yes=9)
    with pytest.raises(ConfigError, match="relaxed_min_yes"):
        await strategy(problem, ctx, relaxed_min_yes=8)
    with pytest.raises(ConfigError, match="max_iters"):
        await strategy(problem, ctx, max_iters=-1)
    with pytest.raises(ConfigError, match="budget"):
        await strategy(problem, ctx, budget=100)  # less than the answer's max_tokens
    assert ctx.usage.calls == 0
