"""How sure a model was of a trace, read from its token logprobs.

Every measure here is a pure function of a finished ``Trace`` and is oriented so that **higher means more
confident**. Notation: a trace has tokens ``1..L``; ``log p_i`` is the logprob of the token sampled at position
``i``; ``T_i`` is the list of top-k ``(token, logprob)`` alternatives the server returned at position ``i``.

Measures (``MEASURES``, selected by name with ``measure``):

``mean``
    DeepConf's average trace confidence (Fu et al., 2025, "Deep Think with Confidence"): the mean of the token
    confidences ``C_i = -(1/k) sum_{(t, lp) in T_i} lp`` over the whole trace. A peaked next-token
    distribution puts very low logprobs on the alternatives, so ``C_i`` is large where the model is sure.
``lowest_group``
    DeepConf's lowest group confidence: the minimum over sliding windows of ``window`` consecutive tokens
    (stride 1) of the windows' mean ``C_i``. The window is clamped to the trace length, so a trace shorter
    than the window is one group (as in the paper's code).
``bottom10``
    DeepConf's bottom-10% group confidence: the mean of the lowest ``max(1, floor(10% x #groups))`` group
    confidences (the reference code's ``max(1, int(len * 0.1))``).
``tail``
    DeepConf's tail confidence: the mean ``C_i`` over the last ``window`` tokens (clamped to the trace).
``self_certainty``
    Kang et al. (2025), "Scalable Best-of-N Selection for Large Language Models via Self-Certainty": the mean
    over positions of ``KL(U || p_i)``. See ``self_certainty`` for the top-k approximation used.
``neg_perplexity``
    ``-PPL = -exp(-(1/L) sum_i log p_i)``; monotone in the mean logprob, so it ranks traces exactly as the
    RPC paper's path probability ``exp(mean log p_i)`` does.
``answer``
    CRew (Du et al., 2025, "Confidence as a Reward"): the mean probability ``exp(log p_i)`` of the tokens that
    spell the final answer.

The DeepConf measures and self-certainty read the top-k list ``T_i``, and need ``k >= 2`` alternatives per
position: with only the sampled token, ``-log p_i`` would *rise* with uncertainty, inverting every ranking, and a
one-entry distribution has no shape for self-certainty to measure. Such traces raise ``CapabilityError`` naming
``--top-logprobs``. ``neg_perplexity`` and ``answer`` read only the sampled tokens' logprobs.

How ``k`` changes the numbers: ``C_i`` averages ``-log p`` over the top-k, and the k-th alternative is the least
likely of them, so a larger ``k`` gives larger ``C_i`` on every trace (DeepConf's reference uses ``k = 20``).
Self-certainty renormalises the top-k, so a larger ``k`` sees more of the tail. Rankings within one set of
traces drawn with the same ``k`` are what matter; absolute values (and DeepConf thresholds) are comparable only
between traces drawn with the same ``k``, which is why runs and banks record it.

A trace without tokens has no evidence: every measure gives ``-inf`` for it (it ranks last). A trace *with*
tokens but without logprobs raises ``CapabilityError``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from typing import Literal, get_args

import numpy as np

from ponder.errors import CapabilityError, ConfigError
from ponder.top_rows import PackedTop
from ponder.types import Trace

__all__ = [
    "DEFAULT_WINDOW",
    "MEASURES",
    "GroupMonitor",
    "MeasureName",
    "answer_confidence",
    "answer_logprob",
    "answer_span",
    "best_index",
    "bottom_group_confidence",
    "check_measure",
    "group_confidences",
    "lowest_group_confidence",
    "mean_confidence",
    "mean_logprob",
    "measure",
    "perplexity",
    "self_certainty",
    "tail_confidence",
    "token_confidence",
    "token_confidences",
    "vote_weight",
]

DEFAULT_WINDOW = 2048
"""DeepConf's group size and tail length (the paper uses 2048 tokens for both)."""

Top = Sequence[tuple[str, float]]


def _require_logprobs(trace: Trace, what: str) -> bool:
    """False for an empty trace; raises when tokens came without logprobs."""
    if not trace.tokens and not trace.logprobs:
        return False
    if not trace.logprobs:
        raise CapabilityError(
            f"confidence measure {what!r} needs token logprobs, and this trace has none "
            "(the backend does not return logprobs, or --no-logprobs was given)"
        )
    return True


MIN_TOP_K = 2
"""Alternatives per position that the top-k measures need (see the module docstring)."""


