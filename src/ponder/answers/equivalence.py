"""Are two answers the same? A cheap exact path for the common cases, math-verify in a worker for the rest.

Behaviour choices:

* Symmetric: ``equivalent(a, b) == equivalent(b, a)``. The same checker grades predictions against gold and
  groups predictions with each other for voting, and a vote must not depend on which sample came first. The
  slow path therefore accepts a pair when math-verify's ``verify`` accepts it in either order, except that
  equations get our own symmetric rule (see ``worker.check_pair``).
* Percent: ``50\\%`` and ``50`` are equal (the percent sign is dropped by normalisation, as MATH graders do), so
  ``50\\%`` and ``0.5`` are NOT equal.
* Equations: equal iff ``lhs - rhs`` of one is a nonzero constant multiple of the other's.
* Timeouts count as "not equal" and are cached like any other result, so a pathological pair costs one
  deadline, not one per vote. The worker killed at a deadline is replaced in the background, so the next check
  does not wait for a new one to start.
* Answers longer than ``MAX_ANSWER_CHARS`` are equal only to themselves (after whitespace is collapsed): no
  parser sees them, so a megabyte of output costs a string comparison.
"""

from __future__ import annotations

import asyncio
import atexit
import math
import os
import queue
import re
import threading
import weakref
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from multiprocessing import get_context
from types import TracebackType
from typing import Any

from ponder.answers.extract import MAX_ANSWER_CHARS
from ponder.answers.normalize import normalize_answer, parse_number
from ponder.answers.worker import DEBUG_ENV, WorkerCrashed, WorkerProcess, WorkerTimeout
from ponder.errors import ConfigError, PonderError
from ponder.types import Problem

__all__ = ["AnswerChecker", "check_math", "fast_equivalent", "get_checker"]

_WORDS = re.compile(r"[a-z]{2,}(?: [a-z]+)*")  # normalised plain words: compared as strings, never as maths
_FLOAT_NOISE = Fraction(1, 10**12)
_ROUNDED_DIGITS = 6  # a decimal this long may stand for a rounded value, as math-verify assumes


def _numbers_equal(a: tuple[Fraction, int], b: tuple[Fraction, int]) -> bool:
    (fa, da), (fb, db) = a, b
    if fa == fb:
        return True
    if (da or db) and abs(fa - fb) <= _FLOAT_NOISE * max(abs(fa), abs(fb)):
        return True  # float printing noise: 0.30000000000000004 (integers have none: 999999999999 is not 10^12)
    # The less precise decimal stands for the other, rounded or truncated: less than one unit in its last
    # place apart (0.333333 and 0.666666 for 1/3 and 2/3, but 3.0000001 is not 3).
    digits = min(d for d in (da, db) if d) if (da or db) else 0
    return digits >= _ROUNDED_DIGITS and abs(fa - fb) < Fraction(1, 10**digits)


def fast_equivalent(na: str, nb: str) -> bool | None:
    """Decide from normalised forms alone when that is certain; None means "ask math-verify"."""
    if not na or not nb:
        return False
    if na == nb:
        return True
    num_a, num_b = parse_number(na), parse_number(nb)
    if num_a is not None and num_b is not None:
        return _numbers_equal(num_a, num_b)
    words_a, words_b = _WORDS.fullmatch(na) is not None, _WORDS.fullmatch(nb) is not None
    if (words_a or num_a is not None) and (words_b or num_b is not None):
        return False  # different words, or a word against a number
    return None


@dataclass
class _Slot:
    """One place in the pool; its worker is started on first use and replaced after a timeout or crash."""

    worker: WorkerProcess | None = None


_LIVE: weakref.WeakSet[AnswerChecker] = weakref.WeakSet()


