"""Answer extraction and normalisation: the shared case corpus, the reference data sets, and huge inputs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from ponder.answers import extract_answer, extract_number_answer, normalize_answer

CASES_FILE = Path(__file__).resolve().parents[1] / "data" / "answer_cases.json"
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def load_cases(kind: str) -> list[Any]:
    cases = [case for case in json.loads(CASES_FILE.read_text()) if case["kind"] == kind]
    return [pytest.param(case, id=case["id"]) for case in cases]


def test_corpus_schema() -> None:
    cases = json.loads(CASES_FILE.read_text())
    assert len(cases) >= 150
    required = {
        "extract": {"text", "expected"},
        "extract-number": {"text", "expected"},
        "normalize": {"text", "expected"},
        "equiv": {"a", "b", "equivalent"},
        "grade": {"text", "gold", "correct"},
    }
    ids = [case["id"] for case in cases]
    assert len(ids) == len(set(ids))
    for case in cases:
        assert case["source"], case["id"]
        assert required[case["kind"]] <= case.keys(), case["id"]


@pytest.mark.parametrize("case", load_cases("extract"))
def test_extract_corpus(case: dict[str, Any]) -> None:
    assert extract_answer(case["text"], placeholders=case.get("placeholders", ())) == case["expected"]


@pytest.mark.parametrize("case", load_cases("extract-number"))
def test_extract_number_corpus(case: dict[str, Any]) -> None:
    assert extract_number_answer(case["text"]) == case["expected"]


@pytest.mark.parametrize("case", load_cases("normalize"))
def test_normalize_corpus(case: dict[str, Any]) -> None:
    assert normalize_answer(case["text"]) == case["expected"]


def test_normalize_is_idempotent_on_every_corpus_string() -> None:
    strings = set()
    for case in json.loads(CASES_FILE.read_text()):
        for key in ("a", "b", "gold", "expected"):
            if isinstance(case.get(key), str):
                strings.add(case[key])
    for s in strings:
        once = normalize_answer(s)
        assert normalize_answer(once) == once, s


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{x^{2}}", "x^{2}"),
        ("\\boxed{\\sqrt{\\frac{a}{b^{2}}}} and more", "\\sqrt{\\frac{a}{b^{2}}}"),
        ("\\boxed{1} \\boxed{2}", "2"),
        ("\\boxed{1} \\boxed{2", "1"),  # the last box never closed: the one before it
        ("\\boxed{1} \\boxed{}", "1"),
        ("\\boxed 7", "7"),
        ("#### 5\n#### \n", "5"),
        ("answer = 12", "12"),
        ("The Answer Is 9", "9"),
        ("It answered 4 questions; 3 were right.", "3"),
        ("values 1,000,000 and 2,500", "2,500"),
        ("1,2,3", "3"),
        ("x2 + 4", "4"),
        ("-.5", "-.5"),
        ("the result is -3/4", "-3/4"),
    ],
)
def test_extract_details(text: str, expected: str) -> None:
    assert extract_answer(text) == expected


def test_extract_prefers_visible_answer_over_reasoning() -> None:
    text = "<think>\nThe answer is 41... let me box \\boxed{41}\n</think>\nSo the total is 42."
    assert extract_answer(text) == "42"


@pytest.mark.parametrize(
    "text",
    [
        "\\boxed{" * 150_000,  # a million unclosed boxes
        "{" * 1_000_000,
        "1" * 1_000_000,
        "1," * 500_000,
        "-" * 1_000_000,
        "answer is " * 100_000,
        "answer" + " " * 1_000_000,
        "#### \n" * 200_000,
        ("\\boxed{" + "{" * 1000) * 500,
        "$" * 1_000_000,
        "**" * 500_000,
        ("The answer is " + "x" * 999_000),
        "a " * 500_000 + "\\boxed{3}",
        "1 hours and " * 100_000,  # compound quantities without end
        "1e" * 500_000,
        "3 \\times 10^" * 100_000,
        "1 million " * 100_000,
        "probably " * 100_000 + "12",
        "The answer is " + "probably " * 100_000 + "12",
    ],
    ids=lambda t: repr(t[:12]),
)
def test_extract_is_fast_on_megabyte_inputs(text: str) -> None:
    # A generous bound: it only has to catch quadratic or exponential behaviour, not measure speed.
    for extract in (extract_answer, extract_number_answer):
        start = time.perf_counter()
        extract(text)
        assert time.perf_counter() - start < 5.0


def test_normalize_is_fast_on_long_inputs() -> None:
    for text in (
        "1, " * 200_000,
        "\\text{" * 50_000,
        "x = " + "a b " * 100_000,
        "9 " + "units " * 100_000,
        "9" * 100_000 + " million",
        "9" * 100_000 + "e5",
        "(A) " + "1 " * 100_000,
    ):
        start = time.perf_counter()
        normalize_answer(text)
        assert time.perf_counter() - start < 5.0


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="reference data sets not found")
def test_every_math500_solution_yields_its_gold_answer() -> None:
    rows = [json.loads(line) for line in (SHARED_DATA / "math500-test.jsonl").read_text().splitlines()]
    assert len(rows) == 500
    misses = [
        row["unique_id"]
        for row in rows
        if normalize_answer(extract_answer(row["solution"]) or "") != normalize_answer(row["answer"])
    ]
    assert misses == []


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="reference data sets not found")
def test_every_gsm8k_solution_yields_its_gold_answer() -> None:
    rows = [json.loads(line) for line in (SHARED_DATA / "gsm8k-test.jsonl").read_text().splitlines()]
    for row in rows:
        gold = row["answer"].split("####")[-1].strip().replace(",", "")
        assert normalize_answer(extract_answer(row["answer"]) or "") == gold
