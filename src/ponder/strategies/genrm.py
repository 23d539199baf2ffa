"""LLM judge Best-of-N, scored GenRM-style by P("Yes") to "Is the answer correct?"."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from annotated_types import Ge

from ponder.context import Ctx
from ponder.judge import YES_NO_INSTRUCTION, Judgement, judge_yes
from ponder.strategies.registry import strategy
from ponder.strategies.voting import vote
from ponder.tasks.prompts import problem_statement
from ponder.types import Message, Problem, Result

VERIFY_QUESTION = "Is the answer correct?"
VERIFY_STEP_BY_STEP = "Let's verify the solution step by step."
FALLBACK_WARNING = (
    "the judge's verdicts were read from its text (scores 0 or 1), not from logprobs: the backend gave none, or "
    "'Yes'/'No' was not among the top tokens"
)


def verification_prompt(problem: Problem, solution: str, instruction: str) -> str:
    return (f"Here is a problem and a proposed solution.\n\nProblem:\n{problem_statement(problem)}\n\n"
            f"Solution:\n{solution}\n\n{instruction}")


def judge_report(judgements: Sequence[Judgement]) -> dict[str, Any]:
    """What a strategy reports about its judge: whether every verdict came from logprobs, and a warning if not."""
    fallbacks = sum(not j.from_logprobs for j in judgements)
    report: dict[str, Any] = {"judge_from_logprobs": fallbacks == 0, "judge_text_fallbacks": fallbacks}
    if fallbacks:
        report["warning"] = f"{fallbacks} of {len(judgements)} {FALLBACK_WARNING}"
    return report


async def verify(ctx: Ctx, problem: Problem, solution: str, rationales: int) -> list[Judgement]:
    """GenRM verdicts on one solution: one direct P(Yes), or one per sampled verification rationale (GenRM-CoT)."""
    if rationales == 0:
        ask = verification_prompt(problem, solution, f"{VERIFY_QUESTION} {YES_NO_INSTRUCTION}")
        return [await judge_yes(ctx, [{"role": "user", "content": ask}])]
    opening: Message = {"role": "user", "content": verification_prompt(problem, solution, VERIFY_STEP_BY_STEP)}
    chains = await ctx.sample([opening], n=rationales)
    # After each rationale, the verdict's P(Yes) is read as in GenRM-CoT.
    return list(await asyncio.gather(*(
        judge_yes(ctx, [opening, {"role": "assistant", "content": chain.text},
                        {"role": "user", "content": f"{VERIFY_QUESTION} {YES_NO_INSTRUCTION}"}])
        for chain in chains)))


@strategy("judge")
async def judge(
    problem: Problem,
    ctx: Ctx,
    n: Annotated[int, Ge(1), "solutions sampled and judged"] = 16,
    rationales: Annotated[int, Ge(0), "verification rationales per solution (GenRM-CoT; 0: direct verdict)"] = 0,
    selection: Annotated[Literal["best", "weighted"], "best-scored sample, or scores summed per answer"] = "best",
) -> Result:
    """LLM judge Best-of-N (GenRM, Zhang et al., 2024): score each sample by the judge's P("Yes") that it is correct.

    From "Generative Verifiers: Reward Modeling as Next-Token Prediction". ``n`` solutions are sampled; the same
    model then judges each one with "Is the answer correct? Yes or No" and the score is P("Yes"), read from the
    logprobs of its one-word verdict (``ponder.judge``). ``rationales=K > 0`` is GenRM-CoT: the judge first
    writes K verification rationales ("Let's verify the solution step by step."), the verdict is read after each,
    and the score is the mean P("Yes") over the K (the paper's majority-voted verifier; it uses up to 32).
    ``rationales=0`` is the direct verifier. The paper trains its verifier; a prompted judge approximates it.

    ``selection=best`` returns the answer of the highest-scoring sample (ties: the earliest); its score is the
    confidence. ``selection=weighted`` sums the scores per equivalent answer and returns the heaviest answer, with
    its share of the total score as confidence. Samples without an answer are not judged (score 0); identical
    solutions are judged once. If the problem's token budget runs out before any verdict, the answer is the plain
    majority (``info["stopped"] = "budget"``). Without logprobs the verdict is read from the text and scores are
    only 0 or 1: ``info["judge_from_logprobs"]`` is then false and ``info["warning"]`` says so.
    """
    traces = await ctx.sample(n=n)
    unique = list(dict.fromkeys(t.text for t in traces if t.answer is not None))
    with ctx.aux():  # verdicts and rationales are not answers to the problem
        outcomes = await ctx.gather(*(verify(ctx, problem, text, rationales) for text in unique))
    # a solution the budget left unjudged keeps no score
    verdicts = {text: v for text, v in zip(unique, outcomes.results, strict=True) if v is not None}
    unjudged = outcomes.stopped
    scores: list[float | None] = []
    for trace in traces:
        found = verdicts.get(trace.text) if trace.answer is not None else None
        scores.append(sum(j.p_yes for j in found) / len(found) if found else None)
    info: dict[str, Any] = {"selection": selection, "rationales": rationales,
                            "scores": [None if s is None else round(s, 6) for s in scores],
                            **judge_report([j for found in verdicts.values() for j in found])}
    if unjudged:
        info["stopped"] = "budget"
        info["unjudged"] = unjudged
    if unjudged and not verdicts:
        # The budget ran out before any verdict: answer as plain self-consistency would.
        majority = await vote([t.answer for t in traces], ctx.equivalent)
        return majority.result(traces, info)
    tally = await vote([t.answer for t in traces], ctx.equivalent, [s or 0.0 for s in scores])
    if selection == "weighted":
        return tally.result(traces, info)
    scored = [i for i, s in enumerate(scores) if s is not None]
    if not scored:
        return Result(answer=None, confidence=0.0, votes=tally.tally, traces=traces, info=info)
    best = max(scored, key=lambda i: (scores[i], -i))
    info["best"] = best
    return Result(answer=traces[best].answer, confidence=scores[best], votes=tally.tally, traces=traces, info=info)
