"""An evaluation's problems solved on a Ray cluster: ``ponder eval --ray [ADDRESS]``.

Only the solving moves. The driver (the process running ``ponder eval``) loads the task, skips the problems the
store already holds, and alone writes the store, one transaction per problem through the runner's
``ProblemSaver``, so a rerun resumes exactly as without Ray. The problems go to a pool of *workers*: async Ray
actors spread over the cluster's nodes, each opening its own backend once and solving many problems at a time on
its event loop, as the local runner does. (Plain Ray tasks would need one process per problem in flight, each with
its own connection pool.) With ``--model openai:URL1,URL2,...`` worker ``i`` sends its traffic to URL ``i mod k``
(its *home*) and fails over to the others while that one is down.

Each problem is an actor task whose result (the problem's record and calls) streams back to the driver as soon as
it is done. The driver keeps at most ``--concurrency`` problems out, each sent to the worker with the fewest in
flight; every worker bounds its traces in flight at its share of ``--max-inflight``.

A worker's death (its process killed, its node lost) fails the tasks it held with a ``RayActorError``; Ray
restarts the worker and the driver sends those problems again, to whichever worker is least busy, up to
``MAX_TRIES`` times each; a problem that keeps killing its worker is stored as an error, which a rerun tries again.
The driver stores a problem only once, whatever comes back twice, and the store's key refuses a second copy.

Ray is optional (``pip install 'ponder[ray]'``): nothing here imports it until a run asks for it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import socket
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ponder.agents import AgentPool, using_pool
from ponder.backends import Backend, BackendSpec, FleetBackend, open_backend
from ponder.backends.fleet import split_urls
from ponder.context import Call
from ponder.errors import BackendUnavailable, CapabilityError, ConfigError, PonderError
from ponder.store import ProblemRecord
from ponder.types import Problem

if TYPE_CHECKING:
    from ponder.runner import EvalConfig

MAX_TRIES = 3  # sends of one problem whose worker died under it, before it is stored as an error
DEFAULT_ADDRESS = "default"  # --ray without an address: $RAY_ADDRESS, a cluster started here, else a new local one

log = logging.getLogger("ponder.distributed")

Save = Callable[[ProblemRecord, list[Call]], Awaitable[None]]


def require_ray() -> ModuleType:
    """The ``ray`` module, or a ConfigError naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray, which ponder does not install by default: pip install 'ponder[ray]' "
                          "(in a clone: pip install -e '.[ray]'), on the driver and on every node of the "
                          "cluster") from None
    return ray


def check_config(config: EvalConfig) -> None:
    """Refuse what cannot run on a cluster, before any run is created."""
    ray = require_ray()
    if config.replay is not None:
        raise ConfigError("--ray and --replay do not go together: a replayed bank is served from this machine's "
                          "memory and needs no cluster; drop --ray")
    if config.model.kind == "local":
        raise ConfigError("--ray needs a model server the workers can reach: serve the model (llama-server, vLLM, "
                          "SGLang) and pass --model openai:URL[,URL...]; --model local would start a llama-server "
                          "inside every worker")
    if config.ray_workers is not None and config.ray_workers < 1:
        raise ConfigError(f"--ray-workers must be at least 1, got {config.ray_workers}")
    if not ray.is_initialized():
        _check_reachable(config.ray)


def upstream_urls(spec: BackendSpec) -> list[str]:
    """The model servers of an ``openai:`` spec (one or several); none for other kinds."""
    if spec.kind != "openai" or not spec.target:
        return []
    return split_urls(spec.target)


def default_workers(cpus: float, urls: int, concurrency: int) -> int:
    """One worker per cluster CPU, rounded up so each upstream URL is home to as many; never more than the
    problems in flight (an idle worker only costs memory)."""
    count = max(int(cpus), urls, 1)
    if urls:
        count = math.ceil(count / urls) * urls
    return max(1, min(count, concurrency))


@asynccontextmanager
async def worker_backend(spec: BackendSpec, index: int) -> AsyncIterator[Backend]:
    """Worker ``index``'s backend: for several URLs, a fleet whose home is URL ``index mod k``."""
    urls = upstream_urls(spec)
    if len(urls) < 2:
        async with open_backend(spec) as backend:
            yield backend
        return
    fleet = FleetBackend(urls, spec.model_name, api_key=spec.api_key, timeout_s=spec.remote_timeout_s,
                         home=index % len(urls))
    try:
        await fleet.start()
        yield fleet
    finally:
        await fleet.aclose()


@dataclass
class Outcome:
    """What a worker sends back for one problem: its record and calls, or an error that ends the run."""

    record: ProblemRecord | None = None
    calls: list[Call] = field(default_factory=list)
    fatal: PonderError | None = None  # the same for every problem (backend down, bad setting): stop the run


