"""The logic tasks: seeded instances, balanced outcomes, and exact checkers."""

from __future__ import annotations

import itertools

import pytest

from ponder.logic import decide_text
from ponder.logic.cnf import solve
from ponder.tasks import get_task, list_tasks, load_task
from ponder.tasks.logic import SAT_CLAUSES, SAT_VARIABLES, extract_label, extract_tagged
from ponder.types import Problem


def _all_assignments(names: list[str]) -> list[set[str]]:
    return [{n for n, bit in zip(names, bits, strict=True) if bit}
            for bits in itertools.product([0, 1], repeat=len(names))]


def _satisfied_by_hand(clauses: list[list[int]], names: list[str], true: set[str]) -> bool:
    return all(any((lit > 0) == (names[abs(lit) - 1] in true) for lit in clause) for clause in clauses)


def test_registered() -> None:
    names = {t.name for t in list_tasks()}
    assert {"sat", "sat-story", "logic"} <= names
    assert get_task("sat").source == "generated"


@pytest.mark.parametrize("name", ["sat", "sat-story", "logic"])
def test_seeded_and_sliceable(name: str) -> None:
    a, b, c = load_task(name, size=12), load_task(name, size=12), load_task(name, size=12, seed=1)
    assert [(p.id, p.question, p.gold) for p in a] == [(p.id, p.question, p.gold) for p in b]
    assert [p.question for p in a] != [p.question for p in c]
    part = load_task(name, size=50, offset=8, limit=4)
    assert [p.question for p in part] == [p.question for p in a[8:12]]
    assert a[3].id == f"{name}/seed0/3"


def test_sat_alternates_satisfiable_and_unsatisfiable_near_the_threshold() -> None:
    for i, p in enumerate(load_task("sat", size=20)):
        sat = p.meta["sat"]
        assert len(sat["clauses"]) == SAT_CLAUSES and sat["variables"] == [f"x{v}" for v in range(1, 7)]
        assert all(len({abs(lit) for lit in c}) == 3 for c in sat["clauses"])
        assert sat["satisfiable"] == (i % 2 == 0) == (solve(sat["clauses"]) is not None)
        assert p.gold == ("UNSAT" if i % 2 else p.gold)


async def test_sat_checker_is_exact_for_every_assignment() -> None:
    for p in load_task("sat", size=6):
        sat = p.meta["sat"]
        names = sat["variables"]
        for true in _all_assignments(names):
            answer = ", ".join(sorted(true)) or "none"
            assert await p.checker(answer, p) == _satisfied_by_hand(sat["clauses"], names, true)
        assert await p.checker("UNSAT", p) == (not sat["satisfiable"])
        assert await p.checker(p.gold, p)


@pytest.mark.parametrize("answer", [None, "", "x7", "x1, -x1", "maybe", "x1 x2 x3 x4 x5 x6 x7"])
async def test_sat_checker_rejects_malformed_answers(answer: str | None) -> None:
    p = load_task("sat", limit=1)[0]
    assert not await p.checker(answer, p)


async def test_sat_story_tells_the_same_instances_with_people() -> None:
    plain, story = load_task("sat", size=4), load_task("sat-story", size=4)
    for a, b in zip(plain, story, strict=True):
        assert a.meta["sat"]["clauses"] == b.meta["sat"]["clauses"]
        names = b.meta["sat"]["variables"]
        assert len(set(names)) == SAT_VARIABLES and all(n in b.question for n in names)
        assert "stays home" in b.question and "x1" not in b.question
        assert await b.checker(b.gold, b)
        assert await b.checker("impossible", b) == (not b.meta["sat"]["satisfiable"])
    assert story[1].gold == "impossible"


def test_sat_extraction() -> None:
    assert extract_tagged("thinking... ANSWER: x1 ANSWER: x2, x3\nmore") == "x2, x3"
    assert extract_tagged("no tag here") is None


def test_logic_labels_are_balanced_and_proved() -> None:
    problems = load_task("logic", size=9)
    assert [p.gold for p in problems] == ["True", "False", "Unknown"] * 3
    for p in problems:
        assert decide_text(p.meta["premises_fol"], p.meta["conclusion_fol"]).label == p.gold
        assert all(premise in p.question for premise in p.meta["premises"])
        assert p.meta["conclusion"] in p.question and "ANSWER: Unknown" in p.question


@pytest.mark.parametrize(("text", "label"), [
    ("So it follows. ANSWER: True", "True"), ("ANSWER: uncertain", "Unknown"), ("answer: FALSE.", "False"),
    ("It is true that... so the answer is unknown", "Unknown"), ("ANSWER: True or False", "False"),
    ("no label at all", None),
])
def test_logic_label_extraction(text: str, label: str | None) -> None:
    assert extract_label(text) == label


async def test_logic_checker_is_exact() -> None:
    problem: Problem = load_task("logic", limit=1)[0]
    assert problem.gold == "True"
    assert await problem.checker("True", problem)
    assert await problem.checker("true.", problem)
    for wrong in ["False", "Unknown", "Uncertain", "True or False", "", None]:
        assert not await problem.checker(wrong, problem)
