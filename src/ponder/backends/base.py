"""The backend protocol: how ponder talks to a model. ``ctx`` is the only caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ponder.types import Delta, GenerationRequest, Trace


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; strategies check these before relying on them."""

    logprobs: bool = True
    top_logprobs: int = 20  # the largest top-k the backend returns; 0 when none
    native_n: bool = True  # one request can return n samples
    streaming: bool = True  # tokens arrive one by one and a trace can be cancelled mid-way
    reasoning: bool = False  # separates reasoning text from the answer


@dataclass
class StreamEnd:
    """The last event of a stream: why it stopped and what the server counted."""

    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int


StreamEvent = Delta | StreamEnd


@runtime_checkable
class Backend(Protocol):
    """A model: ``complete`` returns ``request.n`` finished traces; ``stream`` yields one trace's pieces."""

    name: str
    capabilities: Capabilities

    async def complete(self, request: GenerationRequest) -> list[Trace]:
        """Draw ``request.n`` samples and return them finished, in order of ``Trace.index``."""
        ...

    def stream(self, request: GenerationRequest) -> AsyncIterator[StreamEvent]:
        """Yield one sample (``request.n`` is ignored) as deltas, ending with a ``StreamEnd``.

        Closing the iterator early (``aclose``, or cancelling the task) stops generation server-side.
        """
        ...

    async def aclose(self) -> None:
        """Release connections and processes."""
        ...
