"""DeepConf: confidence-filtered, confidence-weighted voting, offline or with early-stopped streams."""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from annotated_types import Ge, Interval

from ponder import confidence as conf
from ponder.abstention import AbstainBelow
from ponder.abstention import abstain_below as withhold
from ponder.context import Ctx
from ponder.errors import BudgetExceeded, ConfigError
from ponder.prompts import PromptParam, apply_prompt
from ponder.strategies.registry import strategy
from ponder.strategies.voting import Vote, vote
from ponder.types import Message, Problem, Result, Trace


@strategy("deepconf")
async def deepconf(
    problem: Problem,
    ctx: Ctx,
    mode: Annotated[Literal["offline", "online"], "offline: filter finished traces; online: stop streams"] = "offline",
    n: Annotated[int, Ge(1), "traces sampled (online: at most; paper: 512)"] = 64,
    eta: Annotated[float, Interval(gt=0, le=100), "percent of traces kept (10: DeepConf-low, 90: -high)"] = 10.0,
    measure: Annotated[conf.MeasureName, "trace confidence; online needs lowest_group"] = "lowest_group",
    window: Annotated[int, Ge(1), "tokens of a sliding confidence window (paper: 2048)"] = 2048,
    warmup: Annotated[int, Ge(1), "online: warm-up traces that set the stopping bar (paper: 16)"] = 16,
    tau: Annotated[float, Interval(gt=0, le=1), "online: leader's vote share that ends sampling (paper: 0.95)"] = 0.95,
    batch: Annotated[int, Ge(1), "online: traces streamed at a time after the warm-up"] = 8,
    prompt: PromptParam = "none",
    abstain_below: AbstainBelow = 0.0,
) -> Result:
    """DeepConf (Fu et al., 2025): vote with the most confident traces; online mode stops the others early.

    From "Deep Think with Confidence"; checked against the reference code (facebookresearch/deepconf).

    Token confidence is ``C_i = -mean(top-k logprobs)`` (the reference asks for k = 20: ``--top-logprobs``); a
    trace's confidence is read through ``measure`` (default the lowest mean ``C_i`` over sliding windows of
    ``window`` tokens, or over the whole trace when it is shorter than a window; see ``ponder.confidence``).

    ``mode=offline``: sample ``n`` traces; among those with an answer, keep the ones whose confidence is at or
    above the ``100 - eta`` percentile (``eta=10`` is the paper's DeepConf-low, ``eta=90`` DeepConf-high) and
    take a confidence-weighted majority vote over them, as the reference's ``filter_top_confidence`` does.

    ``mode=online``: ``warmup`` traces (paper: 16) set the stopping bar ``s`` = the ``100 - eta`` percentile of
    their lowest-group confidences; warm-up traces at or above ``s`` vote. Further traces are streamed ``batch``
    at a time, and each is cancelled the moment a *full* window of its last ``window`` tokens has a mean
    ``C_i`` below ``s`` (the reference's check); a trace shorter than a window runs to its end and is then
    dropped from the vote if its whole-trace confidence is below ``s``. Cancelled traces do not vote but their
    tokens are counted. With the paper's window of 2048 tokens, short traces are never cancelled: lower
    ``window`` for short answers (the window, the bar and the check must then agree, which they do here).

    Consensus stop (the paper's adaptive sampling; the reference script samples its whole budget instead): new
    traces stop once the leading answer holds ``tau`` (paper: 0.95) of the confidence-weighted vote of every
    finished trace that was not stopped: all warm-up traces plus the later ones that passed the bar. Counting
    only the voters would end a run as soon as the two warm-up traces kept at ``eta=10`` agree. Otherwise
    sampling stops when ``n`` traces (warm-up included) have been launched. The answer is the weighted vote of
    the voters. The paper's budget is 512 traces; ``n=64`` keeps the default affordable.

    ``prompt`` adds a reasoning prompt from ``ponder.prompts`` to every trace; ``abstain_below`` withholds the
    answer (``unanswerable``) when the winner's confidence-weighted vote share is below it (0 never abstains).
    """
    ctx.require_logprobs("deepconf", top_k=measure not in ("neg_perplexity", "answer"))
    conf.check_measure(measure)
    messages = apply_prompt(problem.messages, prompt)
    if mode == "offline":
        return withhold(await _offline(ctx, messages, n, eta, measure, window), abstain_below)
    if measure != "lowest_group":
        raise ConfigError("deepconf mode=online stops traces by their group confidence: use measure=lowest_group")
    return withhold(await _online(ctx, messages, n, eta, window, warmup, tau, batch), abstain_below)


