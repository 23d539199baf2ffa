"""The banks that ship inside the package: what their names say, and answers and verdicts that today's extractor
and checker agree with (a bank replays its recorded answers, so a drifted extractor would silently skew every
figure measured on it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import ponder
from ponder.backends import FakeBackend
from ponder.bank import Bank
from ponder.context import Ctx

SHIPPED = sorted((Path(ponder.__file__).parent / "banks").glob("*.bank.zip"))
CHECKED_PROBLEMS = 4  # per bank: enough to catch a drifted extractor, cheap enough for every test run


def test_the_package_ships_the_documented_banks() -> None:
    assert {p.name for p in SHIPPED} >= {
        "gsm8k-qwen-coder-0.5b-n32.bank.zip",
        "math500-qwen-coder-0.5b-n16.bank.zip",
        "math500-qwen-coder-1.5b-n16.bank.zip",
    }


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
async def test_a_shipped_bank_is_what_its_name_says_and_its_verdicts_hold(path: Path, tmp_path: Path) -> None:
    match = re.fullmatch(r"([a-z0-9]+)-(.+)-n(\d+)\.bank\.zip", path.name)
    assert match, f"{path.name}: shipped banks are named TASK-MODEL-nN.bank.zip"
    task, model, n = match.groups()
    bank = Bank.load(path)
    assert (bank.task.name, bank.model, bank.n, bank.top_logprobs) == (task, f"local:{model}", int(n), 20)
    assert len(bank.problems) >= 30 and all(len(bp.traces) == bank.n for bp in bank.problems.values())

    # An empty data dir: the problems are rebuilt from the bank (its golds, the task's extractor and checker).
    problems = bank.problems_for_task(data_dir=tmp_path)
    assert bank.warning is None
    for problem in problems[:CHECKED_PROBLEMS]:
        ctx = Ctx(FakeBackend(), problem)  # states a trace's answer as every strategy reads it
        for trace in bank.problems[problem.id].traces:
            assert ctx.stated(trace) == trace.answer, (problem.id, trace.index)
            right = False if trace.answer is None else await problem.checker(trace.answer, problem)
            assert trace.correct == right, (problem.id, trace.index, trace.answer, problem.gold)
