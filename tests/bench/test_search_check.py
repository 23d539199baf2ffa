"""bench/search_check.py's own arithmetic: busy time of a run and what its diagnostics line counts."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ponder.store import Store

BENCH = Path(__file__).parents[2] / "bench"


@pytest.fixture(scope="module")
def search_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("search_check", BENCH / "search_check.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["search_check"] = module
    spec.loader.exec_module(module)
    return module


def _store(path: Path, run_id: str, strategy: str) -> None:
    with Store(path) as store:
        store.ensure_run(run_id, task="gsm8k", strategy=strategy, model="fake", config={})


def _result(db: sqlite3.Connection, run_id: str, pid: str, info: dict[str, Any], latency: float, end: float) -> None:
    db.execute("INSERT INTO results (run_id, problem_id, position, votes, info, prompt_tokens, completion_tokens,"
               " calls, traces, cancelled_traces, latency_s, finished_at)"
               " VALUES (?, ?, 0, '{}', ?, 0, 0, 0, 0, 0, ?, ?)",
               (run_id, pid, json.dumps(info), latency, end))


def _trace(db: sqlite3.Connection, run_id: str, pid: str, finish: str = "stop", answer: str | None = None,
           correct: int | None = None, aux: bool = False) -> None:
    call = db.execute("INSERT INTO calls (run_id, problem_id, seq, kind, messages, params, started_at, latency_s,"
                      " prompt_tokens, completion_tokens) VALUES (?, ?, 0, 'complete', '[]', '{}', 0, 0, 0, 0)",
                      (run_id, pid)).lastrowid
    db.execute("INSERT INTO traces (call_id, run_id, problem_id, idx, text, reasoning, answer, correct, finish_reason,"
               " prompt_tokens, completion_tokens, latency_s, cancelled, tokens, logprobs, top_logprobs, aux)"
               " VALUES (?, ?, ?, 0, '', '', ?, ?, ?, 0, 0, 0, 0, '[]', '[]', '[]', ?)",
               (call, run_id, pid, answer, correct, finish, int(aux)))


def test_busy_minutes_counts_overlap_once_and_skips_gaps(search_check: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _store(path, "r", "pal")
    with sqlite3.connect(path) as db:
        _result(db, "r", "a", {}, latency=60, end=100)   # [40, 100]
        _result(db, "r", "b", {}, latency=60, end=130)   # [70, 130]: overlaps a, adds 30 s
        _result(db, "r", "c", {}, latency=30, end=1000)  # after a gap (an interruption): adds 30 s, not 870
    assert search_check.busy_minutes(path, "r") == pytest.approx((60 + 30 + 30) / 60)


def test_diagnostics_count_programs_fallbacks_and_cut_traces(search_check: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _store(path, "p", "prove")
    no_code = {"output": None, "exit_code": None, "killed_reason": "no code"}
    crashed = {"output": None, "exit_code": 1, "killed_reason": None}
    printed = {"output": "18", "exit_code": 0, "killed_reason": None}
    with sqlite3.connect(path) as db:
        _result(db, "p", "a", {"programs": [no_code, crashed], "fallback": "no program agreed"}, 1, 1)
        _result(db, "p", "b", {"programs": [printed, no_code], "fallback": None}, 1, 2)
        _trace(db, "p", "a", "length")
        _trace(db, "p", "b", "stop")
    line = search_check.diagnostics(path, "p", "prove")
    assert "programs 4: no code 2, failed or killed 1, printed an answer 1" in line
    assert "fell back to the plain vote on 1 of 2" in line
    assert "traces cut at max_tokens 1 of 2" in line


def test_diagnostics_report_where_self_refine_stopped(search_check: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _store(path, "s", "self-refine")
    with sqlite3.connect(path) as db:
        _result(db, "s", "a", {"stopped": "passed", "refinements": 0}, 1, 1)
        _result(db, "s", "b", {"stopped": "max_iters", "refinements": 2}, 1, 2)
        _result(db, "s", "c", {"stopped": "max_iters", "refinements": 2}, 1, 3)
    line = search_check.diagnostics(path, "s", "self-refine")
    assert "max_iters after 2 refinements ×2" in line and "passed after 0 refinements ×1" in line


def test_a_selector_is_compared_with_the_vote_over_its_own_samples(search_check: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _store(path, "j", "judge")
    with sqlite3.connect(path) as db:
        # a: the vote ties and takes the earliest answer (wrong); the judge picked the right one
        _trace(db, "j", "a", answer="5", correct=0)
        _trace(db, "j", "a", answer="7", correct=1)
        _result(db, "j", "a", {"scores": [0.2, 0.9]}, 1, 1)
        # b: both samples right; the judge's verdict is an aux trace, not a sample
        _trace(db, "j", "b", answer="7", correct=1)
        _trace(db, "j", "b", answer="7", correct=1)
        _trace(db, "j", "b", answer="no", correct=0, aux=True)
        _result(db, "j", "b", {"scores": [0.5, 0.5]}, 1, 2)
        db.execute("UPDATE results SET correct = 1 WHERE problem_id = 'a'")
        db.execute("UPDATE results SET correct = 0 WHERE problem_id = 'b'")
    line = search_check.diagnostics(path, "j", "judge")
    assert ("right 1, plain vote over its own 2 samples right 1 "
            "(the strategy right where the vote was wrong 1, wrong where it was right 1)") in line
