"""CRew: best-of-N by the model's confidence in the tokens of its final answer."""

from __future__ import annotations

import math
from typing import Annotated

from annotated_types import Ge

from ponder import confidence as conf
from ponder.context import Ctx
from ponder.strategies.registry import strategy
from ponder.strategies.voting import vote
from ponder.types import Problem, Result


@strategy("crew")
async def crew(
    problem: Problem, ctx: Ctx, n: Annotated[int, Ge(1), "samples, each rewarded by its answer's token confidence"] = 16
) -> Result:
    """CRew (Du et al., 2025): best-of-N by the mean probability of the tokens that spell the final answer.

    From "Confidence as a Reward: Transforming LLMs into Reward Models": each of ``n`` samples is rewarded
    with the model's token-level confidence in its final answer, and the best sample's answer is returned.

    The answer's tokens are found as the last occurrence of the extracted answer in the sample's tokens (see
    ``ponder.confidence.answer_span``). The confidence reported is the chosen sample's answer probability.
    """
    ctx.require_logprobs("crew")
    traces = await ctx.sample(n=n)
    rewards = [conf.answer_confidence(t) for t in traces]
    counts = await vote([t.answer for t in traces], ctx.equivalent)
    info: dict[str, object] = {"rewards": [round(r, 6) if math.isfinite(r) else None for r in rewards]}
    best = conf.best_index(traces, "answer")
    if best is None:
        return Result(answer=None, confidence=0.0, votes=counts.tally, traces=traces, info=info)
    info["best"] = best
    return Result(answer=traces[best].answer, confidence=rewards[best], votes=counts.tally, traces=traces,
                  info=info)
