"""Run a strategy over a task: problems in parallel, each through its own ``Ctx``, each stored when done.

Bounds: at most ``concurrency`` problems are in flight (started and not yet stored; the rest wait in order),
and at most ``max_inflight`` traces are being generated across them. A request for more samples than
``max_inflight`` runs alone, and the run says so; so does a trace the store cuts to its size bounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ponder.agents import AgentPool, using_pool
from ponder.backends import Backend, BackendSpec, FakeBackend
from ponder.context import Call, Ctx, Sampling, Slots
from ponder.errors import BackendUnavailable, CapabilityError, ConfigError, PonderError
from ponder.files import file_digest
from ponder.store import ProblemRecord, Store
from ponder.strategies import coerce_params, get_strategy
from ponder.tasks import load_task
from ponder.types import Problem, Result, TokenRate
from ponder.workers import run_each

if TYPE_CHECKING:
    from ponder.bank import Bank

FAIL_FAST = 5  # stop a run whose first problems all fail: the cause is systematic, not bad luck

log = logging.getLogger("ponder.runner")


@dataclass
class EvalConfig:
    """Everything that defines an evaluation run. The fields in ``identity()`` name the run."""

    task: str
    strategy: str
    model: BackendSpec
    params: dict[str, Any] = field(default_factory=dict)
    sampling: Sampling = field(default_factory=Sampling)
    limit: int | None = None
    offset: int = 0
    task_seed: int = 0
    task_size: int | None = None
    data_dir: Path | None = None
    concurrency: int = 8  # problems in flight
    max_inflight: int = 64  # traces in flight across all problems
    token_budget: int | None = None  # completion tokens per problem
    run_id: str | None = None
    replay: Path | None = None  # a trace bank to serve samples from instead of a model
    replay_seed: int = 0  # order in which the bank's traces are served; one seed per repeat
    # A live run on a bank's problems (its recorded prompts and golds, the task's scoring): no data file needed.
    # Like data_dir, not part of the run's identity.
    problems_from: Path | None = None
    store_traces: bool = True  # replayed traces are already in the bank: runs may skip storing them
    # Solve on a Ray cluster (ponder.distributed) at this address ("default": $RAY_ADDRESS, a cluster started on
    # this machine, else a new local one); like the speed settings, not part of the run's identity.
    ray: str | None = None
    ray_workers: int | None = None  # default: one per cluster CPU, the same number per upstream URL

    def identity(self) -> dict[str, Any]:
        """What makes two runs the same run: re-running with equal identity resumes it.

        The problem slice (limit/offset) and speed settings are left out, so a longer rerun extends a run.
        """
        identity: dict[str, Any] = {
            "task": self.task,
            "task_seed": self.task_seed,
            "task_size": self.task_size,
            "strategy": self.strategy,
            # with defaults filled in and values coerced, so "n=8" and {"n": 8} (or leaving n at 8) name one run
            "params": coerce_params(get_strategy(self.strategy), self.params),
            "model": self.model.describe(),
            "model_name": self.model.model_name,
            "sampling": asdict(self.sampling),
            "token_budget": self.token_budget,
        }
        if self.replay is not None:
            identity["replay"] = {"bank": _bank_digest(self.replay), "seed": self.replay_seed}
        return identity

    def group(self) -> str:
        """Runs that differ only in their replay seed (repeats) share a group."""
        identity = self.identity()
        identity.get("replay", {}).pop("seed", None)
        return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:8]

    def stored_config(self) -> dict[str, Any]:
        config = json.loads(json.dumps(self.identity(), default=str))
        config["group"] = self.group()
        return config

    def resolved_run_id(self) -> str:
        if self.run_id:
            return self.run_id + (f"-r{self.replay_seed}" if self.replay is not None else "")
        if self.replay is not None:
            return f"{self.task.replace(':', '-')}-{self.strategy}-{self.group()}-r{self.replay_seed}"
        digest = hashlib.sha256(json.dumps(self.identity(), sort_keys=True, default=str).encode()).hexdigest()[:8]
        return f"{self.task.replace(':', '-')}-{self.strategy}-{digest}"


def _load_bank(path: Path) -> Bank:
    """The bank at ``path``, loaded once for as long as the file is unchanged: repeats and successive runs over one
    bank (``--repeats``, ``ponder demo``) reuse it. Runs only read it."""
    try:
        stat = path.stat()
    except OSError:
        from ponder.bank import Bank

        return Bank.load(path)  # says what is wrong with the path
    return _cached_bank(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=2)
def _cached_bank(path: str, mtime_ns: int, size: int) -> Bank:
    from ponder.bank import Bank

    return Bank.load(path)


def _bank_digest(path: Path) -> str:
    """The bank file's digest, as ``Bank.digest`` has it."""
    try:
        return file_digest(path)
    except OSError as exc:
        raise ConfigError(f"--replay {path}: {exc.strerror}") from None


