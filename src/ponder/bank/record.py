"""Recording a trace bank from a live model: N traces per problem, resumable problem by problem."""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ponder.backends.base import Backend
from ponder.bank.format import (
    PARTIAL_SUFFIX,
    Bank,
    BankError,
    BankProblem,
    BankTask,
    _bank_from_header,
    _check_same,
    _checked_header,
    _dumps,
    _first_line,
    _problem_from_json,
    _problem_json,
)
from ponder.context import Ctx, Sampling, Slots
from ponder.errors import BackendError, CapabilityError, ConfigError
from ponder.types import Problem, TokenRate
from ponder.workers import run_each

__all__ = ["RecordProgress", "load_partial", "partial_path", "record_bank"]


@dataclass
class RecordProgress(TokenRate):
    """Counts ``record_bank`` reports after each problem."""

    total: int
    done: int = 0
    skipped: int = 0  # already in the bank or its .partial file
    traces: int = 0
    correct_traces: int = 0
    completion_tokens: int = 0  # of the traces recorded in this run, not the skipped ones
    started: float = field(default_factory=time.perf_counter)


async def record_bank(
    task: str,
    *,
    backend: Backend,
    n: int,
    path: str | Path,
    sampling: Sampling | None = None,
    limit: int | None = None,
    offset: int = 0,
    seed: int = 0,
    size: int | None = None,
    data_dir: str | Path | None = None,
    model: str | None = None,
    model_name: str | None = None,
    concurrency: int = 4,
    chunk: int = 16,
    max_inflight: int = 64,
    on_progress: Callable[[RecordProgress], None] | None = None,
) -> Bank:
    """Record ``n`` traces with logprobs for each problem of a task slice and write the bank to ``path``.

    Each problem's traces are drawn through a ``Ctx`` in requests of at most ``chunk`` samples (at most
    ``max_inflight`` traces in flight overall, ``concurrency`` problems at a time), then marked with their
    extracted answer and whether it is correct. Every finished problem is appended to ``path + ".partial"``
    at once, so a killed recording loses only the problems in flight; running again with the same settings
    skips what is there (and what an existing bank at ``path`` holds, so a larger ``limit`` extends a bank).
    At the end the bank is written compressed and the partial file removed.
    """
    from ponder import __version__
    from ponder.tasks import load_task

    if n < 1 or chunk < 1 or concurrency < 1 or max_inflight < 1:
        raise ConfigError("n, chunk, concurrency and max_inflight must all be at least 1")
    if not backend.capabilities.logprobs:
        raise CapabilityError(f"backend {backend.name} does not return token logprobs, which a trace bank records")
    path = Path(path)
    sampling = sampling or Sampling()
    top = min(sampling.top_logprobs or 0, backend.capabilities.top_logprobs)
    sampling = replace(sampling, logprobs=True, top_logprobs=top, extra=dict(sampling.extra))
    problems = load_task(task, data_dir=data_dir, limit=limit, offset=offset, seed=seed, size=size)
    if not problems:
        raise ConfigError(f"task {task!r} has no problems in the slice offset={offset} limit={limit}")
    bank = Bank(
        task=BankTask(task, seed, size, offset, limit, str(data_dir) if data_dir is not None else None),
        sampling=sampling,
        n=n,
        model=model or backend.name,
        model_name=model_name,
        created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        ponder_version=__version__,
        prompt={"example_id": problems[0].id, "messages": problems[0].messages},
    )

    existing: dict[str, BankProblem] = {}
    old: Bank | None = None
    if path.exists():
        old = Bank.load(path)
        _check_same(old.header(), bank.header(), path)
        existing = dict(old.problems)
        bank.created_at = old.created_at or bank.created_at
    partial = Path(str(path) + PARTIAL_SUFFIX)
    existing.update(_read_partial(partial, bank))

    todo = [p for p in problems if p.id not in existing]
    progress = RecordProgress(total=len(problems), skipped=len(problems) - len(todo))
    if on_progress:
        on_progress(progress)  # what is already there, before the first new problem
    if not todo and not partial.exists() and old is not None:
        return old  # nothing new to record
    if todo:
        await _record_problems(todo, backend, n, sampling, partial, bank, existing, concurrency, chunk, max_inflight,
                               progress, on_progress)
    # Problems of this slice in task order, then any others an earlier recording left in the bank.
    in_slice = {p.id for p in problems}
    bank.problems = {p.id: existing[p.id] for p in problems}
    bank.problems.update({pid: bp for pid, bp in existing.items() if pid not in in_slice})
    bank.save(path)
    partial.unlink(missing_ok=True)
    return bank


