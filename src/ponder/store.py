"""SQLite store of runs, per-problem results, and every call and trace.

A problem's result, calls and traces are written in one transaction when the problem finishes, so a run
killed at any moment (even by SIGKILL) loses at most the problems in flight, and re-running the same run
skips what is done. WAL journaling keeps the file consistent through crashes and lets a second process
read (or write, after a short wait) at the same time. The schema only grows: migrations are appended,
never edited.

Stored traces are bounded: text and reasoning longer than ``max_trace_chars`` and token arrays longer than
``max_trace_tokens`` are cut, and the trace row's ``truncated`` column records the full sizes (JSON), so a
cut trace is never mistaken for a whole one.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ponder.context import Call
from ponder.errors import ConfigError, PonderError
from ponder.types import Trace

DEFAULT_STORE = "ponder.db"
STORE_ENV = "PONDER_STORE"
DEFAULT_MAX_TRACE_CHARS = 1_000_000  # per text field: far beyond a 32k-token reasoning trace (~130k chars)
DEFAULT_MAX_TRACE_TOKENS = 131_072  # per trace: the longest context windows in use

log = logging.getLogger("ponder.store")

MIGRATIONS: list[str] = [
    # 1: runs, results, calls, traces
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        created_at REAL NOT NULL,
        task TEXT NOT NULL,
        strategy TEXT NOT NULL,
        model TEXT NOT NULL,
        config TEXT NOT NULL,
        ponder_version TEXT NOT NULL
    );
    CREATE TABLE results (
        run_id TEXT NOT NULL REFERENCES runs(id),
        problem_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        gold TEXT,
        answer TEXT,
        correct INTEGER,
        confidence REAL,
        votes TEXT NOT NULL,
        info TEXT NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        calls INTEGER NOT NULL,
        traces INTEGER NOT NULL,
        cancelled_traces INTEGER NOT NULL,
        latency_s REAL NOT NULL,
        error TEXT,
        finished_at REAL NOT NULL,
        PRIMARY KEY (run_id, problem_id)
    );
    CREATE TABLE calls (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(id),
        problem_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL,
        messages TEXT NOT NULL,
        params TEXT NOT NULL,
        started_at REAL NOT NULL,
        latency_s REAL NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        error TEXT
    );
    CREATE INDEX calls_by_problem ON calls(run_id, problem_id);
    CREATE TABLE traces (
        id INTEGER PRIMARY KEY,
        call_id INTEGER NOT NULL REFERENCES calls(id),
        run_id TEXT NOT NULL,
        problem_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        text TEXT NOT NULL,
        reasoning TEXT NOT NULL,
        answer TEXT,
        correct INTEGER,
        finish_reason TEXT,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        latency_s REAL NOT NULL,
        cancelled INTEGER NOT NULL,
        tokens TEXT NOT NULL,
        logprobs TEXT NOT NULL,
        top_logprobs TEXT NOT NULL
    );
    CREATE INDEX traces_by_problem ON traces(run_id, problem_id);
    """,
    # 2: traces cut to the store's size bounds record their full sizes
    """
    ALTER TABLE traces ADD COLUMN truncated TEXT;
    """,
    # 3: traces stopped by max_tokens are counted per problem; helper samples (verdicts, steps) are marked
    """
    ALTER TABLE results ADD COLUMN capped_traces INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE traces ADD COLUMN aux INTEGER NOT NULL DEFAULT 0;
    """,
]


@dataclass
class ProblemRecord:
    """A finished problem, as the runner hands it to the store."""

    problem_id: str
    position: int
    gold: str | None
    answer: str | None
    correct: bool | None
    confidence: float | None
    votes: dict[str, float]
    info: dict[str, Any]
    prompt_tokens: int
    completion_tokens: int
    calls: int
    traces: int
    cancelled_traces: int
    latency_s: float
    error: str | None = None
    capped_traces: int = 0  # stopped by max_tokens: no answer


