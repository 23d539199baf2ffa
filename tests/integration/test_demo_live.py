"""The README quickstart's job: ponder demo replays the shipped GSM8K bank and runs Qwen2.5-Coder-0.5B live."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ponder.demo import LIVE, REPLAY

pytestmark = pytest.mark.integration


def test_demo_replays_the_shipped_bank_and_runs_the_model_live(qwen05_installed: None,
                                                               llama_parts: tuple[Path, Path],
                                                               tmp_path: Path) -> None:
    binary, _ = llama_parts
    env = {**os.environ, "COLUMNS": "200"}
    command = [sys.executable, "-m", "ponder.cli", "demo", "--live", "2", "--repeats", "1", "--threads", "2",
               "--server-bin", str(binary)]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    live_rows = [line for line in lines if any(line.startswith(f"live: {step.label} ") for step in LIVE)]
    replay_rows = [line for line in lines if any(line.startswith(f"{step.label} ") for step in REPLAY)]
    assert len(replay_rows) == len(REPLAY) and len(live_rows) == len(LIVE), done.stdout
    assert "HTML report:" in done.stdout and (tmp_path / "ponder-demo" / "index.html").exists()
    # the live runs really sampled the model: tokens were spent on both problems
    from ponder.store import Store

    with Store(tmp_path / "ponder-demo.db") as store:
        live = [run for run in store.runs() if "qwen-coder-0.5b" in run.model and "replay" not in run.model]
        assert len(live) == 2
        for run in live:
            results = store.results(run.id)
            assert len(results) == 2 and all(r.completion_tokens > 0 and r.error is None for r in results)
