"""Self-certainty: pick or vote with the samples whose token distributions are most peaked."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from annotated_types import Ge

from ponder import confidence as conf
from ponder.context import Ctx
from ponder.strategies.registry import strategy
from ponder.strategies.voting import vote
from ponder.types import Problem, Result


@strategy("self-certainty")
async def self_certainty(
    problem: Problem,
    ctx: Ctx,
    n: Annotated[int, Ge(1), "samples scored by self-certainty"] = 16,
    selection: Annotated[Literal["best", "borda"], "best-of-n, or a Borda vote over the ranks"] = "best",
    power: Annotated[float, Ge(0), "Borda weight exponent (0: majority vote; paper's code: 0.5)"] = 0.5,
) -> Result:
    """Self-certainty (Kang et al., 2025): best-of-N or Borda vote by mean KL(uniform || next-token distribution).

    From "Scalable Best-of-N Selection for Large Language Models via Self-Certainty": each of ``n`` samples
    is scored by its mean ``KL(Uniform || p_i)`` over response tokens.

    ``selection=best`` returns the answer of the highest-scoring sample, as best-of-N does: a most certain
    sample without an answer (cut at ``max_tokens``, or no answer stated) gives no answer; it is not skipped for
    the next one, which would credit the selector with a filter the paper does not have (confidence: the share
    of samples agreeing with it). ``selection=borda`` ranks the samples by self-certainty (rank r = 1 is the
    most certain) and gives each answer ``sum (n - r + 1)^power``; ``power=0.5`` is the default of the paper's
    code (``power -> 0`` is majority voting, large powers approach best-of-n). Samples with equal scores share
    the mean of their ranks, so a tie never depends on sampling order. The top-k approximation of the
    vocabulary-wide KL is described in ``ponder.confidence.self_certainty`` (it needs ``--top-logprobs`` >= 2).
    """
    ctx.require_logprobs("self-certainty", top_k=True)
    traces = await ctx.sample(n=n)
    scores = [conf.self_certainty(t) for t in traces]
    info: dict[str, object] = {
        "selection": selection,
        "scores": [round(s, 6) if math.isfinite(s) else None for s in scores],
    }
    if selection == "best":
        counts = await vote([t.answer for t in traces], ctx.equivalent)
        best = max(range(len(traces)), key=lambda i: (scores[i], -i))  # ties: the earlier sample
        info["best"] = best
        if traces[best].answer is None:
            return Result(answer=None, confidence=0.0, votes=counts.tally, traces=traces, info=info)
        chosen = next(c for c in counts.clusters if best in c.members)
        return Result(
            answer=traces[best].answer,
            confidence=len(chosen.members) / len(traces),
            votes=counts.tally,
            traces=traces,
            info=info,
        )
    ranks = _mean_ranks(scores)
    weights = [float(len(traces) - rank + 1) ** power for rank in ranks]
    result = await vote([t.answer for t in traces], ctx.equivalent, weights)
    return result.result(traces, info)


def _mean_ranks(scores: list[float]) -> list[float]:
    """Rank 1 for the highest score; equal scores share the mean of the ranks they span."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    ranks = [0.0] * len(scores)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and scores[order[end + 1]] == scores[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks
