"""Statistics for reports: calibration (reliability bins, ECE), the accuracy/cost Pareto frontier, paired
bootstrap differences between strategies, and intervals across repeated runs."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ponder.metrics import Estimate

_NAN = float("nan")


@dataclass(frozen=True)
class ReliabilityBin:
    """One equal-width confidence bin: ``[low, high)`` (the last bin also holds 1.0)."""

    low: float
    high: float
    count: int
    mean_confidence: float  # NaN when the bin is empty
    accuracy: float  # NaN when the bin is empty


def _check_confidences(confidences: Sequence[float], correct: Sequence[bool], bins: int) -> np.ndarray:
    if bins < 1:
        raise ValueError(f"need at least one bin, got {bins}")
    if len(confidences) != len(correct):
        raise ValueError(f"{len(confidences)} confidences but {len(correct)} correctness values")
    conf = np.asarray(confidences, dtype=float)
    if conf.size and (not np.all(np.isfinite(conf)) or conf.min() < 0.0 or conf.max() > 1.0):
        raise ValueError("confidences must be probabilities in [0, 1]")
    return conf


def reliability_bins(confidences: Sequence[float], correct: Sequence[bool], bins: int = 10) -> list[ReliabilityBin]:
    """Equal-width bins over [0, 1] with the count, mean confidence and accuracy of each (empty ones included)."""
    conf = _check_confidences(confidences, correct, bins)
    hits = np.asarray(correct, dtype=float)
    index = np.minimum((conf * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        mask = index == b
        count = int(mask.sum())
        out.append(ReliabilityBin(
            low=b / bins, high=(b + 1) / bins, count=count,
            mean_confidence=float(conf[mask].mean()) if count else _NAN,
            accuracy=float(hits[mask].mean()) if count else _NAN,
        ))
    return out


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    """ECE: the count-weighted mean gap |accuracy - mean confidence| over equal-width bins. NaN when empty."""
    table = reliability_bins(confidences, correct, bins)
    total = sum(b.count for b in table)
    if total == 0:
        return _NAN
    return float(sum(b.count / total * abs(b.accuracy - b.mean_confidence) for b in table if b.count))


def is_probability(values: Sequence[float]) -> bool:
    """Whether every value is a finite number in [0, 1] (strategies may store scores that are not)."""
    return all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values)


def pareto_frontier(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the (tokens, accuracy) points no other point beats (fewer or equal tokens and higher or equal
    accuracy, one of them strictly), ordered by tokens. Points with a NaN coordinate are never on it."""
    valid = [i for i, (x, y) in enumerate(points) if not (math.isnan(x) or math.isnan(y))]
    frontier = []
    for i in valid:
        xi, yi = points[i]
        dominated = any(
            points[j][0] <= xi and points[j][1] >= yi and (points[j][0] < xi or points[j][1] > yi) for j in valid
        )
        if not dominated:
            frontier.append(i)
    return sorted(frontier, key=lambda i: (points[i][0], -points[i][1], i))


def paired_difference(a: Mapping[str, float], b: Mapping[str, float], *, iterations: int = 2000,
                      level: float = 0.95, seed: int = 0) -> Estimate:
    """Mean of ``a[k] - b[k]`` over the keys (problem ids) both hold, with a percentile bootstrap interval that
    resamples problems (so both sides move together). ``n`` is the number of shared problems."""
    shared = sorted(a.keys() & b.keys())
    if not shared:
        return Estimate(_NAN, _NAN, _NAN, 0)
    diffs = np.array([a[k] - b[k] for k in shared], dtype=float)
    rng = np.random.default_rng(seed)
    means = diffs[rng.integers(0, diffs.size, size=(iterations, diffs.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Estimate(float(diffs.mean()), float(low), float(high), int(diffs.size))


# two-sided 95% Student t quantiles (0.975) for 1..30 degrees of freedom
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t: a table to 30 degrees of freedom, a Cornish-Fisher expansion beyond."""
    if df < 1:
        raise ValueError(f"need at least 1 degree of freedom, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959963984540054
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def mean_across_repeats(values: Sequence[float], bounds: tuple[float, float] | None = None) -> Estimate:
    """Mean of per-repeat values with a 95% Student t interval (bootstrap percentiles are too narrow for a
    handful of repeats), clipped to ``bounds`` when given (accuracy lies in [0, 1]). One value gives a NaN
    interval."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return Estimate(_NAN, _NAN, _NAN, 0)
    mean = float(data.mean())
    if data.size == 1:
        return Estimate(mean, _NAN, _NAN, 1)
    half = t_quantile_975(data.size - 1) * float(data.std(ddof=1)) / math.sqrt(data.size)
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return Estimate(mean, low, high, int(data.size))
