"""Critical-Questions-of-Thought: plan the reasoning, probe it with critical questions, re-plan until it holds."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any, Literal

from annotated_types import Ge, Interval

from ponder.context import Ctx
from ponder.errors import BudgetExceeded, ConfigError
from ponder.judge import YES_NO_INSTRUCTION, Judgement, judge_yes
from ponder.strategies.genrm import judge_report
from ponder.strategies.registry import strategy
from ponder.strategies.revise_loop import MIN_CALL_TOKENS, Round, TokenCap, Verdict, revise
from ponder.tasks.prompts import problem_statement
from ponder.types import Message, Problem, Result, Trace

# Toulmin-based critical questions on a reasoning process, after Castagna et al. (their pipeline's eight).
CRITICAL_QUESTIONS = (
    "Does the reasoning start from clearly stated premises?",
    "Are the premises backed by evidence or accepted facts?",
    "Does the reasoning connect the premises to the conclusion with logical steps?",
    "Are those logical connections valid?",
    "Is the reasoning free of fallacies and logical errors?",
    "Does the conclusion follow logically from the premises?",
    "Is the reasoning consistent with established knowledge and principles?",
    "Does the reasoning lead to a plausible and reasonable conclusion?",
)
PLAN_REQUEST = (
    "Do not answer yet. First write your reasoning as a plan of clearly separated, specific steps, in which the "
    "premises lead logically to a true conclusion. Do not state the final answer."
)
ANSWER_REQUEST = (
    "Answer by strictly following the reasoning steps below. Each intermediate conclusion must follow from its "
    "premises and must not contradict an earlier step; your final answer must follow from the steps.\n\n"
    "Reasoning steps:\n{plan}"
)
CHECK_TEMPERATURE = 0.2  # the authors' setting for probing the questions and for the final answer
ASSESS_TOKENS = 160  # eight short verdicts, with room for a few words each; not tied to the answers' max_tokens
JUDGE_TOKENS = 8
_NUMBERED = re.compile(r"^[\s*#]*(?:Q(?:uestion)?\s*)?(\d{1,2})\s*[.):\-]", re.IGNORECASE | re.MULTILINE)
_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def assessment_prompt(problem: Problem, plan: str) -> str:
    questions = "\n".join(f"{i}. {q}" for i, q in enumerate(CRITICAL_QUESTIONS, start=1))
    return (f"Problem:\n{problem_statement(problem)}\n\nReasoning steps:\n{plan}\n\n"
            "Assess these reasoning steps against each question below. Be strict: answer No when in doubt. Reply "
            "only with the question's number and Yes or No, one per line (e.g. '1. Yes').\n" + questions)


def read_assessment(text: str, count: int = len(CRITICAL_QUESTIONS)) -> list[bool | None]:
    """Each question's Yes (True) or No (False) from a joint reply; None where no verdict can be found.

    Numbered lines ("3. Yes", "Q3: no") are read by number, the first yes/no word after the number counting;
    a reply without numbered verdicts is read in order (the i-th yes/no word answers question i).
    """
    answers: list[bool | None] = [None] * count
    marks = list(_NUMBERED.finditer(text))
    for k, mark in enumerate(marks):
        number = int(mark.group(1))
        segment = text[mark.end(): marks[k + 1].start() if k + 1 < len(marks) else len(text)]
        word = _YES_NO.search(segment)
        if 1 <= number <= count and word and answers[number - 1] is None:
            answers[number - 1] = word.group(1).lower() == "yes"
    if all(a is None for a in answers):
        for i, word in enumerate(_YES_NO.findall(text)[:count]):
            answers[i] = word.lower() == "yes"
    return answers


def revise_request(plan: str, failed: list[int]) -> str:
    listed = "\n".join(f"- {CRITICAL_QUESTIONS[i]}" for i in failed)
    return (f"Here is your reasoning plan:\n{plan}\n\nIt fails these critical questions:\n{listed}\n\n"
            f"Rewrite the plan so that it passes them. {PLAN_REQUEST}")


@strategy("cqot")
async def cqot(
    problem: Problem,
    ctx: Ctx,
    max_iters: Annotated[int, Ge(0), "re-plans before the last plan is used anyway"] = 10,
    min_yes: Annotated[int, Interval(ge=1, le=len(CRITICAL_QUESTIONS)), "critical questions a plan must pass"] = 7,
    relax_after: Annotated[int, Ge(0), "re-plans after which the bar drops to relaxed_min_yes"] = 4,
    relaxed_min_yes: Annotated[int, Ge(1), "questions a plan must pass once relaxed (at most min_yes)"] = 5,
    assess: Annotated[Literal["joint", "each"], "all questions in one reply, or each as a P(Yes) judge"] = "joint",
    on_fail: Annotated[Literal["resample", "revise"], "draw a fresh plan, or revise the failed one"] = "resample",
    budget: Annotated[int, Ge(0), "completion tokens of all calls (0: no cap of its own)"] = 0,
) -> Result:
    """Critical-Questions-of-Thought (Castagna, Sassoon & Parsons, 2024): probe a reasoning plan, then answer.

    From "Critical-Questions-of-Thought: Steering LLM reasoning with Argumentative Querying". The authors'
    pipeline: (1) the model writes a step-by-step reasoning plan without the final answer; (2) it answers eight
    Toulmin-style critical questions about the plan (are the premises clear and accepted, are the inferences
    valid, does the conclusion follow, ...; ``CRITICAL_QUESTIONS``) with Yes or No; (3) a plan with fewer than
    ``min_yes`` Yes is rejected and a new plan drawn ("valid if not proved otherwise"); (4) the model answers by
    strictly following the accepted plan. As in the authors' code, after ``relax_after`` re-plans the bar drops
    to ``relaxed_min_yes``, and after ``max_iters`` re-plans the last plan is used anyway. ``min_yes=8`` rejects
    a plan as soon as any question fails.

    ``assess=joint`` asks all eight questions in one reply (the authors' way); ``assess=each`` asks each as its own
    yes/no question and reads P("Yes") from logprobs (``ponder.judge``, a question passes at P >= 0.5), which
    suits small models that cannot keep a numbered list. ``on_fail=resample`` draws a fresh plan (the authors'
    code); ``on_fail=revise`` shows the model its plan and the failed questions and asks for a corrected plan.
    Probing and answering run at temperature 0.2, as in the authors' code. ``budget`` caps the completion tokens
    of all calls (0 = no cap beyond the problem's budget); the final answer's ``max_tokens`` is held back from
    the loop. The confidence is the final plan's share of passed questions (mean P(Yes) with ``assess=each``).
    """
    questions = len(CRITICAL_QUESTIONS)
    if not 1 <= relaxed_min_yes <= min_yes:
        raise ConfigError(f"cqot parameter relaxed_min_yes must be between 1 and min_yes ({min_yes}), "
                          f"got {relaxed_min_yes}")
    max_tokens = ctx.sampling.max_tokens
    if budget and budget < max_tokens + 2 * MIN_CALL_TOKENS:
        raise ConfigError(f"cqot parameter budget ({budget}) must leave room for a plan and its check besides the "
                          f"final answer's {max_tokens} tokens: raise it above {max_tokens + 2 * MIN_CALL_TOKENS} "
                          "or lower --max-tokens")
    answer_cap = TokenCap(ctx, budget)
    cap = TokenCap(ctx, budget, reserve=max_tokens)
    judgements: list[Judgement] = []
    plan_messages = _with_request(problem, PLAN_REQUEST)

    async def draft() -> Trace:
        with ctx.aux():  # a plan withholds the answer
            (plan,) = await ctx.sample(plan_messages, n=1, max_tokens=cap.limit(max_tokens))
        return plan

    async def check(rounds: list[Round]) -> Verdict:
        required = min_yes if len(rounds) - 1 <= relax_after else relaxed_min_yes
        plan = rounds[-1].draft.text
        if assess == "joint":
            ask: list[Message] = [{"role": "user", "content": assessment_prompt(problem, plan)}]
            with ctx.aux():
                (reply,) = await ctx.sample(ask, n=1, max_tokens=cap.limit(ASSESS_TOKENS),
                                            temperature=CHECK_TEMPERATURE)
            answers = read_assessment(reply.text)
            passes = [a is True for a in answers]  # no verdict counts as No: the authors' "No when in doubt"
            score = sum(passes) / questions
        else:
            cap.need(questions * JUDGE_TOKENS)
            statement = problem_statement(problem)
            found = await asyncio.gather(*(  # judge_yes marks its verdicts as helper samples
                judge_yes(ctx, [{"role": "user", "content": f"Problem:\n{statement}\n\nReasoning steps:\n"
                                                            f"{plan}\n\nCritical question: {q} {YES_NO_INSTRUCTION}"}],
                          max_tokens=JUDGE_TOKENS)
                for q in CRITICAL_QUESTIONS))
            judgements.extend(found)
            passes = [j.p_yes >= 0.5 for j in found]
            score = sum(j.p_yes for j in found) / questions
        failed = [i for i, ok in enumerate(passes) if not ok]
        return Verdict(sum(passes) >= required, score, "\n".join(CRITICAL_QUESTIONS[i] for i in failed),
                       {"yes": sum(passes), "required": required, "failed": [i + 1 for i in failed]})

    async def improve(rounds: list[Round]) -> Trace:
        if on_fail == "resample":
            return await draft()
        last = rounds[-1]
        assert last.verdict is not None
        failed = [q - 1 for q in last.verdict.detail["failed"]]
        with ctx.aux():
            (plan,) = await ctx.sample(_with_request(problem, revise_request(last.draft.text, failed)), n=1,
                                       max_tokens=cap.limit(max_tokens))
        return plan

    loop = await revise(draft, check, improve, max_iters=max_iters, check_last=True)
    final_round = loop.rounds[-1]
    info: dict[str, Any] = {
        "stopped": loop.stopped,
        "plans": len(loop.rounds),
        "accepted": loop.stopped == "passed",
        "assessments": [r.verdict.detail if r.verdict else None for r in loop.rounds],
    }
    if assess == "each":
        info.update(judge_report(judgements))
    answer_messages = _with_request(problem, ANSWER_REQUEST.format(plan=final_round.draft.text))
    try:
        (answer,) = await ctx.sample(answer_messages, n=1, max_tokens=answer_cap.limit(max_tokens),
                                     temperature=CHECK_TEMPERATURE)
    except BudgetExceeded:
        info["stopped"] = "budget"
        return Result(answer=None, confidence=None, traces=[], info=info)
    info["tokens"] = answer_cap.spent
    score = final_round.verdict.score if final_round.verdict else None
    return Result(answer=answer.answer, confidence=score,
                  votes={answer.answer: 1.0} if answer.answer is not None else {}, traces=[answer], info=info)


def _with_request(problem: Problem, request: str) -> list[Message]:
    messages = [dict(m) for m in problem.messages]
    messages[-1]["content"] = f"{messages[-1]['content']}\n\n{request}"
    return messages
