"""Terminal output: the live progress bar of an eval and the tables of results."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ponder.abstention import AbstentionSummary, summarize_abstention
from ponder.metrics import Summary
from ponder.report.stats import mean_across_repeats
from ponder.runner import Progress as RunProgress
from ponder.store import ProblemRecord, RunRow


class ProblemProgress:
    """Problems done of a total, with a stats text: a live bar on a terminal, plain timed lines in a log.

    rich draws nothing on a console that is not a terminal until the bar stops, so a recording run in the
    background (hours, on a CPU) would show no sign of life in its log. There, a line is printed when a problem
    finishes, at most once every ``every_s`` seconds, and always for the last problem.
    """

    def __init__(self, console: Console, label: str, *, every_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.console = console
        self.label = label
        self.every_s = every_s
        self._clock = clock
        self._started = clock()
        self._printed_at: float | None = None
        self._printed: tuple[int, int | None] | None = None
        self._baseline: tuple[int, float] | None = None
        self._bar: Progress | None = None
        if console.is_terminal:
            self._bar = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), console=console, transient=False)
            self._task = self._bar.add_task(label, total=None, stats="")

    def start(self) -> None:
        if self._bar is not None:
            self._bar.start()

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()

    def update(self, done: int, total: int | None, stats: str) -> None:
        now = self._clock()
        stats += self._time_left(done, total, now)
        if self._bar is not None:
            self._bar.update(self._task, total=total, completed=done, stats=stats)
            return
        if (done, total) == self._printed:
            return
        finished = total is not None and done >= total
        if not finished and self._printed_at is not None and now - self._printed_at < self.every_s:
            return
        elapsed = dt.timedelta(seconds=round(now - self._started))
        of = f"/{total}" if total is not None else ""
        self.console.print(f"{self.label} {done}{of} · {stats} · {elapsed}", highlight=False)
        self._printed_at, self._printed = now, (done, total)

    def _time_left(self, done: int, total: int | None, now: float) -> str:
        """The time left at this run's pace so far. The first report is the baseline: problems already done
        when a run resumes took no time in it."""
        if self._baseline is None:
            self._baseline = (done, now)
        base_done, base_time = self._baseline
        if total is None or done <= base_done or done >= total:
            return ""
        left = (now - base_time) / (done - base_done) * (total - done)
        return f" · ~{dt.timedelta(seconds=round(left))} left"


class LiveProgress:
    """An eval's progress: problems done, accuracy so far, tokens, tokens/s."""

    def __init__(self, console: Console, *, every_s: float = 60.0) -> None:
        self.console = console
        self._progress = ProblemProgress(console, "eval", every_s=every_s)

    def __enter__(self) -> LiveProgress:
        return self  # the bar appears in start(), once the problems are loaded

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._progress.stop()

    def start(self, run_id: str, resumed: bool, progress: RunProgress) -> None:
        if resumed:
            self.console.print(f"resuming run [bold]{run_id}[/]: {progress.skipped}/{progress.total} problems "
                               "already done")
        else:
            self.console.print(f"run [bold]{run_id}[/]: {progress.total} problems")
        self._progress.update(progress.skipped, progress.total, "starting…")
        self._progress.start()

    def update(self, progress: RunProgress) -> None:
        accuracy = progress.accuracy
        acc = f"acc {accuracy:.3f}" if accuracy is not None else "acc –"
        errors = f" · [red]{progress.errors} errors[/]" if progress.errors else ""
        tokens = progress.prompt_tokens + progress.completion_tokens
        stats = f"{acc} · {tokens:,} tok · {progress.tokens_per_s:,.0f} tok/s{errors}"
        self._progress.update(progress.skipped + progress.done, progress.total, stats)


