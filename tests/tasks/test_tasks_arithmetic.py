"""Generated arithmetic testbeds: seeded, deterministic, right golds, DESIGN.md prompt style."""

from __future__ import annotations

import re

import pytest

from ponder.answers import check_math, extract_number_answer
from ponder.tasks import load_task

NAMES = ["add1", "apples", "larger", "add21"]


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_and_seeded(name: str) -> None:
    a = load_task(name, seed=0)
    b = load_task(name, seed=0)
    c = load_task(name, seed=1)
    assert len(a) == 100
    assert [(p.id, p.question, p.gold) for p in a] == [(p.id, p.question, p.gold) for p in b]
    assert [p.question for p in a] != [p.question for p in c]
    assert a[5].id == f"{name}/seed0/5"
    assert c[5].id == f"{name}/seed1/5"


@pytest.mark.parametrize("name", NAMES)
def test_item_depends_only_on_seed_and_index(name: str) -> None:
    full = load_task(name, seed=3, size=30)
    part = load_task(name, seed=3, size=1000, offset=20, limit=10)
    assert [(p.id, p.question) for p in part] == [(p.id, p.question) for p in full[20:30]]
    assert len(load_task(name, size=7)) == 7
    assert load_task(name, size=7, offset=7) == []


@pytest.mark.parametrize("name", NAMES)
def test_prompt_style_and_plumbing(name: str) -> None:
    for p in load_task(name, limit=10):
        assert p.messages == [{"role": "user", "content": p.question}]
        assert p.question.endswith(" Answer with the number at the end as 'The answer is N.'")
        assert p.checker is check_math
        assert p.extract is extract_number_answer  # the prompt's placeholder "N" is no answer


def test_add1_golds() -> None:
    for p in load_task("add1", size=200):
        a, b = p.meta["a"], p.meta["b"]
        assert 1 <= a <= 9 and 1 <= b <= 9
        assert p.question.startswith(f"What is {a} + {b}?")
        assert p.gold == str(a + b)


def test_apples_golds() -> None:
    for p in load_task("apples", size=200):
        a, b = p.meta["a"], p.meta["b"]
        assert 2 <= a <= 9 and 2 <= b <= 9
        assert p.question.startswith(f"Tom has {a} apples. He buys {b} more.")
        assert p.gold == str(a + b)


def test_larger_golds() -> None:
    for p in load_task("larger", size=200):
        a, b = p.meta["a"], p.meta["b"]
        assert a != b and 1 <= a <= 99 and 1 <= b <= 99
        assert p.question.startswith(f"Which number is larger, {a} or {b}?")
        assert p.gold == str(max(a, b))


def test_add21_golds() -> None:
    for p in load_task("add21", size=200):
        a, b = p.meta["a"], p.meta["b"]
        assert 10 <= a <= 99 and 1 <= b <= 9
        assert re.match(rf"What is {a} \+ {b}\?", p.question)
        assert p.gold == str(a + b)


async def test_checker_accepts_the_gold_answer() -> None:
    p = load_task("add21", limit=1)[0]
    assert await p.checker(p.extract(f"{p.meta['a']} + {p.meta['b']} = {p.gold}. The answer is {p.gold}."), p)
    assert not await p.checker(p.extract(f"The answer is {int(p.gold or 0) + 1}."), p)
