"""Plain data shared by every part of ponder: messages, requests, traces, problems, results."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Message = dict[str, str]
"""One chat message, e.g. ``{"role": "user", "content": "What is 2 + 3?"}``."""


@dataclass
class GenerationRequest:
    """Sampling request for one prompt; ``n`` independent samples."""

    messages: list[Message]
    n: int = 1
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: list[str] | None = None
    logprobs: bool = False
    top_logprobs: int | None = None
    # Unknown sampling parameters (top_k, min_p, chat_template_kwargs, ...) pass through unchanged.
    extra: dict[str, Any] = field(default_factory=dict)

    def sampling_params(self) -> dict[str, Any]:
        """The request's parameters without the messages, as stored with every call."""
        params: dict[str, Any] = {
            "n": self.n,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "stop": self.stop,
            "logprobs": self.logprobs,
            "top_logprobs": self.top_logprobs,
        }
        params = {k: v for k, v in params.items() if v is not None}
        params.update(self.extra)
        return params


@dataclass
class TokenLogprob:
    """One generated token with its log-probability and the top-k alternatives at its position."""

    token: str
    logprob: float
    top: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class Delta:
    """A piece of a streamed trace: new answer text, new reasoning text and the tokens that produced them."""

    text: str = ""
    reasoning: str = ""
    tokens: list[TokenLogprob] = field(default_factory=list)


@dataclass
class Usage:
    """Token and call counts; added up per call, per problem and per run."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    traces: int = 0
    cancelled_traces: int = 0
    capped_traces: int = 0  # stopped by max_tokens before they finished: they carry no answer

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: Usage) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.calls += other.calls
        self.traces += other.traces
        self.cancelled_traces += other.cancelled_traces
        self.capped_traces += other.capped_traces


@dataclass
class Trace:
    """One sampled completion: its text, its tokens with logprobs, its cost, and whether it was cut short."""

    text: str = ""
    reasoning: str = ""
    tokens: list[str] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    # One row of (token, logprob) alternatives per token: a list, or a read-only ``PackedTop`` in a loaded bank.
    top_logprobs: Sequence[Sequence[tuple[str, float]]] = field(default_factory=list)
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    cancelled: bool = False
    index: int = 0
    answer: str | None = None
    correct: bool | None = None
    # Not an answer sample of the problem (a judge's verdict, a search step, a critique): it never carries an
    # answer, and maj@k / pass@k do not count it. Set by ``Ctx.aux()``.
    aux: bool = False

    @property
    def has_logprobs(self) -> bool:
        return bool(self.logprobs)

    @property
    def capped(self) -> bool:
        """Stopped by ``max_tokens`` before the model finished: its last number is not an answer."""
        return self.finish_reason == "length" and not self.cancelled

    def append(self, delta: Delta) -> None:
        self.text += delta.text
        self.reasoning += delta.reasoning
        for tok in delta.tokens:
            self.tokens.append(tok.token)
            self.logprobs.append(tok.logprob)
            if not isinstance(self.top_logprobs, list):
                raise TypeError("this trace's top_logprobs are read-only (a trace from a bank)")
            self.top_logprobs.append(tok.top)


Checker = Callable[[str | None, "Problem"], Awaitable[bool]]
"""Decides whether an extracted answer is right for a problem."""

Extractor = Callable[[str], "str | None"]
"""Pulls the final answer out of a completion's text."""


@dataclass
class Problem:
    """One task item: the prompt to send, the gold answer and how answers are extracted and checked."""

    id: str
    messages: list[Message]
    gold: str | None
    checker: Checker
    extract: Extractor
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def question(self) -> str:
        return self.messages[-1]["content"]


@dataclass
class Result:
    """What a strategy returns for one problem."""

    answer: str | None
    confidence: float | None = None
    votes: dict[str, float] = field(default_factory=dict)
    traces: list[Trace] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    correct: bool | None = None  # set by the runner from the problem's checker; strategies leave it alone


class TokenRate:
    """Wall time and decode rate of a run, for progress counters that have ``started`` (a ``time.perf_counter``
    reading) and ``completion_tokens`` fields."""

    started: float
    completion_tokens: int

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def tokens_per_s(self) -> float:
        """Completion tokens per second of this run."""
        elapsed = self.elapsed
        return self.completion_tokens / elapsed if elapsed > 0 else 0.0
