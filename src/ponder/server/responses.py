"""The wire side: chat.completion and chat.completion.chunk JSON, SSE encoding, OpenAI-shaped errors.

Errors map as follows (body ``{"error": {"message", "type", "param", "code"}}``):

* a bad request (RequestError, ConfigError, CapabilityError): 400 naming the field where one is to blame;
* the upstream failed (BackendError): its message is passed on; upstream 400/404/413/422 (the request itself
  was refused, e.g. a context too long) keep their status, 429 stays 429, everything else (5xx, connection
  failures, timeouts, and 401/403: the proxy's own upstream credentials) becomes 502;
* a strategy ran out of budget or any other PonderError: 500.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

from starlette.responses import Response

from ponder.errors import BackendError, CapabilityError, ConfigError, PonderError
from ponder.server.requests import RequestError
from ponder.types import Delta, TokenLogprob, Trace, Usage

PASSED_UPSTREAM_STATUS = frozenset({400, 404, 413, 422, 429})
DONE = b"data: [DONE]\n\n"


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(dumps(obj), status_code=status, media_type="application/json")


def new_id() -> str:
    return f"chatcmpl-ponder-{uuid.uuid4().hex[:24]}"


# ---- errors -------------------------------------------------------------------------------------------


def error_body(message: str, type_: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_of(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The HTTP status and OpenAI error body for an exception."""
    if isinstance(exc, RequestError):
        return exc.status, error_body(str(exc), exc.type, exc.param, exc.code)
    if isinstance(exc, ConfigError | CapabilityError):
        return 400, error_body(str(exc), "invalid_request_error", None, type(exc).__name__)
    if isinstance(exc, BackendError):
        status = exc.status if exc.status in PASSED_UPSTREAM_STATUS else 502
        kind = "invalid_request_error" if status < 500 else "upstream_error"
        return status, error_body(f"upstream: {exc}", kind, None, f"upstream_{exc.status or 'unreachable'}")
    if isinstance(exc, PonderError):
        return 500, error_body(str(exc), "server_error", None, type(exc).__name__)
    return 500, error_body(f"internal error: {type(exc).__name__}: {exc}", "server_error")


def error_response(exc: BaseException) -> Response:
    status, body = error_of(exc)
    return json_response(body, status)


def sse_error(exc: BaseException) -> bytes:
    """An error after a stream started (status already sent): the openai client raises on it."""
    return sse(error_of(exc)[1])


# ---- completions ---------------------------------------------------------------------------------------


def usage_json(usage: Usage) -> dict[str, int]:
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens}


def logprobs_json(tokens: list[str], logprobs: list[float],
                  top: Sequence[Sequence[tuple[str, float]]]) -> dict[str, Any]:
    content = []
    for i, (token, logprob) in enumerate(zip(tokens, logprobs, strict=False)):
        alts = top[i] if i < len(top) else []
        content.append({"token": token, "logprob": logprob, "bytes": list(token.encode()),
                        "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in alts]})
    return {"content": content, "refusal": None}


def message_json(text: str, reasoning: str = "") -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if reasoning:
        message["reasoning_content"] = reasoning
    return message


def completion(cid: str, model: str, choices: list[dict[str, Any]], usage: Usage,
               ponder: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"id": cid, "object": "chat.completion", "created": int(time.time()), "model": model,
                            "choices": choices, "usage": usage_json(usage)}
    if ponder is not None:
        body["ponder"] = ponder
    return body


def trace_choice(trace: Trace, index: int, logprobs: bool) -> dict[str, Any]:
    return {
        "index": index,
        "message": message_json(trace.text, trace.reasoning),
        "logprobs": logprobs_json(trace.tokens, trace.logprobs, trace.top_logprobs) if logprobs else None,
        "finish_reason": trace.finish_reason or "stop",
    }


# ---- streaming ----------------------------------------------------------------------------------------


def sse(obj: Any) -> bytes:
    return b"data: " + dumps(obj) + b"\n\n"


def comment(text: str) -> bytes:
    """An SSE comment: standard clients skip it."""
    return b": " + text.replace("\n", " ").encode() + b"\n\n"


class Chunks:
    """Builds the ``chat.completion.chunk`` events of one streamed response."""

    def __init__(self, cid: str, model: str) -> None:
        self.base = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model}

    def choice(self, index: int, delta: dict[str, Any], logprobs: Any = None, finish: str | None = None) -> bytes:
        return sse({**self.base, "choices": [{"index": index, "delta": delta, "logprobs": logprobs,
                                              "finish_reason": finish}]})

    def role(self, index: int = 0) -> bytes:
        return self.choice(index, {"role": "assistant", "content": ""})

    def delta(self, index: int, delta: Delta, logprobs: bool) -> bytes:
        body: dict[str, Any] = {}
        if delta.text:
            body["content"] = delta.text
        if delta.reasoning:
            body["reasoning_content"] = delta.reasoning
        return self.choice(index, body, _token_logprobs(delta.tokens) if logprobs and delta.tokens else None)

    def finish(self, index: int, reason: str | None) -> bytes:
        return self.choice(index, {}, None, reason or "stop")

    def usage(self, usage: Usage, ponder: dict[str, Any] | None = None) -> bytes:
        body: dict[str, Any] = {**self.base, "choices": [], "usage": usage_json(usage)}
        if ponder is not None:
            body["ponder"] = ponder
        return sse(body)


def _token_logprobs(tokens: list[TokenLogprob]) -> dict[str, Any]:
    return logprobs_json([t.token for t in tokens], [t.logprob for t in tokens], [t.top for t in tokens])
