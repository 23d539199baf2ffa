"""Crash safety: an eval SIGKILLed at five random moments and resumed each time ends exactly as an uninterrupted
run with the same seeds; the store passes SQLite's integrity check after every kill; processes writing one store
at the same time (even the same run) neither corrupt it nor duplicate a row.

(tests/core/test_crash_resume.py kills a run twice against the fake HTTP server and checks completeness; this
checks equality with an uninterrupted run, row by row, and concurrent writers.)
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PROBLEMS = 120
RUN = "crashy"
KILLS = 5


def _eval(store: Path, cwd: Path, *, seed: int = 11, run: str = RUN) -> subprocess.Popen[str]:
    args = ["eval", "--task", "add1", "--size", str(PROBLEMS), "--model", "fake", "--seed", str(seed),
            "--strategy", "self-consistency", "--n", "4", "--concurrency", "4", "--store", str(store), "--run", run]
    return subprocess.Popen([sys.executable, "-m", "ponder.cli", *args], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"})


def _finish(proc: subprocess.Popen[str]) -> None:
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err


def _query(store: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(store, timeout=30) as db:
        return db.execute(sql, args).fetchall()


def _done(store: Path) -> int:
    try:
        return int(_query(store, "SELECT COUNT(*) FROM results")[0][0])
    except sqlite3.OperationalError:
        return 0  # no store or no schema yet


def _check_consistent(store: Path) -> None:
    """Integrity, and every stored problem whole: exactly its own calls and traces, no strays, no duplicates."""
    assert _query(store, "PRAGMA integrity_check") == [("ok",)]
    if not _query(store, "SELECT name FROM sqlite_master WHERE name = 'results'"):
        return  # killed before the schema was written
    per_problem = _query(store, """
        SELECT r.run_id, r.problem_id, r.calls, r.traces,
               (SELECT COUNT(*) FROM calls c WHERE c.run_id = r.run_id AND c.problem_id = r.problem_id),
               (SELECT COUNT(*) FROM traces t WHERE t.run_id = r.run_id AND t.problem_id = r.problem_id)
        FROM results r""")
    assert all(calls == stored_calls and traces == stored_traces
               for _, _, calls, traces, stored_calls, stored_traces in per_problem)
    strays = _query(store, """SELECT COUNT(*) FROM calls c WHERE NOT EXISTS
        (SELECT 1 FROM results r WHERE r.run_id = c.run_id AND r.problem_id = c.problem_id)""")
    assert strays == [(0,)]  # a problem's calls are written with its result or not at all


def _snapshot(store: Path, run: str = RUN) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Everything that must not depend on crashes: per problem and per trace, without timings."""
    results = _query(store, """SELECT problem_id, position, gold, answer, correct, confidence, votes, info,
        prompt_tokens, completion_tokens, calls, traces, cancelled_traces, error
        FROM results WHERE run_id = ? ORDER BY problem_id""", run)
    traces = _query(store, """SELECT t.problem_id, c.seq, c.params, t.idx, t.text, t.answer, t.correct,
        t.finish_reason, t.prompt_tokens, t.completion_tokens, t.tokens, t.logprobs, t.top_logprobs
        FROM traces t JOIN calls c ON c.id = t.call_id WHERE t.run_id = ? ORDER BY t.problem_id, c.seq, t.idx""",
                    run)
    return results, traces


def test_five_kills_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    reference = tmp_path / "reference.db"
    _finish(_eval(reference, tmp_path))
    expected = _snapshot(reference)
    assert len(expected[0]) == PROBLEMS and len(expected[1]) == 4 * PROBLEMS
    assert 0 < sum(row[4] for row in expected[0]) < PROBLEMS  # the fake model is right only sometimes

    store = tmp_path / "killed.db"
    rng = random.Random(20240607)
    kills: list[tuple[float | int, int]] = []
    for kill in range(KILLS):
        proc = _eval(store, tmp_path)
        before = _done(store)
        if kill == 0:  # anywhere from interpreter start to the first writes, leaving work for later kills
            until = time.monotonic() + rng.uniform(0.0, 3.0)
            while time.monotonic() < until and _done(store) < PROBLEMS // (KILLS + 1):
                time.sleep(0.002)
            moment: float | int = round(time.monotonic(), 3)
        else:  # after a random number of further problems, then a random instant later (often mid-write)
            moment = target = before + rng.randint(1, max(1, (PROBLEMS - before) // (KILLS - kill + 1)))
            deadline = time.monotonic() + 120
            while _done(store) < target:
                assert proc.poll() is None, "the run ended before it could be killed"
                assert time.monotonic() < deadline
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, 0.02))
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
        kills.append((moment, _done(store)))
        _check_consistent(store)
    assert kills[-1][1] < PROBLEMS  # every kill interrupted real work

    _finish(_eval(store, tmp_path))
    _check_consistent(store)
    assert _snapshot(store) == expected, kills


def test_concurrent_writers_share_one_store(tmp_path: Path) -> None:
    reference = tmp_path / "reference.db"
    _finish(_eval(reference, tmp_path))
    store = tmp_path / "shared.db"
    # Two processes on the same run (both solve every problem; the first to store one keeps it) and one on
    # another run, all at once.
    procs = [_eval(store, tmp_path), _eval(store, tmp_path), _eval(store, tmp_path, seed=12, run="other")]
    for proc in procs:
        _finish(proc)
    _check_consistent(store)
    assert _snapshot(store) == _snapshot(reference)
    other_results, other_traces = _snapshot(store, "other")
    assert len(other_results) == PROBLEMS and len(other_traces) == 4 * PROBLEMS
    assert other_results != _snapshot(reference)[0]  # another seed: other samples