async def _record_problems(todo: list[Problem], backend: Backend, n: int, sampling: Sampling, partial: Path,
                           bank: Bank, done: dict[str, BankProblem], concurrency: int, chunk: int,
                           max_inflight: int, progress: RecordProgress,
                           on_progress: Callable[[RecordProgress], None] | None) -> None:
    slots = Slots(max_inflight)
    lock = asyncio.Lock()
    if not partial.exists():
        partial.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(_append, partial, _dumps(bank.header()))
    async def record(problem: Problem) -> None:
        recorded = await _record_one(problem, backend, n, sampling, slots, chunk)
        async with lock:
            await asyncio.to_thread(_append, partial, _dumps(_problem_json(recorded)))
        done[problem.id] = recorded
        progress.done += 1
        progress.traces += len(recorded.traces)
        progress.correct_traces += sum(bool(t.correct) for t in recorded.traces)
        progress.completion_tokens += sum(t.completion_tokens for t in recorded.traces)
        if on_progress:
            on_progress(progress)

    await run_each(todo, concurrency, record)


async def _record_one(problem: Problem, backend: Backend, n: int, sampling: Sampling, slots: Slots,
                      chunk: int) -> BankProblem:
    ctx = Ctx(backend, problem, sampling=sampling, slots=slots)
    sizes = [min(chunk, n - start) for start in range(0, n, chunk)]
    batches = await asyncio.gather(*(ctx.sample(n=size) for size in sizes))
    traces = [trace for batch in batches for trace in batch]
    if len(traces) != n:
        raise BackendError(f"backend {backend.name} returned {len(traces)} traces for problem {problem.id}, "
                           f"asked for {n}")
    verdicts: dict[str | None, bool] = {}
    for index, trace in enumerate(traces):
        if trace.completion_tokens and not trace.tokens:
            raise BackendError(f"backend {backend.name} returned a trace without token logprobs for problem "
                               f"{problem.id}; a trace bank needs them (does the server support logprobs?)")
        if trace.answer not in verdicts:
            verdicts[trace.answer] = False if trace.answer is None else await problem.checker(trace.answer, problem)
        trace.correct = verdicts[trace.answer]
        trace.index = index
        trace.cancelled = False
    return BankProblem(problem.id, problem.messages, problem.gold, traces)


def _read_partial(partial: Path, bank: Bank) -> dict[str, BankProblem]:
    """Problems of an interrupted recording; a torn last line (killed mid-write) is cut off. The bank keeps the
    time the recording started, as it does when a finished bank is extended."""
    if not partial.exists():
        return {}
    header, found, good_end = _scan_partial(partial)
    if header is not None:
        _check_same(header, bank.header(), partial)
        bank.created_at = str(header.get("created_at") or bank.created_at)
    if good_end < partial.stat().st_size:
        with open(partial, "r+b") as fh:
            fh.truncate(good_end)
    if good_end == 0:
        partial.unlink()
    return found


def load_partial(path: str | Path) -> Bank:
    """What an unfinished recording of ``path`` holds so far, read without touching the file.

    ``path`` is the bank being recorded or its ``.partial`` file. A recorder may be appending as this reads, so a
    torn last line is skipped, not cut off.
    """
    partial = Path(path)
    if not partial.name.endswith(PARTIAL_SUFFIX):
        partial = partial_path(partial)
    if not partial.exists():
        raise BankError(f"no unfinished recording: {partial} does not exist")
    header, found, _ = _scan_partial(partial)
    if header is None:
        raise BankError(f"{partial} has no complete header line yet; the recording has only just started")
    bank, _ = _bank_from_header(header, partial)
    bank.problems = found
    return bank


def _scan_partial(partial: Path) -> tuple[dict[str, Any] | None, dict[str, BankProblem], int]:
    """A partial file's header, its problems, and the length in bytes of its whole lines (a torn last one left out)."""
    header: dict[str, Any] | None = None
    found: dict[str, BankProblem] = {}
    good_end = 0
    with open(partial, "rb") as fh:
        lines = fh.readlines()
    for lineno, raw in enumerate(lines, start=1):
        last = lineno == len(lines)
        try:
            if not raw.endswith(b"\n"):
                raise ValueError("unterminated line")
            record = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            if last:
                break  # killed while writing this line: drop it, keep the rest
            raise BankError(f"{partial} line {lineno} is corrupt ({_first_line(exc)}); delete the file to start "
                            "the recording over") from exc
        if lineno == 1:
            header = _checked_header(record, partial)
        else:
            problem = _problem_from_json(record, partial, lineno)
            found[problem.id] = problem
        good_end += len(raw)
    return header, found, good_end


def _append(path: Path, line: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())




def partial_path(path: str | Path) -> Path:
    """Where ``record_bank`` keeps the finished problems of an unfinished recording of ``path``."""
    return Path(str(path) + PARTIAL_SUFFIX)


