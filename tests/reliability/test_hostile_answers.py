"""Hostile model output against extraction and equivalence: every check ends within its time limit, no worker
process outlives the checker, and ordinary checks are still right afterwards.

Model output is untrusted: towers of exponents that sympy would try to evaluate, megabytes of digits or braces,
LaTeX macros that expand forever, and Unicode look-alikes (fullwidth and Arabic-Indic digits, the minus sign,
invisible bidi overrides) that could make two answers look equal and compare unequal, or the reverse.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ponder.answers import AnswerChecker, extract_answer, normalize_answer
from ponder.answers.extract import MAX_ANSWER_CHARS
from ponder.answers.normalize import fold_unicode
from ponder.answers.worker import DEBUG_ENV

TIMEOUT_S = 2.0  # math-verify gets floor(2.0) s of its own, enough for ordinary checks on a loaded machine
# A check may also wait for a replacement worker to start (sympy's import) when the one before it timed out.
CHECK_LIMIT_S = TIMEOUT_S + 6.0
EXTRACT_LIMIT_S = 5.0  # per call on megabyte inputs (~0.5 s on an idle core): catches quadratic behaviour
MB = 1_000_000

HOSTILE = {
    "python power tower": "10**10**10",
    "latex power tower": "2^{2^{2^{2^{2}}}}",
    "decimal tower": "10^{10^{10^{10}}}",
    "huge factorial": "(10^{100000})!",
    "nested exponentials": "e^{e^{e^{e^{10}}}}",
    "astronomic sum": "\\sum_{n=1}^{10^{100}} n^{n}",
    "def loop": "\\def\\a{\\a\\a}\\a",
    "newcommand loop": "\\newcommand{\\x}{\\x\\x}\\x",
    "renewcommand loop": "\\renewcommand{\\frac}{\\frac\\frac}\\frac{1}{2}",
    "let loop": "\\let\\b\\b\\b",
    "deep braces": "{" * 5000 + "1" + "}" * 5000,
    "deep fractions": "\\frac{" * 300 + "1" + "}{2}" * 300,
    "deep roots": "\\sqrt{" * 500 + "2" + "}" * 500,
    "wide matrix": "\\begin{pmatrix}" + "1&" * 3000 + "1\\end{pmatrix}",
    "many equations": "x=" * 2000 + "1",
    "megabyte of digits": "9" * MB,
    "megabyte of braces": "{" * (MB // 2) + "}" * (MB // 2),
    "megabyte of text": "a " * (MB // 2),
    "unclosed boxes": "\\boxed{" * 100_000,
    "control characters": "7\x00\x07\x1b[2J\x7f",
}


def _children() -> set[int]:
    """Process ids of this process's spawned children (Linux /proc), multiprocessing's resource tracker aside."""
    me, found = os.getpid(), set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == me and b"resource_tracker" not in command:
                found.add(int(entry.name))
    return found


@pytest.fixture(scope="module")
def checker() -> Iterator[AnswerChecker]:
    before = _children()
    with AnswerChecker(timeout_s=TIMEOUT_S, workers=2) as shared:
        assert shared.equivalent_sync("x+x", "2x") is True  # start-up is not part of any deadline
        yield shared
        assert len(_children() - before) <= 2  # timed-out workers were killed, not left behind
    assert _wait_for(lambda: _children() <= before)  # and none outlives the checker


def _wait_for(predicate: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def _timed(fn: object, *args: object) -> tuple[object, float]:
    start = time.perf_counter()
    out = fn(*args)  # type: ignore[operator]
    return out, time.perf_counter() - start


@pytest.mark.parametrize("answer", list(HOSTILE.values()), ids=list(HOSTILE))
async def test_hostile_answer_is_checked_within_its_limit(checker: AnswerChecker, answer: str) -> None:
    for text in (answer, f"So the result is \\boxed{{{answer}}}.", f"The answer is {answer}"):
        found, took = _timed(extract_answer, text)
        assert took < EXTRACT_LIMIT_S
        assert found is None or (isinstance(found, str) and len(found) <= MAX_ANSWER_CHARS)
    _, took = _timed(normalize_answer, answer)
    assert took < EXTRACT_LIMIT_S
    for other, expected in (("5", False), (answer, True)):
        start = time.perf_counter()
        assert await checker.equivalent(answer, other) is expected
        assert time.perf_counter() - start < CHECK_LIMIT_S
    # the same pair again is answered from the cache: a hostile pair costs one deadline, not one per vote
    again = time.perf_counter()
    await checker.equivalent(answer, "5")
    assert time.perf_counter() - again < 0.5


async def test_ordinary_checks_are_right_after_the_hostile_ones(checker: AnswerChecker) -> None:
    timeouts, started = checker.timeouts, checker.workers_started
    assert await checker.equivalent("10^{10^{11}}", "3") is False  # sympy really tries: a worker is killed
    assert checker.timeouts == timeouts + 1
    # its replacement starts at once, in the background, not when the next check needs it
    assert _wait_for(lambda: len(checker.worker_pids()) == 2, 60.0) and checker.workers_started == started + 1
    cases = [("\\frac{1}{2}", "0.5", True), ("x^2+1", "1+x^2", True), ("3", "4", False), ("(x+1)^2", "x^2+2x+1", True),
             ("\\sqrt{8}", "2\\sqrt{2}", True), ("\\{1,2\\}", "\\{2,1\\}", True), ("2x", "x+3", False)]
    for a, b, expected in cases:
        assert await checker.equivalent(a, b) is expected, (a, b)


async def test_overlong_answers_are_compared_as_strings_without_a_worker(checker: AnswerChecker) -> None:
    slow = checker.slow_checks
    digits = "9" * MB
    start = time.perf_counter()
    assert await checker.equivalent(digits, "5") is False
    assert await checker.equivalent(digits, " " + digits + "\n") is True
    assert await checker.equivalent(digits, digits[:-1] + "8") is False
    assert await checker.equivalent("x^2 " * 2000, "x^2 " * 2000) is True
    assert checker.slow_checks == slow and time.perf_counter() - start < EXTRACT_LIMIT_S


def test_a_memory_bomb_fails_its_check_without_taking_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEBUG_ENV, "1")
    with AnswerChecker(timeout_s=10.0) as fresh:
        reply = fresh._debug_request("alloc", 8 << 30)  # 8 GiB: far beyond the worker's address-space cap
        assert reply is not None and reply[0] == "error" and "MemoryError" in reply[1]
        assert fresh._debug_request("alloc", 10 << 20) == ("ok", 10 << 20)  # the same worker goes on
        assert fresh.crashes == 0 and fresh.equivalent_sync("x^2", "x \\cdot x") is True


# ---------------------------------------------------------------- Unicode look-alikes

LOOKALIKES = [
    ("１２３", "123", True),  # fullwidth digits
    ("−5", "-5", True),  # U+2212 minus sign
    ("−5", "5", False),
    ("٣", "3", True),  # Arabic-Indic
    ("۴۲", "42", True),  # extended Arabic-Indic
    ("५", "5", True),  # Devanagari
    ("\u202e5\u202c", "5", True),  # a right-to-left override around a 5
    ("5\u200b0", "50", True),  # a zero-width space inside 50
    ("Ｘ＝５", "5", True),  # fullwidth "X=5"
    ("x²", "x2", False),  # a superscript is not a digit
    ("½", "12", False),
    ("\ufeff42", "42", True),  # a byte-order mark
]


@pytest.mark.parametrize(("a", "b", "expected"), LOOKALIKES)
async def test_unicode_lookalikes(checker: AnswerChecker, a: str, b: str, expected: bool) -> None:
    assert await checker.equivalent(a, b) is expected
    assert await checker.equivalent(b, a) is expected


def test_extraction_reads_lookalike_numbers() -> None:
    assert normalize_answer(extract_answer("The answer is ４２.") or "") == "42"
    assert normalize_answer(extract_answer("so x = −3") or "") == "-3"
    assert normalize_answer(extract_answer("الجواب ٧") or "") == "7"


# ---------------------------------------------------------------- properties

HOSTILE_ALPHABET = st.sampled_from([
    *"0123456789{}\\$^_-+*/=.,() \nabx#",
    "\\boxed{", "\\frac{", "\\def", "####", "answer is ", "</think>", "−", "１", "٣", "\u202e", "\u200b", "\x00",
])
hostile_text = st.lists(HOSTILE_ALPHABET, max_size=200).map("".join) | st.text(max_size=300)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_text)
def test_extraction_never_fails_and_stays_bounded(text: str) -> None:
    found = extract_answer(text)
    assert found is None or (found and len(found) <= MAX_ANSWER_CHARS)


@settings(max_examples=300, deadline=None)
@given(hostile_text)
def test_normalisation_is_idempotent_and_folding_is_complete(text: str) -> None:
    once = normalize_answer(text)
    assert normalize_answer(once) == once
    folded = fold_unicode(text)
    assert fold_unicode(folded) == folded
    assert not any(c.isdecimal() and not c.isascii() for c in folded)
    assert not any(c in folded for c in "\u202e\u200b\x00−")


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-(10**30), max_value=10**30), st.integers(min_value=-(10**30), max_value=10**30),
       st.sampled_from(["0", "０", "٠", "۰", "०", "০"]))
def test_integers_in_any_script_compare_by_value_without_a_worker(a: int, b: int, zero: str) -> None:
    script = {str(d): chr(ord(zero) + d) for d in range(10)}
    written = "".join(script.get(c, c) for c in str(a)).replace("-", "−")
    with AnswerChecker(timeout_s=TIMEOUT_S) as quick:
        assert quick.equivalent_sync(written, str(a)) is True
        assert quick.equivalent_sync(written, str(b)) is (a == b)
        assert quick.workers_started == 0


@settings(max_examples=200, deadline=None)
@given(hostile_text)
def test_every_answer_equals_itself(text: str) -> None:
    with AnswerChecker(timeout_s=TIMEOUT_S) as quick:
        assert quick.equivalent_sync(text, text) is bool(normalize_answer(text))
        assert quick.workers_started == 0  # identical normal forms never need a worker
