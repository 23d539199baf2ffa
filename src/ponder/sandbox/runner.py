"""Run model-written Python in a contained child process (see the package docstring for the guarantees)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
import sysconfig
import tempfile
import time
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ponder.errors import ConfigError

_BOOTSTRAP = (Path(__file__).with_name("_bootstrap.py")).read_text(encoding="utf-8")
SETUP_TIMEOUT_S = 60.0
"""Longest wait for a sandbox to start the program (interpreter start-up and mounts; slow only on a busy machine)."""
UID_BASE = 1_900_000_000
"""When ponder runs as root, sandbox slot ``k`` runs as uid/gid ``UID_BASE + k`` (no such user exists): a uid of its
own, so the process limit counts only that sandbox's processes and it owns no file outside its directory."""

Mode = Literal["namespaces", "process"]


@dataclass(frozen=True)
class Limits:
    """What one run may use. The defaults suit a short arithmetic program."""

    wall_s: float = 10.0
    """Wall-clock seconds from the program's start (after the sandbox is set up) until every process is killed."""
    cpu_s: int = 5
    """CPU seconds of the program process (RLIMIT_CPU; each process it forks has its own)."""
    memory_mb: int = 512
    """Address-space limit per process (RLIMIT_AS): allocations beyond it raise MemoryError."""
    output_bytes: int = 65_536
    """Bytes read from stdout and from stderr each; more kills the run (``killed_reason="output"``)."""
    file_mb: int = 16
    """Largest file the program may write (RLIMIT_FSIZE)."""
    processes: int = 16
    """Processes and threads the run's uid may have at once (RLIMIT_NPROC); stops fork bombs."""
    open_files: int = 64
    """Open file descriptors per process (RLIMIT_NOFILE)."""
    site_packages: bool = False
    """Let the program import ponder's installed packages (e.g. sympy), read-only. Off: standard library only."""
    audit_hook: bool = True
    """Install the interpreter-level guard. Turn off only to test that the kernel layers hold on their own."""

    def __post_init__(self) -> None:
        for name in ("wall_s", "cpu_s", "memory_mb", "output_bytes", "file_mb", "processes", "open_files"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"sandbox limit {name} must be positive, got {getattr(self, name)!r}")
        if self.memory_mb < 32:
            raise ConfigError(f"sandbox limit memory_mb must be at least 32 (Python itself needs it), got "
                              f"{self.memory_mb}")


@dataclass
class SandboxResult:
    """What a run produced. ``killed_reason`` says why ponder or the kernel stopped it, if it did:
    ``wall_time``, ``cpu_time``, ``output``, ``memory`` (MemoryError), ``signal:N``, ``setup`` (the sandbox could
    not be set up, so the code never ran) or ``error`` (the sandbox itself failed; see ``stderr``)."""

    stdout: str
    stderr: str
    exit_code: int | None
    timed_out: bool = False
    killed_reason: str | None = None
    duration_s: float = 0.0
    cpu_s: float | None = None
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    isolation: tuple[str, ...] = ()
    """The containment layers that were in force, e.g. ``("rlimits", "session", "pid-namespace", "net-namespace",
    "mount-namespace", "readonly-fs", "uid", "audit-hook")``."""
    writable_mounts: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """The program ran to completion and exited 0."""
        return self.exit_code == 0 and self.killed_reason is None


# ---- concurrency -------------------------------------------------------------------------------------------------

_max_concurrent = max(1, min(4, os.cpu_count() or 1))
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Queue[int]] = weakref.WeakKeyDictionary()


def set_max_concurrent(count: int) -> None:
    """Bound the number of sandboxes running at once (per event loop); the default is min(4, CPU count)."""
    global _max_concurrent
    if count < 1:
        raise ConfigError(f"sandbox concurrency must be at least 1, got {count}")
    _max_concurrent = count
    _slots.clear()


@asynccontextmanager
async def _slot() -> AsyncIterator[int]:
    """A free slot number; at most ``_max_concurrent`` runs hold one. (An asyncio primitive binds to one loop, so
    each event loop gets its own pool.)"""
    loop = asyncio.get_running_loop()
    pool = _slots.get(loop)
    if pool is None:
        pool = asyncio.Queue()
        for k in range(_max_concurrent):
            pool.put_nowait(k)
        _slots[loop] = pool
    slot = await pool.get()
    try:
        yield slot
    finally:
        pool.put_nowait(slot)


