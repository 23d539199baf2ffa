"""Progress in a log file: a recording left running in the background must show signs of life."""

from __future__ import annotations

import io

from rich.console import Console

from ponder.display import ProblemProgress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def log_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=200), out


def test_a_log_gets_a_line_per_interval_and_the_last_problem_always() -> None:
    console, out = log_console()
    clock = Clock()
    progress = ProblemProgress(console, "record", every_s=60.0, clock=clock)
    progress.start()
    progress.update(0, 5, "starting")
    clock.now = 10.0
    progress.update(1, 5, "16 traces")  # 10 s after the last line: held back
    clock.now = 61.0
    progress.update(2, 5, "32 traces")
    clock.now = 62.0
    progress.update(2, 5, "32 traces")  # nothing new
    progress.update(5, 5, "80 traces")  # the last problem, though only 1 s later
    progress.stop()
    lines = out.getvalue().splitlines()
    assert lines == ["record 0/5 · starting · 0:00:00", "record 2/5 · 32 traces · ~0:01:32 left · 0:01:01",
                     "record 5/5 · 80 traces · 0:01:02"]


def test_time_left_counts_only_this_runs_pace_when_resuming() -> None:
    console, out = log_console()
    clock = Clock()
    progress = ProblemProgress(console, "record", every_s=0.0, clock=clock)
    progress.update(40, 50, "resumed")  # 40 problems were recorded by an earlier run
    clock.now = 600.0
    progress.update(42, 50, "672 traces")  # 2 problems in 10 minutes: 8 left take 40 minutes
    assert out.getvalue().splitlines()[-1] == "record 42/50 · 672 traces · ~0:40:00 left · 0:10:00"


def test_a_terminal_gets_a_bar_not_lines() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    progress = ProblemProgress(console, "eval", clock=Clock())
    progress.start()
    progress.update(3, 4, "acc 0.500")
    progress.stop()
    text = out.getvalue()
    assert "3/4" in text and "━" in text  # rich's bar
    assert "eval 3/4 · acc 0.500 · 0:00:00" not in text
