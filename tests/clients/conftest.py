"""Real clients (openai, inspect-ai, lm-eval) against a real ``ponder serve`` process.

The proxy runs as the command users run (``python -m ponder.cli serve``), in front of a fake upstream that
answers arithmetic questions: wrong in the first sample of every request, right in the others. A plain request
(one sample) is therefore always wrong and a majority vote over three samples always right, so a client that
scores 1.0 through ``ponder:self-consistency:n=3/…`` shows that the strategy really ran.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.serve_process import ServeProcess, free_port

__all__ = ["ServeProcess", "free_port"]  # the client tests import them from here

PROBLEMS = [(2, 3), (7, 5), (12, 30)]  # a + b; every client's task asks these
STRATEGY_MODEL = "ponder:self-consistency:n=3/fake-model"
_SUM = re.compile(r"(\d+)\s*\+\s*(\d+)")


def arithmetic(request: dict[str, Any], index: int) -> str:
    """The fake model: finds the last ``a + b`` in the user's messages; sample 0 is off by one."""
    text = " ".join(str(m.get("content")) for m in request["messages"] if m.get("role") == "user")
    found = _SUM.findall(text)
    if not found:
        return "I cannot tell."
    a, b = map(int, found[-1])
    total = a + b + (1 if index == 0 else 0)
    return f"{a} + {b} = {total}. The answer is {total}."


def run_client(args: list[str], env: dict[str, str], cwd: Path, timeout_s: float = 300) -> str:
    """Run a client's command line; its output is returned, and shown in full if it fails."""
    done = subprocess.run(args, env={**os.environ, **env}, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout_s, stdin=subprocess.DEVNULL)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}:\n{output[-5000:]}"
    return output


def client_command(module: str) -> list[str]:
    """A client's command run by this interpreter, so it is the one installed with the tests."""
    return [sys.executable, "-m", module]


# ---- inspect-ai ------------------------------------------------------------------------------------

INSPECT_TASK = """
from inspect_ai import Task, task
from inspect_ai.dataset import Sample
from inspect_ai.scorer import match
from inspect_ai.solver import generate


@task
def arithmetic() -> Task:
    problems = {problems!r}
    samples = [Sample(input=f"What is {{a}} + {{b}}? End with 'The answer is N.'", target=str(a + b))
               for a, b in problems]
    return Task(dataset=samples, solver=[generate()], scorer=match(location="end"))
"""


def inspect_eval(base_url: str, model: str, tmp_path: Path, *options: str,
                 problems: list[tuple[int, int]] = PROBLEMS) -> dict[str, Any]:
    """Run ``inspect eval`` on the arithmetic task through ``base_url``; returns the eval log (JSON)."""
    (tmp_path / "arithmetic.py").write_text(INSPECT_TASK.format(problems=problems))
    logs = tmp_path / "logs"
    run_client([*client_command("inspect_ai"), "eval", "arithmetic.py", "--model", f"openai-api/ponder/{model}",
                "--log-dir", str(logs), "--log-format", "json", "--display", "plain", *options],
               env={"PONDER_BASE_URL": base_url, "PONDER_API_KEY": "unused"}, cwd=tmp_path)
    (log,) = logs.glob("*.json")
    return json.loads(log.read_text())


def model_responses(log: dict[str, Any]) -> list[dict[str, Any]]:
    """The raw responses of every model call inspect recorded: the proxy's bodies, ``ponder`` field included."""
    return [event["call"]["response"] for sample in log["samples"] for event in sample["events"]
            if event["event"] == "model" and event.get("call")]



@pytest.fixture
def upstream() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(arithmetic) as srv:
        yield srv


@pytest.fixture
def served(upstream: FakeOpenAIServer) -> Iterator[ServeProcess]:
    with ServeProcess("--model", f"openai:{upstream.base_url}") as proxy:
        yield proxy
