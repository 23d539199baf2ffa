"""The README's Python examples, as written, on the embedded model."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_readme import python_blocks, run_block

pytestmark = pytest.mark.integration


def test_the_python_examples_run_on_the_embedded_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       llama_parts: tuple[Path, Path]) -> None:
    monkeypatch.chdir(tmp_path)
    for block in python_blocks():
        run_block(block, "local")
    assert (tmp_path / "python-api.db").exists()
