"""Keep a model's reasoning apart from its answer when it writes ``<think>…</think>`` inline."""

from __future__ import annotations

OPEN = "<think>"
CLOSE = "</think>"


class ThinkSplitter:
    """Incremental splitter for streamed text; tags may arrive cut across chunks."""

    def __init__(self) -> None:
        self.in_think = False
        self._pending = ""  # a suffix that may be the start of a tag

    def feed(self, chunk: str) -> tuple[str, str]:
        """Return the (answer, reasoning) text that ``chunk`` completes."""
        text = self._pending + chunk
        self._pending = ""
        answer: list[str] = []
        reasoning: list[str] = []
        while text:
            tag = CLOSE if self.in_think else OPEN
            pos = text.find(tag)
            if pos >= 0:
                (reasoning if self.in_think else answer).append(text[:pos])
                text = text[pos + len(tag) :]
                self.in_think = not self.in_think
                continue
            keep = _partial_tag_suffix(text, tag)
            (reasoning if self.in_think else answer).append(text[: len(text) - keep])
            self._pending = text[len(text) - keep :]
            break
        return "".join(answer), "".join(reasoning)

    def flush(self) -> tuple[str, str]:
        """Return whatever is held back at the end of the stream."""
        rest, self._pending = self._pending, ""
        return ("", rest) if self.in_think else (rest, "")


def _partial_tag_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


def split_reasoning(text: str) -> tuple[str, str]:
    """Split a finished completion into (answer, reasoning).

    Handles both ``<think>r</think>a`` and the templates that open the think block in the prompt,
    where the completion is ``r</think>a`` with no opening tag.
    """
    if OPEN not in text and CLOSE in text:
        reasoning, _, answer = text.partition(CLOSE)
        return answer.lstrip(), reasoning
    splitter = ThinkSplitter()
    answer, reasoning = splitter.feed(text)
    tail_answer, tail_reasoning = splitter.flush()
    return (answer + tail_answer).lstrip(), reasoning + tail_reasoning
