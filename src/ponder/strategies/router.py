"""Adaptive router: a few pilot samples decide how much more a problem gets, and from which strategy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from annotated_types import Ge, Interval

from ponder import confidence as conf
from ponder.context import Ctx
from ponder.errors import BudgetExceeded, CapabilityError, ConfigError
from ponder.strategies.registry import get_strategy, strategy
from ponder.strategies.voting import Vote, vote
from ponder.types import Problem, Result, Trace

SELF_CONSISTENCY = "self-consistency"
_DRAWS = 4000  # Monte Carlo draws of the saturation curve: ~0.005 noise on F, far less on its increments
_PRIOR = 0.5  # Jeffreys-style pseudo-count per category of the Dirichlet posterior


# ---- the saturation estimate ---------------------------------------------------------------------


def saturation_curve(counts: Sequence[int], unanswered: int, grid: Sequence[int], seed: int = 0) -> list[float]:
    """``F(N)`` for each ``N`` in ``grid``: the probability that a majority vote over ``N`` samples (the samples
    counted so far plus ``N - sum(counts) - unanswered`` more) picks the answer an unlimited vote would pick.

    Why not ``1 - (1 - p)^N``: that is pass@N, the chance that *some* sample is right, which only an oracle that
    recognises the right sample can cash in. A vote cannot pick a minority answer, so maj@N converges to
    ``1[the model's most likely answer is right]`` instead of to 1, and its accuracy differs from that limit by
    at most ``1 - F(N)``. ``F(N') - F(N)`` is therefore the most that drawing up to ``N'`` samples can be
    expected to change the vote's accuracy: the right quantity to weigh against the samples' cost.

    Model: the answer distribution is unknown; its posterior given the vote counts is
    ``Dirichlet(counts + 1/2, 1/2, unanswered + 1/2)`` over the answers seen so far, one not-yet-seen answer
    (which may still turn out to be the most likely one) and "no answer" (which cannot win). ``F`` averages, over
    distributions drawn from this posterior and futures drawn from each distribution, whether the plurality of
    all samples is the distribution's most likely answer (a tie counts as the share of tied answers it would
    win by a coin flip). Every ``N`` reuses the same draws, so differences between points are smooth.
    """
    observed = np.array([*counts, 0, unanswered], dtype=float)  # seen answers, one unseen, no answer
    contenders = len(counts) + 1
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(observed + _PRIOR, size=_DRAWS)
    mode = p[:, :contenders].argmax(axis=1)
    totals = np.tile(observed, (_DRAWS, 1))
    drawn = int(observed.sum())
    curve = []
    for n in grid:
        if n > drawn:
            totals += rng.multinomial(n - drawn, p)
            drawn = n
        votes = totals[:, :contenders]
        tied = votes == votes.max(axis=1, keepdims=True)
        curve.append(float((tied[np.arange(_DRAWS), mode] / tied.sum(axis=1)).mean()))
    return curve


def best_gain(grid: Sequence[int], curve: Sequence[float], step: int) -> float:
    """The largest average gain per ``step`` samples from ``grid[0]`` to any later point of the curve.

    Looking past the next step matters: a vote leading by more than half a step cannot flip in one step, so
    the next step's gain can be ~0 while a few steps more still pay (the curve is flat, then rises).
    """
    start, now = grid[0], curve[0]
    return max(((f - now) * step / (n - start) for n, f in zip(grid[1:], curve[1:], strict=True)), default=0.0)


def saturation_point(grid: Sequence[int], curve: Sequence[float], epsilon: float, step: int) -> int:
    """The smallest ``N`` of the grid past which no point gains ``epsilon`` per ``step`` samples on average."""
    for i in range(len(grid)):
        if best_gain(grid[i:], curve[i:], step) < epsilon:
            return grid[i]
    return grid[-1]


def _grid(start: int, stop: int, step: int) -> list[int]:
    return [*range(start, stop, step), stop] if start < stop else [start]


# ---- difficulty ----------------------------------------------------------------------------------


@dataclass
class Difficulty:
    """How hard the pilot says the problem is."""

    agreement: float  # the leading answer's share of the pilot (unanswered samples count against it)
    weighted_agreement: float  # the same leader's share with every sample weighted by its confidence
    confidence: float | None  # mean confidence of the pilot samples (None without logprobs)
    band: str  # "easy", "medium" or "hard"

    def to_json(self) -> dict[str, Any]:
        return {
            "agreement": round(self.agreement, 4),
            "weighted_agreement": round(self.weighted_agreement, 4),
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "band": self.band,
        }


async def _difficulty(ctx: Ctx, pilot: list[Trace], tally: Vote, measure: str, agree: float,
                      hard: float) -> Difficulty:
    agreement = tally.share
    confidence = None
    weighted = agreement
    if ctx.backend.capabilities.logprobs and ctx.sampling.logprobs and any(t.logprobs for t in pilot):
        values = [conf.measure(t, measure) for t in pilot]
        finite = [v for v in values if np.isfinite(v)]
        confidence = float(np.mean(finite)) if finite else None
        weights = [conf.vote_weight(v, measure) for v in values]
        leader = next((c for c in tally.clusters if c.answer == tally.winner), None)
        if leader is not None and sum(weights) > 0:
            weighted = sum(weights[i] for i in leader.members) / sum(weights)
    if tally.winner is None:
        band = "hard"
    elif agreement >= agree and weighted >= agree:
        band = "easy"
    else:
        band = "hard" if weighted < hard else "medium"
    return Difficulty(agreement, weighted, confidence, band)


# ---- the strategy --------------------------------------------------------------------------------


def _candidates(strategies: str) -> list[str]:
    names = [s.strip() for s in strategies.split(",") if s.strip()]
    if not names:
        raise ConfigError("router parameter 'strategies' is empty: list one or two strategies, e.g. "
                          "strategies=self-consistency,deepconf")
    for name in names:
        if name == "router":
            raise ConfigError("router parameter 'strategies' cannot name the router itself")
        try:
            info = get_strategy(name)
        except ConfigError as exc:
            raise ConfigError(f"router parameter 'strategies': {exc}") from None
        if "n" not in info.params:
            raise ConfigError(f"router parameter 'strategies': {name!r} has no parameter n, so the router cannot "
                              "give it a sample budget; use strategies that take n (self-consistency, deepconf, rpc, "
                              "self-certainty, crew)")
    return names


Strategies = Annotated[str, "strategies taking n: for medium, then hard problems (one entry serves both)"]


@strategy("router")
async def router(
    problem: Problem,
    ctx: Ctx,
    pilot: Annotated[int, Ge(1), "pilot samples that rate the difficulty"] = 4,
    max_n: Annotated[int, Ge(1), "samples in all, pilot included (at least pilot)"] = 32,
    step: Annotated[int, Ge(1), "samples added per round while the saturation curve rises"] = 4,
    agree: Annotated[float, Interval(gt=0, le=1), "leader's pilot share (plain and weighted) that is easy"] = 0.75,
    hard: Annotated[float, Interval(ge=0, le=1), "weighted pilot share below which a problem is hard"] = 0.5,
    strategies: Strategies = "self-consistency,deepconf",
    epsilon: Annotated[float, Interval(gt=0, lt=1), "least saturation-curve gain per step worth sampling for"] = 0.01,
    measure: Annotated[conf.MeasureName, "confidence that weighs the pilot samples"] = "mean",
) -> Result:
    """Adaptive router: pilot samples rate difficulty; stop, sample on until saturation, or use a stronger strategy.

    Divide-and-Conquer style routing (agreement among samples decides whether an answer is kept or the problem
    re-solved; Zhang et al., "Divide and Conquer for Large Language Models Reasoning") combined with the
    saturation budget of "Scaling over Scaling" (Wang et al., 2025: past a point more parallel samples stop
    paying off, so stop there).

    1. Draw ``pilot`` samples and vote. Difficulty: the leader's share of the pilot (``agreement``) and the same
       share with samples weighted by their confidence ``measure`` when logprobs exist (``weighted_agreement``;
       it falls when the dissenting samples are surer than the leader's).
    2. Easy (both shares >= ``agree``; with 4 pilots, 3 agree and the dissenter is not surer): answer with the
       pilot majority. Otherwise the problem is hard when the weighted share is below ``hard``, else medium.
    3. Medium problems go to the first strategy of ``strategies``, hard ones to the last (a single entry serves
       both). The default sends hard problems to DeepConf: when the pilot is split, a plain vote has little to
       go on, and confidence filtering can still pick a sure minority. Self-consistency continues from the
       pilot, whose samples keep their votes: it adds ``step`` samples at a time while the saturation curve
       (``saturation_curve``: the chance that the vote equals the unlimited-sample vote, estimated from the
       counts so far) still rises by ``epsilon`` per ``step`` samples on average to some later N (see
       ``best_gain``), up to ``max_n`` samples in all.
       Any other strategy is called through the registry on the same context with ``n`` = the saturation
       point of the pilot's curve (at most ``max_n - pilot``); it draws fresh samples, so the pilot only paid
       for the decision. A strategy the backend cannot serve (DeepConf without logprobs) falls back to
       self-consistency, and ``info["fallback"]`` says why.

    ``Result.info`` records the decision, the difficulty, the planned N and every saturation curve computed.
    """
    names = _candidates(strategies)
    if max_n < pilot:
        raise ConfigError(f"router max_n ({max_n}) counts all samples, pilot included: raise it to at least "
                          f"pilot={pilot}")
    conf.check_measure(measure)

    traces = await ctx.sample(n=pilot)
    tally = await vote([t.answer for t in traces], ctx.equivalent)
    difficulty = await _difficulty(ctx, traces, tally, measure, agree, hard)
    pilot_grid = _grid(pilot, max_n, step)
    pilot_curve = _curve(tally, len(traces), pilot_grid)
    planned = saturation_point(pilot_grid, pilot_curve, epsilon, step) if pilot_curve else max_n
    info: dict[str, Any] = {
        "difficulty": difficulty.to_json(),
        "pilot": pilot,
        "planned_n": planned,
        "curves": [_curve_json(pilot_grid, pilot_curve)],
    }
    if difficulty.band == "easy":
        return tally.result(traces, {**info, "decision": "stop at pilot", "stopped_by": "agreement",
                                     "samples": len(traces)})

    chosen = names[-1] if difficulty.band == "hard" else names[0]
    info["decision"] = chosen
    if chosen != SELF_CONSISTENCY:
        n = min(max(planned, step), max_n - pilot)
        try:
            return await _delegate(problem, ctx, chosen, n, traces, tally, info)
        except CapabilityError as exc:  # e.g. deepconf without logprobs: the pilot's votes still count
            info.update(decision=SELF_CONSISTENCY, fallback=f"{chosen} cannot run here: {exc}")
    return await _continue(problem, ctx, traces, tally, pilot_grid, pilot_curve, max_n, step, epsilon, info)


async def _delegate(problem: Problem, ctx: Ctx, name: str, n: int, pilot: list[Trace], tally: Vote,
                    info: dict[str, Any]) -> Result:
    """Hand the problem to another strategy with ``n`` fresh samples; the pilot only paid for the decision."""
    if n < 1:
        return tally.result(pilot, {**info, "stopped_by": "max_n", "samples": len(pilot)})
    try:
        delegated = await get_strategy(name)(problem, ctx, n=n)
    except BudgetExceeded:
        return tally.result(pilot, {**info, "stopped_by": "token_budget", "samples": len(pilot)})
    info.update(stopped_by="delegated", samples=len(pilot) + len(delegated.traces),
                delegate={"strategy": name, "n": n, "info": delegated.info})
    delegated.traces = pilot + delegated.traces
    delegated.info = info
    return delegated


async def _continue(problem: Problem, ctx: Ctx, traces: list[Trace], tally: Vote, grid: list[int],
                    curve: list[float], max_n: int, step: int, epsilon: float, info: dict[str, Any]) -> Result:
    """Self-consistency from the pilot on, ``step`` samples a round, until the curve flattens or ``max_n``."""
    stopped_by = "max_n"
    while len(traces) < max_n:
        if curve and best_gain(grid, curve, step) < epsilon:
            stopped_by = "saturation"
            break
        try:
            more = await get_strategy(SELF_CONSISTENCY)(problem, ctx, n=min(step, max_n - len(traces)))
        except BudgetExceeded:
            stopped_by = "token_budget"
            break
        traces = traces + more.traces
        tally = await vote([t.answer for t in traces], ctx.equivalent)  # the pilot's votes count too
        grid = _grid(len(traces), max_n, step)
        curve = _curve(tally, len(traces), grid)
        if curve:
            info["curves"].append(_curve_json(grid, curve))
    return tally.result(traces, {**info, "stopped_by": stopped_by, "samples": len(traces)})


def _curve(tally: Vote, drawn: int, grid: list[int]) -> list[float]:
    """The saturation curve from a vote, or [] when no sample has an answer yet (nothing to extrapolate)."""
    if not tally.clusters:
        return []
    counts = [len(c.members) for c in tally.clusters]
    return saturation_curve(counts, drawn - sum(counts), grid)


def _curve_json(grid: list[int], curve: list[float]) -> dict[str, Any]:
    return {"n": grid[0], "F": [[n, round(f, 4)] for n, f in zip(grid, curve, strict=False)]}
