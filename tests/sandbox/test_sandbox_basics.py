"""The sandbox runs ordinary programs faithfully, cleans up, bounds concurrency and never blocks the event loop."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from ponder.errors import ConfigError
from ponder.sandbox import Limits, run_python, set_max_concurrent
from ponder.sandbox import runner as sandbox_runner


async def test_runs_a_program_and_returns_its_output() -> None:
    code = "from fractions import Fraction\nimport math\nprint(Fraction(1, 3) + Fraction(1, 6))\nprint(math.comb(5, 2))"
    result = await run_python(code)
    assert result.ok and result.stdout == "1/2\n10\n" and result.stderr == ""
    assert result.exit_code == 0 and result.killed_reason is None and not result.timed_out
    assert "rlimits" in result.isolation and "empty-env" in result.isolation


async def test_errors_and_exit_codes_are_reported() -> None:
    failing = await run_python("print('before')\n1 / 0\n")
    assert failing.exit_code == 1 and not failing.ok and failing.killed_reason is None
    assert failing.stdout == "before\n"
    assert "ZeroDivisionError" in failing.stderr and 'File "main.py", line 2' in failing.stderr
    exited = await run_python("import sys\nsys.exit(3)\n")
    assert exited.exit_code == 3 and exited.killed_reason is None
    syntax = await run_python("def broken(:\n")
    assert syntax.exit_code == 1 and "SyntaxError" in syntax.stderr


async def test_working_directory_is_private_and_removed(tmp_path: Path) -> None:
    code = "import os\nopen('note.txt', 'w').write('x' * 10)\nos.mkdir('sub')\nos.chmod('sub', 0)\nprint(os.getcwd())\n"
    result = await run_python(code)
    assert result.ok, result
    workdir = Path(result.stdout.strip())
    assert workdir.name == "work" and not workdir.exists() and not workdir.parent.exists()
    second = await run_python("import os\nprint(os.listdir('.'))\n")
    assert second.stdout.strip() == "['main.py']"  # a fresh directory each run


async def test_standard_library_only_unless_site_packages_are_allowed() -> None:
    assert (await run_python("import numpy\n")).exit_code == 1
    allowed = await run_python("import numpy\nprint(numpy.arange(4).sum())\n", Limits(site_packages=True))
    assert allowed.ok and allowed.stdout == "6\n", allowed


async def test_the_event_loop_keeps_running_during_a_run() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    task = asyncio.create_task(ticker())
    result = await run_python("import time\ntime.sleep(1.0)\nprint('done')\n")
    task.cancel()
    assert result.ok and ticks >= 10


async def test_concurrency_is_bounded() -> None:
    set_max_concurrent(2)
    try:
        code = "import time\nstart = time.time()\ntime.sleep(0.6)\nprint(start, time.time())\n"
        results = await asyncio.gather(*(run_python(code, Limits(wall_s=30)) for _ in range(5)))
    finally:
        set_max_concurrent(4)
    spans = [tuple(map(float, r.stdout.split())) for r in results]
    assert all(r.ok for r in results)
    most = max(sum(1 for s, e in spans if s <= moment < e) for moment, _ in spans)
    assert most <= 2


async def test_cancelling_the_caller_kills_the_run() -> None:
    marker = "import time\nprint('running', flush=True)\ntime.sleep(600)\n"
    task = asyncio.create_task(run_python(marker, Limits(wall_s=600)))
    await asyncio.sleep(1.5)
    start = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - start < 5
    after = await run_python("print('next')\n")
    assert after.ok


async def test_a_failed_setup_means_the_code_never_ran(monkeypatch: pytest.MonkeyPatch) -> None:
    make_config = sandbox_runner._config

    def impossible_limit(*args: object) -> str:
        config = json.loads(make_config(*args))  # type: ignore[arg-type]
        config["limits"]["memory_bytes"] = "lots"  # setrlimit refuses it: the program must not start unlimited
        return json.dumps(config)

    monkeypatch.setattr(sandbox_runner, "_config", impossible_limit)
    result = await run_python("print('RAN')\n")
    assert result.killed_reason == "setup" and result.exit_code == 125
    assert "RAN" not in result.stdout and "setup failed" in result.stderr


def test_limits_are_validated() -> None:
    with pytest.raises(ConfigError, match="wall_s"):
        Limits(wall_s=0)
    with pytest.raises(ConfigError, match="memory_mb"):
        Limits(memory_mb=8)
    with pytest.raises(ConfigError, match="concurrency"):
        set_max_concurrent(0)


async def test_odd_model_text_is_reported_not_raised() -> None:
    surrogate = await run_python("print('half a pair: \ud800')\n")
    assert surrogate.ok and surrogate.stdout.startswith("half a pair: ")
    nul = await run_python("print(1)\x00\n")
    assert nul.exit_code == 1 and nul.killed_reason is None and "null" in nul.stderr