def _require_top_k(trace: Trace, what: str) -> None:
    """Refuse a trace whose positions carry fewer than ``MIN_TOP_K`` alternatives."""
    tops = trace.top_logprobs
    narrowest = tops.min_width() if isinstance(tops, PackedTop) else min((len(top) for top in tops), default=0)
    if len(tops) < len(trace.logprobs) or narrowest < MIN_TOP_K:
        widths = [narrowest]
        raise CapabilityError(
            f"confidence measure {what!r} needs the top-k alternatives of every token (k >= {MIN_TOP_K}); this "
            f"trace has k = {widths[0]} at some positions. Ask for them with --top-logprobs K (e.g. 20), or use "
            "a measure that reads only the sampled tokens (neg_perplexity, answer)"
        )


def _top(trace: Trace, i: int) -> Top:
    return trace.top_logprobs[i]


# ---- per-token quantities ------------------------------------------------------------------------


def token_confidence(top: Top) -> float:
    """DeepConf token confidence ``C_i = -(1/k) sum_j log P_i(j)`` over the top-k logprobs at one position."""
    if len(top) < MIN_TOP_K:
        raise CapabilityError(f"token confidence needs at least {MIN_TOP_K} top-k alternatives per token, got "
                              f"{len(top)}; ask for them with --top-logprobs K (e.g. 20)")
    return -math.fsum(lp for _, lp in top) / len(top)


def token_confidences(trace: Trace) -> np.ndarray:
    """``C_i`` for every position of the trace (empty array for an empty trace)."""
    if not _require_logprobs(trace, "token confidence"):
        return np.zeros(0)
    _require_top_k(trace, "token confidence")
    matrix = _matrix(trace)
    if matrix is not None:
        return np.asarray(-matrix.sum(axis=1) / matrix.shape[1])
    return np.array([-math.fsum(lp for _, lp in _top(trace, i)) / len(_top(trace, i))
                     for i in range(len(trace.logprobs))])


def _matrix(trace: Trace) -> np.ndarray | None:
    """The trace's top-k logprobs as one ``L × k`` array when it comes from a packed bank with k at every
    position (the fast path: no tuples are built), else None."""
    tops = trace.top_logprobs
    if isinstance(tops, PackedTop):
        matrix = tops.logprob_matrix()
        if matrix is not None:
            return matrix[: len(trace.logprobs)]
    return None


# ---- whole-trace measures ------------------------------------------------------------------------


def mean_logprob(trace: Trace) -> float:
    """``(1/L) sum_i log p_i``; RPC's path probability is its exponential."""
    if not _require_logprobs(trace, "mean logprob"):
        return -math.inf
    return math.fsum(trace.logprobs) / len(trace.logprobs)


def perplexity(trace: Trace) -> float:
    """``PPL = exp(-(1/L) sum_i log p_i)``; 1 for a certain trace, larger when less sure (``inf`` if empty)."""
    return math.exp(-mean_logprob(trace))


def mean_confidence(trace: Trace) -> float:
    """DeepConf average trace confidence: ``(1/L) sum_i C_i``."""
    c = token_confidences(trace)
    return float(c.mean()) if c.size else -math.inf


def _effective_window(length: int, window: int) -> int:
    if window < 1:
        raise ConfigError(f"confidence window must be at least 1 token, got {window}")
    return min(window, length)


def group_confidences(trace: Trace, window: int = DEFAULT_WINDOW) -> np.ndarray:
    """DeepConf group confidences: ``C_G = (1/|G|) sum_{i in G} C_i`` for every window ``G`` of
    ``min(window, L)`` consecutive tokens, stride 1 (``L - w + 1`` groups)."""
    c = token_confidences(trace)
    if not c.size:
        return c
    w = _effective_window(c.size, window)
    sums = np.cumsum(np.concatenate(([0.0], c)))
    return np.asarray((sums[w:] - sums[:-w]) / w)


def lowest_group_confidence(trace: Trace, window: int = DEFAULT_WINDOW) -> float:
    """DeepConf lowest group confidence: ``min_G C_G``."""
    groups = group_confidences(trace, window)
    return float(groups.min()) if groups.size else -math.inf


def bottom_group_confidence(trace: Trace, window: int = DEFAULT_WINDOW, percent: float = 10.0) -> float:
    """DeepConf bottom-η% group confidence: mean of the ``max(1, floor(percent/100 x #groups))`` lowest ``C_G``
    (the reference's ``max(1, int(len(window_means) * bottom_percent))``)."""
    groups = group_confidences(trace, window)
    if not groups.size:
        return -math.inf
    count = max(1, int(groups.size * percent / 100.0 + 1e-9))
    return float(np.sort(groups)[:count].mean())


