"""``Ctx``: the one door between a strategy and a model.

Every sample a strategy draws goes through its problem's ``Ctx``, which fills in the sampling defaults,
bounds concurrency, counts every token (cancelled ones included), enforces the token budget, extracts
answers, and keeps a record of every call for the store. Live servers, replayed trace banks and the fake
backend all sit behind the same door, so a strategy runs unchanged on each.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, Generic, TypeVar

from ponder.backends.base import Backend, StreamEnd
from ponder.errors import BudgetExceeded, CapabilityError
from ponder.types import Delta, GenerationRequest, Message, Problem, Trace, Usage


@dataclass
class Sampling:
    """Default sampling parameters of a run; strategies override per call."""

    temperature: float = 0.8
    top_p: float | None = None
    max_tokens: int = 512
    seed: int | None = None
    logprobs: bool = True
    # DeepConf's reference asks for 20; the server's own limit (Capabilities.top_logprobs) caps it per request.
    top_logprobs: int = 20
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Call:
    """One request to the backend and what came back."""

    kind: str  # "complete" or "stream"
    request: GenerationRequest
    started_at: float
    latency_s: float = 0.0
    traces: list[Trace] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    error: str | None = None


T = TypeVar("T")


@dataclass
class Gathered(Generic[T]):
    """What ``Ctx.gather`` returns: each job's result in job order, and which jobs the token budget stopped."""

    results: list[T | None]  # None where the budget stopped the job (a job may also return None itself)
    budget_stopped: list[bool]

    @property
    def done(self) -> list[T]:
        """The results of the jobs that finished, in job order."""
        return [r for r, stopped in zip(self.results, self.budget_stopped, strict=True) if not stopped]  # type: ignore[misc]

    @property
    def stopped(self) -> int:
        """How many jobs the token budget stopped."""
        return sum(self.budget_stopped)


class Slots:
    """A counting limit on traces in flight, shared by all problems of a run (n traces take n slots)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._free = self.capacity
        self._cond = asyncio.Condition()

    async def acquire(self, count: int) -> int:
        count = min(max(count, 1), self.capacity)  # a request larger than the pool waits for all of it
        async with self._cond:
            await self._cond.wait_for(lambda: self._free >= count)
            self._free -= count
        return count

    async def release(self, count: int) -> None:
        async with self._cond:
            self._free += count
            self._cond.notify_all()


# Set inside ``Ctx.aux()``: samples drawn there are helpers (verdicts, steps, critiques), not answers. A context
# variable, so it follows the asyncio task (and the tasks it starts), not whichever coroutine runs next.
_AUX: ContextVar[bool] = ContextVar("ponder_aux_samples", default=False)
# Set inside ``Ctx.lend_slot()``: the caller holds a slot it is not using (a paused stream), so a one-sample call
# made meanwhile runs on it instead of waiting for a free one, which may never come when streams hold them all.
_LENT: ContextVar[bool] = ContextVar("ponder_lent_slot", default=False)


@contextlib.contextmanager
def _raised(flag: ContextVar[bool]) -> Iterator[None]:
    """``flag`` is True inside, in this task and the tasks started inside."""
    token = flag.set(True)
    try:
        yield
    finally:
        flag.reset(token)


class _Ledger:
    """Completion tokens reserved by calls in flight, shared by every context of a problem."""

    def __init__(self) -> None:
        self.reserved = 0


class _SeedCounter:
    """Position in a problem's seed sequence, shared by every context of that problem."""

    def __init__(self) -> None:
        self.next = 0

    def take(self, count: int) -> int:
        start, self.next = self.next, self.next + count
        return start


