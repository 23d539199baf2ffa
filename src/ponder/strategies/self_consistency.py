"""Self-consistency: sample N chains of thought and take the most common answer."""

from __future__ import annotations

from ponder.context import Ctx
from ponder.errors import ConfigError
from ponder.strategies.registry import strategy
from ponder.strategies.voting import vote
from ponder.types import Problem, Result


@strategy("self-consistency")
async def self_consistency(problem: Problem, ctx: Ctx, n: int = 16) -> Result:
    """Self-consistency (Wang et al., 2023): N sampled chains of thought, majority vote over equivalent answers.

    Answers are grouped by mathematical equivalence (not string equality); the confidence is the winner's
    vote share over all N samples, unanswered ones included; ties go to the answer sampled first.
    """
    if n < 1:
        raise ConfigError(f"self-consistency needs n >= 1, got {n}")
    traces = await ctx.sample(n=n)
    result = await vote([t.answer for t in traces], ctx.equivalent)
    return result.result(traces)