class ProblemWorker:
    """Solves problems on a cluster node; made a Ray actor by ``run_on_ray`` (so importing it needs no Ray).

    The backend opens on the first problem, inside the actor's event loop, and stays open for the actor's life.
    """

    def __init__(self, config: EvalConfig, index: int, max_inflight: int) -> None:
        from ponder.runner import Progress, _CountedSlots, _Warnings

        self._config = config
        self._index = index
        # Bound hits are said in the worker's log, which Ray forwards to the driver's terminal.
        self._slots = _CountedSlots(max_inflight, Progress(total=0), _Warnings(None))
        self._agents = AgentPool()
        self._stack: AsyncExitStack | None = None
        self._backend_for: Callable[[Problem], Backend] | None = None
        self._opening: asyncio.Lock | None = None

    async def _open(self) -> Callable[[Problem], Backend]:
        from ponder.runner import _per_problem

        if self._opening is None:
            self._opening = asyncio.Lock()  # made here: it must belong to the actor's event loop
        async with self._opening:
            if self._backend_for is None:
                stack = AsyncExitStack()
                try:
                    spec = self._config.model.sized_for(self._config.sampling.max_tokens)
                    backend = await stack.enter_async_context(worker_backend(spec, self._index))
                    stack.push_async_callback(self._agents.close)
                except BaseException:
                    await stack.aclose()
                    raise
                self._stack, self._backend_for = stack, _per_problem(backend)
        return self._backend_for

    async def solve(self, position: int, problem: Problem) -> Outcome:
        from ponder.runner import solve_problem

        try:
            backend_for = await self._open()
            with using_pool(self._agents):
                record, calls = await solve_problem(problem, position, backend_for(problem), self._config,
                                                    self._slots)
        except (BackendUnavailable, CapabilityError, ConfigError) as exc:
            return Outcome(fatal=exc)
        return Outcome(record, calls)

    async def pid(self) -> int:
        return os.getpid()

    async def close(self) -> None:
        if self._stack is not None:
            stack, self._stack, self._backend_for = self._stack, None, None
            await stack.aclose()


def _connect(ray: Any, address: str | None) -> bool:
    """Join (or start) the cluster; True when this call did, so the run should also leave it."""
    if ray.is_initialized():
        return False  # the caller (a test, a notebook) manages Ray itself
    try:
        ray.init(address=None if address in (None, "", DEFAULT_ADDRESS) else address,
                 logging_level=logging.WARNING, namespace="ponder")
    except ConnectionError as exc:
        raise BackendUnavailable(f"--ray {address}: cannot reach the Ray cluster ({exc})") from None
    return True


def _check_reachable(address: str | None) -> None:
    """Fail at once on a host:port where nothing listens: Ray itself retries such an address for minutes."""
    match = re.fullmatch(r"\[?([\w.:-]+?)\]?:(\d+)", address or "")
    if match is None:
        return  # ray://, auto, local, default: Ray resolves those itself
    try:
        socket.create_connection((match[1], int(match[2])), timeout=5).close()
    except OSError as exc:
        raise BackendUnavailable(f"--ray {address}: no Ray cluster answers there ({exc.strerror or exc}); start one "
                                 "with 'ray start --head' or check the address") from None


def _start_workers(ray: Any, config: EvalConfig) -> list[Any]:
    cpus = float(ray.cluster_resources().get("CPU", 1.0))
    count = config.ray_workers or default_workers(cpus, len(upstream_urls(config.model)), config.concurrency)
    actor = ray.remote(ProblemWorker).options(
        # A worker per core, or a share of one when asked for more workers than cores: never unschedulable.
        num_cpus=min(1.0, round(cpus / count, 4)) or 0.0001,
        max_restarts=-1,  # a killed worker comes back; the driver bounds how often a problem is sent again
        max_task_retries=0,  # ... and resends its problems itself, to any worker
        max_concurrency=max(config.concurrency, 1) + 4,
        scheduling_strategy="SPREAD",  # over the nodes, not packed on one
    )
    share = math.ceil(config.max_inflight / count)
    return [actor.remote(config, index, share) for index in range(count)]


async def run_on_ray(config: EvalConfig, todo: list[tuple[int, Problem]], save: Save) -> None:
    """Solve ``todo`` on the cluster at ``config.ray``; ``save`` stores each problem, in this process, once."""
    ray = require_ray()
    started = _connect(ray, config.ray)
    workers: list[Any] = []
    try:
        workers = _start_workers(ray, config)
        await _Driver(workers, todo, config.concurrency, save).run()
    finally:
        await _stop(ray, workers)
        if started:
            ray.shutdown()


