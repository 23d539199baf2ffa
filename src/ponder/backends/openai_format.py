"""Translate between ponder's requests/traces and the OpenAI chat-completions wire format."""

from __future__ import annotations

from typing import Any

from ponder.backends.thinking import split_reasoning
from ponder.errors import BackendError
from ponder.types import GenerationRequest, TokenLogprob, Trace


def build_payload(request: GenerationRequest, model: str, *, n: int, stream: bool) -> dict[str, Any]:
    payload: dict[str, Any] = {"model": model, "messages": request.messages}
    if n != 1:
        payload["n"] = n
    for key in ("temperature", "top_p", "max_tokens", "seed", "stop"):
        value = getattr(request, key)
        if value is not None:
            payload[key] = value
    if request.logprobs:
        payload["logprobs"] = True
        if request.top_logprobs:
            payload["top_logprobs"] = request.top_logprobs
    if stream:
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
    # Pass-through parameters win: a user who sets them knows their server.
    payload.update(request.extra)
    return payload


def parse_logprobs(logprobs: Any) -> list[TokenLogprob]:
    """Tokens of a choice's ``logprobs.content`` list; empty when the server sent none."""
    if not isinstance(logprobs, dict):
        return []
    content = logprobs.get("content")
    if not isinstance(content, list):
        return []
    tokens: list[TokenLogprob] = []
    for item in content:
        if not isinstance(item, dict) or "logprob" not in item:
            continue
        top = [
            (str(alt.get("token", "")), float(alt["logprob"]))
            for alt in item.get("top_logprobs") or []
            if isinstance(alt, dict) and alt.get("logprob") is not None
        ]
        tokens.append(TokenLogprob(str(item.get("token", "")), float(item["logprob"]), top))
    return tokens


def reasoning_field(obj: dict[str, Any]) -> str:
    """Servers disagree on the name: DeepSeek/llama.cpp/SGLang use reasoning_content, newer vLLM reasoning."""
    value = obj.get("reasoning_content") or obj.get("reasoning") or ""
    return value if isinstance(value, str) else ""


def parse_completion(body: Any, *, latency_s: float, prefill: str = "") -> list[Trace]:
    """Traces of a non-streamed chat completion, one per choice, ordered by index.

    ``prefill`` is a final assistant message the model continued; servers that echo it at the start of the
    content (llama-server) have it cut off, so a trace's text is what the model wrote.
    """
    if not isinstance(body, dict) or not isinstance(body.get("choices"), list):
        raise BackendError(f"server sent a response without 'choices': {str(body)[:200]}")
    usage = body.get("usage") or {}
    prompt_tokens = int(usage.get("prompt_tokens") or 0)
    total_completion = int(usage.get("completion_tokens") or 0)
    traces: list[Trace] = []
    for position, choice in enumerate(body["choices"]):
        message = choice.get("message") or {}
        content = message.get("content") or ""
        if prefill and content.startswith(prefill):
            content = content[len(prefill) :]
        reasoning = reasoning_field(message)
        if not reasoning:
            content, reasoning = split_reasoning(content)
        tokens = parse_logprobs(choice.get("logprobs"))
        trace = Trace(
            text=content,
            reasoning=reasoning,
            tokens=[t.token for t in tokens],
            logprobs=[t.logprob for t in tokens],
            top_logprobs=[t.top for t in tokens],
            finish_reason=choice.get("finish_reason"),
            prompt_tokens=prompt_tokens,
            completion_tokens=len(tokens),
            latency_s=latency_s,
            index=int(choice.get("index", position)),
        )
        traces.append(trace)
    traces.sort(key=lambda t: t.index)
    _share_completion_tokens(traces, total_completion)
    return traces


def _share_completion_tokens(traces: list[Trace], total: int) -> None:
    """Without logprobs the server only gives a total: share it by text length, keeping the sum exact."""
    if not traces or any(t.completion_tokens for t in traces) or total <= 0:
        return
    lengths = [len(t.text) + len(t.reasoning) + 1 for t in traces]
    scale = total / sum(lengths)
    shares = [int(length * scale) for length in lengths]
    shares[-1] += total - sum(shares)
    for trace, share in zip(traces, shares, strict=True):
        trace.completion_tokens = share