# ---- isolation mode ----------------------------------------------------------------------------------------------

_mode: Mode | None = None


def _unshare_command() -> list[str] | None:
    unshare = shutil.which("unshare") or next((p for p in ("/usr/bin/unshare", "/bin/unshare") if os.path.exists(p)),
                                              None)
    if unshare is None:
        return None
    user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    return [unshare, *user, "--net", "--pid", "--fork", "--kill-child", "--mount", "--mount-proc", "--"]


async def isolation_mode() -> Mode:
    """``namespaces`` when this machine lets ponder create PID, network and mount namespaces (as root, or through
    an unprivileged user namespace), else ``process`` (resource limits, a session and the audit hook only).
    Probed once per process."""
    global _mode
    if _mode is None:
        prefix = _unshare_command()
        works = False
        if prefix is not None:
            try:
                probe = await asyncio.create_subprocess_exec(
                    *prefix, sys.executable, "-I", "-S", "-c", "pass", env={}, stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
                works = await asyncio.wait_for(probe.wait(), 20) == 0
            except (OSError, TimeoutError):
                works = False
        _mode = "namespaces" if works else "process"
    return _mode


# ---- one run -----------------------------------------------------------------------------------------------------


@dataclass
class _Capture:
    limit: int
    data: bytearray = field(default_factory=bytearray)
    truncated: bool = False


async def run_python(code: str, limits: Limits | None = None) -> SandboxResult:
    """Run ``code`` as a Python program in a fresh sandbox and return what it printed and how it ended.

    Never raises because of what the code does (hostile code gets a ``SandboxResult`` with ``killed_reason``), never
    blocks the event loop, and waits for a free slot when ``set_max_concurrent`` sandboxes are already running.
    Cancelling the awaiting task kills the run.
    """
    limits = limits or Limits()
    async with _slot() as slot:
        return await _run(code, limits, slot)


async def _run(code: str, limits: Limits, slot: int) -> SandboxResult:
    start = time.monotonic()
    mode = await isolation_mode()
    root = os.geteuid() == 0
    extra_paths = _site_packages() if limits.site_packages else []
    try:
        base = await asyncio.to_thread(_prepare, code)
    except (OSError, ValueError) as exc:
        return SandboxResult("", f"sandbox: could not prepare a working directory: {exc}", None,
                             killed_reason="error")
    try:
        uid = UID_BASE + slot if root else None
        binds: list[list[str]] = []
        if uid is not None:
            if mode == "namespaces":
                # an unprivileged uid may not reach the interpreter's files (e.g. under /root): bind them into view
                for k, source in enumerate([sys.base_prefix, *extra_paths]):
                    target = base / f"py{k}"
                    target.mkdir()
                    binds.append([source, str(target)])
                extra_paths = [target for _, target in binds[1:]]
            elif not all(_world_readable(p) for p in [sys.base_prefix, *extra_paths]):
                uid = None  # without a mount namespace the interpreter would be out of its reach: stay root, say so
            if uid is not None:
                await asyncio.to_thread(os.chown, base / "work", uid, uid)
        return await _execute(base, limits, mode, uid, binds, extra_paths, start)
    except Exception as exc:  # the sandbox itself failed (e.g. cannot start a process): report, do not raise
        return SandboxResult("", f"sandbox: {type(exc).__name__}: {exc}", None, killed_reason="error",
                             duration_s=time.monotonic() - start)
    finally:
        await asyncio.to_thread(_remove, base)


def _prepare(code: str) -> Path:
    base = Path(tempfile.mkdtemp(prefix="ponder-sandbox-"))
    base.chmod(0o711)  # the sandbox uid may pass through, not list or write
    work = base / "work"
    work.mkdir(mode=0o700)
    (work / "main.py").write_text(code, encoding="utf-8", errors="replace")  # model text may hold lone surrogates
    return base


def _remove(base: Path) -> None:
    def retry_writable(func: Any, path: str, _exc: Any) -> None:
        # the program may have made files or directories read-only; ponder still deletes them
        with suppress(OSError):
            os.chmod(os.path.dirname(path), 0o700)
            os.chmod(path, 0o700)
            func(path)

    shutil.rmtree(base, onerror=retry_writable)


def _site_packages() -> list[str]:
    paths = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    return sorted(p for p in paths if os.path.isdir(p))


def _world_readable(path: str) -> bool:
    """Whether a uid with no relation to the files may walk down to ``path``."""
    current = Path(path).resolve()
    return all(part.stat().st_mode & 0o001 for part in [current, *current.parents])


def _config(base: Path, limits: Limits, mode: Mode, uid: int | None, binds: list[list[str]],
            extra_paths: list[str], status_fd: int) -> str:
    return json.dumps({
        "workdir": str((base / "work").resolve()),
        "status_fd": status_fd,
        "lock_fs": mode == "namespaces",
        "binds": binds,
        "uid": uid,
        "drop_caps": mode == "namespaces" and uid is None,  # uid 0 of a user namespace: shed its capabilities
        "extra_paths": extra_paths,
        "audit": limits.audit_hook,
        "limits": {
            "cpu_s": limits.cpu_s,
            "memory_bytes": limits.memory_mb * 2**20,
            "file_bytes": limits.file_mb * 2**20,
            "processes": limits.processes,
            "open_files": limits.open_files,
        },
    })


async def _execute(base: Path, limits: Limits, mode: Mode, uid: int | None, binds: list[list[str]],
                   extra_paths: list[str], start: float) -> SandboxResult:
    # Plain pipes rather than asyncio's PIPE: asyncio's wait() also waits for the pipes to close, which a process
    # that left the session could delay forever.
    pipes = [os.pipe() for _ in range(3)]  # stdout, stderr, status
    (out_read, out_write), (err_read, err_write), (status_read, status_write) = pipes
    try:
        config = _config(base, limits, mode, uid, binds, extra_paths, status_write)
        prefix = (_unshare_command() or []) if mode == "namespaces" else []
        command = [*prefix, sys.executable, "-I", "-S", "-B", "-X", "utf8", "-c", _BOOTSTRAP, config]
        process = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.DEVNULL, stdout=out_write, stderr=err_write, env={},
            cwd=base / "work", start_new_session=True, pass_fds=(status_write,))
    except BaseException:
        for fd in (out_read, err_read, status_read):
            os.close(fd)
        raise
    finally:
        for fd in (out_write, err_write, status_write):
            os.close(fd)
    stdout, stderr = _Capture(limits.output_bytes), _Capture(limits.output_bytes)
    status = _Capture(2**16)
    killed: list[str] = []

    def kill(reason: str | None) -> None:
        if reason is not None and not killed:
            killed.append(reason)
        # The whole session: unshare, the sandbox's pid 1 (whose death ends its PID namespace) and the program.
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)

    def too_much_output() -> None:
        kill("output")

    started = asyncio.Event()

    def status_arrived() -> None:
        if b'"setup"' in status.data:
            started.set()

    transports: list[asyncio.BaseTransport] = []
    readers: list[asyncio.Task[None]] = []
    unread = [out_read, err_read, status_read]
    try:
        for capture, overflow, arrived in ((stdout, too_much_output, None), (stderr, too_much_output, None),
                                           (status, None, status_arrived)):
            reader, transport = await _reader(unread.pop(0))
            transports.append(transport)
            readers.append(asyncio.create_task(_drain(reader, capture, overflow, arrived)))
        await _wait_for_program(process, started, limits.wall_s, kill)
        kill(None)  # whatever the program left running in its session (a PID namespace is already gone)
        await process.wait()
        await asyncio.wait(readers, timeout=2.0)  # only a process that left the session can hold a pipe this long
    finally:
        if process.returncode is None:  # cancelled while waiting
            kill("cancelled")
            with suppress(ProcessLookupError):
                await asyncio.shield(process.wait())
        for task in readers:
            task.cancel()
        for transport in transports:
            transport.close()
        for fd in unread:
            os.close(fd)
    return _result(stdout, stderr, _parse_status(status), killed[0] if killed else None, mode, uid, limits, start)


