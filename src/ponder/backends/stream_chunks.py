"""Repeated SSE chunks: tell a chunk the server (or a proxy in between) sent twice from a token the model repeated.

SSE chunks carry no position, so a chunk sent twice would add its tokens to a trace twice. The rule:

* A chunk with logprobs that is byte-identical to the previous one is a *suspect*. Two real positions almost
  never agree on token, logprob and every top-k alternative to the last bit, but they can (a greedy loop whose
  token has logprob 0.0, asked without top-k), so a suspect is not dropped on sight: from the first suspect on,
  chunks are held back until the stream ends, and the server's own ``usage.completion_tokens`` decides. If it
  counts the suspects' tokens they were real and everything is released in order; if it counts everything but
  them they were repeats and are dropped; anything else is ambiguous and the stream fails. Without a usage
  count, suspects are dropped (a transport repeat is the likelier cause).
* Without logprobs a repeated token and a repeated chunk look the same, so nothing is dropped; instead a stream
  with more text chunks than the server counted tokens (each chunk holds at least one new token) fails.

Holding back costs nothing on a healthy server: nothing is held until a suspect appears.
"""

from __future__ import annotations

from typing import Any

from ponder.errors import BackendError

__all__ = ["ChunkFilter"]


def _logprob_tokens(choice: dict[str, Any]) -> int:
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    return len(content) if isinstance(content, list) else 0


class ChunkFilter:
    """Feed each parsed chunk; process the choices it returns; call ``settle`` once the stream has ended."""

    def __init__(self) -> None:
        self._previous = ""  # raw data of the last chunk that carried logprobs
        self._held: list[tuple[dict[str, Any], bool]] | None = None  # (choice, suspect) since the first suspect

    def feed(self, data: str, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """The choices of ``chunk`` to process now (none while chunks are held back)."""
        choices = [c for c in chunk.get("choices") or [] if isinstance(c, dict)]
        suspect = False
        if any(_logprob_tokens(c) for c in choices):
            suspect = data == self._previous
            self._previous = data
        if suspect or self._held is not None:
            if self._held is None:
                self._held = []
            self._held.extend((choice, suspect) for choice in choices)
            return []
        return choices

    @property
    def holding(self) -> bool:
        return self._held is not None

    def settle(self, counted: int, reported: int) -> list[dict[str, Any]]:
        """The held choices to process, given the tokens processed so far and the server's count (0: none).

        Raises BackendError when the count fits neither "the suspects were real" nor "they were repeats".
        """
        held, self._held = self._held or [], None
        sure = counted + sum(_logprob_tokens(c) for c, suspect in held if not suspect)
        doubtful = sum(_logprob_tokens(c) for c, suspect in held if suspect)
        if reported and sure + doubtful == reported:
            return [c for c, _ in held]  # the model really repeated itself
        if not reported or sure == reported:
            return [c for c, suspect in held if not suspect]
        raise BackendError(
            f"the server sent repeated stream chunks and counted {reported} tokens, which fits neither "
            f"{sure} (the repeats were duplicates) nor {sure + doubtful} (they were real tokens)",
            retryable=True,
        )


def check_count(counted: int, pieces: int, reported: int) -> None:
    """Fail a stream that delivered more tokens (or text chunks) than the server says it generated."""
    if reported and max(counted, pieces) > reported:
        raise BackendError(
            f"the server streamed {max(counted, pieces)} tokens but counted {reported}: it repeated stream chunks, "
            "so the trace is unreliable",
            retryable=True,
        )
