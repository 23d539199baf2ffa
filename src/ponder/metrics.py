"""Accuracy with bootstrap confidence intervals, maj@k, unbiased pass@k, and cost per problem.

What counts as a sample for maj@k and pass@k: every trace a problem drew as an answer to it, finished or stopped
by ``max_tokens`` (a capped trace has no answer, so it is a sample that failed, as in the references). Helper
samples (``Trace.aux``: judge verdicts, search steps, critiques, rollouts) are not samples of the problem, and
cancelled traces (stopped early by the strategy: DeepConf's bar, DeepPrune) are left out too, since what they
would have answered is unknown; ``samples_per_problem`` is the smallest count left.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ponder.answers import normalize_answer
from ponder.store import ProblemRecord
from ponder.types import Trace

if TYPE_CHECKING:
    from ponder.strategies.voting import Equivalent


@dataclass(frozen=True)
class Estimate:
    """A mean with a 95% bootstrap interval."""

    mean: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"


def bootstrap_mean(values: Sequence[float], *, iterations: int = 2000, level: float = 0.95,
                   seed: int = 0) -> Estimate:
    """Percentile bootstrap of the mean; reproducible for a given seed."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(iterations, data.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Estimate(float(data.mean()), float(low), float(high), int(data.size))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al., 2021): 1 - C(n-c, k) / C(n, k)."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


Groups = Mapping[str, str]
"""An answer's equivalence class (a representative answer), for grouping wrong answers: see ``answer_groups``."""


def majority_correct(answers: Sequence[str | None], correct: Sequence[bool | None],
                     groups: Groups | None = None) -> bool:
    """Whether the plurality answer is right. All correct answers form one group (they equal the gold);
    wrong ones group by equivalence class (``groups``, from ``answer_groups``), else by normal form. Ties go to
    the group that appeared first."""
    groups = groups or {}
    counts: Counter[str] = Counter()
    first: dict[str, int] = {}
    for i, (answer, ok) in enumerate(zip(answers, correct, strict=True)):
        if answer is None:
            continue
        key = "\0correct" if ok else groups.get(answer) or normalize_answer(answer)
        counts[key] += 1
        first.setdefault(key, i)
    if not counts:
        return False
    best = max(counts, key=lambda key: (counts[key], -first[key]))
    return best == "\0correct"


async def answer_groups(answers: Sequence[str | None], equivalent: Equivalent | None = None) -> dict[str, str]:
    """Each answer's equivalence class, named by the ``normal form`` of its first member, as the strategies'
    votes group them (``1/2`` and ``0.5`` are one wrong answer, not two)."""
    if equivalent is None:
        from ponder.answers import get_checker

        equivalent = get_checker().equivalent
    from ponder.strategies.voting import cluster_answers

    distinct = list(dict.fromkeys(a for a in answers if a is not None))
    groups: dict[str, str] = {}
    for cluster in await cluster_answers(distinct, equivalent):
        name = normalize_answer(distinct[cluster.members[0]])
        for i in cluster.members:
            groups[distinct[i]] = name
    return groups


async def wrong_answer_groups(traces: Sequence[tuple[str, Trace]],
                              equivalent: Equivalent | None = None) -> dict[str, dict[str, str]]:
    """Per problem, the equivalence classes of its samples' wrong answers (for ``summarize``)."""
    wrong: dict[str, list[str | None]] = {}
    for problem_id, trace in traces:
        if is_sample(trace) and trace.answer is not None and not trace.correct:
            wrong.setdefault(problem_id, []).append(trace.answer)
    return {pid: await answer_groups(answers, equivalent) for pid, answers in wrong.items()}


def is_sample(trace: Trace) -> bool:
    """Whether a trace counts in maj@k and pass@k (see the module docstring)."""
    return not trace.aux and not trace.cancelled


def maj_at_k(answers: Sequence[str | None], correct: Sequence[bool | None], k: int, *, subsets: int = 200,
             seed: int = 0, groups: Groups | None = None) -> float:
    """Expected accuracy of a k-sample majority vote, estimated from n >= k stored samples by subsampling
    (as search-and-learn does), so one run of N gives the whole curve."""
    n = len(answers)
    if k > n:
        raise ValueError(f"maj@{k} needs at least {k} samples, got {n}")
    if k == n:
        return float(majority_correct(answers, correct, groups))
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(subsets):
        pick = rng.choice(n, size=k, replace=False)
        pick.sort()
        hits += majority_correct([answers[i] for i in pick], [correct[i] for i in pick], groups)
    return hits / subsets


def ks_up_to(n: int) -> list[int]:
    """1, 2, 4, ... up to n, and n itself."""
    ks = [k for k in (2**i for i in range(0, 12)) if k < n]
    return [*ks, n] if n >= 1 else []


@dataclass
class Summary:
    problems: int
    scored: int
    errors: int
    accuracy: Estimate
    mean_prompt_tokens: float
    mean_completion_tokens: float
    mean_latency_s: float
    mean_confidence: float | None
    maj_at: dict[int, float] = field(default_factory=dict)
    pass_at: dict[int, float] = field(default_factory=dict)
    samples_per_problem: int = 0
    traces: int = 0
    cancelled_traces: int = 0
    capped_traces: int = 0


def summarize(results: Sequence[ProblemRecord], traces: Sequence[tuple[str, Trace]] = (),
              groups: Mapping[str, Groups] | None = None) -> Summary:
    """Everything ``ponder show`` prints for a run. Errored problems count as wrong in accuracy.

    ``groups`` (problem id -> ``answer_groups``; see ``wrong_answer_groups``) groups wrong answers by
    equivalence in maj@k; without it they group by normal form."""
    groups = groups or {}
    scored = [r for r in results if r.error is None]
    accuracy = bootstrap_mean([1.0 if r.correct else 0.0 for r in results])
    confidences = [r.confidence for r in scored if r.confidence is not None]
    by_problem: dict[str, list[Trace]] = {}
    for problem_id, trace in traces:
        if is_sample(trace):
            by_problem.setdefault(problem_id, []).append(trace)
    n_min = min((len(ts) for ts in by_problem.values()), default=0)
    maj: dict[int, float] = {}
    passes: dict[int, float] = {}
    if by_problem and n_min >= 1:
        for k in ks_up_to(n_min):
            maj[k] = float(np.mean([
                maj_at_k([t.answer for t in ts], [t.correct for t in ts], k, groups=groups.get(pid))
                for pid, ts in by_problem.items()
            ]))
            passes[k] = float(np.mean([
                pass_at_k(len(ts), sum(bool(t.correct) for t in ts), k) for ts in by_problem.values()
            ]))
    count = max(len(results), 1)
    return Summary(
        problems=len(results),
        scored=len(scored),
        errors=len(results) - len(scored),
        accuracy=accuracy,
        mean_prompt_tokens=sum(r.prompt_tokens for r in results) / count,
        mean_completion_tokens=sum(r.completion_tokens for r in results) / count,
        mean_latency_s=sum(r.latency_s for r in results) / count,
        mean_confidence=float(np.mean(confidences)) if confidences else None,
        maj_at=maj,
        pass_at=passes,
        samples_per_problem=n_min,
        traces=sum(r.traces for r in results),
        cancelled_traces=sum(r.cancelled_traces for r in results),
        capped_traces=sum(r.capped_traces for r in results),
    )


def summarize_run(results: Sequence[ProblemRecord], traces: Sequence[tuple[str, Trace]]) -> Summary:
    """``summarize`` with wrong answers grouped by equivalence (checks run in ponder's answer workers)."""
    import asyncio

    return summarize(results, traces, asyncio.run(wrong_answer_groups(traces)))