def tail_confidence(trace: Trace, tail: int = DEFAULT_WINDOW) -> float:
    """DeepConf tail confidence: mean ``C_i`` over the last ``min(tail, L)`` tokens."""
    c = token_confidences(trace)
    if not c.size:
        return -math.inf
    return float(c[-_effective_window(c.size, tail) :].mean())


def self_certainty(trace: Trace) -> float:
    """Self-certainty (Kang et al., 2025): the mean over positions of ``KL(U || p_i)``.

    The paper's definition over the full vocabulary of size V is
    ``-(1/(L V)) sum_i sum_{j=1..V} log(V p_i(j))``. An API returns only the top-k of ``p_i``, so ponder
    approximates it by **treating the top-k as the whole support and renormalising**:
    ``q_i(j) = p_i(j) / sum_{j' in top-k} p_i(j')`` and

        KL(U_k || q_i) = -log k - (1/k) sum_{j in top-k} log q_i(j)   (>= 0, 0 when the top-k is flat)

    so it measures how peaked the head of the distribution is. The full-vocabulary value is dominated by the
    vocabulary tail, which the top-k cannot see; values are therefore comparable only between traces drawn
    with the same ``top_logprobs``. A trace without k >= 2 alternatives at every position raises
    ``CapabilityError`` (with one entry the renormalised distribution is a point mass and every trace would
    score 0).
    """
    if not _require_logprobs(trace, "self_certainty"):
        return -math.inf
    _require_top_k(trace, "self_certainty")
    matrix = _matrix(trace)
    if matrix is not None:
        top_max = matrix.max(axis=1, keepdims=True)
        log_mass = top_max + np.log(np.exp(matrix - top_max).sum(axis=1, keepdims=True))
        per_position = -math.log(matrix.shape[1]) - (matrix - log_mass).mean(axis=1)
        return float(per_position.mean())
    total = 0.0
    for i in range(len(trace.logprobs)):
        top = trace.top_logprobs[i]
        k = len(top)
        lps = np.array([lp for _, lp in top], dtype=float)
        top_max = lps.max()
        log_mass = top_max + math.log(float(np.exp(lps - top_max).sum()))
        log_q = lps - log_mass
        total += -math.log(k) - float(log_q.mean())
    return total / len(trace.logprobs)


# ---- the final answer's tokens -------------------------------------------------------------------


def answer_span(trace: Trace, answer: str | None = None) -> tuple[int, int] | None:
    """Token positions ``[start, end)`` spelling the final answer, or None when it cannot be found.

    The answer (``trace.answer`` unless given) is looked up as the **last** occurrence of its characters in the
    concatenated tokens, and the character span is mapped to every token that overlaps it. When the exact
    string is absent (e.g. the tokens spell ``1 000`` for ``1000``), the search is repeated with whitespace
    removed on both sides.
    """
    answer = trace.answer if answer is None else answer
    if not answer or not trace.tokens:
        return None
    joined = "".join(trace.tokens)
    starts = np.cumsum([0] + [len(t) for t in trace.tokens])  # starts[i] = first character of token i
    pos = joined.rfind(answer)
    if pos != -1:
        char_start, char_end = pos, pos + len(answer)
    else:
        target = "".join(answer.split())
        kept = [i for i, ch in enumerate(joined) if not ch.isspace()]
        squeezed = "".join(joined[i] for i in kept)
        spos = squeezed.rfind(target) if target else -1
        if spos == -1:
            return None
        char_start, char_end = kept[spos], kept[spos + len(target) - 1] + 1
    first = int(np.searchsorted(starts, char_start, side="right")) - 1
    last = int(np.searchsorted(starts, char_end, side="left"))  # exclusive: tokens starting before char_end
    return max(first, 0), min(max(last, first + 1), len(trace.tokens))


def _answer_logprobs(trace: Trace, what: str) -> list[float] | None:
    if not _require_logprobs(trace, what) or trace.answer is None:
        return None
    span = answer_span(trace)
    if span is None:
        return list(trace.logprobs)  # the answer is not spelled out verbatim: fall back to the whole trace
    return trace.logprobs[span[0] : span[1]]


