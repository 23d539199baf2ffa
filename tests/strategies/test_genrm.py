"""LLM judge Best-of-N: the judge's P("Yes") must overturn a wrong majority."""

from __future__ import annotations

import pytest

from ponder.answers import check_math, extract_answer
from ponder.backends.fake import FakeBackend, Scripted
from ponder.context import Ctx, Sampling
from ponder.errors import ConfigError
from ponder.search.scorers import JudgeScorer
from ponder.strategies import get_strategy
from ponder.strategies.genrm import VERIFY_QUESTION, VERIFY_STEP_BY_STEP, verification_prompt
from ponder.tasks.prompts import MATH_INSTRUCTION, math_messages
from ponder.types import GenerationRequest, Problem
from tests.conftest import make_problem

WRONG = "3 + 4 = 8. The answer is 8."
RIGHT = "3 + 4 = 7. The answer is 7."
# The majority (3 of 5) is wrong; one sample gives no answer at all.
SOLUTIONS = [WRONG, RIGHT, WRONG, "I am not sure.", WRONG, RIGHT]


def _last(request: GenerationRequest) -> str:
    return request.messages[-1]["content"]


def solver_and_judge(request: GenerationRequest, index: int) -> str | Scripted:
    """Solutions from SOLUTIONS; the judge approves a solution exactly when it says 7."""
    if VERIFY_QUESTION in _last(request):
        return "Yes, 7." if "The answer is 7." in request.messages[0]["content"] else "No, not 8."
    return SOLUTIONS[index % len(SOLUTIONS)]


async def test_judge_overturns_the_wrong_majority() -> None:
    problem = make_problem()
    majority = await get_strategy("self-consistency")(problem, Ctx(FakeBackend(solver_and_judge), problem), n=6)
    assert majority.answer == "8"
    backend = FakeBackend(solver_and_judge)
    ctx = Ctx(backend, problem)
    result = await get_strategy("judge")(problem, ctx, n=6)
    assert result.answer == "7" and result.confidence == pytest.approx(1.0)
    assert result.info["scores"] == [0.0, 1.0, 0.0, None, 0.0, 1.0]  # the answerless sample is not judged
    assert result.info["best"] == 1 and result.info["judge_from_logprobs"] is True
    assert "warning" not in result.info
    # one sampling call, then one verdict per distinct answered solution; every token is counted
    assert ctx.usage.calls == 3 == len(backend.calls)
    # a verdict that names a number is still not an answer to the problem (it would skew maj@k and pass@k)
    assert [t.answer for call in ctx.calls[1:] for t in call.traces] == [None, None]
    assert ctx.usage.completion_tokens == sum(c.tokens_sent for c in backend.calls)
    assert ctx.usage.completion_tokens > sum(t.completion_tokens for t in result.traces)


def cot_judge(request: GenerationRequest, index: int) -> str:
    """GenRM-CoT: the rationale for 8 is half the time wrong-footed, for 7 always sound; the verdict follows it."""
    content = request.messages[0]["content"]
    if VERIFY_STEP_BY_STEP in _last(request):
        # a rationale states an answer in the task's format, as real ones do: it must still not count as one
        return ("Checked: 7 is fine. The answer is 7." if "answer is 7" in content or index % 2 == 0
                else "Checked: a mistake in 8. The answer is 7.")
    if VERIFY_QUESTION in _last(request):
        return "Yes" if "fine" in request.messages[1]["content"] else "No"
    return [WRONG, WRONG, WRONG, RIGHT][index % 4]


async def test_rationale_verdicts_are_averaged_and_selection_decides() -> None:
    problem = make_problem()
    backend = FakeBackend(cot_judge)
    ctx = Ctx(backend, problem)
    best = await get_strategy("judge")(problem, ctx, n=4, rationales=2, selection="best")
    # 8 scores 0.5 (one of two rationales approves), 7 scores 1.0: best-of-N takes 7
    assert best.info["scores"] == [0.5, 0.5, 0.5, 1.0]
    assert best.answer == "7" and best.confidence == pytest.approx(1.0)
    # 1 solve call + per distinct solution: 1 rationale call (n=2) + 2 verdicts
    assert ctx.usage.calls == 1 + 2 * 3 and ctx.usage.traces == 4 + 2 * 4
    assert ctx.usage.completion_tokens == sum(c.tokens_sent for c in backend.calls)
    assert all(t.answer is None for call in ctx.calls[1:] for t in call.traces)
    # rationales and verdicts are helpers: maj@k / pass@k count only the four solutions
    assert [t.aux for call in ctx.calls for t in call.traces] == [False] * 4 + [True] * 8
    weighted = await get_strategy("judge")(problem, Ctx(FakeBackend(cot_judge), problem), n=4, rationales=2,
                                           selection="weighted")
    # the three 8s together weigh 1.5 against 1.0
    assert weighted.answer == "8"
    assert weighted.votes == pytest.approx({"8": 1.5, "7": 1.0})
    assert weighted.confidence == pytest.approx(1.5 / 2.5)


async def test_without_logprobs_the_text_verdict_is_used_and_flagged() -> None:
    problem = make_problem()
    ctx = Ctx(FakeBackend(solver_and_judge, logprobs=False), problem)
    result = await get_strategy("judge")(problem, ctx, n=6)
    assert result.answer == "7"
    assert result.info["judge_from_logprobs"] is False and result.info["judge_text_fallbacks"] == 2
    assert "not from logprobs" in result.info["warning"]


async def test_out_of_budget_before_any_verdict_falls_back_to_the_majority() -> None:
    problem = make_problem()
    # six solutions of up to 11 tokens fit in 66 and spend 60: no verdict of up to 8 tokens can start
    ctx = Ctx(FakeBackend(solver_and_judge), problem, token_budget=66, sampling=Sampling(max_tokens=11))
    result = await get_strategy("judge")(problem, ctx, n=6)
    assert result.answer == "8" and result.info["stopped"] == "budget" and result.info["unjudged"] == 2
    assert ctx.usage.calls == 1


async def test_no_answered_sample_gives_no_answer() -> None:
    problem = make_problem()
    ctx = Ctx(FakeBackend(["no idea"]), problem)
    result = await get_strategy("judge")(problem, ctx, n=3)
    assert result.answer is None and ctx.usage.calls == 1


async def test_bad_parameters_name_themselves() -> None:
    problem = make_problem()
    ctx = Ctx(FakeBackend(), problem)
    with pytest.raises(ConfigError, match="parameter 'n' must be >= 1, got 0"):
        await get_strategy("judge")(problem, ctx, n=0)
    with pytest.raises(ConfigError, match="rationales"):
        await get_strategy("judge")(problem, ctx, rationales=-1)


def test_verdict_prompts_show_the_problem_without_the_tasks_answer_instruction() -> None:
    """The judge and the step scorer ask for Yes/No; the task's "reason step by step ... \\boxed{}" would ask for
    something else, so only the problem itself is shown."""
    problem = Problem(id="p", messages=math_messages("What is 3 + 4?"), gold="7", checker=check_math,
                      extract=extract_answer)
    prompts = [verification_prompt(problem, RIGHT, VERIFY_QUESTION), JudgeScorer().prompt(problem, ["3 + 4 = 7."])]
    for prompt in prompts:
        assert "Problem:\nWhat is 3 + 4?\n\n" in prompt and MATH_INSTRUCTION not in prompt
