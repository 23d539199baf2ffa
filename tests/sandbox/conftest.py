"""Helpers for the sandbox tests: a check that ponder still works after a hostile run, and a leftover-process scan."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from ponder.sandbox import UID_BASE, Limits, run_python


def sandbox_uid_processes() -> list[int]:
    """Pids of live processes owned by any sandbox uid (only meaningful when the tests run as root)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        uid_line = next((line for line in status.splitlines() if line.startswith("Uid:")), "")
        state = next((line for line in status.splitlines() if line.startswith("State:")), "")
        uids = [int(v) for v in uid_line.split()[1:]]
        if any(UID_BASE <= u < UID_BASE + 64 for u in uids) and "zombie" not in state:
            pids.append(int(entry.name))
    return pids


async def _no_sandbox_processes_left(within_s: float = 3.0) -> list[int]:
    left = sandbox_uid_processes()
    deadline = asyncio.get_running_loop().time() + within_s
    while left and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
        left = sandbox_uid_processes()
    return left


@pytest.fixture
def still_works() -> Callable[[], Awaitable[None]]:
    """After a hostile run: a plain program runs normally and (as root) no sandbox process survived."""

    async def check() -> None:
        if os.geteuid() == 0:
            assert await _no_sandbox_processes_left() == []
        result = await run_python("print(6 * 7)", Limits(wall_s=20))
        assert result.ok and result.stdout == "42\n", result

    return check