async def _stop(ray: Any, workers: list[Any]) -> None:
    """Close the workers' backends (and any equivalence or agent processes they hold), then end them."""
    closing = [asyncio.wrap_future(worker.close.remote().future()) for worker in workers]
    if closing:
        await asyncio.wait(closing, timeout=10)
    for worker in workers:
        ray.kill(worker, no_restart=True)


class _Driver:
    """Sends problems to workers, stores what comes back, and resends what a dying worker took with it."""

    def __init__(self, workers: list[Any], todo: list[tuple[int, Problem]], concurrency: int, save: Save) -> None:
        from ray.exceptions import ObjectLostError, RayActorError, WorkerCrashedError

        self.died = (RayActorError, WorkerCrashedError, ObjectLostError)
        self.workers = workers
        self.concurrency = concurrency
        self.save = save
        self.queue = deque(todo)
        self.out: dict[asyncio.Future[Any], tuple[int, Problem, int]] = {}  # an Outcome each
        self.pings: dict[asyncio.Future[Any], int] = {}  # a pid each
        self.load = [0] * len(workers)
        self.down: set[int] = set()  # restarting: no problems until it answers a ping
        self.gone: set[int] = set()  # failed MAX_TRIES pings in a row: dead for good
        self.failed_pings: Counter[int] = Counter()
        self.tries: Counter[str] = Counter()
        self.stored: set[str] = set()
        self.cursor = 0

    async def run(self) -> None:
        try:
            while self.queue or self.out:
                self._send()
                if not self.out and not self.pings:
                    raise PonderError(f"every Ray worker died ({len(self.gone)} of {len(self.workers)}); "
                                      "finished problems are stored: run the same command again to resume")
                done, _ = await asyncio.wait([*self.out, *self.pings], return_when=asyncio.FIRST_COMPLETED)
                for future in done:
                    if future in self.pings:
                        self._pinged(future)
                    else:
                        await self._finished(future)
        finally:
            for future in [*self.out, *self.pings]:
                future.cancel()

    def _send(self) -> None:
        while self.queue and len(self.out) < self.concurrency:
            ready = [i for i in range(len(self.workers)) if i not in self.down and i not in self.gone]
            if not ready:
                return  # wait for a restarted worker to answer its ping
            # The least busy worker; ties round-robin, so a fresh run spreads over all of them.
            index = min(ready, key=lambda i: (self.load[i], (i - self.cursor) % len(self.workers)))
            self.cursor = (index + 1) % len(self.workers)
            position, problem = self.queue.popleft()
            self.load[index] += 1
            self.tries[problem.id] += 1
            ref = self.workers[index].solve.remote(position, problem)
            self.out[asyncio.wrap_future(ref.future())] = (position, problem, index)

    async def _finished(self, future: asyncio.Future[Any]) -> None:
        position, problem, index = self.out.pop(future)
        self.load[index] -= 1
        try:
            outcome: Outcome = future.result()
        except self.died as exc:
            self._lost(index)
            if self.tries[problem.id] < MAX_TRIES:
                log.warning("problem %s: its Ray worker died (%s); sending it again", problem.id, _first_line(exc))
                self.queue.appendleft((position, problem))
                return
            outcome = Outcome(_died(problem, position, exc))
        if outcome.fatal is not None:
            raise outcome.fatal
        assert outcome.record is not None
        if problem.id in self.stored:
            return  # a late copy of a problem sent twice
        self.stored.add(problem.id)
        await self.save(outcome.record, outcome.calls)

    def _lost(self, index: int) -> None:
        """Worker ``index`` died: Ray restarts it; send it nothing until it answers."""
        if index not in self.down and index not in self.gone:
            self.down.add(index)
            self._ping(index)

    def _ping(self, index: int) -> None:
        self.pings[asyncio.wrap_future(self.workers[index].pid.remote().future())] = index

    def _pinged(self, future: asyncio.Future[Any]) -> None:
        index = self.pings.pop(future)
        try:
            future.result()
        except self.died:
            self.failed_pings[index] += 1
            if self.failed_pings[index] >= MAX_TRIES:
                self.down.discard(index)
                self.gone.add(index)
                log.warning("a Ray worker did not come back after %d tries; going on without it", MAX_TRIES)
            else:
                self._ping(index)
            return
        self.failed_pings[index] = 0
        self.down.discard(index)


def _died(problem: Problem, position: int, exc: BaseException) -> ProblemRecord:
    """The error record of a problem whose worker died under it on every try (a rerun tries it again)."""
    return ProblemRecord(
        problem_id=problem.id, position=position, gold=problem.gold, answer=None, correct=None, confidence=None,
        votes={}, info={}, prompt_tokens=0, completion_tokens=0, calls=0, traces=0, cancelled_traces=0,
        latency_s=0.0, error=f"WorkerDied: its Ray worker died on each of {MAX_TRIES} tries ({_first_line(exc)})",
    )


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:200]
