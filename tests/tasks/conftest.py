"""Fixtures for the task tests."""

from __future__ import annotations

from pathlib import Path

import pytest

# The read-only reference data sets: ../shared/data next to the repository (as in CI).
_DATA_CANDIDATES = [
    Path(__file__).resolve().parents[2].parent / "shared" / "data",
    Path.cwd().parent / "shared" / "data",
]


@pytest.fixture
def shared_data() -> Path:
    for candidate in _DATA_CANDIDATES:
        if (candidate / "gsm8k-test.jsonl").is_file():
            return candidate
    pytest.skip(f"reference data not found in {' or '.join(map(str, _DATA_CANDIDATES))}")


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """A working directory with no ./data or ../shared/data and no PONDER_DATA_DIR."""
    work = tmp_path / "a" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.delenv("PONDER_DATA_DIR", raising=False)
    return work
