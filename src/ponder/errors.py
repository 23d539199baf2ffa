"""Error types. Every error a user can cause or meet is a ``PonderError`` whose message is one clear line."""

from __future__ import annotations


class PonderError(Exception):
    """Base class: the CLI prints ``str(error)`` as one line, without a traceback."""


class ConfigError(PonderError):
    """A bad option or parameter: the message says which and how to fix it."""


class TaskError(PonderError):
    """An unknown task, or task data that cannot be found or read."""


class BackendError(PonderError):
    """The model server failed after retries, or answered something ponder cannot use."""

    def __init__(
        self, message: str, status: int | None = None, retryable: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


class BackendUnavailable(BackendError):
    """The server cannot be reached or started."""


class ModelError(PonderError):
    """A named model (``local:NAME``) whose parts are missing or do not match their pinned checksums."""


class CapabilityError(PonderError):
    """A strategy needs something (e.g. logprobs) the backend cannot provide."""


class BudgetExceeded(PonderError):
    """A problem's token budget is spent; strategies may catch it and answer with what they have."""


def one_line(error: BaseException, limit: int = 200) -> str:
    """``Type: first line of the message``, cut to ``limit`` characters: third-party errors made printable."""
    lines = str(error).strip().splitlines()
    message = f"{type(error).__name__}: {lines[0]}" if lines and lines[0] else type(error).__name__
    return message if len(message) <= limit else message[: limit - 3] + "..."