def answer_confidence(trace: Trace) -> float:
    """CRew answer confidence: the mean token probability ``(1/|A|) sum_{i in A} exp(log p_i)`` over the
    answer's tokens ``A`` (see ``answer_span``). ``-inf`` for a trace without an answer; when the answer is
    not spelled verbatim in the tokens, the mean over all tokens is used instead."""
    lps = _answer_logprobs(trace, "answer")
    if lps is None:
        return -math.inf
    return float(np.mean(np.exp(lps)))


def answer_logprob(trace: Trace) -> float:
    """Mean logprob of the answer's tokens (``log`` of their geometric-mean probability)."""
    lps = _answer_logprobs(trace, "answer logprob")
    if lps is None:
        return -math.inf
    return math.fsum(lps) / len(lps)


# ---- selection by name ---------------------------------------------------------------------------

_MEASURES: dict[str, Callable[[Trace, int], float]] = {
    "mean": lambda t, w: mean_confidence(t),
    "lowest_group": lowest_group_confidence,
    "bottom10": lambda t, w: bottom_group_confidence(t, w, 10.0),
    "tail": tail_confidence,
    "self_certainty": lambda t, w: self_certainty(t),
    "neg_perplexity": lambda t, w: -perplexity(t),
    "answer": lambda t, w: answer_confidence(t),
}

MeasureName = Literal["mean", "lowest_group", "bottom10", "tail", "self_certainty", "neg_perplexity", "answer"]
"""A measure's name, as a type: strategy parameters typed with it list the choices in ``ponder strategies``."""

MEASURES: tuple[str, ...] = get_args(MeasureName)
"""Names accepted by ``measure``; every one is higher-is-more-confident."""
assert set(MEASURES) == set(_MEASURES)


def check_measure(name: str) -> str:
    if name not in _MEASURES:
        raise ConfigError(f"unknown confidence measure {name!r}; known: {', '.join(MEASURES)}")
    return name


def measure(trace: Trace, name: str, *, window: int = DEFAULT_WINDOW) -> float:
    """The named measure of a trace; ``window`` is the group size (``lowest_group``, ``bottom10``) and the
    tail length (``tail``), clamped to the trace length."""
    return _MEASURES[check_measure(name)](trace, window)


def vote_weight(value: float, name: str) -> float:
    """A non-negative voting weight from a measure's value, increasing with confidence.

    DeepConf confidences, self-certainty and answer probability are already non-negative and are used as they
    are; ``neg_perplexity`` becomes ``1/PPL = exp(mean logprob)``. ``-inf`` (no evidence) weighs 0.
    """
    if math.isnan(value) or value == -math.inf:
        return 0.0
    if name == "neg_perplexity":
        return 1.0 / -value if value < 0 else 0.0
    return max(value, 0.0)


def best_index(traces: Sequence[Trace], name: str, *, window: int = DEFAULT_WINDOW) -> int | None:
    """Position of the most confident trace that has an answer (ties go to the first); None if none has."""
    best: int | None = None
    best_value = -math.inf
    for i, trace in enumerate(traces):
        if trace.answer is None:
            continue
        value = measure(trace, name, window=window)
        if best is None or value > best_value:
            best, best_value = i, value
    return best


# ---- online: the group confidence of a trace while it is generated --------------------------------


class GroupMonitor:
    """Sliding-window group confidence of a trace as its tokens arrive (DeepConf online).

    ``push`` returns the mean ``C_i`` of the last ``window`` tokens once a full window exists, else None: the
    reference implementation (facebookresearch/deepconf, its vLLM patch) checks only full windows, so a trace
    shorter than the window is never stopped while it runs. It is judged when it ends, on its single group
    (the whole trace), exactly as the warm-up traces that set the bar were (``lowest_group_confidence``).
    """

    def __init__(self, window: int = DEFAULT_WINDOW) -> None:
        if window < 1:
            raise ConfigError(f"confidence window must be at least 1 token, got {window}")
        self.window = window
        self.count = 0
        self.lowest = math.inf
        self._recent: deque[float] = deque()
        self._sum = 0.0

    def push(self, top: Top) -> float | None:
        c = token_confidence(top)
        self._recent.append(c)
        self._sum += c
        if len(self._recent) > self.window:
            self._sum -= self._recent.popleft()
        self.count += 1
        if self.count % 4096 == 0:  # keep the running sum from drifting on very long traces
            self._sum = math.fsum(self._recent)
        if self.count < self.window:
            return None
        group = self._sum / self.window
        self.lowest = min(self.lowest, group)
        return group