@dataclass
class Progress(TokenRate):
    """Counts the runner reports after each problem."""

    total: int
    done: int = 0
    skipped: int = 0
    correct: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    truncated_traces: int = 0  # stored cut to the store's size bounds
    oversized_requests: int = 0  # asked for more samples than max_inflight at once
    largest_request: int = 0
    started: float = field(default_factory=time.perf_counter)

    @property
    def accuracy(self) -> float | None:
        scored = self.done
        return self.correct / scored if scored else None


ProgressHook = Callable[[Progress], None]
WarningHook = Callable[[str], None]


class _Warnings:
    """Say each kind of bound-hit once as it happens (the run goes on), and sum them up at the end."""

    def __init__(self, hook: WarningHook | None) -> None:
        self._hook = hook
        self._said: set[str] = set()

    def say(self, kind: str, message: str) -> None:
        if kind in self._said:
            return
        self._said.add(kind)
        if self._hook is not None:
            self._hook(message)
        else:
            log.warning(message)

    def summary(self, progress: Progress, config: EvalConfig, store: Store) -> list[str]:
        notes = []
        if progress.oversized_requests:
            notes.append(f"{progress.oversized_requests} requests asked for up to {progress.largest_request} "
                         f"samples at once, more than --max-inflight {config.max_inflight}: each ran alone")
        if progress.truncated_traces:
            notes.append(f"{progress.truncated_traces} traces were longer than the store's bounds "
                         f"({store.max_trace_chars:,} chars, {store.max_trace_tokens:,} tokens; see "
                         "--max-trace-chars) and were stored cut, flagged in the traces table")
        for note in notes:
            if self._hook is not None:
                self._hook(note)
            else:
                log.warning(note)
        return notes


class _CountedSlots(Slots):
    """The run's slots, noticing requests larger than the whole pool (they run alone, beyond the bound)."""

    def __init__(self, capacity: int, progress: Progress, warnings: _Warnings) -> None:
        super().__init__(capacity)
        self._progress = progress
        self._warnings = warnings

    async def acquire(self, count: int) -> int:
        if count > self.capacity:
            self._progress.oversized_requests += 1
            self._progress.largest_request = max(self._progress.largest_request, count)
            self._warnings.say("oversized", f"a request asks for {count} samples at once, more than --max-inflight "
                               f"{self.capacity}: such requests wait for every slot and run alone")
        return await super().acquire(count)


@dataclass
class EvalOutcome:
    run_id: str
    resumed: bool
    progress: Progress
    warnings: list[str] = field(default_factory=list)  # bounds the run hit (already reported as they happened)


async def solve(problem: Problem, ctx: Ctx, strategy: str, params: dict[str, Any]) -> Result:
    """Run one strategy on one problem and mark each answer right or wrong (``Result.correct``, and each trace's
    ``correct``). Without a gold answer nothing can be right: ``correct`` is then False throughout."""
    result = await get_strategy(strategy)(problem, ctx, **params)
    verdicts: dict[str | None, bool] = {}

    async def judge(answer: str | None) -> bool:
        if answer not in verdicts:
            verdicts[answer] = False if answer is None else await problem.checker(answer, problem)
        return verdicts[answer]

    for call in ctx.calls:
        for trace in call.traces:
            trace.correct = await judge(trace.answer)
    result.correct = await judge(result.answer)
    return result


