"""The process that runs math-verify, and the parent's handle on it.

math-verify bounds its work with ``signal.alarm``, which only works in a process's main thread, and sympy can
still hang or eat memory on hostile input. So checks run in a separate long-lived process, started with the
'spawn' method (no inherited threads or locks), which the parent can kill at its own deadline.

Protocol on a duplex Pipe: the worker sends ``("ready", pid)`` (or ``("error", message)``) once its imports are
done and one check has run (math-verify builds its LaTeX parser lazily, which must not eat the first real check's
deadline), then answers each ``("check", a, b)`` with ``("ok", bool)`` or ``("error", message)``.

The worker's address space is capped (``MEMORY_LIMIT_BYTES``): an answer that makes sympy build a huge number or
matrix fails that check with a MemoryError instead of pressing the machine into swap before the deadline.
"""

from __future__ import annotations

import os
import resource
import signal
import time
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any

from ponder.errors import PonderError

__all__ = ["WorkerCrashed", "WorkerProcess", "WorkerTimeout", "check_pair", "worker_main"]

DEBUG_ENV = "PONDER_ANSWERS_DEBUG"
"""Set to ``1`` to let workers accept the test-only ``sleep``, ``crash`` and ``alloc`` requests."""

STARTUP_TIMEOUT_S = 60.0  # importing sympy on a loaded machine can take seconds; never counted as a check
MEMORY_LIMIT_BYTES = 2 << 30  # a worker needs ~100 MB; this leaves room for big honest answers


class WorkerTimeout(Exception):
    """The worker did not answer within the deadline."""


class WorkerCrashed(Exception):
    """The worker's pipe closed: it died or was killed."""


# ---------------------------------------------------------------- child side


def _first_expr(parsed: list[Any]) -> Any:
    """The sympy object in a math-verify parse result (it also holds the matched string)."""
    from sympy import Basic
    from sympy.matrices import MatrixBase

    for item in parsed:
        if isinstance(item, (Basic, MatrixBase)):
            return item
    return None


def _is_assignment(eq: Any) -> bool:
    """``x = ...`` or ``f(x) = ...``: the left side only names what the right side gives."""
    from sympy import Symbol
    from sympy.core.function import AppliedUndef

    return isinstance(eq.lhs, (Symbol, AppliedUndef))


def _equations_equivalent(a: Any, b: Any) -> bool:
    """Two equations are the same iff ``lhs - rhs`` of one is a nonzero constant multiple of the other's.

    math-verify's own rule solves each equation for its free symbols, which has been seen to call different
    lines equal (``3x - y + 13 = 0`` vs ``3x + 4y + 14 = 0``); the multiple test is exact.
    """
    from sympy import nsimplify, simplify

    da = nsimplify(a.lhs - a.rhs, rational=True)
    db = nsimplify(b.lhs - b.rhs, rational=True)
    if da == 0 or db == 0:
        return bool(simplify(da) == 0 and simplify(db) == 0)
    ratio = simplify(da / db)
    return bool(not ratio.free_symbols and ratio.is_finite and ratio.is_zero is False)


def _equation_rule(ea: Any, eb: Any, verify_both: Any) -> bool | None:
    """Our own answer when an equation is involved, None to leave the pair to math-verify.

    math-verify's ``verify(gold, pred)`` unwraps a predicted equation to its right side ("2+3=5" matches 5), so
    calling it both ways would let the number 6 match the line ``2x + 3y = 6``. Here an equation matches a
    non-equation only when it is an assignment (``y = 2x+3`` vs ``2x+3``) or closed arithmetic (``2+3=5``).
    """
    from sympy import Eq, Set
    from sympy.core.relational import Relational
    from sympy.logic.boolalg import BooleanFunction

    a_eq, b_eq = isinstance(ea, Eq), isinstance(eb, Eq)
    if not (a_eq or b_eq):
        return None
    if a_eq and b_eq:
        if any(isinstance(side, Set) for side in (ea.lhs, ea.rhs, eb.lhs, eb.rhs)):
            return None  # "x \in [1, 3)" parses as Eq(x, Interval): set comparison is math-verify's job
        return _equations_equivalent(ea, eb)
    eq, other = (ea, eb) if a_eq else (eb, ea)
    if isinstance(other, (Relational, BooleanFunction)):
        return None  # inequalities, "a < x < b" chains: math-verify compares relations
    if _is_assignment(eq) or not eq.free_symbols:
        return bool(verify_both(eq.rhs, other))
    return False


