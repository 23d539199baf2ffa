"""A run killed with SIGKILL loses at most the problems in flight, never corrupts the store, and resumes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from ponder.store import Store
from tests.fakes.openai_server import FakeOpenAIServer


def _eval(srv: FakeOpenAIServer, store: Path, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ponder.cli", "eval", "--task", "add1", "--size", "30", "--n", "3",
         "--model", f"openai:{srv.base_url}", "--store", str(store), "--concurrency", "2", "--run", "crashy"],
        cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")},
    )


def _done(store: Path) -> int:
    if not store.exists():
        return 0
    try:
        with sqlite3.connect(store, timeout=5) as db:
            return int(db.execute("SELECT COUNT(*) FROM results").fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # schema not created yet


def test_kill_minus_nine_then_resume(tmp_path: Path) -> None:
    store = tmp_path / "runs.db"
    with FakeOpenAIServer("Adding them. The answer is 7.", token_delay_s=0.01) as srv:
        for _ in range(2):  # kill twice at different points
            proc = _eval(srv, store, tmp_path)
            before = _done(store)
            deadline = time.time() + 60
            while _done(store) < before + 3 and time.time() < deadline and proc.poll() is None:
                time.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            with Store(store) as db:
                assert db.integrity_ok()
        finished = _eval(srv, store, tmp_path)
        assert finished.wait(timeout=120) == 0, finished.stderr.read() if finished.stderr else ""
    with Store(store) as db:
        assert db.integrity_ok()
        results = db.results("crashy")
        assert sorted(r.problem_id for r in results) == sorted(f"add1/seed0/{i}" for i in range(30))
        traces = db.traces("crashy")
        # every stored problem has exactly its own 3 traces: nothing lost, nothing duplicated
        per_problem: dict[str, int] = {}
        for pid, _ in traces:
            per_problem[pid] = per_problem.get(pid, 0) + 1
        assert set(per_problem.values()) == {3} and len(per_problem) == 30
