"""Self-consistency: sample N chains of thought and take the most common answer."""

from __future__ import annotations

from typing import Annotated

from annotated_types import Ge

from ponder.abstention import AbstainBelow
from ponder.abstention import abstain_below as withhold
from ponder.context import Ctx
from ponder.prompts import PromptParam, apply_prompt
from ponder.strategies.registry import strategy
from ponder.strategies.voting import vote
from ponder.types import Problem, Result


@strategy("self-consistency")
async def self_consistency(
    problem: Problem,
    ctx: Ctx,
    n: Annotated[int, Ge(1), "chains of thought sampled and voted"] = 16,
    prompt: PromptParam = "none",
    abstain_below: AbstainBelow = 0.0,
) -> Result:
    """Self-consistency (Wang et al., 2023): N sampled chains of thought, majority vote over equivalent answers.

    Answers are grouped by mathematical equivalence (not string equality); the confidence is the winner's
    vote share over all N samples, unanswered ones included; ties go to the answer sampled first.

    ``prompt`` adds a reasoning prompt from ``ponder.prompts`` to every sample (``zero-shot-cot``,
    ``plan-and-solve``: the paper's method on another prompt); ``abstain_below`` withholds the answer, answering
    ``unanswerable``, when the vote share is below it (``ponder.abstention``; 0 never abstains).
    """
    traces = await ctx.sample(apply_prompt(problem.messages, prompt), n=n)
    result = await vote([t.answer for t in traces], ctx.equivalent)
    return withhold(result.result(traces), abstain_below)
