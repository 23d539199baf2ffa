"""reasoning-gym tasks: loading, scoring with the dataset's own scorer, <answer> extraction, bad names."""

from __future__ import annotations

import pickle
import sys

import pytest

from ponder.errors import TaskError
from ponder.tasks import extract_gym_answer, get_task, gym_datasets, load_task

pytest.importorskip("reasoning_gym")


def test_gym_task_loads_seeded() -> None:
    problems = load_task("gym:basic_arithmetic", seed=0, size=10)
    assert len(problems) == 10
    first = problems[0]
    assert first.id == "gym:basic_arithmetic/seed0/0"
    assert [m["role"] for m in first.messages] == ["system", "user"]
    assert "<answer>" in first.messages[0]["content"]
    assert first.messages[1]["content"] == first.meta["entry"]["question"]
    assert first.gold == first.meta["entry"]["answer"]
    assert first.meta["dataset"] == "basic_arithmetic"
    again = load_task("gym:basic_arithmetic", seed=0, size=10, offset=3, limit=2)
    assert [(p.id, p.question) for p in again] == [(p.id, p.question) for p in problems[3:5]]
    other = load_task("gym:basic_arithmetic", seed=1, size=10)
    assert [p.question for p in other] != [p.question for p in problems]


async def test_gym_checker_uses_dataset_scorer() -> None:
    for p in load_task("gym:basic_arithmetic", size=5):
        assert await p.checker(p.gold, p)
        assert await p.checker(p.extract(f"Working...\n<answer>{p.gold}</answer>"), p)
        assert not await p.checker(str(int(p.gold or 0) + 1), p)
        assert not await p.checker(None, p)


async def test_gym_checker_treats_scorer_errors_and_partial_credit_as_wrong() -> None:
    [p] = load_task("gym:prime_factorization", limit=1)
    assert await p.checker(p.gold, p)
    assert not await p.checker("not a number", p)  # its scorer raises ValueError here
    [w] = load_task("gym:word_sorting", limit=1)
    assert await w.checker(w.gold, w)
    swapped = ", ".join(reversed((w.gold or "").split(", ")))
    assert 0.0 < w.checker.score(swapped) < 1.0  # type: ignore[attr-defined]  # partial credit...
    assert not await w.checker(swapped, w)  # ...is not correct


def test_gym_extractor() -> None:
    assert extract_gym_answer("think <answer>1</answer> more <answer> 42 </answer>") == "42"
    assert extract_gym_answer("<answer>\nbanana, apple\n</answer>") == "banana, apple"
    assert extract_gym_answer("no tags, so the answer is 17.") == "17"
    assert extract_gym_answer("<answer></answer> then 5") == "5"
    assert extract_gym_answer("<answer>7") == "7"  # cut off before the closing tag


def test_gym_spec_and_names() -> None:
    names = gym_datasets()
    assert "basic_arithmetic" in names and "composite" not in names
    spec = get_task("gym:basic_arithmetic")
    assert spec.name == "gym:basic_arithmetic"
    assert spec.source == "reasoning-gym"
    assert spec.description.startswith("reasoning-gym basic_arithmetic")


def test_unknown_gym_dataset_suggests_close_matches() -> None:
    with pytest.raises(
        TaskError,
        match=r"unknown reasoning-gym dataset 'basic_arithmatic'; "
        r"close matches: gym:basic_arithmetic",
    ) as info:
        load_task("gym:basic_arithmatic")
    assert "\n" not in str(info.value)
    with pytest.raises(
        TaskError, match=r"unknown reasoning-gym dataset 'zzzzzz'; \d+ datasets exist, e\.g\."
    ):
        load_task("gym:zzzzzz")
    with pytest.raises(TaskError, match=r"unknown reasoning-gym dataset ''; name one"):
        load_task("gym:")


def test_missing_reasoning_gym_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "reasoning_gym", None)
    with pytest.raises(TaskError, match=r"pip install 'ponder\[tasks\]'"):
        load_task("gym:basic_arithmetic")


async def test_gym_problems_pickle() -> None:
    # string_manipulation's dataset object holds lambdas: the scorer re-creates it after unpickling.
    [p] = load_task("gym:string_manipulation", seed=2, limit=1)
    q = pickle.loads(pickle.dumps(p))
    assert q.id == p.id and q.gold == p.gold
    assert await q.checker(q.gold, q)
    assert not await q.checker((q.gold or "") + "zz", q)