def _record(problem: Problem, position: int, ctx: Ctx, result: Result | None, error: str | None,
            latency_s: float) -> ProblemRecord:
    return ProblemRecord(
        problem_id=problem.id,
        position=position,
        gold=problem.gold,
        answer=result.answer if result else None,
        correct=bool(result.correct) if result else None,
        confidence=result.confidence if result else None,
        votes=result.votes if result else {},
        info=result.info if result else {},
        prompt_tokens=ctx.usage.prompt_tokens,
        completion_tokens=ctx.usage.completion_tokens,
        calls=ctx.usage.calls,
        traces=ctx.usage.traces,
        cancelled_traces=ctx.usage.cancelled_traces,
        latency_s=latency_s,
        error=error,
        capped_traces=ctx.usage.capped_traces,
    )


async def run_eval(config: EvalConfig, store: Store, on_progress: ProgressHook | None = None,
                   on_start: Callable[[str, bool, Progress], None] | None = None, *,
                   on_warning: WarningHook | None = None, backend: Backend | None = None,
                   agents: AgentPool | None = None) -> EvalOutcome:
    """Evaluate; finished problems of an earlier run with the same identity are skipped.

    ``backend`` (optional) is used instead of opening ``config.model``, and ``agents`` holds the agent backends
    of multi-agent strategies; the caller keeps ownership of both (a ``Session`` passes its own). Otherwise the
    run opens a ``Session`` on ``config.model`` for itself. ``config`` is not changed.
    ``on_warning`` receives one line per bound the run hits (default: the ``ponder.runner`` logger).
    """
    info = get_strategy(config.strategy)
    # bad parameters fail before any server starts
    config = dataclasses.replace(config, params=coerce_params(info, config.params))
    if config.concurrency < 1 or config.max_inflight < 1:
        raise ConfigError("--concurrency and --max-inflight must be at least 1")
    if config.ray is not None:
        from ponder.distributed import check_config

        check_config(config)  # a missing extra or an impossible setting fails before the run is created
    bank = None
    source = config.replay if config.replay is not None else config.problems_from
    if source is not None:

        bank = await asyncio.to_thread(_load_bank, source)
        problems = bank.problems_for_task(config.data_dir)[config.offset:]
        problems = problems[: config.limit] if config.limit is not None else problems
    else:
        problems = load_task(config.task, data_dir=config.data_dir, limit=config.limit, offset=config.offset,
                             seed=config.task_seed, size=config.task_size)
    run_id = config.resolved_run_id()
    model = f"replay:{config.replay.name} ({bank.model})" if config.replay and bank else config.model.describe()
    resumed = await asyncio.to_thread(
        store.ensure_run, run_id, task=config.task, strategy=config.strategy, model=model,
        config=config.stored_config(),
    )
    done = await asyncio.to_thread(store.done_problems, run_id)
    todo = [(i, p) for i, p in enumerate(problems, start=config.offset) if p.id not in done]
    progress = Progress(total=len(problems), skipped=len(problems) - len(todo))
    if on_start:
        on_start(run_id, resumed, progress)
    if not todo:
        return EvalOutcome(run_id, resumed, progress)
    warnings = _Warnings(on_warning)
    save = ProblemSaver(config, store, run_id, progress, on_progress, warnings)
    run = functools.partial(_run_problems, config=config, todo=todo, progress=progress, warnings=warnings, save=save)
    if config.ray is not None:
        from ponder.distributed import run_on_ray

        await run_on_ray(config, todo, save)  # workers solve; this process alone stores, through save
    elif bank is not None and config.replay is not None:
        from ponder.backends.replay import ReplayBackend

        replay = ReplayBackend(bank, seed=config.replay_seed)
        pool = agents or AgentPool()
        try:
            with using_pool(pool):
                # Each problem gets its own view of the bank: prompts repeat across problems, and a problem's
                # serving order must not depend on how problems interleave.
                await run(lambda p: replay.for_problem(p.id))
        finally:
            if agents is None:
                await pool.close()
    elif backend is not None:
        with using_pool(agents) if agents is not None else contextlib.nullcontext():
            await run(_per_problem(backend))
    else:
        from ponder.session import Session

        async with Session(config.model, sampling=config.sampling, max_inflight=config.max_inflight) as session:
            with session.active():
                await run(_per_problem(session.backend))
    return EvalOutcome(run_id, resumed, progress, warnings.summary(progress, config, store))


