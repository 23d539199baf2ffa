"""The sandbox's first code: runs inside the child interpreter before any model-written code.

ponder passes this file's source to ``python -I -S -B -c`` with one JSON argument (see ``runner._config``). It is
trusted code and imports only the standard library (it must not import ponder). As the sandbox's pid 1 (inside a
new PID namespace) or as the top process (fallback mode) it

1. (namespace mode) makes the file system read-only except the working directory, after bind-mounting the Python
   installation where an unprivileged uid can reach it;
2. forks the *program* process and waits, reaping every orphan, until the program exits; then it reports the exit
   status and CPU time on a status pipe and exits, which (in a PID namespace) kills every process left behind.

The program process, before running the model's code, sets the resource limits, drops privileges (switches to the
run's unprivileged uid when started as root, or drops every capability inside a user namespace), sets
``no_new_privs``, points ``sys.path`` at the reachable copy of the standard library and installs an audit hook
that refuses network, process spawning, ctypes and writes outside the working directory.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from typing import Any

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
_MOUNT_FLAGS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC, "noatime": MS_NOATIME,
                "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME, "strictatime": MS_STRICTATIME}

PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
# SECBIT_NOROOT, SECBIT_NO_SETUID_FIXUP and SECBIT_KEEP_CAPS_LOCKED with their locks: exec never regains root caps.
SECUREBITS_LOCKED_DOWN = 0x01 | 0x02 | 0x04 | 0x08 | 0x20

SETUP_FAILED = 125  # program exit status when the sandbox could not be set up (the model's code never ran)


def _libc() -> Any:
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        import ctypes

        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(libc: Any, source: str | None, target: str, flags: int) -> None:
    src = source.encode() if source is not None else None
    _check(libc.mount(src, target.encode(), None, flags, None), f"mount {target}")


def _unescape(field: str) -> str:
    """Mount points in mountinfo escape space, tab, newline and backslash as octal."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def lock_filesystem(workdir: str, binds: list[list[str]]) -> list[str]:
    """Bind ``binds`` (source, target) read-only, keep ``workdir`` writable, remount every other mount read-only.

    Returns the mount points that could not be made read-only (empty when the whole file system is locked).
    """
    libc = _libc()
    _mount(libc, None, "/", MS_REC | MS_PRIVATE)  # nothing done here may leak out of this mount namespace
    for source, target in binds:
        _mount(libc, source, target, MS_BIND | MS_REC)
    _mount(libc, workdir, workdir, MS_BIND)  # its own mount, so it can stay writable
    failed = []
    with open("/proc/self/mountinfo") as info:
        mounts = [line.split() for line in info]
    for fields in mounts:
        point = _unescape(fields[4])
        if point == workdir:
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for option in fields[5].split(","):
            flags |= _MOUNT_FLAGS.get(option, 0)  # keep (possibly locked) per-mount flags, or remount fails
        try:
            _mount(libc, None, point, flags)
        except OSError:
            failed.append(point)
    return failed


def _set_limits(limits: dict[str, int]) -> None:
    cpu = limits["cpu_s"]
    # SIGXCPU at the soft limit, SIGKILL one second later in case the program catches SIGXCPU.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits["memory_bytes"],) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_bytes"],) * 2)
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["processes"],) * 2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits["open_files"],) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _drop_capabilities(libc: Any) -> None:
    """Inside a user namespace the program is uid 0 with every capability there: give them all up for good."""
    import ctypes

    _check(libc.prctl(PR_SET_SECUREBITS, SECUREBITS_LOCKED_DOWN, 0, 0, 0), "securebits")
    cap = 0
    while libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
        cap += 1
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    header = Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (Data * 2)()
    _check(libc.capset(ctypes.byref(header), data), "capset")


def _drop_privileges(config: dict[str, Any]) -> list[str]:
    layers = []
    libc = _libc()  # load ctypes while the standard library is still reachable
    uid = config["uid"]
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        if os.getuid() != uid or os.geteuid() != uid:
            raise OSError("uid switch did not take")
        layers.append("uid")
    if config["drop_caps"]:
        _drop_capabilities(libc)
        layers.append("no-capabilities")
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    for name in [m for m in sys.modules if m == "ctypes" or m.startswith(("ctypes.", "_ctypes"))]:
        del sys.modules[name]  # so the program's own ``import ctypes`` meets the audit hook
    return layers


_BLOCKED_PREFIXES = ("socket.", "ctypes.", "subprocess.", "os.exec", "os.posix_spawn", "os.spawn", "os.system",
                     "os.forkpty", "pty.", "os.startfile", "winreg.", "webbrowser.", "urllib.", "http.", "ftplib.",
                     "smtplib.", "imaplib.", "poplib.", "nntplib.", "telnetlib.", "os.add_dll_directory")
