"""RPC: Reasoning Pruning, then Perplexity Consistency."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import numpy as np
from annotated_types import Ge

from ponder import confidence as conf
from ponder.context import Ctx
from ponder.strategies.registry import strategy
from ponder.strategies.voting import cluster_answers
from ponder.types import Problem, Result

_K_MIN, _K_MAX = 0.05, 200.0  # Weibull shape bounds: a cluster of identical values would push k to infinity
_W_MIN, _W_MAX = 0.2, 0.8  # mixture weight bounds, as in the RPC authors' fit


@dataclass(frozen=True)
class WeibullMixture:
    """Two Weibull components on (0, 1]; component ``low`` has the smaller mean."""

    weight_low: float
    shape_low: float
    scale_low: float
    shape_high: float
    scale_high: float
    log_likelihood: float

    @staticmethod
    def mean(shape: float, scale: float) -> float:
        return scale * math.gamma(1.0 + 1.0 / shape)

    def posterior_low(self, x: np.ndarray) -> np.ndarray:
        """P(component = low | x) for each value."""
        low = math.log(self.weight_low) + _weibull_logpdf(x, self.shape_low, self.scale_low)
        high = math.log(1.0 - self.weight_low) + _weibull_logpdf(x, self.shape_high, self.scale_high)
        top = np.maximum(low, high)
        return np.asarray(np.exp(low - top) / (np.exp(low - top) + np.exp(high - top)))


def _weibull_logpdf(x: np.ndarray, shape: float, scale: float) -> np.ndarray:
    z = np.log(x) - math.log(scale)
    return np.asarray(math.log(shape) - math.log(scale) + (shape - 1.0) * z - np.exp(np.minimum(shape * z, 700.0)))


def _weighted_weibull_fit(y: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Maximum-likelihood Weibull (shape, scale) for log-values ``y = log x`` with weights ``w``.

    The shape k solves ``h(k) = E_k[y] - 1/k - E[y] = 0`` where ``E_k`` weighs each point by ``w x^k``; h is
    increasing, so a safeguarded Newton iteration (bisection fallback) on ``log k`` finds the root. Then
    ``scale = (sum w x^k / sum w)^(1/k)``.
    """
    total = float(w.sum())
    mean_y = float((w * y).sum()) / total

    def moments(k: float) -> tuple[float, float]:
        a = k * y
        e = w * np.exp(a - a.max())
        s = float(e.sum())
        m1 = float((e * y).sum()) / s
        m2 = float((e * y * y).sum()) / s
        return m1, max(m2 - m1 * m1, 0.0)

    def h(k: float) -> float:
        return moments(k)[0] - 1.0 / k - mean_y

    lo, hi = _K_MIN, _K_MAX
    if h(hi) <= 0:
        k = hi
    elif h(lo) >= 0:
        k = lo
    else:
        k = 2.0
        for _ in range(100):
            m1, var = moments(k)
            value = m1 - 1.0 / k - mean_y
            if abs(value) < 1e-12:
                break
            if value > 0:
                hi = k
            else:
                lo = k
            step = k - value / (var + 1.0 / (k * k))  # h'(k) = Var_k[y] + 1/k^2 > 0
            k = step if lo < step < hi else math.sqrt(lo * hi)
            if hi / lo < 1 + 1e-10:
                break
    a = k * y
    top = float(a.max())
    log_scale = (top + math.log(float((w * np.exp(a - top)).sum()) / total)) / k
    return k, math.exp(log_scale)