def check_pair(a: str, b: str, timeout: int) -> bool:
    """Whether two normalised answers are mathematically equal, symmetric in ``a`` and ``b``.

    Both are parsed as LaTeX math (wrapped in ``$...$``: unwrapped, math-verify's text extraction would pick
    the last number out of ``3x + 4y + 14=0``). The pair is equal if ``verify`` accepts it in either order:
    the checker groups votes as well as grading, so it must not depend on argument order, and math-verify's
    asymmetries (assignment and set-vs-relation handling) are all leniencies towards the prediction.
    """
    from math_verify import parse, verify
    from math_verify.utils import timeout as mv_timeout

    pa = parse(f"${a}$", parsing_timeout=timeout)
    pb = parse(f"${b}$", parsing_timeout=timeout)
    if not pa or not pb:
        return False

    def verify_both(x: Any, y: Any) -> bool:
        return bool(
            verify(x, y, timeout_seconds=timeout) or verify(y, x, timeout_seconds=timeout)
        )

    ea, eb = _first_expr(pa), _first_expr(pb)
    if ea is not None and eb is not None:
        ruled = mv_timeout(timeout_seconds=timeout)(_equation_rule)(ea, eb, verify_both)
        if ruled is not None:
            return bool(ruled)
    return verify_both(pa, pb)


def worker_main(conn: Connection, timeout: int, debug_ops: bool) -> None:
    """Entry point of the worker process: answer requests until the pipe closes."""
    # Ctrl-C goes to the whole process group; the parent decides what happens, the worker stays quiet.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import logging

        import math_verify  # noqa: F401  (import cost paid before "ready", never inside a check's deadline)

        logging.getLogger("math_verify").setLevel(logging.CRITICAL)
        logging.getLogger("latex2sympy2_extended").setLevel(logging.CRITICAL)
        check_pair("x + 1", "1 + x", timeout)  # build the parser now, outside any check's deadline
    except Exception as exc:  # pragma: no cover - broken installation
        conn.send(("error", f"cannot import math-verify: {exc}"))
        return
    _limit_memory(MEMORY_LIMIT_BYTES)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return  # parent closed the pipe or died
        op = request[0]
        try:
            if op == "check":
                reply: tuple[str, Any] = ("ok", check_pair(request[1], request[2], timeout))
            elif op == "sleep" and debug_ops:
                time.sleep(float(request[1]))
                reply = ("ok", True)
            elif op == "crash" and debug_ops:
                os._exit(3)
            elif op == "alloc" and debug_ops:
                reply = ("ok", len(bytearray(int(request[1]))))
            else:
                reply = ("error", f"unknown request {op!r}")
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # math-verify's TimeoutException is a BaseException
            reply = ("error", f"{type(exc).__name__}: {exc}")
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


def _limit_memory(limit: int) -> None:
    """Cap the address space (where the platform allows it; a cap already lower is kept)."""
    try:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ValueError, OSError):  # pragma: no cover - platforms without RLIMIT_AS
        pass


# ---------------------------------------------------------------- parent side


class WorkerProcess:
    """One started worker: send a request, wait for the reply with a deadline, kill it."""

    def __init__(self, ctx: SpawnContext, inner_timeout: int, debug_ops: bool) -> None:
        parent_conn, child_conn = ctx.Pipe(duplex=True)
        self.process: SpawnProcess = ctx.Process(
            target=worker_main,
            args=(child_conn, inner_timeout, debug_ops),
            name="ponder-answer-check",
            daemon=True,  # multiprocessing terminates daemons at exit: a backstop to close()
        )
        self.process.start()
        child_conn.close()  # so the parent's end reports EOF as soon as the worker dies
        self.conn = parent_conn
        try:
            if not parent_conn.poll(STARTUP_TIMEOUT_S):
                raise PonderError(f"the answer-check worker did not start within {STARTUP_TIMEOUT_S:.0f} s")
            hello = parent_conn.recv()
        except (EOFError, OSError) as exc:
            self.kill()
            raise PonderError(
                "the answer-check worker exited while starting (if this is a script, guard its entry point "
                "with `if __name__ == '__main__':`)"
            ) from exc
        except PonderError:
            self.kill()
            raise
        if hello[0] != "ready":
            self.kill()
            raise PonderError(f"the answer-check worker failed to start: {hello[1]}")

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.is_alive()

    def request(self, message: tuple[Any, ...], timeout_s: float) -> tuple[str, Any]:
        """Send one request and wait for its reply; raises WorkerTimeout or WorkerCrashed."""
        try:
            self.conn.send(message)
            if not self.conn.poll(timeout_s):
                raise WorkerTimeout()
            reply: tuple[str, Any] = self.conn.recv()
        except (EOFError, OSError) as exc:  # OSError covers BrokenPipeError and a closed handle
            raise WorkerCrashed() from exc
        return reply

    def kill(self) -> None:
        """Kill the process and reap it (idempotent)."""
        try:
            if self.process.is_alive():
                self.process.kill()
            self.process.join(timeout=5)
        except (ValueError, AssertionError):  # already closed or never started
            pass
        self.conn.close()
