"""Answer equivalence: the case corpus, the fast path, and the worker pool's timeouts, crashes and cleanup."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ponder.answers import AnswerChecker, check_math, extract_answer, get_checker
from ponder.answers.worker import DEBUG_ENV
from ponder.errors import ConfigError, PonderError
from ponder.types import Problem

CASES_FILE = Path(__file__).resolve().parents[1] / "data" / "answer_cases.json"
HANG = ("10^{10^{10}}", "1")  # sympy really tries to build 10**(10**10): a genuine hang, not a mock


def load_cases(kind: str) -> list[Any]:
    cases = [case for case in json.loads(CASES_FILE.read_text()) if case["kind"] == kind]
    return [pytest.param(case, id=case["id"]) for case in cases]


@pytest.fixture(scope="module")
def checker() -> Iterator[AnswerChecker]:
    with AnswerChecker(timeout_s=10.0, workers=2) as shared:
        yield shared


def _dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # still in the process table: only acceptable as an unreaped zombie
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _wait_dead(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _dead(pid):
            return True
        time.sleep(0.02)
    return False


# ---------------------------------------------------------------- corpus


@pytest.mark.parametrize("case", load_cases("equiv"))
async def test_equivalence_corpus(checker: AnswerChecker, case: dict[str, Any]) -> None:
    # Symmetric by design: grading and vote grouping must not depend on argument order.
    assert await checker.equivalent(case["a"], case["b"]) is case["equivalent"]
    assert await checker.equivalent(case["b"], case["a"]) is case["equivalent"]


@pytest.mark.parametrize("case", load_cases("grade"))
async def test_grading_corpus(checker: AnswerChecker, case: dict[str, Any]) -> None:
    answer = extract_answer(case["text"])
    assert await checker.equivalent(answer, case["gold"]) is case["correct"]


def test_sync_api_matches(checker: AnswerChecker) -> None:
    assert checker.equivalent_sync("x^2+2x+1", "(x+1)^2") is True
    assert checker.equivalent_sync("3*x-1*y+13=0", "3x + 4y + 14=0") is False
    assert checker.equivalent_sync("0.5", "\\frac{1}{2}") is True


async def test_none_is_never_equivalent(checker: AnswerChecker) -> None:
    assert await checker.equivalent(None, None) is False
    assert await checker.equivalent(None, "1") is False
    assert await checker.equivalent("1", None) is False
    assert await checker.equivalent("", "") is False
    assert checker.equivalent_sync(None, "x") is False


async def test_check_math_uses_problem_gold() -> None:
    problem = Problem(id="p", messages=[{"role": "user", "content": "1/2?"}], gold="\\frac{1}{2}",
                      checker=check_math, extract=extract_answer)
    assert await check_math("0.5", problem) is True
    assert await check_math("2", problem) is False
    assert await check_math(None, problem) is False
    assert get_checker() is get_checker()


# ---------------------------------------------------------------- fast path and cache


async def test_fast_path_starts_no_worker() -> None:
    with AnswerChecker() as fresh:
        pairs = [("0.5", "\\frac{1}{2}", True), ("1,000", "1000", True), ("\\frac{1}{2}", "2", False),
                 ("10", "100", False), ("\\text{Evelyn}", "Evelyn", True), ("90^\\circ", "90", True),
                 ("\\$18", "18.00", True), ("50\\%", "50", True), ("east", "west", False),
                 ("0.333333", "1/3", True), ("3", "3.0000001", False), ("1\\frac{4}{5}", "1.8", True)]
        for a, b, expected in pairs:
            assert await fresh.equivalent(a, b) is expected, (a, b)
        assert fresh.workers_started == 0
        assert fresh.worker_pids() == []
        assert fresh.slow_checks == 0


async def test_cache_is_symmetric_and_cache_hits_start_no_worker() -> None:
    with AnswerChecker() as fresh:
        assert await fresh.equivalent("x^2+2x+1", "(x+1)^2") is True
        assert fresh.workers_started == 1
        (pid,) = fresh.worker_pids()
        os.kill(pid, signal.SIGKILL)
        assert _wait_dead(pid)
        # Same pair, other order and other spelling: answered from the cache, so no worker is started.
        assert await fresh.equivalent("(x + 1)^2", "x^2 + 2x + 1") is True
        assert fresh.cache_hits == 1
        assert fresh.workers_started == 1
        assert fresh.slow_checks == 1


def test_cache_is_bounded() -> None:
    with AnswerChecker(cache_size=2) as small:
        for k in range(3):
            assert small.equivalent_sync(f"x+{k}", f"{k}+x") is True
        assert len(small._cache) == 2
        assert small.slow_checks == 3


async def test_identical_concurrent_checks_share_one_run() -> None:
    with AnswerChecker() as fresh:
        results = await asyncio.gather(*(fresh.equivalent("\\sqrt{2}/2", "\\frac{\\sqrt{2}}{2}") for _ in range(10)))
        assert results == [True] * 10
        assert fresh.slow_checks == 1


async def test_fifty_concurrent_tasks_get_right_answers(checker: AnswerChecker) -> None:
    base = [
        ("x^2+2x+1", "(x+1)^2", True), ("\\sqrt{8}", "2\\sqrt{2}", True), ("(1,2)", "(2,1)", False),
        ("3*x-1*y+13=0", "3x + 4y + 14=0", False), ("0.5", "\\frac{1}{2}", True), ("x+1", "x-1", False),
        ("2x+4y=6", "x+2y=3", True), ("\\pi/2", "\\frac{\\pi}{2}", True), ("[1,3)", "(1,3]", False),
        ("\\sin^2 x + \\cos^2 x", "1", True),
    ]
    # distinct pairs too, so the pool really runs many checks at once instead of sharing one
    pairs = [*base, *((f"x^2+{k}x", f"x(x+{k})", True) for k in range(20)),
             *((f"y+{k}", f"y+{k + 1}", False) for k in range(20))]
    results = await asyncio.gather(*(checker.equivalent(a, b) for a, b, _ in pairs))
    assert results == [expected for _, _, expected in pairs]


# ---------------------------------------------------------------- timeouts, crashes, cleanup


async def test_hanging_check_times_out_and_worker_is_replaced() -> None:
    with AnswerChecker(timeout_s=1.0) as fresh:
        assert await fresh.equivalent("x+x", "2x") is True  # warm up: startup is not part of a deadline
        (first_pid,) = fresh.worker_pids()
        start = time.monotonic()
        assert await fresh.equivalent(*HANG) is False
        assert time.monotonic() - start < 1.0 + 3.0
        assert fresh.timeouts == 1
        assert _wait_dead(first_pid)
        # a fresh worker answers correctly afterwards
        assert await fresh.equivalent("x^2-1", "(x-1)(x+1)") is True
        assert fresh.worker_pids() != [first_pid]
        assert fresh.workers_started == 2
        # the timed-out pair is cached as not equivalent: it never costs a second deadline
        assert await fresh.equivalent(*HANG) is False
        assert fresh.timeouts == 1


def test_debug_sleep_request_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEBUG_ENV, "1")
    with AnswerChecker(timeout_s=0.5) as fresh:
        assert fresh.equivalent_sync("2x", "x+x") is True
        start = time.monotonic()
        assert fresh._debug_request("sleep", 60) == ("timeout", None)
        assert time.monotonic() - start < 0.5 + 3.0
        assert fresh.timeouts == 1
        assert fresh.equivalent_sync("x^3", "x\\cdot x^2") is True


def test_debug_requests_are_refused_without_the_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    with AnswerChecker() as fresh:
        reply = fresh._debug_request("sleep", 60)
        assert reply is not None and reply[0] == "error"


async def test_killed_worker_is_replaced() -> None:
    with AnswerChecker() as fresh:
        assert await fresh.equivalent("a+b", "b+a") is True
        (pid,) = fresh.worker_pids()
        os.kill(pid, signal.SIGKILL)
        assert _wait_dead(pid)
        assert await fresh.equivalent("a-b", "b-a") is False
        assert await fresh.equivalent("2(a+b)", "2a+2b") is True
        (new_pid,) = fresh.worker_pids()
        assert new_pid != pid
        assert fresh.crashes == 1


def test_worker_dying_mid_request_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEBUG_ENV, "1")
    with AnswerChecker() as fresh:
        assert fresh._debug_request("crash") is None  # crashes, is retried once on a new worker, crashes again
        assert fresh.crashes == 2
        assert fresh.equivalent_sync("x^2", "x \\cdot x") is True


async def test_close_leaves_no_live_child() -> None:
    fresh = AnswerChecker(workers=2)
    # two different slow checks at once start both workers
    assert await asyncio.gather(fresh.equivalent("x+1", "1+x"), fresh.equivalent("y+1", "1+y")) == [True, True]
    pids = fresh.worker_pids()
    assert len(pids) == 2
    fresh.close()
    assert fresh.closed
    assert all(_dead(pid) for pid in pids)
    assert not [p for p in multiprocessing.active_children() if p.pid in pids]
    assert fresh.worker_pids() == []
    # fast path and cache still answer; a new slow check is refused instead of starting a worker
    assert await fresh.equivalent("1+x", "x+1") is True
    assert await fresh.equivalent("0.5", "1/2") is True
    with pytest.raises(PonderError):
        await fresh.equivalent("z+1", "1+z")
    fresh.close()  # idempotent


def test_get_checker_is_replaced_after_close() -> None:
    default = get_checker()
    assert get_checker() is default
    default.close()
    assert get_checker() is not default


def test_bad_parameters() -> None:
    with pytest.raises(ConfigError):
        AnswerChecker(timeout_s=0)
    with pytest.raises(ConfigError):
        AnswerChecker(workers=0)
