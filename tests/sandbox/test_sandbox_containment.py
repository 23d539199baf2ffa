"""Hostile programs are contained and reported, and ponder keeps working after each.

Where a containment has a kernel layer and an audit-hook layer, the test runs with the hook off too, so it shows the
kernel layer holds on its own (namespace mode only; ``test_sandbox_process_mode.py`` covers the fallback)."""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from ponder.sandbox import Limits, isolation_mode, run_python

StillWorks = Callable[[], Awaitable[None]]
HOOK = pytest.mark.parametrize("audit_hook", [True, False], ids=["hook", "kernel-only"])


@pytest.fixture(autouse=True)
async def namespaces_available() -> None:
    if await isolation_mode() != "namespaces":
        pytest.skip("this machine cannot create namespaces; see test_sandbox_process_mode.py")


@HOOK
async def test_infinite_loop_is_stopped_by_the_cpu_limit(audit_hook: bool, still_works: StillWorks) -> None:
    result = await run_python("while True:\n    pass\n", Limits(cpu_s=1, wall_s=60, audit_hook=audit_hook))
    assert result.killed_reason == "cpu_time" and not result.ok
    assert result.cpu_s is not None and result.cpu_s >= 0.5  # rusage and the rlimit tick count differently
    await still_works()


async def test_a_caught_cpu_signal_still_ends_in_a_kill(still_works: StillWorks) -> None:
    code = "import signal\nsignal.signal(signal.SIGXCPU, lambda *a: None)\nwhile True:\n    pass\n"
    result = await run_python(code, Limits(cpu_s=1, wall_s=60))
    assert result.killed_reason == "cpu_time" and result.exit_code == -9
    await still_works()


async def test_sleeping_forever_is_stopped_by_the_wall_time(still_works: StillWorks) -> None:
    result = await run_python("import time\nprint('started', flush=True)\ntime.sleep(600)\n", Limits(wall_s=1.5))
    assert result.timed_out and result.killed_reason == "wall_time" and result.exit_code is None
    assert result.stdout == "started\n"  # output up to the kill is kept
    assert result.duration_s < 10
    await still_works()


@HOOK
async def test_fork_bomb_hits_the_process_limit(audit_hook: bool, still_works: StillWorks) -> None:
    # children sleep instead of exiting, so the parent's count is the number of processes the uid could hold
    code = (
        "import os, time\n"
        "n = 0\n"
        "try:\n"
        "    while True:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(600)\n"
        "        n += 1\n"
        "except OSError as exc:\n"
        "    print(n, exc.errno, flush=True)\n"
    )
    result = await run_python(code, Limits(processes=12, wall_s=30, audit_hook=audit_hook))
    assert result.ok, result
    forked, errno = map(int, result.stdout.split())
    assert errno == 11 and forked < 12  # EAGAIN once the uid holds 12 processes
    await still_works()  # the sleeping children died with the sandbox


async def test_classic_fork_bomb_is_killed_at_the_wall_time(still_works: StillWorks) -> None:
    result = await run_python("import os\nwhile True:\n    os.fork()\n", Limits(wall_s=3, processes=16))
    assert result.killed_reason in ("wall_time", "cpu_time") or result.exit_code == 1, result
    assert result.duration_s < 15
    await still_works()


@HOOK
async def test_huge_allocation_fails_with_memory_error(audit_hook: bool, still_works: StillWorks) -> None:
    result = await run_python("x = bytearray(50 * 2**30)\nprint('allocated')\n",
                              Limits(memory_mb=256, audit_hook=audit_hook))
    assert result.killed_reason == "memory" and result.exit_code == 1
    assert "allocated" not in result.stdout and "MemoryError" in result.stderr
    growing = await run_python("x = []\nwhile True:\n    x.append(' ' * 2**20)\n", Limits(memory_mb=256))
    assert growing.killed_reason == "memory"
    await still_works()


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
async def test_huge_output_is_cut_and_the_program_killed(stream: str, still_works: StillWorks) -> None:
    code = f"import sys\nwhile True:\n    sys.{stream}.write('x' * 4096)\n"
    result = await run_python(code, Limits(output_bytes=10_000, wall_s=30))
    assert result.killed_reason == "output" and result.exit_code is None
    text = getattr(result, stream)
    assert len(text) == 10_000 and set(text) == {"x"}
    assert getattr(result, f"{stream}_truncated")
    assert result.duration_s < 10
    await still_works()


