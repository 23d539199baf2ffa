"""Any OpenAI-compatible chat-completions server (vLLM, SGLang, llama-server, Ollama, hosted APIs)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import httpx

from ponder.backends.base import Capabilities, StreamEnd, StreamEvent
from ponder.backends.http import fast_transport
from ponder.backends.openai_format import build_payload, parse_completion, parse_logprobs, reasoning_field
from ponder.backends.retry import RetryPolicy, error_from_exception, error_from_response, with_retries
from ponder.backends.stream_chunks import ChunkFilter, check_count
from ponder.backends.thinking import ThinkSplitter
from ponder.errors import BackendError, BackendUnavailable
from ponder.types import Delta, GenerationRequest, Trace

CONNECTIONS_PER_CLIENT = 8
DEFAULT_TIMEOUT_S = 600.0  # per response; long, since one reasoning sample can run for minutes


class OpenAIBackend:
    """Async client for ``/v1/chat/completions`` with SSE streaming, logprobs, retries and ``n`` emulation."""

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        connect_timeout_s: float = 10.0,
        max_connections: int = 256,
        retry: RetryPolicy | None = None,
        native_n: bool | None = None,
        capabilities: Capabilities | None = None,
        name: str | None = None,
        count_tokens_by_logprobs: bool = False,
        max_n: int | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout_s = timeout_s  # per response: a non-streamed request answers when its longest sample ends
        self.retry = retry or RetryPolicy()
        # None: try n natively and fall back to concurrent requests if the server returns fewer choices.
        self._native_n = native_n
        self.capabilities = capabilities or Capabilities(native_n=native_n is not False)
        self.name = name or f"openai:{self.base_url}"
        # Some servers (llama-server) report usage for one choice only when n > 1; per-choice logprobs
        # then give the exact count, so ask for them and drop them if the caller did not.
        self.count_tokens_by_logprobs = count_tokens_by_logprobs
        # The most choices one request may ask for (llama-server: 16); larger n is split into chunks.
        self.max_n = max_n
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # httpx's connection pool slows down as it grows (each request scans it), so many concurrent requests
        # are spread over several small clients instead of one large one.
        shards = max(1, math.ceil(max_connections / CONNECTIONS_PER_CLIENT))
        per_client = math.ceil(max_connections / shards)
        self._clients = [
            httpx.AsyncClient(
                base_url=self.base_url,
                headers=headers,
                timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
                limits=httpx.Limits(max_connections=per_client, max_keepalive_connections=per_client),
                transport=fast_transport(per_client),
            )
            for _ in range(shards)
        ]
        self._load = [0] * shards  # requests in flight per client

    async def list_models(self) -> list[str]:
        async def call() -> list[str]:
            body = await self._request("GET", "/models")
            data = body.get("data") if isinstance(body, dict) else None
            return [str(m.get("id")) for m in data or [] if isinstance(m, dict)]

        return await with_retries(call, replace(self.retry, attempts=min(self.retry.attempts, 2)))

    async def resolve_model(self) -> str:
        """The model name to send: the one given, else the server's first (single-model servers)."""
        if self.model is None:
            models = await self.list_models()
            if not models:
                raise BackendError(f"{self.base_url}/models lists no model; pass --model-name")
            self.model = models[0]
        return self.model

    async def complete(self, request: GenerationRequest) -> list[Trace]:
        if request.n <= 1 or self._native_n is False:
            traces = await self._complete_each(request)
        else:
            traces = await self._complete_native(request)
        for index, trace in enumerate(traces):
            trace.index = index
        return traces

    async def _complete_native(self, request: GenerationRequest) -> list[Trace]:
        if self.max_n is not None and request.n > self.max_n:
            return await self._complete_chunked(request, self.max_n)
        try:
            traces = await self._complete_once(request, n=request.n)
        except BackendError as exc:
            limit = _n_limit(exc)
            if limit is None or limit >= request.n:
                raise
            self.max_n = limit  # learnt from the server's own message; remembered for later calls
            return await self._complete_chunked(request, limit)
        if len(traces) < request.n:
            # The server ignored n (Ollama, some proxies): emulate it from now on.
            self._native_n = False
            missing = replace(request, n=request.n - len(traces))
            if request.seed is not None:
                missing.seed = request.seed + len(traces)
            traces += await self._complete_each(missing)
        elif self._native_n is None:
            self._native_n = True
        return traces[: request.n]

    async def _complete_chunked(self, request: GenerationRequest, size: int) -> list[Trace]:
        """Requests of at most ``size`` choices each, sent concurrently; seeds offset per chunk."""
        chunks = []
        for start in range(0, request.n, size):
            seed = None if request.seed is None else request.seed + start
            chunks.append(replace(request, n=min(size, request.n - start), seed=seed))
        results = await asyncio.gather(*(self._complete_native(chunk) for chunk in chunks))
        return [trace for traces in results for trace in traces]

    async def _complete_each(self, request: GenerationRequest) -> list[Trace]:
        """n concurrent single-sample requests; seeds are offset so the samples differ."""
        single = [replace(request, n=1, seed=None if request.seed is None else request.seed + i)
                  for i in range(request.n)]
        results = await asyncio.gather(*(self._complete_once(r, n=1) for r in single))
        return [trace for traces in results for trace in traces[:1]]

    async def _complete_once(self, request: GenerationRequest, *, n: int) -> list[Trace]:
        model = await self.resolve_model()
        drop_logprobs = n > 1 and self.count_tokens_by_logprobs and not request.logprobs
        payload = build_payload(replace(request, logprobs=True) if drop_logprobs else request, model, n=n,
                                stream=False)

        async def call() -> list[Trace]:
            start = time.perf_counter()
            body = await self._request("POST", "/chat/completions", json=payload)
            return parse_completion(body, latency_s=time.perf_counter() - start, prefill=_prefill(request))

        traces = await with_retries(call, self.retry)
        if drop_logprobs:
            for trace in traces:
                trace.tokens, trace.logprobs, trace.top_logprobs = [], [], []
        return traces

    async def _request(self, method: str, path: str, json: Any = None) -> Any:
        try:
            with self._lease() as client:
                response = await client.request(method, path, json=json)
        except httpx.HTTPError as exc:
            raise error_from_exception(exc, self.base_url) from exc
        if response.status_code >= 400:
            raise error_from_response(response, response.content)
        try:
            return response.json()
        except ValueError as exc:
            raise BackendError(
                f"server sent malformed JSON: {response.text[:200]!r}", retryable=True
            ) from exc

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamEvent]:
        model = await self.resolve_model()
        payload = build_payload(request, model, n=1, stream=True)
        attempt = 1
        while True:
            started = False
            try:
                # aclosing: closing this generator must close the HTTP stream at once, so the server stops.
                async with contextlib.aclosing(self._stream_once(payload)) as events:
                    async for event in events:
                        started = True
                        yield event
                return
            except BackendError as exc:
                # Once tokens have been handed out the trace cannot be restarted transparently.
                if started or not exc.retryable or attempt >= self.retry.attempts:
                    raise
                await asyncio.sleep(self.retry.delay(attempt, exc.retry_after))
                attempt += 1

    async def _stream_once(self, payload: dict[str, Any]) -> AsyncGenerator[StreamEvent, None]:
        splitter = ThinkSplitter()
        chunks = ChunkFilter()  # drops chunks the server sent twice (see stream_chunks)
        finish_reason: str | None = None
        usage: dict[str, Any] = {}
        counted = 0  # tokens with logprobs
        pieces = 0  # chunks that carried text: each holds at least one new token
        done = False

        def take(choice: dict[str, Any]) -> Delta:
            nonlocal counted, pieces, finish_reason
            delta = _delta_from_choice(choice, splitter)
            counted += len(delta.tokens)
            pieces += bool(delta.text or delta.reasoning)
            if choice.get("finish_reason"):
                finish_reason = choice["finish_reason"]
            return delta

        try:
            with self._lease() as client:
                async with client.stream("POST", "/chat/completions", json=payload) as response:
                    if response.status_code >= 400:
                        raise error_from_response(response, await response.aread())
                    async for line in response.aiter_lines():
                        if not line.startswith("data:"):
                            continue
                        data = line[5:].strip()
                        if data == "[DONE]":
                            done = True
                            break
                        try:
                            chunk = json.loads(data)
                        except ValueError as exc:
                            raise BackendError(f"server sent a malformed stream chunk: {data[:200]!r}",
                                               retryable=True) from exc
                        if chunk.get("usage"):
                            usage = chunk["usage"]
                        for choice in chunks.feed(data, chunk):
                            delta = take(choice)
                            if delta.text or delta.reasoning or delta.tokens:
                                yield delta
        except httpx.HTTPError as exc:
            raise error_from_exception(exc, self.base_url) from exc
        reported = int(usage.get("completion_tokens") or 0)
        held = [take(choice) for choice in chunks.settle(counted, reported)] if chunks.holding else []
        if not done and finish_reason is None:
            raise BackendError("the server closed the stream before it finished", retryable=True)
        check_count(counted, pieces, reported)
        for delta in held:
            if delta.text or delta.reasoning or delta.tokens:
                yield delta
        text, reasoning = splitter.flush()
        if text or reasoning:
            yield Delta(text=text, reasoning=reasoning)
        yield StreamEnd(
            finish_reason=finish_reason,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=reported or counted,
        )

    async def start(self) -> None:
        """Fail fast with one clear line when the server is down."""
        try:
            models = await self.list_models()
        except BackendUnavailable:
            raise
        except BackendError as exc:
            if exc.status in (404, 405):  # some servers have no /models; the first real call will tell
                return
            raise
        if self.model is None and models:
            self.model = models[0]

    @contextlib.contextmanager
    def _lease(self) -> Iterator[httpx.AsyncClient]:
        """The least busy client; an idle backend keeps reusing the first one's warm connections."""
        shard = min(range(len(self._clients)), key=self._load.__getitem__)
        self._load[shard] += 1
        try:
            yield self._clients[shard]
        finally:
            self._load[shard] -= 1

    def set_base_url(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        for client in self._clients:
            client.base_url = httpx.URL(self.base_url)

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()


def _prefill(request: GenerationRequest) -> str:
    """The assistant message a request asks the model to continue, if it ends with one."""
    last = request.messages[-1] if request.messages else {}
    return str(last.get("content") or "") if last.get("role") == "assistant" else ""


_N_LIMIT = re.compile(r"'n'.*?<=\s*value\s*<=\s*(\d+)|\bn\b.*?(?:at most|less than or equal to|<=)\s*(\d+)",
                      re.IGNORECASE)


def _n_limit(exc: BackendError) -> int | None:
    """The largest n a server accepts, when its 400 error says so (e.g. llama-server's '1 <= value <= 16')."""
    if exc.status != 400:
        return None
    match = _N_LIMIT.search(str(exc))
    if not match:
        return None
    limit = int(match.group(1) or match.group(2))
    return limit if limit >= 1 else None


def _delta_from_choice(choice: dict[str, Any], splitter: ThinkSplitter) -> Delta:
    delta = choice.get("delta") or {}
    text, reasoning = splitter.feed(delta.get("content") or "")
    return Delta(
        text=text,
        reasoning=reasoning_field(delta) + reasoning,
        tokens=parse_logprobs(choice.get("logprobs")),
    )