class AnswerChecker:
    """Checks answer equivalence; slow checks run in a small pool of killable worker processes.

    Safe to use from many asyncio tasks (and threads) at once. Workers start lazily; ``close()`` (or leaving a
    ``with`` block, or interpreter exit) kills them. Counters: ``timeouts``, ``crashes``, ``cache_hits``,
    ``workers_started``, ``slow_checks``.
    """

    def __init__(self, timeout_s: float = 5.0, workers: int = 1, cache_size: int = 8192) -> None:
        if not timeout_s > 0:
            raise ConfigError(f"timeout_s must be > 0, got {timeout_s}")
        if workers < 1:
            raise ConfigError(f"workers must be >= 1, got {workers}")
        self.timeout_s = float(timeout_s)
        self.workers = workers
        self.timeouts = 0
        self.crashes = 0
        self.cache_hits = 0
        self.workers_started = 0
        self.slow_checks = 0
        self._cache_size = max(1, cache_size)
        self._cache: OrderedDict[tuple[str, str], bool] = OrderedDict()
        self._inflight: dict[tuple[str, str], Future[bool]] = {}
        self._lock = threading.Lock()
        self._slots = [_Slot() for _ in range(workers)]
        self._free: queue.Queue[_Slot] = queue.Queue()
        for slot in self._slots:
            self._free.put(slot)
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False
        # math-verify's own alarms sit inside our deadline, so a slow check usually ends without a kill
        self._inner_timeout = max(1, math.floor(self.timeout_s))
        _LIVE.add(self)

    # ------------------------------------------------------------ public API

    async def equivalent(self, a: str | None, b: str | None) -> bool:
        """Whether two answers are the same; None is never equivalent to anything."""
        verdict, na, nb = _without_worker(a, b)
        if verdict is not None:
            return verdict
        # shield: one caller's cancellation must not cancel a check other callers share
        return await asyncio.shield(asyncio.wrap_future(self._submit(na, nb)))

    def equivalent_sync(self, a: str | None, b: str | None) -> bool:
        """Blocking form of ``equivalent`` for code without an event loop."""
        verdict, na, nb = _without_worker(a, b)
        if verdict is not None:
            return verdict
        return self._submit(na, nb).result()

    def close(self) -> None:
        """Kill all workers; later slow checks raise PonderError (fast-path and cached answers still work)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            executor, self._executor = self._executor, None
        for slot in self._slots:
            worker, slot.worker = slot.worker, None
            if worker is not None:
                worker.kill()
        if executor is not None:
            executor.shutdown(wait=False)  # queued checks still run, see _closed and answer False at once

    @property
    def closed(self) -> bool:
        return self._closed

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (for monitoring and tests)."""
        return [
            slot.worker.pid
            for slot in self._slots
            if slot.worker is not None and slot.worker.pid is not None and slot.worker.alive()
        ]

    def __enter__(self) -> AnswerChecker:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> AnswerChecker:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------ internals

    def _submit(self, na: str, nb: str) -> Future[bool]:
        """A future for the slow check of a normalised pair: cached, shared with an identical check in flight,
        or newly queued on the checker's own threads (one per worker, so no thread waits for a worker)."""
        key = (na, nb) if na <= nb else (nb, na)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                self.cache_hits += 1
                done: Future[bool] = Future()
                done.set_result(cached)
                return done
            pending = self._inflight.get(key)
            if pending is not None:
                return pending
            if self._closed:
                raise PonderError("this AnswerChecker is closed")
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="ponder-answer-check")
            future = self._executor.submit(self._check_blocking, key)
            self._inflight[key] = future
        future.add_done_callback(lambda _: self._forget(key))
        return future

    def _forget(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._inflight.pop(key, None)

    def _remember(self, key: tuple[str, str], value: bool) -> None:
        with self._lock:
            self._cache[key] = value
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def _check_blocking(self, key: tuple[str, str]) -> bool:
        with self._lock:
            self.slow_checks += 1
        reply = self._request(("check", *key))
        if reply is None:
            return False  # the worker crashed twice or the checker closed: not cached, may succeed later
        status, value = reply
        result = status == "ok" and bool(value)
        self._remember(key, result)
        return result

    def _request(self, message: tuple[Any, ...]) -> tuple[str, Any] | None:
        """Run one request on a free worker; ``("timeout", None)`` on a deadline, None if it cannot run.

        A crashed worker (killed from outside, out of memory) is replaced and the request tried once more.
        """
        slot = self._free.get()
        replace = False
        try:
            for _ in range(2):
                worker = self._ready_worker(slot)
                if worker is None:
                    return None
                try:
                    return worker.request(message, self.timeout_s)
                except WorkerTimeout:
                    self._discard(slot, worker)
                    with self._lock:
                        self.timeouts += 1
                    replace = True
                    return ("timeout", None)
                except WorkerCrashed:
                    self._discard(slot, worker)
                    with self._lock:
                        self.crashes += 1
            return None
        finally:
            if not (replace and self._replace_later(slot)):
                self._free.put(slot)

    def _replace_later(self, slot: _Slot) -> bool:
        """Start the slot's next worker on the checker's threads and free the slot once it is up."""

        def start() -> None:
            try:
                self._ready_worker(slot)
            except PonderError:
                pass  # the next check on this slot tries again, and reports the failure
            finally:
                self._free.put(slot)

        with self._lock:
            if self._closed or self._executor is None:
                return False
            try:
                self._executor.submit(start)
            except RuntimeError:  # shut down meanwhile
                return False
        return True

    def _ready_worker(self, slot: _Slot) -> WorkerProcess | None:
        """The slot's worker, (re)started if missing or dead; None once the checker is closed."""
        if self._closed:
            return None
        worker = slot.worker
        if worker is not None and not worker.alive():
            self._discard(slot, worker)
            with self._lock:
                self.crashes += 1
            worker = None
        if worker is None:
            worker = WorkerProcess(
                get_context("spawn"), self._inner_timeout, os.environ.get(DEBUG_ENV) == "1"
            )
            with self._lock:
                self.workers_started += 1
                if self._closed:  # closed while we were starting it
                    worker.kill()
                    return None
                slot.worker = worker
        return worker

    def _debug_request(self, op: str, arg: Any = None) -> tuple[str, Any] | None:
        """Send a test-only request (``sleep``/``crash``, honoured when ``PONDER_ANSWERS_DEBUG=1``)."""
        return self._request((op, arg))

    def _discard(self, slot: _Slot, worker: WorkerProcess) -> None:
        worker.kill()
        if slot.worker is worker:
            slot.worker = None


_default: AnswerChecker | None = None
_default_lock = threading.Lock()


def get_checker() -> AnswerChecker:
    """The process-wide checker (two workers, 5 s deadline), created on first use."""
    global _default
    with _default_lock:
        if _default is None or _default.closed:
            _default = AnswerChecker(timeout_s=5.0, workers=2)
        return _default


async def check_math(answer: str | None, problem: Problem) -> bool:
    """Default checker of math tasks: the extracted answer against the problem's gold answer."""
    return await get_checker().equivalent(answer, problem.gold)


@atexit.register
def _close_all() -> None:
    """No worker outlives the interpreter, even when nobody called close()."""
    for checker in list(_LIVE):
        checker.close()


def _without_worker(a: str | None, b: str | None) -> tuple[bool | None, str, str]:
    """The verdict when no worker is needed (None answers, the fast path), and the normal forms."""
    if a is None or b is None:
        return False, "", ""
    na, nb = normalize_answer(a), normalize_answer(b)
    if len(na) > MAX_ANSWER_CHARS or len(nb) > MAX_ANSWER_CHARS:
        return na == nb, na, nb
    return fast_equivalent(na, nb), na, nb