@HOOK
async def test_no_file_is_written_outside_the_working_directory(
    audit_hook: bool, tmp_path: Path, still_works: StillWorks
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(tmp_path, 0o755)
    os.chmod(shared, 0o777)  # writable by any uid: only the read-only file system stops the write
    targets = [tmp_path / "escape.txt", shared / "escape.txt", Path.home() / "ponder-sandbox-escape.txt",
               Path("/tmp") / f"ponder-sandbox-escape-{os.getpid()}.txt"]
    code = (
        "import os\n"
        f"for target in {[str(t) for t in targets]!r}:\n"
        "    try:\n"
        "        with open(target, 'w') as f:\n"
        "            f.write('escaped')\n"
        "        print('WROTE', target)\n"
        "    except OSError as exc:\n"
        "        print('refused', type(exc).__name__)\n"
        "with open('inside.txt', 'w') as f:\n"
        "    f.write('fine')\n"
        "print('inside', open('inside.txt').read(), os.getcwd())\n"
    )
    result = await run_python(code, Limits(audit_hook=audit_hook))
    assert result.ok, result
    assert "WROTE" not in result.stdout and result.stdout.count("refused") == len(targets)
    assert not any(t.exists() for t in targets)
    workdir = Path(result.stdout.split()[-1])
    assert "inside fine" in result.stdout and not workdir.exists()  # the throwaway directory is gone
    await still_works()


@HOOK
async def test_parent_environment_is_not_visible(
    audit_hook: bool, monkeypatch: pytest.MonkeyPatch, still_works: StillWorks
) -> None:
    secret = "ponder-sandbox-secret-4f1c"
    monkeypatch.setenv("PONDER_SANDBOX_SECRET", secret)
    code = (
        "import os\n"
        "print(dict(os.environ))\n"
        "for pid in os.listdir('/proc'):\n"
        "    if pid.isdigit():\n"
        "        try:\n"
        "            print(pid, open(f'/proc/{pid}/environ', 'rb').read())\n"
        "        except OSError as exc:\n"
        "            print(pid, 'refused', type(exc).__name__)\n"
    )
    result = await run_python(code, Limits(audit_hook=audit_hook))
    assert result.ok, result
    assert "PONDER_SANDBOX_SECRET" not in result.stdout and secret not in result.stdout + result.stderr
    assert "HOME" not in result.stdout and "PATH" not in result.stdout
    await still_works()


@HOOK
async def test_network_connect_to_a_local_listener_fails(audit_hook: bool, still_works: StillWorks) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        code = (
            "import socket\n"
            "try:\n"
            f"    s = socket.create_connection(('127.0.0.1', {port}), timeout=3)\n"
            "    s.sendall(b'hello')\n"
            "    print('CONNECTED')\n"
            "except OSError as exc:\n"
            "    print('refused', type(exc).__name__, exc.errno)\n"
        )
        result = await run_python(code, Limits(audit_hook=audit_hook, wall_s=20))
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody knocked
    assert result.ok and result.stdout.startswith("refused") and "CONNECTED" not in result.stdout
    if audit_hook:
        assert "PermissionError" in result.stdout
    else:
        assert result.stdout.split()[-1] == "101"  # ENETUNREACH: the namespace's loopback is down
    await still_works()


async def test_spawning_a_shell_is_refused_and_would_be_contained_anyway(tmp_path: Path) -> None:
    code = "import subprocess\nsubprocess.run(['sh', '-c', 'echo hi'])\n"
    hooked = await run_python(code)
    assert hooked.exit_code == 1 and "PermissionError" in hooked.stderr and "not allowed" in hooked.stderr
    # without the hook a shell runs, but as the sandbox uid, in the sandbox's namespaces, on a read-only system
    target = tmp_path / "from-shell.txt"
    code = f"import subprocess\nsubprocess.run(['sh', '-c', 'id -u; echo x > {target}'])\n"
    bare = await run_python(code, Limits(audit_hook=False))
    assert not target.exists()
    if os.geteuid() == 0:
        assert int(bare.stdout.split()[0]) != 0
