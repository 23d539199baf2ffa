"""What a report shows, read from the store: one point per run, or per group of repeated runs.

Runs carry a ``"group"`` key in their config (the runner's hash of the config without the replay seed). Runs of
one group that share task, model, strategy and parameters are pooled into one point: accuracy is the mean over
repeats with a 95% Student t interval across repeats (clipped to [0, 1]), tokens are the mean over repeats. A run
alone in its group (every live run) is its own point, keyed by its run id, with the bootstrap interval over
problems that ``ponder show`` prints (``ponder.metrics.summarize``).

Each point is then compared, paired by problem id, with self-consistency at the same N on the same task and
model; its ECE is computed when its confidences are probabilities; and the points of each task and model that
no other point beats on both accuracy and tokens form that scope's Pareto frontier.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ponder.metrics import Estimate, summarize
from ponder.report.stats import expected_calibration_error, is_probability, mean_across_repeats, paired_difference
from ponder.report.stats import pareto_frontier as frontier_of
from ponder.store import ProblemRecord, RunRow, Store

BASELINE = "self-consistency"
DEFAULT_BINS = 10


def format_params(params: Mapping[str, Any], skip: Sequence[str] = ()) -> str:
    """``k=v`` pairs in config order, as ``ponder runs`` shows them."""
    return " ".join(f"{k}={v}" for k, v in params.items() if k not in skip)


def _defaults(strategy: str) -> dict[str, Any]:
    """The strategy's parameter defaults; none when this ponder does not know the strategy."""
    from ponder.errors import PonderError
    from ponder.strategies import get_strategy

    try:
        return get_strategy(strategy).defaults()
    except PonderError:
        return {}


