"""A deterministic scripted backend with logprobs, for tests and offline demos (``--model fake``)."""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from ponder.backends.base import Capabilities, StreamEnd, StreamEvent
from ponder.types import Delta, GenerationRequest, TokenLogprob, Trace

_TOKEN = re.compile(r"\s*[A-Za-z]+|\s*\d|\s*[^\sA-Za-z\d]|\s+")
_NUMBER = re.compile(r"-?\d+")


@dataclass
class Scripted:
    """A scripted sample: its text and how sure the fake model is of each token (probability 0..1)."""

    text: str
    confidence: float = 0.8
    reasoning: str = ""


Script = Callable[[GenerationRequest, int], "str | Scripted"]


def tokenize(text: str) -> list[str]:
    """Split text into word/digit/punctuation tokens that concatenate back to the text."""
    return _TOKEN.findall(text)


def _unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from its arguments."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def noisy_arithmetic(request: GenerationRequest, index: int) -> Scripted:
    """The default script: a weak solver. It adds the two numbers of ``a + b`` questions correctly 60% of
    the time (confidently) and is off by a little otherwise (less confidently); for other questions it
    picks one of the question's numbers. Sampling is seeded by prompt, seed and sample index."""
    question = request.messages[-1]["content"] if request.messages else ""
    draw = _unit(question, request.seed, index, request.temperature)
    match = re.search(r"(-?\d+)\s*\+\s*(-?\d+)", question)
    if match:
        right = int(match.group(1)) + int(match.group(2))
        if draw < 0.6 or request.temperature == 0:
            return Scripted(f"Adding them gives {right}. The answer is {right}.", confidence=0.9)
        wrong = right + (1 + int(draw * 10) % 3) * (1 if draw < 0.8 else -1)
        return Scripted(f"Adding them gives {wrong}. The answer is {wrong}.", confidence=0.55)
    numbers = _NUMBER.findall(question) or ["0"]
    pick = numbers[int(draw * len(numbers))]
    return Scripted(f"Looking at the numbers, the answer is {pick}.", confidence=0.6)


def _from_list(responses: Sequence[str | Scripted]) -> Script:
    def script(request: GenerationRequest, index: int) -> str | Scripted:
        return responses[index % len(responses)]

    return script


@dataclass
class FakeCall:
    request: GenerationRequest
    streamed: bool
    tokens_sent: int = 0
    cancelled: bool = False


@dataclass
class FakeBackend:
    """Serves scripted samples. ``script(request, i)`` gives sample ``i``; a list of strings is cycled.

    Each token's logprob is log(confidence) jittered deterministically, and the top-k alternatives follow
    it with lower logprobs, so confidence measures have something real to read.
    """

    script: Script | Sequence[str | Scripted] = noisy_arithmetic
    logprobs: bool = True
    top_k: int = 5
    token_delay_s: float = 0.0
    name: str = "fake"
    calls: list[FakeCall] = field(default_factory=list)
    capabilities: Capabilities = field(init=False)

    def __post_init__(self) -> None:
        self.capabilities = Capabilities(logprobs=self.logprobs, top_logprobs=self.top_k if self.logprobs else 0)
        self._script: Script = self.script if callable(self.script) else _from_list(self.script)
        # Successive requests with the same prompt continue the sample numbering, like fresh samples would.
        self._drawn: dict[str, int] = {}

    def _next_indices(self, request: GenerationRequest, count: int) -> range:
        key = repr(request.messages)
        start = self._drawn.get(key, 0)
        self._drawn[key] = start + count
        return range(start, start + count)

    def _sample(self, request: GenerationRequest, index: int) -> tuple[Scripted, list[TokenLogprob]]:
        scripted = self._script(request, index)
        if isinstance(scripted, str):
            scripted = Scripted(scripted)
        pieces = tokenize(scripted.text)
        if request.max_tokens is not None:
            pieces = pieces[: request.max_tokens]
        tokens = [self._token(piece, scripted.confidence, index, position) for position, piece in enumerate(pieces)]
        return scripted, tokens

    def _token(self, piece: str, confidence: float, index: int, position: int) -> TokenLogprob:
        if not self.logprobs:
            return TokenLogprob(piece, 0.0)
        jitter = 0.9 + 0.2 * _unit(piece, index, position)
        prob = min(max(confidence * jitter, 1e-6), 0.999)
        logprob = math.log(prob)
        rest = 1.0 - prob
        top = [(piece, logprob)] + [
            (f"<alt{k}>", math.log(rest / (2**k))) for k in range(1, self.top_k)
        ]
        return TokenLogprob(piece, logprob, top[: self.top_k])

    async def complete(self, request: GenerationRequest) -> list[Trace]:
        self.calls.append(FakeCall(request, streamed=False))
        traces = []
        for position, index in enumerate(self._next_indices(request, max(request.n, 1))):
            scripted, tokens = self._sample(request, index)
            text = "".join(t.token for t in tokens)
            traces.append(
                Trace(
                    text=text,
                    reasoning=scripted.reasoning,
                    tokens=[t.token for t in tokens],
                    logprobs=[t.logprob for t in tokens] if self.logprobs else [],
                    top_logprobs=[t.top for t in tokens] if self.logprobs else [],
                    finish_reason=_finish(request, scripted, tokens),
                    prompt_tokens=_prompt_tokens(request),
                    completion_tokens=len(tokens),
                    index=position,
                )
            )
        self.calls[-1].tokens_sent = sum(t.completion_tokens for t in traces)
        return traces

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamEvent]:
        call = FakeCall(request, streamed=True)
        self.calls.append(call)
        (index,) = self._next_indices(request, 1)
        scripted, tokens = self._sample(request, index)
        finished = False
        try:
            if scripted.reasoning:
                yield Delta(reasoning=scripted.reasoning)
            for token in tokens:
                if self.token_delay_s:
                    await asyncio.sleep(self.token_delay_s)
                call.tokens_sent += 1
                yield Delta(text=token.token, tokens=[token] if self.logprobs else [])
            finished = True
            yield StreamEnd(_finish(request, scripted, tokens), _prompt_tokens(request), len(tokens))
        finally:
            call.cancelled = not finished

    async def aclose(self) -> None:
        return None


def _prompt_tokens(request: GenerationRequest) -> int:
    return sum(len(tokenize(m.get("content", ""))) for m in request.messages)


def _finish(request: GenerationRequest, scripted: Scripted, tokens: list[TokenLogprob]) -> str:
    return "length" if len(tokens) < len(tokenize(scripted.text)) else "stop"
