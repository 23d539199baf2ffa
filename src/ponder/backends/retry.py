"""Bounded retries with exponential backoff for transient server faults."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx

from ponder.errors import BackendError, BackendUnavailable

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry; ``attempts`` counts the first try."""

    attempts: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 20.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before try number ``attempt + 1`` (attempt counts from 1)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay_s)
        backoff = self.base_delay_s * (2 ** (attempt - 1))
        return float(min(backoff, self.max_delay_s) * random.uniform(0.5, 1.0))


def retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None  # an HTTP date: fall back to backoff rather than parse calendars


def error_from_response(response: httpx.Response, body: bytes) -> BackendError:
    """A BackendError carrying the server's own message."""
    message = body.decode("utf-8", "replace").strip()
    try:
        payload = json.loads(message)
        error = payload.get("error", payload) if isinstance(payload, dict) else payload
        if isinstance(error, dict):
            message = str(error.get("message") or error)
        elif isinstance(error, str):
            message = error
    except ValueError:
        pass
    message = " ".join(message.split())[:500] or response.reason_phrase
    return BackendError(
        f"server answered HTTP {response.status_code}: {message}",
        status=response.status_code,
        retryable=response.status_code in RETRYABLE_STATUS,
        retry_after=retry_after_seconds(response),
    )


def error_from_exception(exc: Exception, url: str) -> BackendError:
    if isinstance(exc, httpx.ConnectError):
        return BackendUnavailable(f"cannot reach the model server at {url} ({exc or 'connection refused'})",
                                  retryable=True)
    if isinstance(exc, httpx.RemoteProtocolError):
        return BackendError(f"the model server at {url} closed the connection mid-response ({exc})", retryable=True)
    if isinstance(exc, httpx.TimeoutException):
        return BackendError(f"the model server at {url} timed out ({type(exc).__name__}); if it is only slow "
                            "(a big model on a CPU, long --max-tokens), give it longer with --timeout SECONDS",
                            retryable=True)
    return BackendError(f"connection to the model server at {url} failed: {type(exc).__name__}: {exc}",
                        retryable=True)


async def with_retries(call: Callable[[], Awaitable[T]], policy: RetryPolicy) -> T:
    """Run ``call``; retry BackendErrors marked retryable, at most ``policy.attempts`` tries in all."""
    attempt = 1
    while True:
        try:
            return await call()
        except BackendError as exc:
            if not exc.retryable or attempt >= policy.attempts:
                if attempt > 1:
                    raise type(exc)(f"{exc} (after {attempt} tries)", status=exc.status) from exc
                raise
            await asyncio.sleep(policy.delay(attempt, exc.retry_after))
            attempt += 1
