"""The sandbox as most users run it: ponder started by a normal user, containment through a user namespace.

The test suite may run as root (as in CI containers), so this test starts a separate ponder process as an
unprivileged uid (``setpriv``) and checks the containments there with the audit hook off, i.e. the kernel layers
alone: read-only file system (even for a directory the user owns), no capability to undo it, the process limit
inside the user namespace, no network, no parent environment, the CPU limit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

USER = 4242  # any uid other than root; no account is needed
SRC = Path(__file__).resolve().parents[2] / "src"

CHECKS = r"""
import asyncio, json, os, sys
sys.path.insert(0, SRC)
from ponder.sandbox import Limits, isolation_mode, run_python

REMOUNT = '''
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
ok = libc.mount(None, b"/", None, 32 | 4096, None)  # MS_REMOUNT | MS_BIND, i.e. make / writable again
print(ok, ctypes.get_errno())
try:
    open(os.path.join(OWNED, "escape.txt"), "w").write("x")
    print("WROTE")
except OSError as exc:
    print("refused", exc.errno)
'''.replace("OWNED", repr(OWNED))
FORK = '''
import os, time
n = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(600)
        n += 1
except OSError as exc:
    print(n, exc.errno)
'''
NET = '''
import socket
try:
    socket.create_connection(("127.0.0.1", 22), timeout=2)
    print("CONNECTED")
except OSError as exc:
    print("refused", exc.errno)
'''

async def main():
    bare = Limits(audit_hook=False, wall_s=30)
    out = {"mode": await isolation_mode(), "uid": os.getuid()}
    for name, code, limits in [
        ("remount", REMOUNT, bare),
        ("fork", FORK, Limits(audit_hook=False, wall_s=30, processes=10)),
        ("net", NET, bare),
        ("env", "import os; print(sorted(os.environ))", bare),
        ("cpu", "while True: pass", Limits(audit_hook=False, wall_s=60, cpu_s=1)),
    ]:
        r = await run_python(code, limits)
        out[name] = {"stdout": r.stdout, "stderr": r.stderr[-500:], "killed": r.killed_reason,
                     "isolation": list(r.isolation)}
    print(json.dumps(out))

asyncio.run(main())
"""


@pytest.fixture
def unprivileged_python() -> Iterator[tuple[Path, Path]]:
    """A copy of this interpreter reachable by ``USER`` (bind-mounted in a private mount namespace), and a directory
    that ``USER`` owns."""
    if os.geteuid() != 0:
        pytest.skip("already unprivileged: the other sandbox tests cover this mode")
    if not (shutil.which("setpriv") and shutil.which("unshare")):
        pytest.skip("needs setpriv and unshare")
    if not all(p.stat().st_mode & 0o001 for p in [SRC, *SRC.parents]):
        pytest.skip(f"{SRC} is not reachable by other users")
    base = Path(tempfile.mkdtemp(prefix="ponder-unpriv-"))
    try:
        base.chmod(0o755)
        (base / "py").mkdir()
        owned = base / "owned"
        owned.mkdir()
        os.chown(owned, USER, USER)
        yield base, owned
    finally:
        shutil.rmtree(base)


def test_kernel_layers_hold_for_an_unprivileged_user(unprivileged_python: tuple[Path, Path]) -> None:
    base, owned = unprivileged_python
    script = base / "checks.py"
    script.write_text(f"SRC = {str(SRC)!r}\nOWNED = {str(owned)!r}\n" + CHECKS)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    python = base / "py" / Path(sys.base_prefix).name / "bin" / f"python{version}"
    (base / "py" / Path(sys.base_prefix).name).mkdir()
    inner = (f"mount --bind {sys.base_prefix} {python.parents[1]} && exec setpriv --reuid {USER} --regid {USER} "
             f"--clear-groups env -i PONDER_SANDBOX_SECRET=unprivileged-secret {python} -I -S {script}")
    done = subprocess.run(["unshare", "--mount", "--", "sh", "-c", inner], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if out["mode"] != "namespaces":
        pytest.skip("unprivileged user namespaces are disabled on this machine")
    assert out["uid"] == USER
    remount = out["remount"]
    assert {"no-capabilities", "readonly-fs", "pid-namespace", "net-namespace"} <= set(remount["isolation"])
    assert "uid" not in remount["isolation"]
    code, errno = map(int, remount["stdout"].split()[:2])
    assert code == -1 and errno == 1, remount  # EPERM: the program cannot make the file system writable again
    assert "refused 30" in remount["stdout"] and not (owned / "escape.txt").exists()  # EROFS, though USER owns it
    forked, errno = map(int, out["fork"]["stdout"].split())
    assert errno == 11 and forked < 10, out["fork"]
    assert out["net"]["stdout"].strip() == "refused 101", out["net"]
    assert "PONDER_SANDBOX_SECRET" not in out["env"]["stdout"]
    assert out["cpu"]["killed"] == "cpu_time"