def _per_problem(backend: Backend) -> Callable[[Problem], Backend]:
    """The backend each problem uses. The fake backend numbers samples per prompt, and prompts repeat across
    problems (add1 has 81), so each problem gets a fresh one: its samples then depend on the problem and the
    seed alone, not on which problems ran before it, and a resumed run gives what an uninterrupted one would."""
    if isinstance(backend, FakeBackend):
        return lambda p: dataclasses.replace(backend, calls=backend.calls)
    return lambda p: backend


async def solve_problem(problem: Problem, position: int, backend: Backend, config: EvalConfig,
                        slots: Slots) -> tuple[ProblemRecord, list[Call]]:
    """Solve one problem through its own ``Ctx``: its record and calls, ready to store. Errors that would be the
    same for every problem (backend down, missing capability, bad setting) are raised; others are recorded."""
    ctx = Ctx(backend, problem, sampling=config.sampling, slots=slots, token_budget=config.token_budget)
    start = time.perf_counter()
    result: Result | None = None
    error: str | None = None
    try:
        result = await solve(problem, ctx, config.strategy, config.params)
    except (BackendUnavailable, CapabilityError, ConfigError):
        raise  # the same for every problem: stop the run; a rerun resumes from what was saved
    except PonderError as exc:
        error = f"{type(exc).__name__}: {exc}"
    return _record(problem, position, ctx, result, error, time.perf_counter() - start), ctx.calls


@dataclass
class ProblemSaver:
    """Stores each finished problem in one transaction and counts it: the one writer of a run's results."""

    config: EvalConfig
    store: Store
    run_id: str
    progress: Progress
    on_progress: ProgressHook | None
    warnings: _Warnings

    async def __call__(self, record: ProblemRecord, calls: list[Call]) -> None:
        store, progress, warnings = self.store, self.progress, self.warnings
        try:
            cut = await asyncio.to_thread(store.save_problem, self.run_id, record, calls,
                                          traces=self.config.store_traces)
        except sqlite3.IntegrityError:
            # Another process working on the same run stored this problem first: keep its result, once.
            if record.problem_id not in await asyncio.to_thread(store.done_problems, self.run_id):
                raise
            cut = 0
        if cut:
            progress.truncated_traces += cut
            warnings.say("truncated", f"problem {record.problem_id}: a trace is longer than the store's bounds "
                         f"({store.max_trace_chars:,} chars, {store.max_trace_tokens:,} tokens); it is stored cut "
                         "and flagged (--max-trace-chars raises the bound)")
        if record.error is not None and progress.done == progress.errors and progress.errors + 1 >= FAIL_FAST:
            raise PonderError(f"the first {FAIL_FAST} problems all failed, the last with {record.error}; "
                              "fix the cause and run the same command again to retry them")
        progress.done += 1
        progress.correct += int(bool(record.correct))
        progress.errors += int(record.error is not None)
        progress.prompt_tokens += record.prompt_tokens
        progress.completion_tokens += record.completion_tokens
        if self.on_progress:
            self.on_progress(progress)


async def _run_problems(backend_for: Callable[[Problem], Backend], *, config: EvalConfig,
                        todo: list[tuple[int, Problem]], progress: Progress, warnings: _Warnings,
                        save: ProblemSaver) -> None:
    slots = _CountedSlots(config.max_inflight, progress, warnings)

    async def solve_one(item: tuple[int, Problem]) -> None:
        position, problem = item
        await save(*await solve_problem(problem, position, backend_for(problem), config, slots))

    await run_each(todo, config.concurrency, solve_one)