def _label_params(strategy: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters worth naming in a label: n, and those that differ from the strategy's defaults."""
    defaults = _defaults(strategy)
    missing = object()
    return {k: v for k, v in params.items() if k == "n" or defaults.get(k, missing) != v}


def _with(name: str, rest: str) -> str:
    return f"{name} {rest}" if rest else name


@dataclass
class Point:
    """One strategy setting measured on one task and model: a run, or the repeats of a group pooled."""

    key: str  # the run id for a single run, else "group:NAME" (with a suffix when a group mixes settings)
    label: str  # strategy, n and the parameters not at their default, e.g. "self-consistency n=8"
    series: str  # the label without n: points of one series differ only in N
    strategy: str
    params: dict[str, Any]  # all of them, as stored
    n: int  # samples per problem: the "n" parameter, else the mean number of traces per problem
    scope: str  # task and model, e.g. "add1 · fake"
    run_ids: list[str]
    group: str | None  # the config's group, if any (also for a run alone in its group)
    problems: int  # distinct problem ids over all repeats
    errors: int
    accuracy: Estimate
    interval: str  # how accuracy's interval was made: "problems" (bootstrap) or "repeats" (Student t)
    mean_tokens: float  # prompt + completion tokens per problem (mean over repeats for a group)
    mean_completion_tokens: float
    repeat_accuracies: list[float]
    confidences: list[float]  # confidence and correctness of every scored problem with a confidence
    correct: list[bool]
    per_problem: dict[str, float]  # problem id -> correctness (mean over repeats for a group)
    sampling: dict[str, Any] = field(default_factory=dict)
    replay_bank: str | None = None

    @property
    def repeats(self) -> int:
        return len(self.run_ids)


@dataclass
class Row:
    """A point with what is derived from the others: calibration, frontier, and the baseline comparison."""

    point: Point
    ece: float | None  # None when the strategy gives no probability-valued confidence
    on_frontier: bool
    baseline: Point | None  # self-consistency at the same N on the same task and model
    difference: Estimate | None  # accuracy minus the baseline's, paired by problem id


@dataclass
class ReportData:
    runs: list[RunRow]
    rows: list[Row]
    bins: int = DEFAULT_BINS
    notes: list[str] = field(default_factory=list)

    @property
    def points(self) -> list[Point]:
        return [row.point for row in self.rows]


def _scope(config: Mapping[str, Any], run: RunRow) -> str:
    task = str(config.get("task", run.task))
    if config.get("task_seed"):
        task += f" seed={config['task_seed']}"
    if config.get("task_size") is not None:
        task += f" size={config['task_size']}"
    model = run.model  # for a replayed run, the bank and the model it was recorded from
    name = config.get("model_name")
    if name and str(name) not in model:
        model += f" {name}"
    return f"{task} · {model}"


def _samples(params: Mapping[str, Any], records: Sequence[ProblemRecord]) -> int:
    n = params.get("n")
    if isinstance(n, int) and not isinstance(n, bool):
        return n
    traces = [r.traces for r in records if r.error is None]
    return max(1, round(float(np.mean(traces)))) if traces else 1


def _group_name(config: Mapping[str, Any]) -> str | None:
    group = config.get("group")
    if group is None:
        return None
    return group if isinstance(group, str) else json.dumps(group, sort_keys=True)


def _replay_bank(config: Mapping[str, Any]) -> str | None:
    replay = config.get("replay")
    if isinstance(replay, Mapping) and replay.get("bank") is not None:
        return str(replay["bank"])
    return None


EXACT_REWARD_MARK = " [exact checker as reward]"
"""Appended to the label of a strategy whose search was steered by the task's own checker (tot, mcts on puzzles)."""


def _point(key: str, members: list[tuple[RunRow, list[ProblemRecord]]], group: str | None) -> Point:
    run, _ = members[0]
    config = run.config
    params = dict(config.get("params") or {})
    all_records = [r for _, records in members for r in records]
    summaries = [summarize(records) for _, records in members]
    if len(members) == 1:
        accuracy, interval = summaries[0].accuracy, "problems"
    else:
        accuracy, interval = mean_across_repeats([s.accuracy.mean for s in summaries], (0.0, 1.0)), "repeats"
    hits: dict[str, list[float]] = {}
    for r in all_records:
        hits.setdefault(r.problem_id, []).append(1.0 if r.correct else 0.0)
    scored = [r for r in all_records if r.error is None and r.confidence is not None and r.correct is not None]
    exact = EXACT_REWARD_MARK if any(r.info.get("exact_reward") for r in all_records) else ""
    return Point(
        key=key,
        label=_with(run.strategy, format_params(_label_params(run.strategy, params))) + exact,
        series=_with(run.strategy, format_params(_label_params(run.strategy, params), skip=("n",))),
        strategy=run.strategy,
        params=params,
        n=_samples(params, all_records),
        scope=_scope(config, run),
        run_ids=[m.id for m, _ in members],
        group=group,
        problems=len(hits),
        errors=sum(s.errors for s in summaries),
        accuracy=accuracy,
        interval=interval,
        mean_tokens=float(np.mean([s.mean_prompt_tokens + s.mean_completion_tokens for s in summaries])),
        mean_completion_tokens=float(np.mean([s.mean_completion_tokens for s in summaries])),
        repeat_accuracies=[s.accuracy.mean for s in summaries],
        confidences=[float(r.confidence) for r in scored if r.confidence is not None],
        correct=[bool(r.correct) for r in scored],
        per_problem={pid: float(np.mean(v)) for pid, v in hits.items()},
        sampling=dict(config.get("sampling") or {}),
        replay_bank=_replay_bank(config),
    )


def load_points(store: Store, runs: Sequence[RunRow], notes: list[str]) -> list[Point]:
    """Points of the given runs, grouped as the module docstring says; runs with no finished problem are left
    out with a note."""
    singles: list[tuple[RunRow, list[ProblemRecord]]] = []
    groups: dict[tuple[str, str, str, str], list[tuple[RunRow, list[ProblemRecord]]]] = {}
    for run in runs:
        records = store.results(run.id)
        if not records:
            notes.append(f"run {run.id} has no finished problems yet; left out")
            continue
        if all(r.error is not None for r in records):
            notes.append(f"every problem of run {run.id} ended in an error; left out")
            continue
        group = _group_name(run.config)
        if group is None:
            singles.append((run, records))
            continue
        identity = (group, _scope(run.config, run), run.strategy,
                    json.dumps(run.config.get("params") or {}, sort_keys=True, default=str))
        groups.setdefault(identity, []).append((run, records))
    points = [_point(run.id, [(run, records)], None) for run, records in singles]
    names = [identity[0] for identity in groups]
    for identity, members in groups.items():
        group = identity[0]
        if len(members) == 1:
            points.append(_point(members[0][0].id, members, group))
            continue
        key = f"group:{group}"
        if names.count(group) > 1:  # one group name over several settings: keep them apart
            key += f" [{_scope(members[0][0].config, members[0][0])} {members[0][0].strategy} {identity[3]}]"
            notes.append(f"group {group} holds runs of different settings; they are reported separately")
        sizes = {len(records) for _, records in members}
        if len(sizes) > 1:
            notes.append(f"the repeats of group {group} cover different numbers of problems ({min(sizes)} to "
                         f"{max(sizes)}); its mean accuracy weighs each repeat equally")
        points.append(_point(key, members, group))
    for point in points:
        if point.label.endswith(EXACT_REWARD_MARK):
            notes.append(f"{point.label}: the task's exact checker steered the search (a reward no deployed "
                         "strategy has), so its accuracy is an upper bound, not comparable with unverified strategies")
    points.sort(key=lambda p: (p.scope, p.series, p.n, p.key))
    return points


def _baseline(point: Point, points: Sequence[Point]) -> Point | None:
    if point.strategy == BASELINE:
        return None
    candidates = [p for p in points if p.strategy == BASELINE and p.scope == point.scope and p.n == point.n]
    if not candidates:
        return None
    return max(candidates, key=lambda p: (
        p.replay_bank == point.replay_bank,
        p.sampling == point.sampling,
        len(p.per_problem.keys() & point.per_problem.keys()),
        p.params == {"n": p.n},
    ))


def analyse(points: Sequence[Point], bins: int = DEFAULT_BINS, notes: list[str] | None = None) -> list[Row]:
    """Rows in the order of ``points``: ECE, frontier membership, baseline and paired difference."""
    notes = notes if notes is not None else []
    on_frontier: set[int] = set()
    for scope in dict.fromkeys(p.scope for p in points):
        members = [i for i, p in enumerate(points) if p.scope == scope]
        coords = [(points[i].mean_tokens, points[i].accuracy.mean) for i in members]
        on_frontier.update(members[j] for j in frontier_of(coords))
    rows = []
    for i, point in enumerate(points):
        ece = None
        if point.confidences:
            if is_probability(point.confidences):
                ece = expected_calibration_error(point.confidences, point.correct, bins)
            else:
                notes.append(f"{point.label} ({point.key}) stores confidences outside [0, 1]; no calibration shown")
        baseline = _baseline(point, points)
        difference = None
        if baseline is not None:
            difference = paired_difference(point.per_problem, baseline.per_problem)
            if difference.n == 0:
                notes.append(f"{point.key} and its baseline {baseline.key} share no problem; no paired difference")
                difference = None
        rows.append(Row(point, ece, i in on_frontier, baseline, difference))
    return rows


def collect(store: Store, runs: Sequence[RunRow], bins: int = DEFAULT_BINS) -> ReportData:
    notes: list[str] = []
    points = load_points(store, runs, notes)
    rows = analyse(points, bins, notes)
    return ReportData(runs=list(runs), rows=rows, bins=bins, notes=list(dict.fromkeys(notes)))