def summary_table(title: str, summary: Summary) -> Table:
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    acc = summary.accuracy
    table.add_row("problems", f"{summary.problems} ({summary.errors} errors)" if summary.errors
                  else str(summary.problems))
    table.add_row("accuracy [95% CI]", f"{acc.mean:.3f} [{acc.low:.3f}, {acc.high:.3f}]"
                  if acc.n else "–")
    if summary.mean_confidence is not None:
        table.add_row("mean confidence", f"{summary.mean_confidence:.3f}")
    for k, value in summary.maj_at.items():
        table.add_row(f"maj@{k}", f"{value:.3f}")
    for k, value in summary.pass_at.items():
        if k > 1:
            table.add_row(f"pass@{k}", f"{value:.3f}")
    if summary.traces:
        stopped = []
        if summary.cancelled_traces:
            stopped.append(f"{summary.cancelled_traces:,} cancelled")
        if summary.capped_traces:
            stopped.append(f"{summary.capped_traces:,} cut at max-tokens, no answer")
        table.add_row("traces", f"{summary.traces:,}" + (f" ({'; '.join(stopped)})" if stopped else ""))
    table.add_row("prompt tokens / problem", f"{summary.mean_prompt_tokens:,.1f}")
    table.add_row("completion tokens / problem", f"{summary.mean_completion_tokens:,.1f}")
    table.add_row("latency / problem", f"{summary.mean_latency_s:.2f} s")
    return table


def abstention_table(results: Sequence[ProblemRecord]) -> Table | None:
    """Abstention metrics of a run, or None when it has no unanswerable problems and no abstentions."""
    summary = summarize_abstention(results)
    return abstention_summary_table(summary) if summary is not None else None


def abstention_summary_table(summary: AbstentionSummary) -> Table:
    """The metrics of ``ponder.abstention``: precision of given answers, abstention rate, ReliableMath's scores."""

    def rate(value: float | None) -> str:
        return f"{value:.3f}" if value is not None else "–"

    table = Table(title="abstention", show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("answerable / unanswerable", f"{summary.answerable} / {summary.unanswerable}")
    table.add_row("answered / abstained", f"{summary.answered} / {summary.abstained}")
    table.add_row("precision of given answers", rate(summary.precision))
    table.add_row("abstention rate", rate(summary.abstention_rate))
    if summary.answerable:
        table.add_row("answerable: right / abstained", f"{rate(summary.success_answerable)} / "
                      f"{rate(summary.refusal_answerable)}")
    if summary.unanswerable:
        table.add_row("unanswerable: abstained", rate(summary.success_unanswerable))
    if summary.reliability is not None:
        table.add_row("reliability (ReliableMath precision)", rate(summary.reliability))
        table.add_row("prudence (ReliableMath)", rate(summary.prudence))
    return table


def runs_table(runs: list[RunRow]) -> Table:
    table = Table(show_header=True, header_style="bold")
    for column in ("run", "created", "task", "strategy", "model", "done", "accuracy"):
        table.add_column(column, justify="right" if column in ("done", "accuracy") else "left")
    for run in runs:
        created = dt.datetime.fromtimestamp(run.created_at).strftime("%Y-%m-%d %H:%M")
        params = run.config.get("params") or {}
        strategy = run.strategy + (" " + " ".join(f"{k}={v}" for k, v in params.items()) if params else "")
        accuracy = f"{run.correct / run.done:.3f}" if run.done else "–"
        done = f"{run.done}" + (f" ({run.errors} err)" if run.errors else "")
        table.add_row(run.id, created, run.task, strategy, run.model, done, accuracy)
    return table


def repeats_table(title: str, repeats: list[list[ProblemRecord]]) -> Table:
    """Replayed runs over several seeds: mean accuracy and tokens across repeats, with a 95% interval."""
    accuracies = [sum(bool(r.correct) for r in rows) / max(len(rows), 1) for rows in repeats]
    tokens = [sum(r.completion_tokens for r in rows) / max(len(rows), 1) for rows in repeats]
    # Student t across repeats: a bootstrap over a handful of values gives too narrow an interval.
    acc = mean_across_repeats(accuracies, (0.0, 1.0))
    tok = mean_across_repeats(tokens)
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("repeats × problems", f"{len(repeats)} × {len(repeats[0]) if repeats else 0}")
    table.add_row("accuracy, mean over repeats [95% CI]", f"{acc.mean:.3f} [{acc.low:.3f}, {acc.high:.3f}]")
    table.add_row("completion tokens / problem [95% CI]", f"{tok.mean:,.1f} [{tok.low:,.1f}, {tok.high:,.1f}]")
    table.add_row("accuracy per repeat", " ".join(f"{a:.3f}" for a in accuracies))
    return table
