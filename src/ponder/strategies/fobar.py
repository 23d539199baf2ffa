"""FOBAR: forward sampling, then backward verification of each candidate answer."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Annotated, Any

from annotated_types import Ge, Interval

from ponder.context import Ctx
from ponder.strategies.registry import strategy
from ponder.strategies.voting import Cluster, cluster_answers
from ponder.types import Message, Problem, Result, Trace

BACKWARD_TEMPLATE = "If we know the answer to the above question is {answer}, what is the value of unknown variable x?"

# A number standing on its own: not part of a word ("x2", "3rd"), not a piece of a longer number.
_NUMBER = re.compile(r"(?<![\w.,])\d+(?:,\d{3})*(?:\.\d+)?(?![\w]|[.,]\d)")


@dataclass(frozen=True)
class Masked:
    """The question with one number replaced by ``x``, and that number."""

    question: str
    number: str


def mask_numbers(question: str, limit: int) -> list[Masked]:
    """Backward questions: each of the first ``limit`` numbers of the question in turn replaced by ``x``."""
    masked = []
    for match in list(_NUMBER.finditer(question))[:limit]:
        text = question[: match.start()] + "x" + question[match.end() :]
        masked.append(Masked(text, match.group().replace(",", "")))
    return masked


def _spread(total: int, parts: int) -> list[int]:
    """``total`` samples over ``parts`` questions, as evenly as possible (earlier ones get the remainder)."""
    return [total // parts + (1 if k < total % parts else 0) for k in range(parts)]


@strategy("fobar")
async def fobar(
    problem: Problem,
    ctx: Ctx,
    n: Annotated[int, Ge(1), "forward chains of thought sampled"] = 16,
    backward_n: Annotated[int, Ge(1), "backward chains per candidate answer"] = 8,
    alpha: Annotated[float, Interval(ge=0, le=1), "weight of the forward vote (1: self-consistency; paper: 0.5)"] = 0.5,
    max_masks: Annotated[int, Ge(1), "numbers of the question masked in turn"] = 4,
) -> Result:
    """FOBAR (Jiang et al., 2024): combine the forward vote with backward verification of each candidate.

    From "Forward-Backward Reasoning in Large Language Models for Mathematical Verification". **Forward**: sample
    ``n`` chains of thought; each distinct answer A (by equivalence) is a candidate with forward probability
    ``P_f(A)`` = its vote share. **Backward**: mask a number of the question as ``x`` and append "If we know the
    answer to the above question is {A}, what is the value of unknown variable x?"; ``backward_n`` backward chains
    per candidate are spread over the first ``max_masks`` numbers of the question, each masked in turn, and
    ``P_b(A)`` = the fraction of them whose answer equals the masked number (normalised over candidates).
    **Combination**, as in the paper: ``P(A) ∝ P_f(A)^alpha · P_b(A)^(1 - alpha)``; ``alpha=0.5`` is the paper's
    setting, ``alpha=1`` is self-consistency and ``alpha=0`` backward reasoning alone. When no backward chain
    recovers a masked number (or the question has no number to mask), the forward vote decides and
    ``info["fallback"]`` says why.
    """
    traces = await ctx.sample(n=n)
    clusters = await cluster_answers([t.answer for t in traces], ctx.equivalent)
    forward = [len(c.members) / n for c in clusters]
    info: dict[str, Any] = {"alpha": alpha, "forward": {c.answer: round(p, 4) for c, p in zip(clusters, forward,
                                                                                             strict=True)},
                            "fallback": None}
    if not clusters:
        return Result(answer=None, confidence=0.0, votes={}, traces=traces, info=info)
    masks = mask_numbers(problem.question, max_masks)
    if alpha == 1.0 or not masks:
        info["fallback"] = None if masks else "the question has no number to mask: forward vote only"
        return _pick(clusters, forward, traces, info)

    async def backward(answer: str, masked: Masked, count: int) -> int:
        """How many of ``count`` backward chains, told the answer is ``answer``, recover the masked number."""
        with ctx.aux():  # a backward chain answers the masked question, not the problem: maj@k must not count it
            chains = await ctx.sample(_backward_messages(problem, masked, answer), n=count)
        recovered = [ctx.stated(chain) for chain in chains]
        return sum([x is not None and await ctx.equivalent(x, masked.number) for x in recovered])

    masks = masks[:backward_n]  # fewer chains than numbers: mask only as many numbers as there are chains
    shares = _spread(backward_n, len(masks))
    jobs = [(c, m, k) for c in range(len(clusters)) for m, k in zip(masks, shares, strict=True)]
    outcomes = await asyncio.gather(*(backward(clusters[c].answer, m, k) for c, m, k in jobs))
    correct = [0] * len(clusters)
    for (c, _, _), hits in zip(jobs, outcomes, strict=True):
        correct[c] += hits
    rates = [hits / backward_n for hits in correct]
    info["masked"] = [{"question": m.question, "number": m.number} for m in masks]
    info["backward"] = {c.answer: round(r, 4) for c, r in zip(clusters, rates, strict=True)}
    total = sum(correct)
    if total == 0:
        info["fallback"] = "no backward chain recovered a masked number: forward vote only"
        return _pick(clusters, forward, traces, info)
    backward_p = [hits / total for hits in correct]
    scores = [f**alpha * b ** (1.0 - alpha) for f, b in zip(forward, backward_p, strict=True)]
    return _pick(clusters, scores, traces, info)


def _backward_messages(problem: Problem, masked: Masked, answer: str) -> list[Message]:
    question = f"{masked.question.rstrip()}\n{BACKWARD_TEMPLATE.format(answer=answer)}"
    return [*problem.messages[:-1], {"role": "user", "content": question}]


def _pick(clusters: list[Cluster], scores: list[float], traces: list[Trace], info: dict[str, Any]) -> Result:
    """The highest score wins (ties: the candidate sampled first); scores are normalised into confidences."""
    total = sum(scores)
    best = max(range(len(clusters)), key=lambda c: (scores[c], -clusters[c].members[0]))
    votes = {c.answer: (s / total if total > 0 else 0.0) for c, s in zip(clusters, scores, strict=True)}
    return Result(answer=clusters[best].answer, confidence=votes[clusters[best].answer], votes=votes,
                  traces=traces, info=info)
