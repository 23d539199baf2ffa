"""Backends and the ``--model`` spec that picks one.

Specs: ``local`` (the embedded SmolLM2 on a llama-server ponder starts), ``local:/path/model.gguf``,
``local:NAME`` (a named model of ``ponder.models``, assembled from its PyPI parts on first use),
``openai:http://host:port/v1`` (or a bare ``http(s)://…`` URL; several, comma-separated, for replicas of one model:
see ``backends/fleet.py``), and ``fake`` (scripted, for tests).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from ponder.backends.base import Backend, Capabilities, StreamEnd, StreamEvent
from ponder.backends.fake import FakeBackend
from ponder.backends.fleet import FleetBackend, split_urls
from ponder.backends.openai import DEFAULT_TIMEOUT_S, OpenAIBackend
from ponder.errors import ConfigError

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "Backend",
    "BackendSpec",
    "Capabilities",
    "FakeBackend",
    "FleetBackend",
    "OpenAIBackend",
    "StreamEnd",
    "StreamEvent",
    "backend_kinds",
    "build_backend",
    "open_backend",
    "parse_model_spec",
    "register_backend",
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
    timeout_s: float | None = None  # per response; None: 600 s, or for local scaled to max_tokens and slots
    threads: int | None = None  # llama-server's --threads; None leaves its own default
    named: str | None = None  # the catalog name of a local:NAME model (target is then its assembled file)
    ctx_per_slot: int | None = None  # local: context per llama-server slot (None: room for 512-token samples)

    def sized_for(self, max_tokens: int | None) -> BackendSpec:
        """This spec with local slots big enough for samples of ``max_tokens`` plus their prompt, and a response
        timeout long enough for them on a slow CPU, unless given (other kinds unchanged): a sample must never stop
        early because its slot's context filled, nor be timed out and retried because the machine is slow."""
        if self.kind != "local":
            return self
        from ponder.backends.local import context_for, response_timeout

        return dataclasses.replace(
            self, ctx_per_slot=self.ctx_per_slot or context_for(max_tokens),
            timeout_s=self.timeout_s if self.timeout_s is not None else response_timeout(max_tokens, self.slots))

    @property
    def remote_timeout_s(self) -> float:
        """The per-response timeout for a server ponder did not start: as given, else ``DEFAULT_TIMEOUT_S``."""
        return self.timeout_s if self.timeout_s is not None else DEFAULT_TIMEOUT_S

    def describe(self) -> str:
        if self.kind == "local" and self.named:
            return f"local:{self.named}"
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
    timeout_s: float | None = None,
    threads: int | None = None,
    notify: Callable[[str], None] | None = None,
) -> BackendSpec:
    """Parse ``--model``; raises ConfigError naming the accepted forms.

    ``local:NAME`` is resolved here, assembling the named model on first use (``notify`` hears about it, default
    stderr), so a missing or mismatched model fails before any work starts.
    """
    kind, _, target = spec.partition(":")
    if spec.startswith(("http://", "https://")):
        kind, target = "openai", spec
    if kind not in backend_kinds():
        from ponder import plugins

        extra = [k for k in backend_kinds() if k not in _BUILTIN]
        raise ConfigError(
            f"unknown --model {spec!r}{plugins.failure_note(plugins.BACKENDS, kind)}: use 'local', 'local:NAME', "
            "'local:/path/model.gguf', 'openai:http://HOST:PORT/v1' or 'fake'"
            + (f", or a plugin's: {', '.join(f'{k}[:TARGET]' for k in extra)}" if extra else "")
        )
    if kind == "openai" and not target.startswith(("http://", "https://")):
        raise ConfigError(f"--model {spec!r} needs a URL, e.g. openai:http://localhost:8000/v1")
    if kind == "openai" and "," in target:
        target = ",".join(split_urls(target))
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {threads}")
    if timeout_s is not None and not timeout_s > 0:
        raise ConfigError(f"--timeout must be a positive number of seconds, got {timeout_s:g}")
    named = None
    if kind == "local" and target and not target.endswith(".gguf"):
        named, target = target, str(_resolve_named(spec, target, notify or _to_stderr))
    if api_key is None:
        api_key = next((os.environ[e] for e in API_KEY_ENVS if os.environ.get(e)), None)
    return BackendSpec(kind, target or None, model_name, api_key, server_bin, slots, timeout_s, threads, named)


def _resolve_named(spec: str, name: str, notify: Callable[[str], None]) -> Path:
    from ponder.models import CATALOG, ensure_assembled

    if name not in CATALOG:
        raise ConfigError(f"--model {spec!r}: a local model must be a .gguf file or a known name "
                          f"({', '.join(CATALOG)}; see 'ponder models')")
    return ensure_assembled(CATALOG[name], notify=notify)


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


BackendFactory = Callable[[BackendSpec], Backend]
"""Builds a backend from a parsed spec; ``open_backend`` starts it (``await backend.start()`` if it has one)."""


def _fake(spec: BackendSpec) -> Backend:
    return FakeBackend()


def _openai(spec: BackendSpec) -> Backend:
    assert spec.target is not None
    if "," in spec.target:
        return FleetBackend(split_urls(spec.target), spec.model_name, api_key=spec.api_key,
                            timeout_s=spec.remote_timeout_s)
    return OpenAIBackend(spec.target, spec.model_name, api_key=spec.api_key, timeout_s=spec.remote_timeout_s)


def _local(spec: BackendSpec) -> Backend:
    from ponder.backends.local import LocalBackend, context_for

    return LocalBackend(Path(spec.target) if spec.target else None, server_bin=spec.server_bin, slots=spec.slots,
                        threads=spec.threads, ctx_per_slot=spec.ctx_per_slot or context_for(None),
                        timeout_s=spec.timeout_s)


_BUILTIN: dict[str, BackendFactory] = {"fake": _fake, "openai": _openai, "local": _local}
_FACTORIES: dict[str, BackendFactory] = dict(_BUILTIN)


def register_backend(kind: str, factory: BackendFactory) -> None:
    """Make ``--model KIND[:TARGET]`` build its backend with ``factory`` (the spec's ``target`` is TARGET)."""
    if kind in _BUILTIN:
        raise ConfigError(f"backend kind {kind!r} is built in and cannot be replaced")
    _FACTORIES[kind] = factory


@functools.cache
def _load_plugins() -> None:
    """Register the backends of installed plugins (``ponder.backends`` entry points), once."""
    from ponder import plugins

    for ep, factory in plugins.new_entries(plugins.BACKENDS, _FACTORIES):
        if callable(factory):
            _FACTORIES[ep.name] = factory


def backend_kinds() -> list[str]:
    """The ``--model`` kinds known: the built-in ones, then registered and installed plugins'."""
    _load_plugins()
    return list(_FACTORIES)


def build_backend(spec: BackendSpec) -> Backend:
    """The backend a spec describes, not started yet (``open_backend`` starts and closes it)."""
    _load_plugins()
    factory = _FACTORIES.get(spec.kind)
    if factory is None:
        raise ConfigError(f"no backend of kind {spec.kind!r}; known: {', '.join(_FACTORIES)}")
    return factory(spec)


@asynccontextmanager
async def open_backend(spec: BackendSpec) -> AsyncIterator[Backend]:
    """Build, start and health-check a backend; always closes it (and any server it started)."""
    backend = build_backend(spec)
    try:
        start = getattr(backend, "start", None)
        if start is not None:
            await start()
        yield backend
    finally:
        await backend.aclose()
