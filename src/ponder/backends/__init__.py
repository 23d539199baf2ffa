"""Backends and the ``--model`` spec that picks one.

Specs: ``local`` (the embedded SmolLM2 on a llama-server ponder starts), ``local:/path/model.gguf``,
``openai:http://host:port/v1`` (or a bare ``http(s)://…`` URL), and ``fake`` (scripted, for tests).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from ponder.backends.base import Backend, Capabilities, StreamEnd, StreamEvent
from ponder.backends.fake import FakeBackend
from ponder.backends.openai import OpenAIBackend
from ponder.errors import ConfigError

__all__ = [
    "Backend",
    "BackendSpec",
    "Capabilities",
    "FakeBackend",
    "OpenAIBackend",
    "StreamEnd",
    "StreamEvent",
    "open_backend",
    "parse_model_spec",
]

API_KEY_ENVS = ("PONDER_API_KEY", "OPENAI_API_KEY")


@dataclass(frozen=True)
class BackendSpec:
    """A parsed ``--model`` option plus the options that go with it."""

    kind: str  # "local" | "openai" | "fake"
    target: str | None = None  # GGUF path or base URL
    model_name: str | None = None
    api_key: str | None = None
    server_bin: str | None = None
    slots: int = 16
    timeout_s: float = 600.0

    def describe(self) -> str:
        if self.kind == "local":
            return f"local:{Path(self.target).name}" if self.target else "local (embedded SmolLM2-135M-Instruct)"
        if self.kind == "openai":
            return f"openai:{self.target}" + (f" model={self.model_name}" if self.model_name else "")
        return self.kind


def parse_model_spec(
    spec: str,
    *,
    model_name: str | None = None,
    api_key: str | None = None,
    server_bin: str | None = None,
    slots: int = 16,
    timeout_s: float = 600.0,
) -> BackendSpec:
    """Parse ``--model``; raises ConfigError naming the accepted forms."""
    kind, _, target = spec.partition(":")
    if spec.startswith(("http://", "https://")):
        kind, target = "openai", spec
    if kind not in ("local", "openai", "fake"):
        raise ConfigError(
            f"unknown --model {spec!r}: use 'local', 'local:/path/model.gguf', 'openai:http://HOST:PORT/v1' or 'fake'"
        )
    if kind == "openai" and not target.startswith(("http://", "https://")):
        raise ConfigError(f"--model {spec!r} needs a URL, e.g. openai:http://localhost:8000/v1")
    if kind == "local" and target and not target.endswith(".gguf"):
        raise ConfigError(f"--model {spec!r}: a local model must be a .gguf file")
    if api_key is None:
        api_key = next((os.environ[e] for e in API_KEY_ENVS if os.environ.get(e)), None)
    return BackendSpec(kind, target or None, model_name, api_key, server_bin, slots, timeout_s)


@asynccontextmanager
async def open_backend(spec: BackendSpec) -> AsyncIterator[Backend]:
    """Build, start and health-check a backend; always closes it (and any server it started)."""
    backend: Backend
    if spec.kind == "fake":
        backend = FakeBackend()
    elif spec.kind == "openai":
        assert spec.target is not None
        backend = OpenAIBackend(spec.target, spec.model_name, api_key=spec.api_key, timeout_s=spec.timeout_s)
    else:
        from ponder.backends.local import LocalBackend

        backend = LocalBackend(Path(spec.target) if spec.target else None, server_bin=spec.server_bin,
                               slots=spec.slots)
    try:
        if isinstance(backend, OpenAIBackend):
            await backend.start()
        yield backend
    finally:
        await backend.aclose()