def fit_weibull_mixture(values: np.ndarray, iterations: int = 200, tol: float = 1e-9) -> WeibullMixture | None:
    """Fit a two-component Weibull mixture to values in (0, 1] by EM; None when the data cannot support two
    components (fewer than 3 values, or all equal).

    Deterministic: the EM starts from the best two-group split of the sorted values (1-D 2-means), and each
    M-step is exact weighted maximum likelihood per component, with the mixture weight clipped to [0.2, 0.8]
    (the bounds of the RPC authors' scipy fit; clipping is the exact constrained M-step).
    """
    x = np.clip(np.asarray(values, dtype=float), 1e-12, 1.0)
    if x.size < 3 or float(np.ptp(x)) < 1e-9:
        return None
    y = np.log(x)
    order = np.sort(x)
    costs = [order[:i].var() * i + order[i:].var() * (x.size - i) for i in range(1, x.size)]
    cut = order[int(np.argmin(costs)) + 1]
    r_low = (x < cut).astype(float)  # responsibilities of the low component
    r_low = np.clip(r_low, 1e-6, 1 - 1e-6)
    previous = -math.inf
    params = (0.5, 1.0, 1.0, 1.0, 1.0)
    log_likelihood = -math.inf
    for _ in range(iterations):
        weight = float(np.clip(r_low.mean(), _W_MIN, _W_MAX))
        k1, s1 = _weighted_weibull_fit(y, r_low)
        k2, s2 = _weighted_weibull_fit(y, 1.0 - r_low)
        params = (weight, k1, s1, k2, s2)
        low = math.log(weight) + _weibull_logpdf(x, k1, s1)
        high = math.log(1.0 - weight) + _weibull_logpdf(x, k2, s2)
        top = np.maximum(low, high)
        log_mix = top + np.log(np.exp(low - top) + np.exp(high - top))
        log_likelihood = float(log_mix.sum())
        r_low = np.clip(np.exp(low - log_mix), 1e-12, 1 - 1e-12)
        if abs(log_likelihood - previous) < tol * max(1.0, abs(log_likelihood)):
            break
        previous = log_likelihood
    weight, k1, s1, k2, s2 = params
    if WeibullMixture.mean(k1, s1) > WeibullMixture.mean(k2, s2):
        weight, k1, s1, k2, s2 = 1.0 - weight, k2, s2, k1, s1
    return WeibullMixture(weight, k1, s1, k2, s2, log_likelihood)


def prune_mask(p: np.ndarray) -> tuple[np.ndarray, WeibullMixture | None]:
    """RPC reasoning pruning: drop path i when it more likely belongs to the low-probability Weibull component
    and ``p_i < mean(p)``. Returns the keep mask and the fitted mixture."""
    mixture = fit_weibull_mixture(p)
    if mixture is None:
        return np.ones(p.size, dtype=bool), None
    drop = (mixture.posterior_low(np.clip(p, 1e-12, 1.0)) > 0.5) & (p < p.mean())
    return ~drop, mixture


@strategy("rpc")
async def rpc(
    problem: Problem,
    ctx: Ctx,
    n: Annotated[int, Ge(1), "reasoning paths sampled (paper: 64-128)"] = 16,
    prune: Annotated[bool, "Reasoning Pruning before Perplexity Consistency (false: PC alone)"] = True,
) -> Result:
    """RPC (Zhou et al., 2025): prune low-probability paths, then vote by summed path probability.

    From "A Theoretical Study on Bridging Internal Probability and Self-Consistency for LLM Reasoning":
    Reasoning Pruning, then Perplexity Consistency.

    Each of ``n`` paths gets its probability ``p_i = exp(mean token logprob)``. **Reasoning Pruning** fits a
    two-component Weibull mixture to the ``p_i`` (EM, see ``fit_weibull_mixture``) and drops a path if it
    belongs to the lower-mean component and ``p_i < mean(p)``. **Perplexity Consistency** groups the remaining
    paths by equivalent answer and scores each answer by the sum of ``p_i`` over its *unique* completions
    (identical texts count once); the highest score wins and the normalised scores are the confidences.
    ``prune=false`` gives Perplexity Consistency alone. The paper samples 64-128 paths; ``n=16`` matches
    self-consistency's default here.
    """
    ctx.require_logprobs("rpc")
    traces = await ctx.sample(n=n)
    p = np.array([math.exp(conf.mean_logprob(t)) for t in traces])
    keep, mixture = prune_mask(p) if prune else (np.ones(p.size, dtype=bool), None)
    kept = [i for i in range(len(traces)) if keep[i]]
    clusters = await cluster_answers([traces[i].answer for i in kept], ctx.equivalent)
    scores: list[float] = []
    for cluster in clusters:
        unique: dict[str, float] = {}
        for member in cluster.members:
            trace = traces[kept[member]]
            unique.setdefault(trace.reasoning + trace.text, float(p[kept[member]]))
        scores.append(math.fsum(unique.values()))
    total = math.fsum(scores)
    info: dict[str, object] = {
        "pruned": int((~keep).sum()),
        "path_probabilities": [round(float(v), 6) for v in p],
    }
    if mixture is not None:
        info["weibull"] = {
            "weight_low": round(mixture.weight_low, 4),
            "mean_low": round(WeibullMixture.mean(mixture.shape_low, mixture.scale_low), 4),
            "mean_high": round(WeibullMixture.mean(mixture.shape_high, mixture.scale_high), 4),
        }
    if not clusters or total <= 0:
        return Result(answer=None, confidence=0.0, votes={}, traces=traces, info=info)
    best = max(range(len(clusters)), key=lambda c: (scores[c], -c))
    votes = {c.answer: s / total for c, s in zip(clusters, scores, strict=True)}
    return Result(answer=clusters[best].answer, confidence=scores[best] / total, votes=votes, traces=traces,
                  info=info)
