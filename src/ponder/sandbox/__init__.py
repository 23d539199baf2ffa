"""A sandbox for model-written Python: ``await run_python(code, Limits(...)) -> SandboxResult``.

Model output is untrusted, so ponder never runs it in its own interpreter. Each run gets a fresh child process in
a throwaway working directory (deleted afterwards) with an empty environment, started as ``python -I -S -B``
(no ``PYTHON*`` variables, no user or site directories, no bytecode writes). What each layer guarantees:

Kernel-enforced, always:
- **rlimits** on the program: CPU seconds (SIGXCPU, then SIGKILL), address space (allocations fail with
  MemoryError), file size, open files, no core dumps, and a process/thread count (RLIMIT_NPROC) that stops fork
  bombs. RLIMIT_NPROC counts per uid and does not bind root, so it only holds where the program is not real root:
  as root, ponder switches the program to a uid of its own (below); as a normal user, it counts within the user
  namespace.
- **wall time and output**: ponder kills the whole session (process group) when the wall time runs out or a
  stream exceeds its byte limit, and always after the program exits, so nothing keeps running.

Kernel-enforced when ``isolation_mode()`` is ``namespaces`` (``unshare`` works here: as root directly, as a normal
user through an unprivileged user namespace); ``SandboxResult.isolation`` lists what applied to a run:
- **pid-namespace**: the program cannot see or signal ponder's processes, and when the sandbox's pid 1 exits or is
  killed the kernel kills every process in it, including ones that left the session.
- **net-namespace**: no network interface but a loopback that is down: no connection to anything, local or remote.
- **mount-namespace + readonly-fs**: every mount is remounted read-only except the working directory (and /proc is
  the sandbox's own), so no file outside it can be written, whatever the permissions.
- **uid** (ponder running as root): the program runs as uid/gid ``UID_BASE + slot`` with no groups, so it has no
  capabilities and owns no file outside its directory; the interpreter's files are bind-mounted read-only where
  that uid can reach them. **no-capabilities** (normal user): the program gives up every capability of its user
  namespace for good, so it cannot undo the read-only mounts. Both set ``no_new_privs``.

Interpreter-level, best effort (``Limits.audit_hook``): a PEP 578 audit hook refuses sockets, process spawning
(``subprocess``, ``os.system``, ``os.exec*``, ``posix_spawn``; ``fork`` stays allowed), ctypes calls (loading a
library, calling a foreign function, reading raw memory), signals to other
processes, reading other processes' ``/proc`` entries, and writes, renames and deletions outside the working
directory. Audit hooks are not a security boundary against native code or interpreter bugs; they make the common
cases fail fast with a clear PermissionError and are the only network/file guard in ``process`` mode.

Not covered: the disk space of the working directory beyond the per-file limit, CPU used by many processes
together (each has its own CPU limit; the wall time bounds the total), and, in ``process`` mode, network, files
writable by ponder's user, and processes that leave the session.
"""

from ponder.sandbox.runner import (
    UID_BASE,
    Limits,
    SandboxResult,
    isolation_mode,
    run_python,
    set_max_concurrent,
)

__all__ = ["UID_BASE", "Limits", "SandboxResult", "isolation_mode", "run_python", "set_max_concurrent"]
