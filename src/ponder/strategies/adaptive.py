"""Adaptive-Consistency: keep sampling only until the majority is settled."""

from __future__ import annotations

from math import comb
from typing import Annotated

from annotated_types import Ge, Interval

from ponder.abstention import AbstainBelow
from ponder.abstention import abstain_below as withhold
from ponder.context import Ctx
from ponder.errors import BudgetExceeded
from ponder.prompts import PromptParam, apply_prompt
from ponder.strategies.registry import strategy
from ponder.strategies.voting import vote
from ponder.types import Problem, Result, Trace


def leader_probability(leader: int, second: int) -> float:
    """Beta stopping rule: ``P(p_leader > p_second)`` when ``p_leader / (p_leader + p_second)`` follows
    ``Beta(leader + 1, second + 1)`` (uniform prior, the two leading answers only).

    Computed exactly: for integer ``a = leader + 1``, ``b = second + 1`` and ``m = a + b - 1``,
    ``P(X > 1/2) = 1 - I_{1/2}(a, b) = P(Binomial(m, 1/2) <= a - 1) = sum_{j < a} C(m, j) / 2^m``.
    """
    if leader < 0 or second < 0:
        raise ValueError("vote counts are non-negative")
    m = leader + second + 1
    return sum(comb(m, j) for j in range(leader + 1)) / 2**m


@strategy("adaptive-consistency")
async def adaptive_consistency(
    problem: Problem,
    ctx: Ctx,
    max_n: Annotated[int, Ge(1), "most samples drawn (paper: 40)"] = 40,
    batch: Annotated[int, Ge(1), "samples drawn between stopping checks (paper: 1)"] = 4,
    threshold: Annotated[float, Interval(gt=0, lt=1), "P(leader is the true majority) that stops (paper: 0.95)"] = 0.95,
    prompt: PromptParam = "none",
    abstain_below: AbstainBelow = 0.0,
) -> Result:
    """Adaptive-Consistency (Aggarwal et al., 2023): sample in batches until the majority is settled.

    From "Let's Sample Step by Step: Adaptive-Consistency for Efficient Reasoning and Coding with LLMs":
    self-consistency that stops sampling once the leading answer is very likely the true majority.

    Samples are drawn ``batch`` at a time (the paper draws one at a time: ``batch=1``). After each batch, with
    ``v1`` and ``v2`` the counts of the two most common equivalent answers, the Beta stopping rule computes
    ``P(p1 > p2)`` under ``Beta(v1 + 1, v2 + 1)`` exactly; sampling stops when it exceeds ``threshold`` (paper:
    0.95) or ``max_n`` samples (paper: 40) are drawn. The answer is the majority; the confidence its vote share.

    ``prompt`` adds a reasoning prompt from ``ponder.prompts`` to every sample; ``abstain_below`` withholds the
    answer (``unanswerable``) when its final vote share is below it (0 never abstains).
    """
    messages = apply_prompt(problem.messages, prompt)
    traces: list[Trace] = []
    probability = 0.0
    stopped_by = "max_n"
    result = await vote([], ctx.equivalent)
    while len(traces) < max_n:
        try:
            traces += await ctx.sample(messages, n=min(batch, max_n - len(traces)))
        except BudgetExceeded:
            if not traces:
                raise
            stopped_by = "token_budget"
            break
        result = await vote([t.answer for t in traces], ctx.equivalent)
        counts = [*sorted((len(c.members) for c in result.clusters), reverse=True), 0, 0]
        probability = leader_probability(counts[0], counts[1]) if counts[0] else 0.0
        if probability > threshold:
            stopped_by = "threshold"
            break
    info = {"samples": len(traces), "leader_probability": round(probability, 6), "stopped_by": stopped_by}
    return withhold(result.result(traces, info), abstain_below)