class Ctx:
    """Sampling context of one problem."""

    def __init__(
        self,
        backend: Backend,
        problem: Problem,
        *,
        sampling: Sampling | None = None,
        slots: Slots | None = None,
        token_budget: int | None = None,
    ) -> None:
        self.backend = backend
        self.problem = problem
        self.sampling = sampling or Sampling()
        self.slots = slots or Slots(64)
        self.token_budget = token_budget
        self.usage = Usage()
        self.calls: list[Call] = []
        self._seeds = _SeedCounter()
        self._ledger = _Ledger()

    def on(self, backend: Backend) -> Ctx:
        """A context for the same problem on another backend (another model or server).

        It shares this context's slots, usage, call record, token budget and seed sequence, so work done by
        any agent of a multi-model strategy is counted, budgeted and stored with the problem.
        """
        other = Ctx(backend, self.problem, sampling=self.sampling, slots=self.slots, token_budget=self.token_budget)
        other.usage = self.usage
        other.calls = self.calls
        other._seeds = self._seeds
        other._ledger = self._ledger
        return other

    @staticmethod
    def aux() -> contextlib.AbstractContextManager[None]:
        """Samples drawn inside are helpers, not answers to the problem (a judge's verdict, a search step, a
        critique, a translation): they carry no answer, and maj@k / pass@k do not count them. Their tokens are
        counted as usual."""
        return _raised(_AUX)

    # ---- requests -------------------------------------------------------------------------------

    @staticmethod
    async def gather(*jobs: Awaitable[T]) -> Gathered[T]:
        """Run jobs together and let every one finish, so each token drawn is counted, before anything is
        raised. Jobs the token budget stopped (``BudgetExceeded``) come back as None; any other error is raised
        once all are done (the first in job order)."""
        outcomes = await asyncio.gather(*jobs, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, BudgetExceeded):
                raise outcome
        stopped = [isinstance(o, BaseException) for o in outcomes]
        return Gathered([None if s else o for o, s in zip(outcomes, stopped, strict=True)],  # type: ignore[misc]
                        stopped)

    @staticmethod
    def lend_slot() -> contextlib.AbstractContextManager[None]:
        """One-sample calls inside run on a slot the caller already holds and leaves idle meanwhile (a stream
        paused while it asks a judge about itself). Without this, such calls deadlock once streams waiting on
        them hold every slot."""
        return _raised(_LENT)

    def request(self, messages: list[Message] | None = None, *, n: int = 1, **overrides: Any) -> GenerationRequest:
        """A request with the run's defaults; ``overrides`` may set any GenerationRequest field."""
        s = self.sampling
        seed = None
        if s.seed is not None:
            # Distinct, reproducible seeds per call: same run seed and same call order give the same samples.
            seed = s.seed * 1_000_003 + self._seeds.take(max(n, 1)) * 7919
        request = GenerationRequest(
            messages=list(messages if messages is not None else self.problem.messages),
            n=n,
            temperature=s.temperature,
            top_p=s.top_p,
            max_tokens=s.max_tokens,
            seed=seed,
            logprobs=s.logprobs and self.backend.capabilities.logprobs,
            top_logprobs=(min(s.top_logprobs, self.backend.capabilities.top_logprobs) or None)
            if s.logprobs
            else None,
            extra=dict(s.extra),
        )
        return replace(request, **overrides)

    def require_logprobs(self, strategy: str, *, top_k: bool = False) -> None:
        """Strategies that read token confidence call this first; ``top_k`` when they read the top-k
        alternatives (DeepConf's C_i, self-certainty), which need at least two per token."""
        if not self.backend.capabilities.logprobs or not self.sampling.logprobs:
            raise CapabilityError(
                f"strategy {strategy!r} needs token logprobs, which backend {self.backend.name} does not provide "
                "(or --no-logprobs was given)"
            )
        if top_k:
            from ponder.confidence import MIN_TOP_K

            k = min(self.sampling.top_logprobs, self.backend.capabilities.top_logprobs)
            if k < MIN_TOP_K:
                raise CapabilityError(
                    f"strategy {strategy!r} reads the top-k alternatives of every token and needs k >= {MIN_TOP_K}, "
                    f"but k = {k} (--top-logprobs {self.sampling.top_logprobs}, backend {self.backend.name} returns "
                    f"up to {self.backend.capabilities.top_logprobs}); with one entry its confidence would rise with "
                    "uncertainty. Use --top-logprobs 20 on a backend that returns alternatives"
                )

    def _check_budget(self) -> None:
        if self.token_budget is not None and self.usage.completion_tokens >= self.token_budget:
            raise BudgetExceeded(
                f"token budget of {self.token_budget} completion tokens spent on problem {self.problem.id}"
            )

    def _reserve(self, request: GenerationRequest) -> int:
        """Reserve the worst case of a call (``n x max_tokens``) before it launches: a call whose worst case does
        not fit in what the budget has left, after what the calls in flight hold, raises ``BudgetExceeded``
        instead of starting, so a problem never spends more than its budget, however many calls run at once.
        Returns the tokens reserved."""
        self._check_budget()
        if self.token_budget is None:
            return 0
        per = request.max_tokens if request.max_tokens is not None else self.sampling.max_tokens
        need = max(request.n, 1) * per
        left = self.token_budget - self.usage.completion_tokens - self._ledger.reserved
        if need > left:
            raise BudgetExceeded(
                f"token budget of {self.token_budget} completion tokens on problem {self.problem.id}: "
                f"{max(left, 0)} left after the calls in flight, fewer than this call's worst case of {need} "
                f"({max(request.n, 1)} x max_tokens {per})"
            )
        self._ledger.reserved += need
        return need

    @property
    def budget_left(self) -> int | None:
        """Completion tokens of the budget not yet spent (calls in flight may hold some of them)."""
        if self.token_budget is None:
            return None
        return max(self.token_budget - self.usage.completion_tokens, 0)

    # ---- sampling -------------------------------------------------------------------------------

    async def sample(self, messages: list[Message] | None = None, *, n: int = 1, **overrides: Any) -> list[Trace]:
        """Draw ``n`` finished samples in parallel; answers are extracted onto each trace."""
        request = self.request(messages, n=n, **overrides)
        return await self.complete(request)

    async def complete(self, request: GenerationRequest) -> list[Trace]:
        """Send a ready-made request (see ``request``)."""
        reserved = self._reserve(request)
        call = Call("complete", request, started_at=time.time())
        self.calls.append(call)
        try:
            held = 0 if _LENT.get() and request.n == 1 else await self.slots.acquire(request.n)
            start = time.perf_counter()
            try:
                traces = await self.backend.complete(request)
            except BaseException as exc:
                call.error = f"{type(exc).__name__}: {exc}"
                raise
            finally:
                call.latency_s = time.perf_counter() - start
                await self.slots.release(held)
        finally:
            self._ledger.reserved -= reserved
        aux = _AUX.get()
        for trace in traces:
            trace.aux = aux
            trace.answer = self.answer(trace)
        call.traces = traces
        call.usage = Usage(
            # One request processes the prompt once, whatever n is; emulated n is charged per request.
            prompt_tokens=max((t.prompt_tokens for t in traces), default=0)
            if self.backend.capabilities.native_n
            else sum(t.prompt_tokens for t in traces),
            completion_tokens=sum(t.completion_tokens for t in traces),
            calls=1,
            traces=len(traces),
            capped_traces=sum(t.capped for t in traces),
        )
        self.usage.add(call.usage)
        return traces

    def stream(self, messages: list[Message] | None = None, **overrides: Any) -> TraceStream:
        """One sample, token by token; leave the ``async with`` early (or ``cancel()``) to stop it."""
        return TraceStream(self, self.request(messages, n=1, **overrides))

    # ---- answers --------------------------------------------------------------------------------

    def answer(self, trace: Trace) -> str | None:
        """The trace's answer to the problem. Helper samples (``aux``) have none; see ``stated`` for the rest."""
        return None if trace.aux else self.stated(trace)

    def stated(self, trace: Trace) -> str | None:
        """The answer a trace states in the task's format, helper or not (a backward chain's value of x).
        A trace stopped by ``max_tokens`` states none: the last number of unfinished reasoning is not an answer
        (the DeepConf and self-consistency references drop such traces from the vote too)."""
        if trace.capped or not trace.text:
            return None
        return self.problem.extract(trace.text)

    async def equivalent(self, a: str | None, b: str | None) -> bool:
        from ponder.answers import get_checker

        return await get_checker().equivalent(a, b)


