from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ponder.context import Call
from ponder.errors import ConfigError, PonderError
from ponder.store import MIGRATIONS, ProblemRecord, Store
from ponder.types import GenerationRequest, Trace, Usage


def _record(pid: str, correct: bool = True) -> ProblemRecord:
    return ProblemRecord(pid, 0, "7", "7", correct, 0.75, {"7": 3.0}, {"k": 1}, 12, 30, 1, 2, 0, 0.2)


def _call() -> Call:
    traces = [Trace(text="The answer is 7.", tokens=["The", " answer"], logprobs=[-0.1, -0.2],
                    top_logprobs=[[("The", -0.1), ("A", -2.0)], [(" answer", -0.2)]], answer="7", correct=True,
                    completion_tokens=2, index=i) for i in range(2)]
    return Call("complete", GenerationRequest([{"role": "user", "content": "q"}], n=2, temperature=0.8),
                started_at=1.0, latency_s=0.1, traces=traces, usage=Usage(5, 4, 1, 2))


def test_round_trip_of_results_calls_and_traces(store: Store) -> None:
    assert store.ensure_run("r1", task="t", strategy="s", model="fake", config={"a": 1}) is False
    store.save_problem("r1", _record("p1"), [_call()])
    assert store.done_problems("r1") == {"p1"}
    (result,) = store.results("r1")
    assert result.votes == {"7": 3.0} and result.correct is True and result.info == {"k": 1}
    traces = store.traces("r1")
    assert len(traces) == 2
    pid, trace = traces[0]
    assert pid == "p1" and trace.top_logprobs[0] == [("The", -0.1), ("A", -2.0)] and trace.correct is True
    (run,) = store.runs()
    assert (run.done, run.correct) == (1, 1)


def test_resume_requires_the_same_config(store: Store) -> None:
    store.ensure_run("r1", task="t", strategy="s", model="fake", config={"a": 1})
    assert store.ensure_run("r1", task="t", strategy="s", model="fake", config={"a": 1}) is True
    with pytest.raises(ConfigError, match="different configuration"):
        store.ensure_run("r1", task="t", strategy="s", model="fake", config={"a": 2})


def test_a_problem_is_saved_whole_or_not_at_all(store: Store) -> None:
    store.ensure_run("r1", task="t", strategy="s", model="fake", config={})
    store.save_problem("r1", _record("p1"), [_call()])
    with pytest.raises(sqlite3.IntegrityError):
        store.save_problem("r1", _record("p1"), [_call()])  # duplicate result: the whole write rolls back
    assert len(store.traces("r1")) == 2 and store.integrity_ok()


def test_find_run_by_prefix_and_last(store: Store) -> None:
    with pytest.raises(ConfigError, match="no runs yet"):
        store.find_run("last")
    store.ensure_run("gsm8k-sc-aaaa", task="t", strategy="s", model="m", config={})
    store.ensure_run("gsm8k-sc-bbbb", task="t", strategy="s", model="m", config={})
    assert store.find_run("gsm8k-sc-b").id == "gsm8k-sc-bbbb"
    assert store.find_run("last").id == "gsm8k-sc-bbbb"
    with pytest.raises(ConfigError, match="ambiguous"):
        store.find_run("gsm8k")
    with pytest.raises(ConfigError, match="no run 'x'"):
        store.find_run("x")


def test_migrations_are_recorded_and_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Store(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(PonderError, match="newer ponder"):
        Store(path)


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Store(tmp_path / "nope" / "s.db")


def test_two_connections_can_write(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store(path) as a, Store(path) as b:
        a.ensure_run("r", task="t", strategy="s", model="m", config={})
        for i in range(20):
            (a if i % 2 else b).save_problem("r", _record(f"p{i}"), [_call()])
        assert len(a.done_problems("r")) == 20 and b.integrity_ok()


def test_a_failed_problem_is_retried_and_replaced(store: Store) -> None:
    store.ensure_run("r", task="t", strategy="s", model="m", config={})
    failed = _record("p1")
    failed.error, failed.correct = "BackendError: boom", None
    store.save_problem("r", failed, [_call()])
    assert store.done_problems("r") == set()  # an error is not done: a resume tries it again
    store.save_problem("r", _record("p1"), [_call()])
    (result,) = store.results("r")
    assert result.error is None and result.correct is True
    assert len(store.traces("r")) == 2  # the failed try's traces are gone with it
