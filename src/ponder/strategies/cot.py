"""Chain-of-thought: one sample."""

from __future__ import annotations

from typing import Annotated

from ponder.context import Ctx
from ponder.strategies.registry import strategy
from ponder.types import Problem, Result


@strategy("cot")
async def cot(
    problem: Problem, ctx: Ctx, greedy: Annotated[bool, "decode greedily (false: at the run's temperature)"] = True
) -> Result:
    """Chain-of-thought (Wei et al., 2022): one sample, greedy by default.

    With ``greedy=false`` the run's temperature is used, which gives the single-sample baseline that
    sampling strategies are compared against.
    """
    if greedy:
        (trace,) = await ctx.sample(n=1, temperature=0.0)
    else:
        (trace,) = await ctx.sample(n=1)
    return Result(answer=trace.answer, confidence=None, votes={trace.answer: 1.0} if trace.answer else {},
                  traces=[trace])
