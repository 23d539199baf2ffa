"""The README's commands stay true: CI runs the README's test command verbatim."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bash_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, re.S)]


def test_ci_runs_the_readme_test_command() -> None:
    blocks = _bash_blocks((ROOT / "README.md").read_text())
    test_command = blocks[1]
    assert "pytest" in test_command
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_quickstart_installs_the_server_and_model_and_runs_the_demo() -> None:
    quickstart = _bash_blocks((ROOT / "README.md").read_text())[0]
    assert "qwen05" in quickstart and "local" in quickstart and quickstart.endswith("ponder demo")
    # tests/integration/test_demo_live.py runs the demo on the real model; the CI install has what it needs
    assert "qwen05" in _bash_blocks((ROOT / "README.md").read_text())[1]



def python_blocks() -> list[str]:
    return [b.strip() for b in re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)]


def run_block(block: str, model: str) -> None:
    """Run a README example as written, with its model spec swapped for ``model``."""
    exec(compile(block.replace('"local"', f'"{model}"'), "README.md", "exec"), {"__name__": "__readme__"})


def test_the_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # On the scripted fake model, so no server is needed; tests/integration/test_readme_live.py runs them as
    # written, on the embedded model.
    blocks = python_blocks()
    assert len(blocks) >= 3 and any("ponder.Session" in b for b in blocks)
    assert any("@ponder.strategy" in b for b in blocks)
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        run_block(block, "fake")
    assert (tmp_path / "python-api.db").exists()
