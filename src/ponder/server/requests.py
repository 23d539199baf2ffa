"""Parse and check a ``/v1/chat/completions`` body: sampling fields, limits, and the strategy to run.

A request picks a strategy in one of two ways (none: plain pass-through to the upstream):

* a ``ponder`` object in the body: ``{"ponder": {"strategy": "deepconf", "n": 32, "mode": "online"}}``. Every
  key but ``strategy`` and ``progress`` (stream ``: ponder progress`` SSE comments, default true) is a
  strategy parameter. Without ``strategy`` the keys are parameters of the model-prefix or default strategy;
  ``"strategy": "none"`` forces pass-through.
* a model-name prefix, for clients that cannot send extra fields::

      ponder:STRATEGY[:KEY=VALUE]...[/MODEL]

  e.g. ``ponder:self-consistency:n=8``, ``ponder:deepconf:mode=online:n=32/Qwen/Qwen2.5-1.5B-Instruct``,
  ``ponder:none/llama3``. The prefix ends at the first ``/``; what follows is the upstream model name (it may
  itself contain ``/`` and ``:``). Only letters, digits and ``-_.:=/`` are used, so the name survives clients
  that pass model names through unchanged (LiteLLM's ``openai/…`` included); clients that only accept names
  from ``/v1/models`` find ``ponder:STRATEGY/MODEL`` listed there for every strategy (default parameters).

Sampling fields (``temperature``, ``top_p``, ``max_tokens``/``max_completion_tokens``, ``seed``, ``stop``, ``n``,
``logprobs``, ``top_logprobs``) are checked; every other field (``top_k``, ``min_p``, ``chat_template_kwargs``, …)
goes to the upstream unchanged. The upstream model is the one ``ponder serve`` was started with, unless the
request names another model the upstream lists.

On a strategy request ``n`` asks for ``n`` independent runs of the strategy (one choice each; their samples count
together against ``--max-n``), and ``stop`` applies to every sample a strategy draws without a stop of its own.

Refused, with a 400 naming the field, because the answer would silently be wrong otherwise:

* ``tools`` / ``functions`` (non-empty), on any request: responses carry the message text only, so a tool call
  the upstream made would be lost;
* ``response_format`` other than ``{"type": "text"}`` on a strategy request: strategies extract answers from
  free text and send helper prompts (critiques, verdicts, steps) that a forced format would break.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ponder.context import Sampling
from ponder.errors import PonderError
from ponder.strategies import coerce_params, get_strategy
from ponder.types import GenerationRequest

PREFIX = "ponder:"
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
NO_STRATEGY = ("none", "passthrough", "")
CONTROL_KEYS = ("strategy", "progress")
KNOWN = frozenset({
    "model", "messages", "n", "temperature", "top_p", "max_tokens", "max_completion_tokens", "seed", "stop",
    "logprobs", "top_logprobs", "stream", "stream_options", "ponder",
})  # fmt: skip
LIMITED_PARAMS = ("n", "max_n")  # strategy parameters bounded by --max-n
NO_TOOLS = ("tools", "functions")  # refused: tool calls are not relayed (see the module docstring)


@dataclass
class ServeConfig:
    """Limits and defaults of ``ponder serve``."""

    keys: frozenset[str] = frozenset()  # client API keys; empty: no authentication
    max_n: int = 64
    max_tokens_limit: int = 8192
    max_body_bytes: int = 1_000_000
    default_strategy: str | None = None  # None: pass-through
    max_inflight: int = 256  # traces in flight across all requests (one shared Slots)
    log: bool = False  # store every request as a problem (see strategy.py)
    store_path: str | None = None
    progress_interval_s: float = 1.0  # streamed strategy requests: one ': ponder progress' comment this often
    sampling: Sampling = field(default_factory=Sampling)  # strategy defaults for fields a request leaves out


class RequestError(PonderError):
    """A bad request: HTTP ``status`` with OpenAI's error shape, naming the offending ``param``."""

    def __init__(self, message: str, param: str | None = None, *, status: int = 400,
                 code: str | None = None, type_: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.param = param
        self.status = status
        self.code = code
        self.type = type_


@dataclass
class ChatRequest:
    """A checked request: what pass-through sends, and the strategy (if any) with its coerced parameters."""

    model: str  # as the client sent it (echoed in responses)
    generation: GenerationRequest  # pass-through: every client field, unknown ones in ``extra``
    stream: bool = False
    include_usage: bool = False
    strategy: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    progress: bool = True
    sampling: Sampling | None = None  # strategy requests: the Ctx's sampling defaults
    choices: int = 1  # strategy requests: independent runs of the strategy (the client's ``n``)


def parse_chat_request(body: Any, config: ServeConfig, upstream_models: frozenset[str] = frozenset()) -> ChatRequest:
    """Check a decoded JSON body; raises RequestError naming the field."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    model = body.get("model", "")
    if not isinstance(model, str):
        raise RequestError("'model' must be a string", "model")
    upstream_model, strategy, prefix_params = parse_model_prefix(model)
    gen = _generation(body, config)
    if upstream_model and upstream_model in upstream_models:
        gen.extra["model"] = upstream_model  # route to another model the upstream serves
    stream = _typed(body, "stream", bool, False)
    options = _typed(body, "stream_options", dict, {})
    include_usage = bool(options.get("include_usage")) if stream else False

    ponder = _typed(body, "ponder", dict, {})
    raw = {k: v for k, v in ponder.items() if k not in CONTROL_KEYS}
    progress = _typed(ponder, "progress", bool, True, where="ponder.")
    from_prefix: set[str] = set()
    if "strategy" in ponder:
        strategy = ponder["strategy"]
        if strategy is not None and not isinstance(strategy, str):
            raise RequestError("'ponder.strategy' must be a string", "ponder.strategy")
        named_in = "ponder.strategy"
    else:
        from_prefix = set(prefix_params) - set(raw)
        raw = {**prefix_params, **raw}
        named_in = "model"
        if strategy is None:
            strategy, named_in = config.default_strategy, "ponder.strategy"
    if strategy is None or strategy in NO_STRATEGY:
        if raw:
            first = sorted(raw)[0]
            raise RequestError(f"strategy parameters ({', '.join(sorted(raw))}) given without a strategy",
                               "model" if first in from_prefix else f"ponder.{first}")
        return ChatRequest(model, gen, stream, include_usage)
    params = _strategy_params(strategy, raw, config, named_in, from_prefix)
    _check_strategy_fields(body, strategy, params, gen.n, config)
    gen.extra.pop("max_completion_tokens", None)
    return ChatRequest(model, gen, stream, include_usage, strategy, params, progress, _sampling(body, gen, config),
                       choices=gen.n)


def _check_strategy_fields(body: dict[str, Any], strategy: str, params: dict[str, Any], choices: int,
                           config: ServeConfig) -> None:
    """Fields a strategy request cannot honour as the client means them."""
    response_format = body.get("response_format")
    if response_format is not None and response_format != {"type": "text"}:
        raise RequestError(
            f"'response_format' is not supported with strategy {strategy!r}: strategies extract answers from free "
            "text and send helper prompts that a forced format would break; send it without a strategy "
            "(plain pass-through) for structured output", "response_format", code="unsupported_parameter")
    # n runs of the strategy draw n times its samples: the total is what --max-n bounds.
    samples = max([v for k, v in params.items() if k in LIMITED_PARAMS and isinstance(v, int)], default=1)
    if choices > 1 and choices * samples > config.max_n:
        raise RequestError(
            f"'n'={choices} runs of strategy {strategy!r} with {samples} samples each make {choices * samples} "
            f"samples, over this server's limit of {config.max_n} samples", "n", code="limit_exceeded")


def parse_model_prefix(model: str) -> tuple[str, str | None, dict[str, str]]:
    """``ponder:STRATEGY[:K=V]...[/MODEL]`` → (MODEL, STRATEGY, {K: V}); other names → (name, None, {})."""
    if not model.startswith(PREFIX):
        return model, None, {}
    head, _, upstream = model[len(PREFIX):].partition("/")
    strategy, *items = head.split(":")
    params: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise RequestError(f"model prefix parameter {item!r} must look like KEY=VALUE "
                               "(syntax: ponder:STRATEGY[:KEY=VALUE]...[/MODEL])", "model")
        params[key] = value
    return upstream, strategy or "none", params


def _strategy_params(name: str, raw: dict[str, Any], config: ServeConfig, named_in: str,
                     from_prefix: set[str]) -> dict[str, Any]:
    in_prefix = " (in the model name's ponder: prefix)"
    try:
        info = get_strategy(name)
    except PonderError as exc:
        raise RequestError(str(exc) + (in_prefix if named_in == "model" else ""), named_in,
                           code="unknown_strategy") from None
    for key, value in raw.items():  # one at a time, so the error names the parameter
        try:
            coerce_params(info, {key: value})
        except PonderError as exc:
            if key in from_prefix:
                raise RequestError(str(exc) + in_prefix, "model") from None
            raise RequestError(str(exc), f"ponder.{key}") from None
    params = coerce_params(info, raw)
    for key in LIMITED_PARAMS:
        value = params.get(key)
        if isinstance(value, int) and value < 1:
            raise RequestError(f"{key} must be at least 1, got {value}", f"ponder.{key}")
        if isinstance(value, int) and value > config.max_n:
            given = "" if key in raw else " (the strategy's default)"
            raise RequestError(f"{key}={value}{given} exceeds this server's limit of {config.max_n} samples",
                               f"ponder.{key}", code="limit_exceeded")
    for key, value in params.items():
        if key.endswith("_tokens") and isinstance(value, int) and value > config.max_tokens_limit:
            raise RequestError(f"{key}={value} exceeds this server's limit of {config.max_tokens_limit} tokens",
                               f"ponder.{key}", code="limit_exceeded")
    return params


def _generation(body: dict[str, Any], config: ServeConfig) -> GenerationRequest:
    messages = _messages(body.get("messages"))
    for key in NO_TOOLS:
        if body.get(key):  # an empty list asks for nothing and is harmless
            raise RequestError(
                f"'{key}' is not supported: ponder serve returns the message text only, so a tool call the model "
                "made would be lost; call the upstream directly for tool use", key, code="unsupported_parameter")
    n = _int(body, "n", 1, config.max_n, "samples") or 1
    max_tokens = _int(body, "max_tokens", 1, config.max_tokens_limit, "tokens")
    completion_tokens = _int(body, "max_completion_tokens", 1, config.max_tokens_limit, "tokens")
    top_logprobs = _int(body, "top_logprobs", 0, 20, None)
    logprobs = _typed(body, "logprobs", bool, False)
    if top_logprobs is not None and not logprobs:
        raise RequestError("'top_logprobs' needs 'logprobs': true", "top_logprobs")
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    elif stop is not None and not (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        raise RequestError("'stop' must be a string or a list of strings", "stop")
    seed = _int(body, "seed", -(2**63), 2**64, None)
    extra = {k: v for k, v in body.items() if k not in KNOWN}
    if completion_tokens is not None:
        extra["max_completion_tokens"] = completion_tokens  # sent unchanged on pass-through
    return GenerationRequest(
        messages=messages, n=n, temperature=_number(body, "temperature", 0.0, 2.0),
        top_p=_number(body, "top_p", 0.0, 1.0), max_tokens=max_tokens, seed=seed, stop=stop or None,
        logprobs=logprobs, top_logprobs=top_logprobs, extra=extra,
    )


def _sampling(body: dict[str, Any], gen: GenerationRequest, config: ServeConfig) -> Sampling:
    base = config.sampling
    # The client's stop is not an extra: it would override the stops strategies set themselves (strategy.py).
    extra = {**base.extra, **gen.extra}
    max_tokens = gen.max_tokens or body.get("max_completion_tokens") or base.max_tokens
    return Sampling(
        temperature=base.temperature if gen.temperature is None else gen.temperature,
        top_p=base.top_p if gen.top_p is None else gen.top_p,
        max_tokens=min(int(max_tokens), config.max_tokens_limit),
        seed=base.seed if gen.seed is None else gen.seed,
        logprobs=gen.logprobs if "logprobs" in body else base.logprobs,  # on by default: strategies read them
        top_logprobs=gen.top_logprobs or base.top_logprobs,
        extra=extra,
    )


def _messages(value: Any) -> list[dict[str, Any]]:
    if value is None:
        raise RequestError("'messages' is required", "messages")
    if not isinstance(value, list) or not value:
        raise RequestError("'messages' must be a non-empty array", "messages")
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            raise RequestError(f"'messages[{i}]' must be an object", f"messages[{i}]")
        role = message.get("role")
        if role not in ROLES:
            raise RequestError(f"'messages[{i}].role' is {role!r}; expected one of {', '.join(sorted(ROLES))}",
                               f"messages[{i}].role")
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise RequestError(f"'messages[{i}].content' must be a string or an array of parts",
                               f"messages[{i}].content")
    return value


def _typed(obj: dict[str, Any], key: str, kind: type, default: Any, where: str = "") -> Any:
    value = obj.get(key)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise RequestError(f"'{where}{key}' must be {'an object' if kind is dict else 'a ' + kind.__name__}, "
                           f"got {value!r}", where + key)
    return value


def _int(obj: dict[str, Any], key: str, low: int, high: int, unit: str | None) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not float(value).is_integer():
        raise RequestError(f"'{key}' must be an integer, got {value!r}", key)
    value = int(value)
    if value < low:
        raise RequestError(f"'{key}' must be at least {low}, got {value}", key)
    if value > high:
        what = f" of {high} {unit}" if unit else f" ({high})"
        raise RequestError(f"'{key}'={value} exceeds this server's limit{what}", key,
                           code="limit_exceeded" if unit else None)
    return value


def _number(obj: dict[str, Any], key: str, low: float, high: float) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RequestError(f"'{key}' must be a number, got {value!r}", key)
    if not low <= value <= high:
        raise RequestError(f"'{key}' must be between {low:g} and {high:g}, got {value}", key)
    return float(value)
