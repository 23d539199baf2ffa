"""Shared fixtures: problems on the fake backend, a temporary store."""

from __future__ import annotations

from pathlib import Path

import pytest

from ponder.answers import check_math, extract_answer
from ponder.store import Store
from ponder.types import Problem

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def make_problem(question: str = "What is 3 + 4?", gold: str | None = "7", pid: str = "p0") -> Problem:
    return Problem(id=pid, messages=[{"role": "user", "content": question}], gold=gold, checker=check_math,
                   extract=extract_answer)


@pytest.fixture
def problem() -> Problem:
    return make_problem()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store(tmp_path / "runs.db") as db:
        yield db