async def _wait_for_program(process: asyncio.subprocess.Process, started: asyncio.Event, wall_s: float,
                            kill: Callable[[str | None], None]) -> None:
    """Wait for the sandbox to exit; kill it ``wall_s`` after the program started (its setup report), or
    ``SETUP_TIMEOUT_S`` after launch if it never gets that far. Setup time (interpreter start, mounts) does not
    count against the program, so a busy machine does not eat into its time."""
    exited = asyncio.ensure_future(process.wait())
    began = asyncio.ensure_future(started.wait())
    try:
        done, _ = await asyncio.wait({exited, began}, timeout=SETUP_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
        if not done:
            kill("wall_time")
        elif not exited.done():
            try:
                await asyncio.wait_for(asyncio.shield(exited), timeout=wall_s)
            except TimeoutError:
                kill("wall_time")
    finally:
        exited.cancel()
        began.cancel()


async def _reader(fd: int) -> tuple[asyncio.StreamReader, asyncio.BaseTransport]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                                os.fdopen(fd, "rb", buffering=0))
    return reader, transport


async def _drain(stream: asyncio.StreamReader, capture: _Capture, overflow: Callable[[], None] | None,
                 arrived: Callable[[], None] | None) -> None:
    """Keep at most ``capture.limit`` bytes; call ``overflow`` (which kills the run) on the first byte beyond and
    ``arrived`` after each chunk."""
    while chunk := await stream.read(65_536):
        room = capture.limit - len(capture.data)
        capture.data += chunk[:room]
        if arrived is not None:
            arrived()
        if len(chunk) > room:
            capture.truncated = True
            if overflow is not None:
                overflow()
            return