# Spawning programs gets around the hook, so that module cannot even be imported. ctypes may be imported (numpy does),
# but loading a library other than the interpreter itself, looking up symbols, calling foreign functions and
# reading raw memory are refused.
_BLOCKED_IMPORTS = frozenset({"_posixsubprocess", "_testcapi", "_xxsubinterpreters"})
_PATH_EVENTS = {"os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1), "os.chmod": (0,),
                "os.chown": (0,), "os.link": (0, 1), "os.symlink": (1,), "os.truncate": (0,), "os.utime": (0,),
                "os.chflags": (0,), "os.mkfifo": (0,), "os.mknod": (0,), "os.setxattr": (0,),
                "os.removexattr": (0,), "shutil.rmtree": (0,), "shutil.copyfile": (1,), "shutil.copytree": (1,),
                "shutil.move": (1,), "shutil.make_archive": (0,), "shutil.unpack_archive": (1,)}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def make_audit_hook(workdir: str) -> Any:
    """An audit hook (PEP 578) that refuses what a math program never needs. Best effort: the kernel layers are
    what hold if a program finds a way around it (audit hooks are not a security boundary against native code,
    which is why ctypes and process spawning are refused)."""
    realpath = os.path.realpath
    fspath = os.fspath
    busy = [False]

    def inside(path: Any) -> bool:
        if isinstance(path, int):
            return True  # an already open descriptor
        resolved = realpath(fspath(path))
        return resolved == workdir or resolved.startswith(workdir + os.sep) or resolved == os.devnull

    def refuse(event: str) -> None:
        raise PermissionError(f"sandbox: {event} is not allowed")

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if busy[0]:
            return
        busy[0] = True
        try:
            if event == "ctypes.dlopen" and args[0] is None:
                pass  # ``import ctypes`` opens the running interpreter (ctypes.pythonapi); calling into it is refused
            elif event.startswith(_BLOCKED_PREFIXES):
                refuse(event)
            elif event == "import" and args[0] in _BLOCKED_IMPORTS:
                refuse(f"import of {args[0]}")
            elif event == "open":
                path, mode, flags = args
                writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                    mode is None and isinstance(flags, int) and flags & _WRITE_FLAGS)
                if writing and not inside(path):
                    refuse(f"writing {path!r} outside the working directory")
                if isinstance(path, str | bytes):
                    text = os.fsdecode(realpath(fspath(path)))
                    if text.startswith("/proc/") and not text.startswith(f"/proc/{os.getpid()}/"):
                        refuse(f"reading {path!r}")  # other processes' environment and command lines
            elif event in _PATH_EVENTS:
                for position in _PATH_EVENTS[event]:
                    if position < len(args) and args[position] is not None and not inside(args[position]):
                        refuse(f"{event} on {args[position]!r} outside the working directory")
            elif event in ("os.kill", "os.killpg") and args[0] not in (os.getpid(), 0):
                refuse(event)
        finally:
            busy[0] = False

    return hook


def _run_program(config: dict[str, Any], status_fd: int) -> None:
    """The program process: lock itself down, report, run the model's code. Never returns."""
    report: dict[str, Any] = {}
    try:
        _set_limits(config["limits"])
        layers = _drop_privileges(config)
        _point_imports_at(config["binds"], config["extra_paths"])
        if config["audit"]:
            sys.addaudithook(make_audit_hook(config["workdir"]))
            layers.append("audit-hook")
        report = {"setup": "ok", "layers": layers}
    except BaseException as exc:  # a half-locked sandbox must not run the code
        report = {"setup": f"{type(exc).__name__}: {exc}"}
    os.write(status_fd, (json.dumps(report) + "\n").encode())
    os.close(status_fd)
    if report["setup"] != "ok":
        os._exit(SETUP_FAILED)
    sys.argv = ["main.py"]
    with open("main.py", encoding="utf-8") as source:
        code = compile(source.read(), "main.py", "exec")
    namespace = {"__name__": "__main__", "__file__": "main.py", "__builtins__": __builtins__}
    try:
        exec(code, namespace)
    except SystemExit:
        raise
    except BaseException as exc:
        namespace.clear()  # after a MemoryError, the program's data must go before the report can be formatted
        import traceback

        # the traceback starts at the model's code, not at this file
        traceback.print_exception(exc.with_traceback(exc.__traceback__.tb_next if exc.__traceback__ else None))
        raise SystemExit(1) from None
    raise SystemExit(0)


def _point_imports_at(binds: list[list[str]], extra_paths: list[str]) -> None:
    """Import from the bind-mounted copies: sys.path, and the search path of every package already imported (the
    interpreter imported ``encodings`` at startup; its codecs load later, from its ``__path__``)."""
    sys.path[:] = [_remap(p, binds) for p in sys.path] + extra_paths
    for module in list(sys.modules.values()):
        path = getattr(module, "__path__", None)
        if isinstance(path, list):
            path[:] = [_remap(p, binds) for p in path]
    sys.path_importer_cache.clear()


def _remap(path: str, binds: list[list[str]]) -> str:
    for source, target in binds:
        if path == source or path.startswith(source + os.sep):
            return target + path[len(source):]
    return path


def main() -> None:
    config = json.loads(sys.argv[1])
    status_fd = config["status_fd"]
    if config["lock_fs"]:
        try:
            writable = lock_filesystem(config["workdir"], config["binds"])
        except OSError as exc:
            os.write(status_fd, (json.dumps({"setup": f"file system lock failed: {exc}"}) + "\n").encode())
            os._exit(SETUP_FAILED)
        os.write(status_fd, (json.dumps({"writable_mounts": writable}) + "\n").encode())
    os.chdir(config["workdir"])
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        _run_program(config, status_fd)
    # The waiting parent: pid 1 of the sandbox when it has its own PID namespace, so it reaps orphans too.
    while True:
        try:
            child, wait_status, usage = os.wait4(-1, 0)
        except ChildProcessError:
            os._exit(0)
        except InterruptedError:
            continue
        if child == pid:
            break
    status = {"exit_code": os.waitstatus_to_exitcode(wait_status), "cpu_s": round(usage.ru_utime + usage.ru_stime, 4),
              "max_rss_kb": usage.ru_maxrss}
    os.write(status_fd, (json.dumps(status) + "\n").encode())
    os._exit(0)


if __name__ == "__main__":
    main()
