"""A small, scriptable fake OpenAI-compatible HTTP server for tests, benchmarks and fault injection.

The server is a bare ASGI app served by uvicorn (h11) in a background thread on ``127.0.0.1`` and a free
port. It starts in a few milliseconds and stops cleanly (thread joined, listening socket closed)::

    with FakeOpenAIServer(responder="The answer is 4.") as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x")
        ...
        assert srv.requests[0]["model"] == "fake-model"

Standalone, e.g. for benchmarks: ``python -m tests.fakes.openai_server --port 8099`` (see ``--help``).

Endpoints
---------
``POST /v1/chat/completions`` (streaming and not), ``GET /v1/models``, ``GET /health``; the same paths
without ``/v1`` work too. Only chat-completion requests are recorded and consume faults.

Replies
-------
``responder(request_json, choice_index) -> str | ScriptedReply`` (may also return an awaitable) gives each
choice's text; it can also be a constant ``str`` / :class:`ScriptedReply`, or a sequence of them, in which
case choice ``i`` gets ``seq[i % len(seq)]``. The default answers :data:`DEFAULT_REPLY`.

* Text is split into tokens by :func:`tokenize` (a word with its leading whitespace, one punctuation mark
  with its leading whitespace, or trailing whitespace): ``"The answer is 4."`` → ``The| answer| is| 4|.``.
* Each token's logprob is :func:`default_logprob` ``(token, position)`` (a hash, in ``(-2, 0]``) unless the
  ScriptedReply scripts them. With ``top_logprobs=k`` each position lists ``k`` entries in descending
  order, the first being the sampled token (alternatives come from a small fixed vocabulary, or from
  ``ScriptedReply.top_logprobs``).
* Reasoning (``ScriptedReply.reasoning``): with ``reasoning="field"`` it goes to
  ``message.reasoning_content`` (``delta.reasoning_content`` when streaming; the key is set by
  ``reasoning_key``); with ``reasoning="inline"`` the content is ``<think>`` + reasoning + ``</think>`` +
  text (``<think>`` and ``</think>`` are single tokens). Reasoning tokens come first, carry logprobs, count
  as completion tokens and count against ``max_tokens``.
* ``max_tokens`` / ``max_completion_tokens`` truncate each choice (``finish_reason="length"``); ``stop``
  strings cut the answer text (``finish_reason="stop"``).
* ``usage``: ``prompt_tokens`` = number of whitespace-separated words in all message contents
  (:func:`count_prompt_tokens`), ``completion_tokens`` = tokens of all returned choices.
* ``n`` choices are returned natively, unless ``native_n=False``: then exactly one choice, whatever ``n``.
* Streaming: SSE ``data: {json}\\n\\n`` events of ``chat.completion.chunk`` objects: per choice a first
  chunk with ``delta={"role": "assistant", "content": ""}``, then one chunk per token
  (``delta.content`` or ``delta.reasoning_content``, with ``logprobs.content=[entry]``), choices
  interleaved position by position, a chunk with empty delta and the ``finish_reason`` right after a
  choice's last token, a ``{"choices": [], "usage": {...}}`` chunk if ``stream_options.include_usage``,
  then ``data: [DONE]``. ``token_delay_s`` is slept before each token *position* (all choices advance
  together).

Records
-------
``srv.records`` (snapshots of :class:`RequestRecord`: headers, body, json, fault, status, tokens_sent,
completed, cancelled, error), ``srv.requests`` (the JSON bodies), ``srv.cancelled_count``. A request is
*cancelled* when the client went away before the whole response was sent. ``tokens_sent`` counts the
tokens sent over all choices (a duplicated chunk counts once). The client's disconnect is noticed
asynchronously: use ``srv.wait_idle()`` or ``srv.wait_for(pred)`` before asserting on it. All public
attributes are safe to read from any thread.

Faults
------
A :class:`Fault` (or just its kind as a string) applies to one chat-completion request. Faults come from a
FIFO queue (``faults=[...]`` or ``srv.push_faults(...)``; a ``None`` entry means "no fault for this
request"); when the queue is empty and ``fault_rates={kind_or_Fault: probability}`` is set, one draw of a
``random.Random(seed)`` per request picks at most one of them. With ``fault_key="body"`` the draw depends
on the seed, the request body and how often that exact body was seen, so which request meets which fault
does not depend on the order in which concurrent requests arrive (a retry of the same body draws anew).
:func:`transient_fault_rates` spreads a total rate evenly over the transient kinds. ``srv.fault_counts``
counts the faults injected so far by kind. Requests rejected with 401 because of ``api_key`` consume no
fault. Kinds:

====================  ======================================================================================
``server_error``      HTTP 500 (or ``status``) with ``{"error": {"message", "type": "server_error", ...}}``
``rate_limit``        HTTP 429 with ``Retry-After: <retry_after>`` (no header if ``retry_after=None``)
``bad_request``       HTTP 400, ``type="invalid_request_error"``
``unauthorized``      HTTP 401, as for a wrong API key
``slow``              sleep ``delay_s`` before responding (streaming with ``after_tokens=m``: after ``m``
                      token positions instead), then answer normally
``reset``             abort the TCP connection (RST) without any response
``disconnect``        close the connection (FIN) without any response
``truncate``          stream: stop after ``after_tokens`` positions (default: half) without finish chunk,
                      usage or ``[DONE]``, closing the connection; non-stream: send half of the body (with
                      the full Content-Length) and close
``malformed_json``    non-stream: HTTP 200 with an invalid JSON body; stream: one invalid ``data:`` event
                      inserted before token position ``after_tokens`` (default 0), the stream then goes on
``no_logprobs``       ``logprobs`` is null even when requested
``duplicate_chunks``  stream: every token chunk is sent twice, or only the chunk(s) of position
                      ``after_tokens`` if set (non-stream: no effect)
====================  ======================================================================================

Requests are also validated like the real API (400 for a bad body, missing ``messages``, ``n < 1``,
``top_logprobs`` without ``logprobs=true`` or above ``max_top_logprobs``); with ``api_key`` set, a missing
or wrong ``Authorization: Bearer`` gets 401 on ``/v1/*``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import hashlib
import inspect
import json
import math
import random
import re
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = [
    "DEFAULT_REPLY",
    "FAULT_KINDS",
    "TRANSIENT_FAULT_KINDS",
    "FakeOpenAIServer",
    "Fault",
    "RequestRecord",
    "Responder",
    "ScriptedReply",
    "count_prompt_tokens",
    "default_logprob",
    "echo_responder",
    "tokenize",
    "transient_fault_rates",
]

DEFAULT_REPLY = "The answer is 4."

FAULT_KINDS = frozenset(
    {
        "server_error",
        "rate_limit",
        "bad_request",
        "unauthorized",
        "slow",
        "reset",
        "disconnect",
        "truncate",
        "malformed_json",
        "no_logprobs",
        "duplicate_chunks",
    }
)

_TOKEN_RE = re.compile(r"\s*\w+|\s*[^\w\s]|\s+")
_WORD_RE = re.compile(r"\S+")
_LN2 = math.log(2.0)
_ALT_VOCAB = (
    " the", " a", " and", ",", ".", " of", " to", " is", " in", " that", " it", " 1", " 2", " 3", " 0",
    " x", "\n", " answer", " The", " so", " we", " not", " be", " 5", " 4", " =", " +", ":", " this", " 7",
)  # fmt: skip


@dataclass
class ScriptedReply:
    """One choice's scripted completion.

    ``tokens`` (optional) is an explicit tokenization of ``text`` (must join to it); ``logprobs`` and
    ``top_logprobs`` (optional) script the text tokens' logprobs and their alternatives (best first,
    without the sampled token); ``finish_reason`` overrides "stop" (max_tokens still wins with "length").
    """

    text: str = ""
    reasoning: str | None = None
    tokens: Sequence[str] | None = None
    logprobs: Sequence[float] | None = None
    top_logprobs: Sequence[Sequence[tuple[str, float]]] | None = None
    finish_reason: str | None = None


Reply = str | ScriptedReply
Responder = Callable[[dict[str, Any], int], Reply | Awaitable[Reply]]


@dataclass(frozen=True)
class Fault:
    """A fault to inject into one chat-completion request; see the module docstring for the kinds."""

    kind: str
    status: int | None = None
    message: str | None = None
    retry_after: float | None = 1.0
    delay_s: float = 1.0
    after_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}")


TRANSIENT_FAULT_KINDS = (
    "server_error", "rate_limit", "slow", "reset", "disconnect", "truncate", "malformed_json", "no_logprobs",
    "duplicate_chunks",
)  # fmt: skip
"""The faults a robust client must survive: everything but the client errors (bad_request, unauthorized)."""


def transient_fault_rates(
    total: float, *, delay_s: float = 1.0, retry_after: float | None = 1.0, kinds: Iterable[str] = TRANSIENT_FAULT_KINDS
) -> dict[Fault | str, float]:
    """``fault_rates`` giving each of ``kinds`` an equal share of ``total``; ``slow`` sleeps ``delay_s`` and
    ``rate_limit`` asks to wait ``retry_after`` seconds."""
    kinds = list(kinds)
    if not kinds or not 0 <= total <= 1:
        raise ValueError("need at least one kind and a total rate in [0, 1]")
    rates: dict[Fault | str, float] = {}
    for kind in kinds:
        fault = Fault(kind)
        if kind == "slow":
            fault = Fault(kind, delay_s=delay_s)
        elif kind == "rate_limit":
            fault = Fault(kind, retry_after=retry_after)
        rates[fault] = total / len(kinds)
    return rates


@dataclass
class RequestRecord:
    """What the server saw and did for one chat-completion request (a snapshot when read via ``srv``).

    ``headers`` has lower-case keys; ``status`` is None when no response was sent (reset/disconnect);
    ``error`` is the error message sent (injected fault, validation, or the responder's exception).
    """

    index: int
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: dict[str, Any] | None
    stream: bool = False
    fault: Fault | None = None
    status: int | None = None
    tokens_sent: int = 0
    completed: bool = False
    cancelled: bool = False
    error: str | None = None
    started_at: float = 0.0
    finished_at: float | None = None

    @property
    def in_flight(self) -> bool:
        return self.finished_at is None


# ----------------------------------------------------------------------------------------------------------
# Text helpers


def tokenize(text: str) -> list[str]:
    """Split text into fake tokens; ``"".join(tokenize(t)) == t``."""
    return _TOKEN_RE.findall(text)


def default_logprob(token: str, position: int) -> float:
    """Deterministic logprob in ``(-2, 0]`` for a token at a position (skewed towards confident)."""
    digest = hashlib.blake2b(f"{position}\x00{token}".encode(), digest_size=8).digest()
    u = int.from_bytes(digest, "big") / 2.0**64
    return round(-2.0 * u * u, 4) or 0.0


def count_prompt_tokens(messages: Iterable[Any]) -> int:
    """The fake prompt token count: whitespace-separated words in all message contents."""
    total = 0
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            total += len(_WORD_RE.findall(content))
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    total += len(_WORD_RE.findall(part["text"]))
    return total


def echo_responder(request: dict[str, Any], choice_index: int) -> str:
    """A responder that echoes the last user message: ``"You said: <text>"``."""
    for message in reversed(request.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return f"You said: {content}"
    return "You said nothing."


def _alternatives(
    token: str, logprob: float, position: int, count: int, exclude: Iterable[str] = ()
) -> list[tuple[str, float]]:
    """``count`` deterministic alternatives with logprobs strictly below ``logprob``, best first."""
    skip = {token, *exclude}
    if count <= 0:
        return []
    rest = max(1.0 - math.exp(logprob), 1e-9)
    base = min(math.log(rest), logprob)
    start = int.from_bytes(hashlib.blake2b(f"{position}\x01{token}".encode(), digest_size=4).digest(), "big")
    out: list[tuple[str, float]] = []
    for step in range(len(_ALT_VOCAB)):
        if len(out) == count:
            break
        cand = _ALT_VOCAB[(start + step) % len(_ALT_VOCAB)]
        if cand not in skip:
            out.append((cand, round(base - (len(out) + 1) * _LN2, 4)))
    k = 0
    while len(out) < count:  # only for count > len(_ALT_VOCAB)
        k += 1
        out.append((f"<alt{k}>", round(base - (len(out) + 1) * _LN2, 4)))
    return out


def _entry(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}


@dataclass
class _Tok:
    text: str
    logprob: float
    alts: list[tuple[str, float]] | None  # scripted alternatives, or None for the generated ones
    channel: str  # "content" or "reasoning"
    position: int = 0

    def logprob_entry(self, top_k: int) -> dict[str, Any]:
        entry = _entry(self.text, self.logprob)
        if top_k <= 0:
            entry["top_logprobs"] = []
            return entry
        if self.alts is not None:
            alts = self.alts[: top_k - 1]
            if len(alts) < top_k - 1:
                floor = min([self.logprob, *(lp for _, lp in alts)])
                taken = [t for t, _ in alts]
                extra = _alternatives(self.text, floor, self.position, top_k - 1 - len(alts), taken)
                alts = alts + extra
        else:
            alts = _alternatives(self.text, self.logprob, self.position, top_k - 1)
        entry["top_logprobs"] = [_entry(self.text, self.logprob)] + [_entry(t, lp) for t, lp in alts]
        return entry


@dataclass
class _Choice:
    index: int
    tokens: list[_Tok]
    finish_reason: str

    def text(self, channel: str) -> str:
        return "".join(t.text for t in self.tokens if t.channel == channel)


class _ClientError(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", code: Any = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code


# ----------------------------------------------------------------------------------------------------------
# Per-request state (lives on the server's event loop)


class _Ctx:
    def __init__(self, record: RequestRecord, receive: Any, send: Any, update: Callable[..., None]) -> None:
        self.record = record
        self.update = update  # update(**fields): thread-safe change of the record
        self.receive = receive
        self.send = send
        self.wake = asyncio.Event()
        self.done = False  # we are sending / have sent the last byte
        self.server_closed = False  # we closed the connection on purpose
        self.client_gone = False
        self.shutdown = False
        self.watcher: asyncio.Task[None] | None = None

    @property
    def stop(self) -> bool:
        return self.client_gone or self.shutdown

    def finish(self, **changes: Any) -> None:
        """Mark the record finished (before the last byte goes out, so clients never see a stale record)."""
        if self.record.finished_at is None:
            changes["finished_at"] = time.time()
        self.update(**changes)

    async def pause(self, seconds: float) -> bool:
        """Sleep, waking early if the client goes away or the server stops; True if we should go on."""
        if seconds > 0 and not self.stop:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.wake.wait(), seconds)
        return not self.stop

    def transport(self) -> asyncio.Transport | None:
        # uvicorn's receive is a bound method of its RequestResponseCycle, which holds the transport.
        cycle = getattr(self.receive, "__self__", None)
        return getattr(cycle, "transport", None)

    async def close_connection(self, reset: bool = False) -> None:
        """Close the connection on purpose (FIN, or RST if ``reset``); wait for uvicorn to notice."""
        self.server_closed = True
        self.finish()
        transport = self.transport()
        if transport is None:
            raise RuntimeError("cannot close the connection: not running under uvicorn")
        if reset:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:
            transport.close()
        if self.watcher is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self.watcher), 1.0)


# ----------------------------------------------------------------------------------------------------------
# The server


class FakeOpenAIServer:
    """A fake OpenAI-compatible server on a background thread; use as a context manager or start()/stop().

    Settings (``responder``, ``native_n``, ``reasoning``, ``token_delay_s``, ``api_key``, ...) are plain
    attributes that may be changed while the server runs; they are read at the start of each request.
    """

    def __init__(
        self,
        responder: Responder | Reply | Sequence[Reply] | None = None,
        *,
        model: str = "fake-model",
        native_n: bool = True,
        reasoning: Literal["field", "inline"] = "field",
        reasoning_key: str = "reasoning_content",
        token_delay_s: float = 0.0,
        api_key: str | None = None,
        faults: Iterable[Fault | str | None] = (),
        fault_rates: Mapping[Fault | str, float] | None = None,
        seed: int = 0,
        fault_key: Literal["arrival", "body"] = "arrival",
        max_top_logprobs: int = 20,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.responder: Responder | Reply | Sequence[Reply] | None = responder
        self.model = model
        self.native_n = native_n
        if reasoning not in ("field", "inline"):
            raise ValueError("reasoning must be 'field' or 'inline'")
        self.reasoning = reasoning
        self.reasoning_key = reasoning_key
        self.token_delay_s = token_delay_s
        self.api_key = api_key
        self.max_top_logprobs = max_top_logprobs
        self.host = host
        self._requested_port = port
        self.port: int | None = None

        self._lock = threading.Condition()
        self._records: list[RequestRecord] = []
        self._faults: deque[Fault | None] = deque()
        self._fault_rates: list[tuple[Fault, float]] = []
        self._rng = random.Random(seed)
        self._seed = seed
        if fault_key not in ("arrival", "body"):
            raise ValueError("fault_key must be 'arrival' or 'body'")
        self.fault_key = fault_key
        self._bodies_seen: dict[str, int] = {}
        self.push_faults(*faults)
        self.set_fault_rates(fault_rates or {}, seed=seed)

        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._active: set[_Ctx] = set()

    # -- lifecycle -----------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:PORT``."""
        if self.port is None:
            raise RuntimeError("server not started")
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI base URL, e.g. ``http://127.0.0.1:PORT/v1``."""
        return self.url + "/v1"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> FakeOpenAIServer:
        """Bind the port and start serving on a daemon thread; returns self."""
        if self._thread is not None:
            raise RuntimeError("server already started")
        # IPPROTO_TCP explicitly, or asyncio skips TCP_NODELAY on accepted sockets (40 ms delayed-ACK stalls).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self._requested_port))
        except BaseException:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self._ready.clear()
        self._startup_error = None
        self._thread = threading.Thread(
            target=self._thread_main, args=(sock,), name=f"fake-openai-{self.port}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(10.0) or self._startup_error is not None:
            self.stop()
            sock.close()
            raise RuntimeError("fake OpenAI server failed to start") from self._startup_error
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving: abort in-flight responses, close all connections and the port, join the thread."""
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and stop_event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(stop_event.set)
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError("fake OpenAI server thread did not stop")
        self._thread = None
        self._loop = None
        self._stop_event = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Start (if needed) and block until KeyboardInterrupt; for standalone use."""
        if self._thread is None:
            self.start()
        try:
            while self.running:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def _thread_main(self, sock: socket.socket) -> None:
        try:
            asyncio.run(self._serve(sock))
        except BaseException as exc:  # pragma: no cover - reported through start()
            self._startup_error = exc
            self._ready.set()
        finally:
            sock.close()

    async def _serve(self, sock: socket.socket) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        config = uvicorn.Config(
            self._app,
            http=H11Protocol,
            interface="asgi3",
            ws="none",
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            proxy_headers=False,
            server_header=False,
            timeout_keep_alive=30,
        )
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        try:
            await server.startup(sockets=[sock])
            await server.on_tick(0)  # default headers (date)
        except BaseException as exc:
            self._startup_error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stop_event.wait()

        # Fast shutdown: stop listening, wake in-flight handlers (they close their connections), close idle
        # keep-alive connections, then wait briefly for the handler tasks.
        for srv in server.servers:
            srv.close()
        for ctx in list(self._active):
            ctx.shutdown = True
            ctx.wake.set()
        for conn in list(server.server_state.connections):
            conn.shutdown()
        tasks = [t for t in server.server_state.tasks if not t.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)
        for conn in list(server.server_state.connections):
            transport = getattr(conn, "transport", None)
            if transport is not None:
                transport.abort()
        for srv in server.servers:
            await srv.wait_closed()

    # -- records (thread-safe) -----------------------------------------------------------------------------

    @property
    def records(self) -> list[RequestRecord]:
        """Snapshots of all chat-completion request records, in arrival order."""
        with self._lock:
            return [copy.copy(r) for r in self._records]

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The JSON bodies of all chat-completion requests (unparseable bodies are left out)."""
        with self._lock:
            return [r.json for r in self._records if r.json is not None]

    @property
    def last_record(self) -> RequestRecord:
        with self._lock:
            if not self._records:
                raise IndexError("no request recorded")
            return copy.copy(self._records[-1])

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._records)

    @property
    def cancelled_count(self) -> int:
        """How many requests the client abandoned before the whole response was sent."""
        with self._lock:
            return sum(1 for r in self._records if r.cancelled)

    @property
    def in_flight(self) -> int:
        with self._lock:
            return sum(1 for r in self._records if r.finished_at is None)

    def clear_records(self) -> None:
        with self._lock:
            self._records.clear()

    def wait_for(self, predicate: Callable[[FakeOpenAIServer], bool], timeout: float = 5.0) -> bool:
        """Wait until ``predicate(self)`` holds (re-checked whenever a request ends); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                if predicate(self):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(min(remaining, 0.05))

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no chat-completion request is in flight (e.g. the server noticed a client's
        disconnect); False on timeout."""
        return self.wait_for(lambda s: s.in_flight == 0, timeout)

    def _update(self, record: RequestRecord, **changes: Any) -> None:
        with self._lock:
            for key, value in changes.items():
                setattr(record, key, value)
            if "finished_at" in changes:
                self._lock.notify_all()

    # -- faults (thread-safe) ------------------------------------------------------------------------------

    def push_faults(self, *faults: Fault | str | None) -> None:
        """Queue faults for the next chat-completion requests, in order (None: no fault for that one)."""
        with self._lock:
            for f in faults:
                self._faults.append(Fault(f) if isinstance(f, str) else f)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> list[Fault | None]:
        with self._lock:
            return list(self._faults)

    def set_fault_rates(self, rates: Mapping[Fault | str, float], seed: int | None = None) -> None:
        """Random faults for requests when the queue is empty: ``{kind or Fault: probability}``."""
        parsed = [(Fault(k) if isinstance(k, str) else k, float(p)) for k, p in rates.items()]
        if sum(p for _, p in parsed) > 1.0 + 1e-9 or any(p < 0 for _, p in parsed):
            raise ValueError("fault rates must be >= 0 and sum to at most 1")
        with self._lock:
            self._fault_rates = parsed
            if seed is not None:
                self._rng = random.Random(seed)
                self._seed = seed
                self._bodies_seen.clear()

    @property
    def fault_counts(self) -> dict[str, int]:
        """How many requests got each kind of fault so far (from the queue or the rates)."""
        counts: dict[str, int] = {}
        with self._lock:
            for record in self._records:
                if record.fault is not None:
                    counts[record.fault.kind] = counts.get(record.fault.kind, 0) + 1
        return counts

    def _next_fault(self, body: bytes = b"") -> Fault | None:
        with self._lock:
            if self._faults:
                return self._faults.popleft()
            if self._fault_rates:
                if self.fault_key == "body":
                    digest = hashlib.blake2b(body, digest_size=16).hexdigest()
                    seen = self._bodies_seen[digest] = self._bodies_seen.get(digest, 0) + 1
                    draw = random.Random(f"{self._seed}/{digest}/{seen}").random()
                else:
                    draw = self._rng.random()
                acc = 0.0
                for fault, p in self._fault_rates:
                    acc += p
                    if draw < acc:
                        return fault
            return None

    # -- ASGI app -------------------------------------------------------------------------------------------

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        method: str = scope["method"]
        if path.startswith("/v1/"):
            path = path[3:]
        if path == "/health":
            await _send_json(send, 200, {"status": "ok"})
            return
        headers = _headers(scope)
        if path == "/models":
            if method != "GET":
                await _send_error(send, _ClientError(405, "Method not allowed"))
            elif not self._authorized(headers):
                await _send_error(send, _auth_error())
            else:
                model = {"id": self.model, "object": "model", "created": 0, "owned_by": "ponder-fake"}
                await _send_json(send, 200, {"object": "list", "data": [model]})
            return
        if path == "/chat/completions" and method == "POST":
            await self._chat(scope, headers, receive, send)
            return
        await _send_error(send, _ClientError(404, f"Unknown path {method} {scope['path']}", code="not_found"))

    def _authorized(self, headers: dict[str, str]) -> bool:
        return self.api_key is None or headers.get("authorization") == f"Bearer {self.api_key}"

    async def _chat(self, scope: dict[str, Any], headers: dict[str, str], receive: Any, send: Any) -> None:
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        request = parsed if isinstance(parsed, dict) else None
        with self._lock:
            record = RequestRecord(
                index=len(self._records),
                method=scope["method"],
                path=scope["path"],
                headers=headers,
                body=bytes(body),
                json=request,
                stream=bool(request and request.get("stream")),
                started_at=time.time(),
            )
            self._records.append(record)
        ctx = _Ctx(record, receive, send, lambda **changes: self._update(record, **changes))
        self._active.add(ctx)
        ctx.watcher = asyncio.ensure_future(self._watch_disconnect(ctx))
        try:
            await self._chat_inner(ctx, headers, request)
        except _ClientError as err:
            if not ctx.stop:
                ctx.done = True
                ctx.finish(status=err.status, error=err.message)
                await _send_error(send, err)
        finally:
            if ctx.shutdown and not ctx.done and not ctx.server_closed:
                await ctx.close_connection()
            self._active.discard(ctx)
            if ctx.watcher is not None and not ctx.watcher.done():
                ctx.watcher.cancel()
            ctx.finish()

    async def _watch_disconnect(self, ctx: _Ctx) -> None:
        message = await ctx.receive()
        if message["type"] == "http.disconnect" and not ctx.done and not ctx.server_closed:
            ctx.client_gone = True
            self._update(ctx.record, cancelled=True)
            ctx.wake.set()

    async def _chat_inner(self, ctx: _Ctx, headers: dict[str, str], request: dict[str, Any] | None) -> None:
        record = ctx.record
        if not self._authorized(headers):
            raise _auth_error()
        if request is None:
            raise _ClientError(400, "We could not parse the JSON body of your request.")
        fault = self._next_fault(record.body)
        self._update(record, fault=fault)
        kind = fault.kind if fault else None

        if fault is not None and kind in ("server_error", "rate_limit", "bad_request", "unauthorized"):
            await self._send_fault_error(ctx, fault)
            return
        if kind in ("reset", "disconnect"):
            await ctx.close_connection(reset=kind == "reset")
            return
        if (
            fault is not None
            and kind == "slow"
            and (fault.after_tokens is None or not record.stream)
            and not await ctx.pause(fault.delay_s)
        ):
            return

        params = _validate(request, self.max_top_logprobs)
        choices = await self._make_choices(request, params)
        if ctx.stop:
            return
        if params["stream"]:
            await self._stream(ctx, request, params, choices, fault)
        else:
            await self._respond(ctx, request, params, choices, fault)

    async def _send_fault_error(self, ctx: _Ctx, fault: Fault) -> None:
        kind = fault.kind
        extra: list[tuple[bytes, bytes]] = []
        if kind == "server_error":
            message = fault.message or "The server had an error processing your request (injected fault)."
            err = _ClientError(fault.status or 500, message, "server_error")
        elif kind == "rate_limit":
            err = _ClientError(
                fault.status or 429,
                fault.message or "Rate limit reached (injected fault).",
                "requests",
                "rate_limit_exceeded",
            )
            if fault.retry_after is not None:
                ra = fault.retry_after
                extra.append((b"retry-after", (str(int(ra)) if ra == int(ra) else repr(ra)).encode()))
        elif kind == "bad_request":
            err = _ClientError(fault.status or 400, fault.message or "Invalid request (injected fault).")
        else:
            err = _auth_error(fault.message)
            if fault.status:
                err.status = fault.status
        ctx.done = True
        ctx.finish(status=err.status, error=err.message)
        await _send_error(ctx.send, err, extra)

    async def _make_choices(self, request: dict[str, Any], params: dict[str, Any]) -> list[_Choice]:
        n = params["n"] if self.native_n else 1
        max_tokens: int | None = params["max_tokens"]
        stops: list[str] = params["stop"]
        choices = []
        for i in range(n):
            try:
                reply = self._respond_for(request, i)
                if inspect.isawaitable(reply):
                    reply = await reply
                choices.append(self._build_choice(i, reply, max_tokens, stops))
            except _ClientError:
                raise
            except Exception as exc:
                raise _ClientError(500, f"responder failed: {exc!r}", "server_error") from exc
        return choices

    def _respond_for(self, request: dict[str, Any], index: int) -> Reply | Awaitable[Reply]:
        responder = self.responder
        if responder is None:
            return DEFAULT_REPLY
        if isinstance(responder, (str, ScriptedReply)):
            return responder
        if callable(responder):
            return responder(request, index)
        seq = list(responder)
        return seq[index % len(seq)]

    def _build_choice(self, index: int, reply: Any, max_tokens: int | None, stops: list[str]) -> _Choice:
        if isinstance(reply, str):
            reply = ScriptedReply(reply)
        if not isinstance(reply, ScriptedReply):
            raise TypeError(f"responder returned {type(reply).__name__}, expected str or ScriptedReply")
        finish = reply.finish_reason or "stop"

        text_tokens = list(reply.tokens) if reply.tokens is not None else tokenize(reply.text)
        if "".join(text_tokens) != reply.text:
            raise ValueError("ScriptedReply.tokens do not join to ScriptedReply.text")
        scripted_lps = list(reply.logprobs) if reply.logprobs is not None else None
        scripted_tops = [list(t) for t in reply.top_logprobs] if reply.top_logprobs is not None else None
        if scripted_lps is not None and len(scripted_lps) != len(text_tokens):
            raise ValueError("ScriptedReply.logprobs must have one value per token")
        if scripted_tops is not None and len(scripted_tops) != len(text_tokens):
            raise ValueError("ScriptedReply.top_logprobs must have one list per token")
        if stops:
            cut = min((p for p in (reply.text.find(s) for s in stops if s) if p >= 0), default=-1)
            if cut >= 0:
                text_tokens = _cut_tokens(text_tokens, cut)
                finish = "stop"

        nan = float("nan")  # "use default_logprob", filled in once the position is known
        content = [
            _Tok(
                tok,
                nan if scripted_lps is None else float(scripted_lps[j]),
                None if scripted_tops is None else scripted_tops[j],
                "content",
            )
            for j, tok in enumerate(text_tokens)
        ]
        tokens: list[_Tok] = []
        if reply.reasoning:
            thought = tokenize(reply.reasoning)
            if self.reasoning == "inline":
                tokens = [_Tok(t, nan, None, "content") for t in ["<think>", *thought, "</think>"]]
            else:
                tokens = [_Tok(t, nan, None, "reasoning") for t in thought]
        tokens.extend(content)
        for pos, tok in enumerate(tokens):
            tok.position = pos
            if math.isnan(tok.logprob):
                tok.logprob = default_logprob(tok.text, pos)
        if max_tokens is not None and len(tokens) > max_tokens:
            tokens = tokens[:max_tokens]
            finish = "length"
        return _Choice(index, tokens, finish)

    # -- responses -----------------------------------------------------------------------------------------

    def _usage(self, request: dict[str, Any], choices: list[_Choice]) -> dict[str, Any]:
        prompt = count_prompt_tokens(request.get("messages") or [])
        completion = sum(len(c.tokens) for c in choices)
        usage: dict[str, Any] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        reasoning = sum(1 for c in choices for t in c.tokens if t.channel == "reasoning")
        if reasoning:
            usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
        return usage

    async def _respond(
        self,
        ctx: _Ctx,
        request: dict[str, Any],
        params: dict[str, Any],
        choices: list[_Choice],
        fault: Fault | None,
    ) -> None:
        kind = fault.kind if fault else None
        want_lp = params["logprobs"] and kind != "no_logprobs"
        out_choices = []
        for c in choices:
            message: dict[str, Any] = {"role": "assistant", "content": c.text("content"), "refusal": None}
            reasoning = c.text("reasoning")
            if reasoning:
                message[self.reasoning_key] = reasoning
            logprobs = (
                {"content": [t.logprob_entry(params["top_logprobs"]) for t in c.tokens], "refusal": None}
                if want_lp
                else None
            )
            out_choices.append(
                {"index": c.index, "message": message, "logprobs": logprobs, "finish_reason": c.finish_reason}
            )
        payload = {
            "id": f"chatcmpl-fake-{ctx.record.index}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model") or self.model,
            "system_fingerprint": "fp_fake",
            "choices": out_choices,
            "usage": self._usage(request, choices),
        }
        data = _dumps(payload)
        tokens = sum(len(c.tokens) for c in choices)
        if kind == "malformed_json":
            data = data[: max(1, len(data) // 2)] + b"<<not json"
        if kind == "truncate":
            self._update(ctx.record, status=200)
            await ctx.send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", b"%d" % len(data)),
                    ],
                }
            )
            await ctx.send({"type": "http.response.body", "body": data[: len(data) // 2], "more_body": True})
            await ctx.close_connection()
            return
        ctx.done = True
        ctx.finish(status=200, tokens_sent=tokens, completed=True)
        await _send_bytes(ctx.send, 200, data, b"application/json")

    async def _stream(
        self,
        ctx: _Ctx,
        request: dict[str, Any],
        params: dict[str, Any],
        choices: list[_Choice],
        fault: Fault | None,
    ) -> None:
        kind = fault.kind if fault else None
        want_lp = params["logprobs"] and kind != "no_logprobs"
        top_k = params["top_logprobs"]
        include_usage = params["include_usage"]
        reasoning_key = self.reasoning_key
        chunk_id = f"chatcmpl-fake-{ctx.record.index}"
        base: dict[str, Any] = {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": request.get("model") or self.model,
            "system_fingerprint": "fp_fake",
        }

        def chunk(index: int, delta: dict[str, Any], logprobs: Any = None, finish: Any = None) -> bytes:
            obj = dict(base)
            obj["choices"] = [{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}]
            if include_usage:
                obj["usage"] = None
            return b"data: " + _dumps(obj) + b"\n\n"

        length = max((len(c.tokens) for c in choices), default=0)
        after = fault.after_tokens if fault is not None else None
        cut_at = (length // 2 if after is None else after) if kind == "truncate" else None
        bad_at = (after or 0) if kind == "malformed_json" else None
        slow_at = after if kind == "slow" else None
        dup_at = after if kind == "duplicate_chunks" else None

        self._update(ctx.record, status=200)
        await ctx.send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
        first = bytearray()
        for c in choices:
            first += chunk(c.index, {"role": "assistant", "content": ""})
            if not c.tokens:
                first += chunk(c.index, {}, None, c.finish_reason)
        await ctx.send({"type": "http.response.body", "body": bytes(first), "more_body": True})

        sent = 0
        for pos in range(length):
            if not await ctx.pause(self.token_delay_s):
                return
            if pos == slow_at and fault is not None and not await ctx.pause(fault.delay_s):
                return
            if pos == cut_at:
                await ctx.close_connection()
                return
            out = bytearray()
            if pos == bad_at:
                out += b'data: {"id": "' + chunk_id.encode() + b'", "choices": [{"index": 0, "delta": {\n\n'
            for c in choices:
                if pos >= len(c.tokens):
                    continue
                tok = c.tokens[pos]
                delta = {reasoning_key if tok.channel == "reasoning" else "content": tok.text}
                lp = {"content": [tok.logprob_entry(top_k)], "refusal": None} if want_lp else None
                data = chunk(c.index, delta, lp)
                out += data + data if pos == dup_at or (kind == "duplicate_chunks" and after is None) else data
                sent += 1
                if pos == len(c.tokens) - 1:
                    out += chunk(c.index, {}, None, c.finish_reason)
            await ctx.send({"type": "http.response.body", "body": bytes(out), "more_body": True})
            self._update(ctx.record, tokens_sent=sent)
        if cut_at is not None and cut_at >= length:
            await ctx.close_connection()
            return
        if ctx.stop:
            return
        tail = bytearray()
        if include_usage:
            obj = dict(base)
            obj["choices"] = []
            obj["usage"] = self._usage(request, choices)
            tail += b"data: " + _dumps(obj) + b"\n\n"
        tail += b"data: [DONE]\n\n"
        ctx.done = True
        ctx.finish(completed=True)
        await ctx.send({"type": "http.response.body", "body": bytes(tail), "more_body": False})


# ----------------------------------------------------------------------------------------------------------
# Small ASGI helpers


def _headers(scope: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw_key, raw_value in scope.get("headers", []):
        key, value = raw_key.decode("latin1").lower(), raw_value.decode("latin1")
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


async def _send_bytes(
    send: Any, status: int, data: bytes, content_type: bytes, extra: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(data)), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data, "more_body": False})


async def _send_json(send: Any, status: int, obj: Any) -> None:
    await _send_bytes(send, status, _dumps(obj), b"application/json")


async def _send_error(send: Any, err: _ClientError, extra: Sequence[tuple[bytes, bytes]] = ()) -> None:
    payload = {"error": {"message": err.message, "type": err.type, "param": None, "code": err.code}}
    await _send_bytes(send, err.status, _dumps(payload), b"application/json", extra)


def _auth_error(message: str | None = None) -> _ClientError:
    return _ClientError(
        401, message or "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
    )


def _cut_tokens(tokens: list[str], chars: int) -> list[str]:
    """Keep the first ``chars`` characters of the joined tokens, splitting the last token if needed."""
    out: list[str] = []
    used = 0
    for tok in tokens:
        if used + len(tok) <= chars:
            out.append(tok)
            used += len(tok)
        else:
            if chars > used:
                out.append(tok[: chars - used])
            break
    return out


def _int_param(request: dict[str, Any], name: str, minimum: int, maximum: int | None = None) -> int | None:
    value = request.get(name)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        bound = f" and {maximum}" if maximum is not None else ""
        raise _ClientError(400, f"Invalid value for '{name}': expected an integer >= {minimum}{bound}.")
    return value


def _validate(request: dict[str, Any], max_top_logprobs: int) -> dict[str, Any]:
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _ClientError(400, "'messages' must be a non-empty array.")
    n = _int_param(request, "n", 1, 128) or 1
    max_tokens = _int_param(request, "max_completion_tokens", 1)
    if max_tokens is None:
        max_tokens = _int_param(request, "max_tokens", 1)
    logprobs = bool(request.get("logprobs"))
    top = _int_param(request, "top_logprobs", 0, max_top_logprobs)
    if top is not None and not logprobs:
        raise _ClientError(400, "'top_logprobs' requires 'logprobs' to be true.")
    stop = request.get("stop")
    stops = [stop] if isinstance(stop, str) else [s for s in (stop or []) if isinstance(s, str)]
    stream_options = request.get("stream_options") or {}
    return {
        "n": n,
        "max_tokens": max_tokens,
        "logprobs": logprobs,
        "top_logprobs": top or 0,
        "stop": stops,
        "stream": bool(request.get("stream")),
        "include_usage": bool(isinstance(stream_options, dict) and stream_options.get("include_usage")),
    }


# ----------------------------------------------------------------------------------------------------------
# Standalone entry point


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m tests.fakes.openai_server --port 8099``: serve until Ctrl+C."""
    parser = argparse.ArgumentParser(description="Fake OpenAI-compatible server (for tests and benchmarks).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--model", default="fake-model")
    parser.add_argument("--reply", default=DEFAULT_REPLY, help="constant completion text")
    parser.add_argument("--echo", action="store_true", help="echo the last user message instead of --reply")
    parser.add_argument("--reasoning-text", default=None, help="reasoning attached to every reply")
    parser.add_argument("--reasoning", choices=["field", "inline"], default="field")
    parser.add_argument("--token-delay", type=float, default=0.0, help="seconds slept before each token")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--no-native-n", action="store_true", help="always return a single choice")
    parser.add_argument(
        "--fault-rate", action="append", default=[], metavar="KIND=P", help="random fault rate (repeatable)"
    )
    parser.add_argument(
        "--transient-faults", type=float, default=0.0, metavar="P",
        help="total rate of transient faults, spread evenly over " + ", ".join(TRANSIENT_FAULT_KINDS),
    )
    parser.add_argument("--fault-delay", type=float, default=1.0, help="seconds a 'slow' fault sleeps")
    parser.add_argument("--retry-after", type=float, default=1.0, help="Retry-After of a 'rate_limit' fault")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rates: dict[Fault | str, float] = {}
    if args.transient_faults:
        rates.update(transient_fault_rates(args.transient_faults, delay_s=args.fault_delay,
                                           retry_after=args.retry_after))
    for spec in args.fault_rate:
        kind, _, p = spec.partition("=")
        fault = Fault(kind, delay_s=args.fault_delay, retry_after=args.retry_after)
        rates[fault] = rates.get(fault, 0.0) + float(p)
    responder: Responder | Reply
    if args.echo:
        reasoning_text = args.reasoning_text

        def responder(request: dict[str, Any], index: int) -> Reply:
            return ScriptedReply(echo_responder(request, index), reasoning=reasoning_text)

    else:
        responder = ScriptedReply(args.reply, reasoning=args.reasoning_text)
    srv = FakeOpenAIServer(
        responder,
        model=args.model,
        native_n=not args.no_native_n,
        reasoning=args.reasoning,
        token_delay_s=args.token_delay,
        api_key=args.api_key,
        fault_rates=rates,
        seed=args.seed,
        host=args.host,
        port=args.port,
    )
    srv.start()
    print(f"fake OpenAI server listening on {srv.base_url} (Ctrl+C to stop)", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
