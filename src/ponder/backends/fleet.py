"""Several upstream URLs serving the same model, as one backend: ``--model openai:URL1,URL2,...``.

Each upstream is a full ``OpenAIBackend`` (``n`` emulation and chunking, SSE, reasoning split, its own connection
pool), so every server keeps the behaviour it would have alone. On top of them:

* **Balancing.** A request goes whole to one upstream (its ``n`` samples then share the prompt's KV cache there),
  the one with the fewest traces in flight; ties go round-robin. A worker of a distributed run may name a *home*
  upstream, which then takes all its traffic while it is healthy.
* **Failover.** Upstreams do not retry by themselves: a retryable failure (connection refused, 5xx, 429, timeout,
  dropped stream) is retried at once on another upstream, and waits out the usual backoff only when every upstream
  has failed the request. At most ``retry.attempts + len(urls) - 1`` tries in all, so one URL behaves exactly like
  ``OpenAIBackend``. A stream is retried only until its first token, as with one server.
* **Health.** An upstream that failed is skipped for a cooldown that doubles with each failure in a row (1 s up to
  30 s); then one request probes it, and a success makes it healthy again. A down upstream thus costs one failed try
  per cooldown, not one per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar, cast

from ponder.backends.base import Capabilities, StreamEvent
from ponder.backends.openai import OpenAIBackend
from ponder.backends.retry import RetryPolicy
from ponder.errors import BackendError, BackendUnavailable, ConfigError
from ponder.types import GenerationRequest, Trace

T = TypeVar("T")

log = logging.getLogger("ponder.backends")


def split_urls(target: str) -> list[str]:
    """The URLs of a ``URL1,URL2,...`` target, checked: each an http(s) URL, none listed twice."""
    urls = [url.strip().rstrip("/") for url in target.split(",")]
    for url in urls:
        if not url.startswith(("http://", "https://")):
            shown = url or "(empty)"
            raise ConfigError(f"--model openai:{target}: {shown} is not a URL; list URLs separated by commas, "
                              "e.g. openai:http://host1:8000/v1,http://host2:8000/v1")
    seen: set[str] = set()
    for url in urls:
        if url in seen:
            raise ConfigError(f"--model openai:{target}: {url} is listed twice")
        seen.add(url)
    return urls


@dataclass
class Upstream:
    """One server of the fleet and what the balancer knows about it."""

    backend: OpenAIBackend
    in_flight: int = 0  # traces, not requests: a request for n samples weighs n
    requests: int = 0  # requests sent (tries included)
    failures: int = 0  # failed tries in a row; 0 means healthy
    down_until: float = 0.0  # monotonic time before which it is not picked (unless nothing else is left)
    probing: bool = False  # a request is testing whether it is back
    last_error: str | None = None

    @property
    def url(self) -> str:
        return self.backend.base_url

    def available(self, now: float) -> bool:
        return self.failures == 0 or (now >= self.down_until and not self.probing)


class FleetBackend:
    """One backend over several OpenAI-compatible servers of the same model; see the module docstring."""

    def __init__(
        self,
        urls: Sequence[str],
        model: str | None = None,
        *,
        api_key: str | None = None,
        timeout_s: float = 600.0,
        retry: RetryPolicy | None = None,
        home: int | None = None,
        cooldown_s: float = 1.0,
        max_cooldown_s: float = 30.0,
        name: str | None = None,
    ) -> None:
        if not urls:
            raise ConfigError("a fleet needs at least one upstream URL")
        if home is not None and not 0 <= home < len(urls):
            raise ConfigError(f"home upstream {home} is not one of the {len(urls)} URLs")
        self.retry = retry or RetryPolicy()
        # Upstreams try once: the fleet retries, on another upstream when it can.
        once = replace(self.retry, attempts=1)
        self.upstreams = [Upstream(OpenAIBackend(url, model, api_key=api_key, timeout_s=timeout_s, retry=once))
                          for url in urls]
        self.home = home
        self.cooldown_s = cooldown_s
        self.max_cooldown_s = max_cooldown_s
        self.name = name or "openai:" + ",".join(u.url for u in self.upstreams)
        self.capabilities: Capabilities = self.upstreams[0].backend.capabilities
        self._cursor = 0  # round-robin position among upstreams tied on load

    @property
    def model(self) -> str | None:
        return self.upstreams[0].backend.model

    # ---- choosing an upstream ----------------------------------------------------------------------

    def pick(self, tried: Collection[int] = ()) -> int:
        """The upstream for the next try: home if healthy, else the least loaded healthy one not yet tried
        (ties round-robin); failing that, an untried one in cooldown; failing that, any."""
        now = time.monotonic()
        everyone = range(len(self.upstreams))
        for group in ([i for i in everyone if i not in tried and self.upstreams[i].available(now)],
                      [i for i in everyone if i not in tried],
                      list(everyone)):
            if group:
                break
        if self.home is not None and self.home in group and self.upstreams[self.home].available(now):
            return self.home
        n = len(self.upstreams)
        chosen = min(group, key=lambda i: (self.upstreams[i].in_flight, (i - self._cursor) % n))
        self._cursor = (chosen + 1) % n
        return chosen

    @contextlib.contextmanager
    def _using(self, index: int, traces: int) -> Iterator[Upstream]:
        upstream = self.upstreams[index]
        if upstream.failures:
            upstream.probing = True  # the only request let through until it answers
        upstream.in_flight += traces
        upstream.requests += 1
        try:
            yield upstream
        finally:
            upstream.in_flight -= traces
            upstream.probing = False

    def _succeeded(self, upstream: Upstream) -> None:
        if upstream.failures:
            log.info("upstream %s answers again", upstream.url)
        upstream.failures, upstream.down_until = 0, 0.0

    def _failed(self, upstream: Upstream, exc: BackendError) -> None:
        if not exc.retryable:
            return  # the request's fault (400, 401), not the server's health
        upstream.failures += 1
        upstream.last_error = str(exc)
        cooldown = min(self.cooldown_s * 2 ** (upstream.failures - 1), self.max_cooldown_s)
        upstream.down_until = time.monotonic() + cooldown
        if upstream.failures == 1 and len(self.upstreams) > 1:
            log.warning("upstream %s failed (%s); its traffic goes to the others until it answers", upstream.url,
                        exc)

    async def _with_failover(self, traces: int, call: Callable[[OpenAIBackend], Awaitable[T]]) -> T:
        tries = _Tries(self)
        while (index := await tries.next()) is not None:
            with self._using(index, traces) as upstream:
                try:
                    result = await call(upstream.backend)
                except BackendError as exc:
                    self._failed(upstream, exc)
                    if not exc.retryable:
                        raise
                    tries.failed(index, exc)
                    continue
            self._succeeded(upstream)
            return result
        raise tries.error()

    # ---- the Backend protocol ----------------------------------------------------------------------

    async def complete(self, request: GenerationRequest) -> list[Trace]:
        return await self._with_failover(max(1, request.n), lambda backend: backend.complete(request))

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamEvent]:
        tries = _Tries(self)
        while (index := await tries.next()) is not None:
            started = False
            with self._using(index, 1) as upstream:
                try:
                    # aclosing: closing this stream must close the upstream's at once, so the server stops.
                    upstream_events = cast(AsyncGenerator[StreamEvent, None], upstream.backend.stream(request))
                    async with contextlib.aclosing(upstream_events) as events:
                        async for event in events:
                            if not started:
                                started = True
                                self._succeeded(upstream)
                            yield event
                    return
                except BackendError as exc:
                    self._failed(upstream, exc)
                    # Once tokens have been handed out the trace cannot be restarted elsewhere.
                    if started or not exc.retryable:
                        raise
                    tries.failed(index, exc)
        raise tries.error()

    async def start(self) -> None:
        """Check every upstream at once. Fails when none answers, when one refuses us (e.g. a wrong key), or when
        they serve different models; an upstream that is merely down is skipped until it answers, with a warning."""
        results = await asyncio.gather(*(u.backend.start() for u in self.upstreams), return_exceptions=True)
        down = []
        for upstream, outcome in zip(self.upstreams, results, strict=True):
            if isinstance(outcome, BackendError) and outcome.retryable:
                down.append((upstream, outcome))
            elif isinstance(outcome, BackendError):
                raise type(outcome)(f"upstream {upstream.url}: {outcome}", status=outcome.status)
            elif isinstance(outcome, BaseException):
                raise outcome
        if len(down) == len(self.upstreams):
            raise _exhausted({u.url: exc for u, exc in down}, 1)
        for upstream, exc in down:
            self._failed(upstream, exc)
        served = {u.url: u.backend.model for u, outcome in zip(self.upstreams, results, strict=True)
                  if outcome is None and u.backend.model is not None}
        if len(set(served.values())) > 1:
            listing = ", ".join(f"{url} serves {model}" for url, model in served.items())
            raise ConfigError(f"the upstreams serve different models ({listing}); list replicas of one model, "
                              "or pass --model-name to pick one they all serve")
        model = next(iter(served.values()), None)
        for upstream in self.upstreams:
            # The same name everywhere, so an upstream that comes back later needs no /models call.
            upstream.backend.model = upstream.backend.model or model

    async def aclose(self) -> None:
        for upstream in self.upstreams:
            await upstream.backend.aclose()


class _Tries:
    """The tries of one request: which upstream next, when to back off, and the error once none are left."""

    def __init__(self, fleet: FleetBackend) -> None:
        self._fleet = fleet
        self._left = fleet.retry.attempts + len(fleet.upstreams) - 1
        self._tried: set[int] = set()
        self._errors: dict[str, BackendError] = {}
        self._waits = 0
        self.count = 0

    async def next(self) -> int | None:
        if self.count >= self._left:
            return None
        if len(self._tried) == len(self._fleet.upstreams):
            # Every upstream failed this request: back off before going round again.
            self._waits += 1
            last = list(self._errors.values())[-1]
            await asyncio.sleep(self._fleet.retry.delay(self._waits, last.retry_after))
            self._tried.clear()
        self.count += 1
        return self._fleet.pick(self._tried)

    def failed(self, index: int, exc: BackendError) -> None:
        self._tried.add(index)
        self._errors[self._fleet.upstreams[index].url] = exc

    def error(self) -> BackendError:
        return _exhausted(self._errors, self.count)


def _exhausted(errors: dict[str, BackendError], tries: int) -> BackendError:
    """One line naming each upstream's last error; unavailable if none could be reached."""
    if len(errors) == 1:
        exc = next(iter(errors.values()))
        return type(exc)(f"{exc} (after {tries} tries)", status=exc.status)
    reachable = not all(isinstance(e, BackendUnavailable) for e in errors.values())
    kind = BackendError if reachable else BackendUnavailable
    detail = "; ".join(f"{url}: {exc}" for url, exc in errors.items())
    return kind(f"every upstream failed after {tries} tries: {detail}")