def _finite(value: float) -> float | None:
    return round(value, 6) if math.isfinite(value) else None


async def _weighted_vote(ctx: Ctx, voters: list[Trace], measure: str, window: int) -> Vote:
    """Confidence-weighted majority over the voters that have an answer (the paper's V(a) = sum of C_t)."""
    answered = [t for t in voters if t.answer is not None]
    weights = [conf.vote_weight(conf.measure(t, measure, window=window), measure) for t in answered]
    return await vote([t.answer for t in answered], ctx.equivalent, weights)


async def _offline(ctx: Ctx, messages: list[Message], n: int, eta: float, measure: str, window: int) -> Result:
    traces = await ctx.sample(messages, n=n)
    scores = [conf.measure(t, measure, window=window) for t in traces]
    # The reference filters among the traces that have an answer, by a percentile bar (ties at the bar stay).
    answered = [i for i, t in enumerate(traces) if t.answer is not None and math.isfinite(scores[i])]
    threshold = float(np.percentile([scores[i] for i in answered], 100.0 - eta)) if answered else math.inf
    kept = [traces[i] for i in answered if scores[i] >= threshold]
    result = await _weighted_vote(ctx, kept, measure, window)
    return result.result(
        traces,
        {
            "mode": "offline",
            "measure": measure,
            "answered": len(answered),
            "kept": len(kept),
            "threshold": _finite(threshold),
            "scores": [_finite(s) for s in scores],
        },
    )


async def _stream_one(ctx: Ctx, messages: list[Message], threshold: float, window: int) -> Trace:
    monitor = conf.GroupMonitor(window)
    async with ctx.stream(messages) as stream:
        async for delta in stream:
            if any((group := monitor.push(tok.top)) is not None and group < threshold for tok in delta.tokens):
                await stream.cancel()
                break
    return stream.trace


async def _online(ctx: Ctx, messages: list[Message], n: int, eta: float, window: int, warmup: int, tau: float,
                  batch: int) -> Result:
    measure = "lowest_group"
    warm = await ctx.sample(messages, n=min(warmup, n))
    warm_scores = [conf.lowest_group_confidence(t, window) for t in warm]
    finite = [s for s in warm_scores if math.isfinite(s)]
    threshold = float(np.percentile(finite, 100.0 - eta)) if finite else -math.inf
    voters = [t for t, s in zip(warm, warm_scores, strict=True) if s >= threshold]
    finished = list(warm)  # the consensus pool: every trace that ran to its end and was not stopped by the bar
    traces = list(warm)
    cancelled, filtered = 0, 0
    stopped_by = "budget"
    streaming = ctx.backend.capabilities.streaming
    while True:
        consensus = await _weighted_vote(ctx, finished, measure, window)
        if consensus.winner is not None and consensus.share >= tau:
            stopped_by = "consensus"
            break
        if len(traces) >= n:
            break
        size = min(batch, n - len(traces))
        if streaming:
            gathered = await ctx.gather(*(_stream_one(ctx, messages, threshold, window) for _ in range(size)))
            outcomes, budget_hit = gathered.done, gathered.stopped > 0
        else:  # no streaming: nothing can be stopped early, but the bar still filters the vote
            try:
                outcomes, budget_hit = list(await ctx.sample(messages, n=size)), False
            except BudgetExceeded:
                outcomes, budget_hit = [], True
        for outcome in outcomes:
            traces.append(outcome)
            if outcome.cancelled:
                cancelled += 1
            elif conf.lowest_group_confidence(outcome, window) < threshold:
                filtered += 1  # ended before a full window could be checked: judged on the whole trace
            else:
                voters.append(outcome)
                finished.append(outcome)
        if budget_hit:
            stopped_by = "token_budget"
            break
    result = await _weighted_vote(ctx, voters, measure, window)
    return result.result(
        traces,
        {
            "mode": "online",
            "measure": measure,
            "threshold": _finite(threshold),
            "warmup": len(warm),
            "launched": len(traces),
            "cancelled": cancelled,
            "filtered": filtered,
            "used": len(voters),
            "stopped_by": stopped_by,
        },
    )