class TraceStream:
    """A streamed sample. Iterate for deltas; ``trace`` holds everything received so far."""

    def __init__(self, ctx: Ctx, request: GenerationRequest) -> None:
        self.ctx = ctx
        self.request = request
        self.trace = Trace()
        self.finished = False
        self._events: AsyncIterator[Any] | None = None
        self._call = Call("stream", request, started_at=time.time())
        self._held = 0
        self._reserved = 0
        self._deltas = 0  # content pieces received: the token count of a stream that carries no logprobs
        self._start = 0.0
        self._aux = _AUX.get()

    async def __aenter__(self) -> TraceStream:
        self._reserved = self.ctx._reserve(self.request)
        self.ctx.calls.append(self._call)
        try:
            self._held = await self.ctx.slots.acquire(1)
        except BaseException:
            self.ctx._ledger.reserved -= self._reserved
            self._reserved = 0
            raise
        self._start = time.perf_counter()
        self._events = aiter(self.ctx.backend.stream(self.request))
        return self

    def __aiter__(self) -> TraceStream:
        return self

    async def __anext__(self) -> Delta:
        if self._events is None or self.finished:
            raise StopAsyncIteration
        while True:
            event = await anext(self._events)  # StopAsyncIteration ends the loop
            if isinstance(event, StreamEnd):
                self.finished = True
                self.trace.finish_reason = event.finish_reason
                self.trace.prompt_tokens = event.prompt_tokens
                self.trace.completion_tokens = event.completion_tokens or max(len(self.trace.tokens), self._deltas)
                raise StopAsyncIteration
            self.trace.append(event)
            if event.text or event.reasoning or event.tokens:
                self._deltas += 1
            # Servers stream about one token per chunk; without logprobs the chunks are the only count there is
            # (a cancelled stream never receives the server's usage), so live runs agree with replayed banks.
            self.trace.completion_tokens = max(self.trace.completion_tokens, len(self.trace.tokens), self._deltas)
            return event

    async def cancel(self) -> None:
        """Stop generating: the server stops work on this trace; tokens received so far stay counted."""
        await self._close()

    async def _close(self) -> None:
        events, self._events = self._events, None
        if events is not None and hasattr(events, "aclose"):
            await events.aclose()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self._close()
        finally:
            await self.ctx.slots.release(self._held)
            self._held = 0
            self.ctx._ledger.reserved -= self._reserved
            self._reserved = 0
            self._finish(exc)

    def _finish(self, exc: BaseException | None) -> None:
        trace, call = self.trace, self._call
        trace.cancelled = not self.finished
        trace.latency_s = time.perf_counter() - self._start
        if not trace.completion_tokens:
            trace.completion_tokens = max(len(trace.tokens), self._deltas)
        trace.aux = self._aux
        trace.answer = self.ctx.answer(trace) if self.finished else None
        call.latency_s = trace.latency_s
        call.traces = [trace]
        if exc is not None and not isinstance(exc, asyncio.CancelledError | GeneratorExit):
            call.error = f"{type(exc).__name__}: {exc}"
        call.usage = Usage(
            prompt_tokens=trace.prompt_tokens,
            completion_tokens=trace.completion_tokens,
            calls=1,
            traces=1,
            cancelled_traces=int(trace.cancelled),
            capped_traces=int(trace.capped),
        )
        self.ctx.usage.add(call.usage)
