"""Which extractor each task uses: numeric tasks must never vote for a prompt's placeholder or a bare letter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ponder.answers import extract_answer, extract_number_answer
from ponder.tasks.arithmetic import GENERATORS, generate
from ponder.tasks.datasets import SETS
from ponder.tasks.registry import LoadOptions

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"

ROWS: dict[str, dict[str, Any]] = {
    "gsm8k": {"question": "How many?", "answer": "2 + 2 = 4\n#### 4"},
    "math500": {"problem": "Name her.", "answer": "\\text{Evelyn}", "unique_id": "test/x/1.json"},
    "aime24": {"id": 1, "problem": "Find it.", "answer": "025"},
    "amc23": {"id": 1, "question": "Find it.", "answer": 27.0},
}


@pytest.mark.parametrize("task", sorted(GENERATORS))
def test_arithmetic_tasks_extract_numbers_only(task: str) -> None:
    for problem in generate(task, LoadOptions(size=5)):
        assert problem.extract is extract_number_answer
        assert "'The answer is N.'" in problem.question  # the placeholder the model copies
        assert problem.extract("The answer is N.") is None
        assert problem.extract("1 + 1 = 2. The answer is N.") is None
        assert problem.extract(f"The answer is {problem.gold}.") == problem.gold


@pytest.mark.parametrize(("name", "numeric"), [("gsm8k", True), ("math500", False), ("aime24", True), ("amc23", True)])
def test_dataset_extractors(name: str, numeric: bool) -> None:
    problem = SETS[name].convert(ROWS[name], 0)
    assert problem.extract is (extract_number_answer if numeric else extract_answer)


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="reference data sets not found")
def test_every_gsm8k_solution_yields_its_gold_number() -> None:
    rows = [json.loads(line) for line in (SHARED_DATA / "gsm8k-test.jsonl").read_text().splitlines()]
    for row in rows:
        gold = row["answer"].split("####")[-1].strip().replace(",", "")
        assert extract_number_answer(row["answer"]) == gold


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="reference data sets not found")
def test_every_aime_solution_yields_its_gold_number() -> None:
    rows = [json.loads(line) for line in (SHARED_DATA / "aime24.jsonl").read_text().splitlines()]
    misses = [row["id"] for row in rows if extract_number_answer(row["solution"]) != str(int(row["answer"]))]
    assert misses == [60]  # that solution ends with its author's signature, "-sepehr2010": no final statement