def _parse_status(status: _Capture) -> list[dict[str, Any]]:
    """The JSON lines written by the sandbox's bootstrap: file system lock, setup report, the program's exit."""
    lines = []
    for line in status.data.decode("utf-8", "replace").splitlines():
        with suppress(ValueError):
            lines.append(json.loads(line))
    return [entry for entry in lines if isinstance(entry, dict)]


def _result(stdout: _Capture, stderr: _Capture, status: list[dict[str, Any]], killed: str | None, mode: Mode,
            uid: int | None, limits: Limits, start: float) -> SandboxResult:
    setup = next((s for s in status if "setup" in s), {})
    final = next((s for s in status if "exit_code" in s), {})
    locked = next((s for s in status if "writable_mounts" in s), {})
    err = stderr.data.decode("utf-8", "replace")
    exit_code: int | None = final.get("exit_code")
    layers = ["rlimits", "session", "empty-env"]
    if mode == "namespaces":
        layers += ["pid-namespace", "net-namespace", "mount-namespace"]
        if locked and not locked["writable_mounts"]:
            layers.append("readonly-fs")
    layers += setup.get("layers", [])
    reason = killed
    if reason is None and setup.get("setup") not in (None, "ok"):
        reason = "setup"
        err = f"sandbox setup failed, the code did not run: {setup['setup']}\n{err}"
    elif reason is None and exit_code is None:
        reason = "error"  # the bootstrap died before reporting
    elif reason is None and exit_code is not None and exit_code < 0:
        sig = -exit_code
        # SIGXCPU comes at the soft CPU limit; SIGKILL at the hard one (one second on) if SIGXCPU was caught
        hard_limit_hit = sig == signal.SIGKILL and (final.get("cpu_s") or 0) >= limits.cpu_s
        reason = "cpu_time" if sig == signal.SIGXCPU or hard_limit_hit else f"signal:{sig}"
    elif reason is None and exit_code == 1 and "MemoryError" in "\n".join(err.splitlines()[-3:]):
        reason = "memory"
    return SandboxResult(
        stdout=stdout.data.decode("utf-8", "replace"),
        stderr=err,
        exit_code=exit_code if killed is None else None,
        timed_out=killed == "wall_time",
        killed_reason=reason,
        duration_s=time.monotonic() - start,
        cpu_s=final.get("cpu_s"),
        stdout_truncated=stdout.truncated,
        stderr_truncated=stderr.truncated,
        isolation=tuple(layers),
        writable_mounts=list(locked.get("writable_mounts", [])),
    )