@dataclass
class RunRow:
    id: str
    created_at: float
    task: str
    strategy: str
    model: str
    config: dict[str, Any]
    done: int = 0
    correct: int = 0
    errors: int = 0


def default_store_path() -> Path:
    return Path(os.environ.get(STORE_ENV) or DEFAULT_STORE)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _bool(value: bool | None) -> int | None:
    return None if value is None else int(value)


class Store:
    """One SQLite file. Methods are thread-safe; the runner calls them from a worker thread."""

    def __init__(self, path: str | Path, *, max_trace_chars: int = DEFAULT_MAX_TRACE_CHARS,
                 max_trace_tokens: int = DEFAULT_MAX_TRACE_TOKENS) -> None:
        if max_trace_chars < 1 or max_trace_tokens < 1:
            raise ConfigError("--max-trace-chars (and the token bound) must be at least 1")
        self.max_trace_chars = max_trace_chars
        self.max_trace_tokens = max_trace_tokens
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            raise ConfigError(f"store folder {self.path.parent} does not exist; create it or pass --store PATH")
        try:
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            raise PonderError(f"cannot open store {self.path}: {exc}") from exc
        self._lock = threading.Lock()
        self._migrate()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _migrate(self) -> None:
        with self._transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise PonderError(
                    f"store {self.path} was written by a newer ponder (schema {version}); upgrade ponder"
                )
            for number in range(version, len(MIGRATIONS)):
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {number + 1}")

    # ---- runs -----------------------------------------------------------------------------------

    def ensure_run(self, run_id: str, *, task: str, strategy: str, model: str, config: dict[str, Any]) -> bool:
        """Create the run if new; return True when it already existed (a resume)."""
        from ponder import __version__

        with self._transaction() as db:
            row = db.execute("SELECT config FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is not None:
                if json.loads(row["config"]) != config:
                    raise ConfigError(
                        f"run {run_id!r} exists with a different configuration; choose another --run name"
                    )
                return True
            db.execute(
                "INSERT INTO runs (id, created_at, task, strategy, model, config, ponder_version)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, time.time(), task, strategy, model, _json(config), __version__),
            )
            return False

    def runs(self) -> list[RunRow]:
        with self._lock:
            rows = self._db.execute(
                """SELECT r.*, COUNT(x.problem_id) AS done, COALESCE(SUM(x.correct), 0) AS n_correct,
                          COALESCE(SUM(x.error IS NOT NULL), 0) AS n_errors
                   FROM runs r LEFT JOIN results x ON x.run_id = r.id
                   GROUP BY r.id ORDER BY r.created_at"""
            ).fetchall()
        return [
            RunRow(r["id"], r["created_at"], r["task"], r["strategy"], r["model"], json.loads(r["config"]),
                   r["done"], r["n_correct"], r["n_errors"])
            for r in rows
        ]

    def find_run(self, ref: str) -> RunRow:
        """A run by id, unique id prefix, or 'last'."""
        runs = self.runs()
        if not runs:
            raise ConfigError(f"store {self.path} has no runs yet; start one with 'ponder eval'")
        if ref == "last":
            return max(runs, key=lambda r: r.created_at)
        exact = [r for r in runs if r.id == ref]
        matches = exact or [r for r in runs if r.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise ConfigError(f"no run {ref!r} in {self.path}; 'ponder runs' lists them")
        raise ConfigError(f"run {ref!r} is ambiguous: {', '.join(r.id for r in matches[:5])}")

    # ---- results --------------------------------------------------------------------------------

    def done_problems(self, run_id: str) -> set[str]:
        """Problems with a result; those that ended in an error are not done and are tried again."""
        with self._lock:
            rows = self._db.execute(
                "SELECT problem_id FROM results WHERE run_id = ? AND error IS NULL", (run_id,)
            ).fetchall()
        return {r[0] for r in rows}

    def save_problem(self, run_id: str, record: ProblemRecord, calls: Sequence[Call], *, traces: bool = True) -> int:
        """Write a finished problem with all its calls and traces, atomically, replacing an earlier failed try.

        Returns how many traces were cut to the size bounds (each is flagged, and the problem's info counts them).
        A problem that already has a result without error raises ``sqlite3.IntegrityError`` and writes nothing.
        """
        rows: list[list[tuple[Any, ...]]] = []
        cut = 0
        for call in calls if traces else []:
            rows.append([])
            for trace in call.traces:
                row, sizes = self._trace_row(run_id, record.problem_id, trace)
                rows[-1].append(row)
                if sizes:
                    cut += 1
                    log.warning("problem %s, trace %d: %s over the store's bound (%s chars, %s tokens); stored "
                                "cut and flagged", record.problem_id, trace.index, _sizes(sizes),
                                f"{self.max_trace_chars:,}", f"{self.max_trace_tokens:,}")
        info = {**record.info, "truncated_traces": cut} if cut else record.info
        with self._transaction() as db:
            failed = db.execute(
                "SELECT 1 FROM results WHERE run_id = ? AND problem_id = ? AND error IS NOT NULL",
                (run_id, record.problem_id),
            ).fetchone()
            if failed:
                key = (run_id, record.problem_id)
                db.execute("DELETE FROM traces WHERE run_id = ? AND problem_id = ?", key)
                db.execute("DELETE FROM calls WHERE run_id = ? AND problem_id = ?", key)
                db.execute("DELETE FROM results WHERE run_id = ? AND problem_id = ?", key)
            for seq, call in enumerate(calls):
                cursor = db.execute(
                    "INSERT INTO calls (run_id, problem_id, seq, kind, messages, params, started_at, latency_s,"
                    " prompt_tokens, completion_tokens, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (run_id, record.problem_id, seq, call.kind, _json(call.request.messages),
                     _json(call.request.sampling_params()), call.started_at, call.latency_s,
                     call.usage.prompt_tokens, call.usage.completion_tokens, call.error),
                )
                if not traces:
                    continue
                db.executemany(
                    "INSERT INTO traces (call_id, run_id, problem_id, idx, text, reasoning, answer, correct,"
                    " finish_reason, prompt_tokens, completion_tokens, latency_s, cancelled, tokens, logprobs,"
                    " top_logprobs, aux, truncated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(cursor.lastrowid, *row) for row in rows[seq]],
                )
            db.execute(
                "INSERT INTO results (run_id, problem_id, position, gold, answer, correct, confidence, votes, info,"
                " prompt_tokens, completion_tokens, calls, traces, cancelled_traces, latency_s, error,"
                " finished_at, capped_traces) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, record.problem_id, record.position, record.gold, record.answer, _bool(record.correct),
                 record.confidence, _json(record.votes), _json(info), record.prompt_tokens,
                 record.completion_tokens, record.calls, record.traces, record.cancelled_traces,
                 record.latency_s, record.error, time.time(), record.capped_traces),
            )
        return cut

    def _trace_row(self, run_id: str, problem_id: str, trace: Trace) -> tuple[tuple[Any, ...], dict[str, int]]:
        """The row to store (without its call id) and the full sizes of whatever was cut to the bounds."""
        sizes: dict[str, int] = {}
        chars, tokens = self.max_trace_chars, self.max_trace_tokens
        if len(trace.text) > chars:
            sizes["text"] = len(trace.text)
        if len(trace.reasoning) > chars:
            sizes["reasoning"] = len(trace.reasoning)
        if max(len(trace.tokens), len(trace.logprobs), len(trace.top_logprobs)) > tokens:
            sizes["tokens"] = max(len(trace.tokens), len(trace.logprobs), len(trace.top_logprobs))
        if sizes:
            trace = replace(trace, text=trace.text[:chars], reasoning=trace.reasoning[:chars],
                            tokens=trace.tokens[:tokens], logprobs=trace.logprobs[:tokens],
                            top_logprobs=trace.top_logprobs[:tokens])
        return (*_trace_row(run_id, problem_id, trace), _json(sizes) if sizes else None), sizes

    def results(self, run_id: str) -> list[ProblemRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM results WHERE run_id = ? ORDER BY position, problem_id", (run_id,)
            ).fetchall()
        return [
            ProblemRecord(
                r["problem_id"], r["position"], r["gold"], r["answer"],
                None if r["correct"] is None else bool(r["correct"]), r["confidence"], json.loads(r["votes"]),
                json.loads(r["info"]), r["prompt_tokens"], r["completion_tokens"], r["calls"], r["traces"],
                r["cancelled_traces"], r["latency_s"], r["error"], r["capped_traces"],
            )
            for r in rows
        ]  # fmt: skip

    def traces(self, run_id: str, problem_id: str | None = None) -> list[tuple[str, Trace]]:
        """(problem_id, trace) pairs in call and sample order."""
        query = "SELECT t.* FROM traces t JOIN calls c ON c.id = t.call_id WHERE t.run_id = ?"
        args: list[Any] = [run_id]
        if problem_id is not None:
            query += " AND t.problem_id = ?"
            args.append(problem_id)
        query += " ORDER BY t.problem_id, c.seq, t.idx"
        with self._lock:
            rows = self._db.execute(query, args).fetchall()
        return [(r["problem_id"], _trace_from_row(r)) for r in rows]

    def messages(self, run_id: str, problem_id: str) -> list[dict[str, str]]:
        """The prompt of a problem's first call."""
        with self._lock:
            row = self._db.execute(
                "SELECT messages FROM calls WHERE run_id = ? AND problem_id = ? ORDER BY seq LIMIT 1",
                (run_id, problem_id),
            ).fetchone()
        return list(json.loads(row[0])) if row else []

    def truncated_traces(self, run_id: str) -> list[tuple[str, int, dict[str, int]]]:
        """(problem_id, trace index, full sizes) of the run's traces that were stored cut to the bounds."""
        with self._lock:
            rows = self._db.execute(
                "SELECT problem_id, idx, truncated FROM traces WHERE run_id = ? AND truncated IS NOT NULL"
                " ORDER BY problem_id, id", (run_id,),
            ).fetchall()
        return [(r[0], r[1], json.loads(r[2])) for r in rows]

    def integrity_ok(self) -> bool:
        with self._lock:
            return bool(self._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok")


def _sizes(sizes: dict[str, int]) -> str:
    return ", ".join(f"{field} of {size:,}" for field, size in sizes.items())


def _trace_row(run_id: str, problem_id: str, t: Trace) -> tuple[Any, ...]:
    return (
        run_id, problem_id, t.index, t.text, t.reasoning, t.answer, _bool(t.correct), t.finish_reason,
        t.prompt_tokens, t.completion_tokens, t.latency_s, int(t.cancelled), _json(t.tokens), _json(t.logprobs),
        _json(t.top_logprobs if isinstance(t.top_logprobs, list) else [list(r) for r in t.top_logprobs]), int(t.aux),
    )  # fmt: skip


def _trace_from_row(r: sqlite3.Row) -> Trace:
    return Trace(
        text=r["text"], reasoning=r["reasoning"], tokens=json.loads(r["tokens"]),
        logprobs=json.loads(r["logprobs"]),
        top_logprobs=[[(tok, lp) for tok, lp in pos] for pos in json.loads(r["top_logprobs"])],
        finish_reason=r["finish_reason"], prompt_tokens=r["prompt_tokens"],
        completion_tokens=r["completion_tokens"], latency_s=r["latency_s"], cancelled=bool(r["cancelled"]),
        index=r["idx"], answer=r["answer"], correct=None if r["correct"] is None else bool(r["correct"]),
        aux=bool(r["aux"]),
    )  # fmt: skip
