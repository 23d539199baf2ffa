"""Self-certainty: pick or vote with the samples whose token distributions are most peaked."""

from __future__ import annotations

import math
from typing import Literal

from ponder import confidence as conf
from ponder.context import Ctx
from ponder.errors import ConfigError
from ponder.strategies.registry import strategy
from ponder.strategies.voting import vote
from ponder.types import Problem, Result


@strategy("self-certainty")
async def self_certainty(
    problem: Problem, ctx: Ctx, n: int = 16, selection: Literal["best", "borda"] = "best", power: float = 0.5
) -> Result:
    """Self-certainty (Kang et al., 2025): best-of-N or Borda vote by mean KL(uniform || next-token distribution).

    From "Scalable Best-of-N Selection for Large Language Models via Self-Certainty": each of ``n`` samples
    is scored by its mean ``KL(Uniform || p_i)`` over response tokens.

    ``selection=best`` returns the answer of the highest-scoring sample that has one (confidence: the share of
    samples agreeing with it). ``selection=borda`` ranks the samples by self-certainty (rank r = 1 is the most
    certain) and gives each answer ``sum (n - r + 1)^power``; ``power=0.5`` is the default of the paper's code
    (``power -> 0`` is majority voting, large powers approach best-of-n). The top-k approximation of the
    vocabulary-wide KL is described in ``ponder.confidence.self_certainty``.
    """
    ctx.require_logprobs("self-certainty")
    if n < 1:
        raise ConfigError(f"self-certainty needs n >= 1, got {n}")
    if power < 0:
        raise ConfigError(f"self-certainty power must be >= 0, got {power}")
    traces = await ctx.sample(n=n)
    scores = [conf.self_certainty(t) for t in traces]
    info: dict[str, object] = {
        "selection": selection,
        "scores": [round(s, 6) if math.isfinite(s) else None for s in scores],
    }
    if selection == "best":
        counts = await vote([t.answer for t in traces], ctx.equivalent)
        best = conf.best_index(traces, "self_certainty")
        if best is None:
            return Result(answer=None, confidence=0.0, votes=counts.tally, traces=traces, info=info)
        chosen = next(c for c in counts.clusters if best in c.members)
        info["best"] = best
        return Result(
            answer=traces[best].answer,
            confidence=len(chosen.members) / len(traces),
            votes=counts.tally,
            traces=traces,
            info=info,
        )
    order = sorted(range(len(traces)), key=lambda i: -scores[i])  # stable: ties keep sampling order
    weights = [0.0] * len(traces)
    for rank, i in enumerate(order, start=1):
        weights[i] = float(len(traces) - rank + 1) ** power
    result = await vote([t.answer for t in traces], ctx.equivalent, weights)
    return result.result(traces, info)
