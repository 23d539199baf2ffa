"""The fallback when namespaces cannot be created: resource limits, the session kill and the audit hook still hold."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from ponder.sandbox import Limits, run_python
from ponder.sandbox import runner as sandbox_runner


@pytest.fixture(autouse=True)
def process_mode(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(sandbox_runner, "_mode", "process")
    yield


async def test_reports_only_the_layers_it_has() -> None:
    result = await run_python("print('hi')\n")
    assert result.ok and result.stdout == "hi\n"
    assert "pid-namespace" not in result.isolation and "net-namespace" not in result.isolation
    assert {"rlimits", "session", "empty-env", "audit-hook"} <= set(result.isolation)


async def test_cpu_memory_output_and_wall_limits_hold() -> None:
    loop = await run_python("while True:\n    pass\n", Limits(cpu_s=1, wall_s=60))
    assert loop.killed_reason == "cpu_time"
    memory = await run_python("x = bytearray(50 * 2**30)\n", Limits(memory_mb=256))
    assert memory.killed_reason == "memory"
    flood = await run_python("while True:\n    print('y' * 999)\n", Limits(output_bytes=5000))
    assert flood.killed_reason == "output" and len(flood.stdout) == 5000
    sleeper = await run_python("import time\ntime.sleep(600)\n", Limits(wall_s=1))
    assert sleeper.killed_reason == "wall_time"
    assert (await run_python("print(1 + 1)\n")).stdout == "2\n"


async def test_environment_network_and_outside_writes_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PONDER_SANDBOX_SECRET", "process-mode-secret")
    target = tmp_path / "escape.txt"
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        code = (
            "import os, socket\n"
            "print(sorted(os.environ))\n"
            f"for attempt in (lambda: socket.create_connection(('127.0.0.1', {port}), timeout=2),\n"
            f"                lambda: open({str(target)!r}, 'w'),\n"
            f"                lambda: open('/proc/{os.getpid()}/environ').read()):\n"
            "    try:\n"
            "        attempt()\n"
            "        print('ESCAPED')\n"
            "    except PermissionError as exc:\n"
            "        print('refused:', exc)\n"
        )
        result = await run_python(code)
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert result.ok, result
    assert "PONDER_SANDBOX_SECRET" not in result.stdout and "process-mode-secret" not in result.stdout
    assert "ESCAPED" not in result.stdout and result.stdout.count("refused:") == 3
    assert not target.exists()
