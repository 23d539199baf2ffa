"""Abstention: withholding an unsure answer, and the metrics of a run whose answers may be abstentions.

An abstention is the answer ``ABSTAIN`` (``ponder.answers.abstain``): a model says it (on the abstention tasks,
whose prompt allows it), or a voting strategy withholds its winner when its confidence is below
``abstain_below``. On an unanswerable problem (gold ``ABSTAIN``) abstaining is right; on an answerable one it is
wrong for accuracy, and the metrics here tell it apart from a wrong answer.

Metrics (``summarize_abstention``), over the problems of a run, errored ones counted as failed:

- **precision of given answers**: right answers / problems answered with something other than an abstention
  (an answer to an unanswerable problem is never right);
- **abstention rate**: abstentions / problems;
- ReliableMath's reliability metrics (Xue et al., 2025, "ReliableMath: Benchmark of Reliable Mathematical
  Reasoning on Large Language Models"). Each response is a *success* (the right answer to an answerable
  problem; an abstention on an unanswerable one), a *refusal* ("I don't know") or a *failure*. Per split,
  Succ = successes / problems and Refu = refusals / problems, as the reference ``code/evaluate.py`` computes
  them (it calls them precision and prudence); the headline numbers average the two splits:
  **reliability** = (Succ(A) + Succ(U)) / 2 and **prudence** = (Refu(A) + Refu(U)) / 2. ponder reads every
  abstention as one token, so an abstention on an answerable problem is a refusal and one on an unanswerable
  problem a success: Refu(U) is 0 here (ReliableMath would count an "I don't know" there as a refusal), so
  ponder's prudence is Refu(A) / 2. The two metrics need both splits; with one they are None.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from annotated_types import Interval

from ponder.answers.abstain import ABSTAIN
from ponder.types import Result

if TYPE_CHECKING:
    from ponder.store import ProblemRecord

# ---------------------------------------------------------------------------------------- withholding


AbstainBelow = Annotated[float, Interval(ge=0, lt=1),
                         "withhold the answer (unanswerable) when its confidence is below this; 0 never abstains"]
"""The ``abstain_below`` parameter of the voting strategies: a confidence in [0, 1), checked by the registry."""


def abstain_below(result: Result, threshold: float) -> Result:
    """``result`` with its answer withheld (``ABSTAIN``) when its confidence is below ``threshold``.

    A result with no answer abstains too (its confidence is 0). The withheld answer and its confidence go to
    ``info["withheld"]``; the abstention carries no confidence of its own (the strategy's confidence measured
    the withheld answer, so calibration leaves abstentions out)."""
    if threshold <= 0.0 or result.answer == ABSTAIN:
        return result
    confidence = result.confidence if result.confidence is not None else 0.0
    if result.answer is not None and confidence >= threshold:
        return result
    result.info["withheld"] = {"answer": result.answer, "confidence": result.confidence, "below": threshold}
    result.answer, result.confidence = ABSTAIN, None
    return result


# --------------------------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class AbstentionSummary:
    """Abstention metrics of a run (see the module docstring); rates are None when their denominator is 0."""

    problems: int
    answerable: int
    unanswerable: int
    answered: int  # problems given an answer that is not an abstention
    abstained: int
    precision: float | None  # right answers / answered
    abstention_rate: float | None  # abstained / problems
    success_answerable: float | None  # Succ(A): right answers / answerable problems
    refusal_answerable: float | None  # Refu(A): abstentions / answerable problems
    success_unanswerable: float | None  # Succ(U): abstentions / unanswerable problems
    reliability: float | None  # (Succ(A) + Succ(U)) / 2, ReliableMath's headline precision
    prudence: float | None  # (Refu(A) + Refu(U)) / 2 with Refu(U) = 0


def has_abstention(records: Sequence[ProblemRecord]) -> bool:
    """Whether a run has unanswerable problems or abstentions, i.e. whether its abstention metrics mean anything."""
    return any(r.gold == ABSTAIN or r.answer == ABSTAIN for r in records)


def summarize_abstention(records: Sequence[ProblemRecord]) -> AbstentionSummary | None:
    """The abstention metrics of a run's problems, or None when the run has neither unanswerable problems nor
    abstentions."""
    if not has_abstention(records):
        return None
    answerable = [r for r in records if r.gold != ABSTAIN]
    unanswerable = [r for r in records if r.gold == ABSTAIN]
    answered = [r for r in records if r.error is None and r.answer is not None and r.answer != ABSTAIN]
    abstained = [r for r in records if r.error is None and r.answer == ABSTAIN]
    succ_a = _rate(sum(bool(r.correct) and r.error is None for r in answerable), len(answerable))
    refu_a = _rate(sum(r.error is None and r.answer == ABSTAIN for r in answerable), len(answerable))
    succ_u = _rate(sum(r.error is None and r.answer == ABSTAIN for r in unanswerable), len(unanswerable))
    reliability = prudence = None
    if succ_a is not None and refu_a is not None and succ_u is not None:
        reliability, prudence = (succ_a + succ_u) / 2, (refu_a + 0.0) / 2  # Refu(U) = 0: see the module docstring
    return AbstentionSummary(
        problems=len(records),
        answerable=len(answerable),
        unanswerable=len(unanswerable),
        answered=len(answered),
        abstained=len(abstained),
        precision=_rate(sum(bool(r.correct) for r in answered), len(answered)),
        abstention_rate=_rate(len(abstained), len(records)),
        success_answerable=succ_a,
        refusal_answerable=refu_a,
        success_unanswerable=succ_u,
        reliability=reliability,
        prudence=prudence,
    )


def _rate(count: int, total: int) -> float | None:
    return count / total if total else None
