"""CNF tools: clause and assignment parsing, exact satisfaction checks, solver limits."""

from __future__ import annotations

import itertools
import random

import pytest

from ponder.logic import Limits, ParseError, SizeError
from ponder.logic.cnf import parse_assignment, parse_clauses, random_kcnf, satisfies, solve

X = ["x1", "x2", "x3"]


def test_clause_notations() -> None:
    text = "x1 | -x2\n(¬x3 ∨ x1)\n1 -2 3 0\nnot x1 or x2\nc a comment\np cnf 3 4\n\nX3, ~x2"
    cnf = parse_clauses(text, X)
    assert cnf.names == ("x1", "x2", "x3")
    assert cnf.clauses == ((1, -2), (-3, 1), (1, -2, 3), (-1, 2), (3, -2))


def test_free_names_are_numbered_in_order_of_appearance() -> None:
    cnf = parse_clauses("Ann | -Ben\nBen | Cal")
    assert cnf.names == ("Ann", "Ben", "Cal") and cnf.clauses == ((1, -2), (2, 3))
    assert cnf.true_names([1, -2, 3]) == ["Ann", "Cal"]


@pytest.mark.parametrize(("text", "message"), [
    ("x1 | x9", "line 1: unknown variable 'x9'"),
    ("x1 | -\n", "is not a literal"),
    ("\n\n", "no clauses found"),
    ("x1 | x2+x3", "is not a literal"),
])
def test_clause_errors(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_clauses(text, X)


def test_clause_text_size_is_bounded() -> None:
    with pytest.raises((ParseError, SizeError)):
        parse_clauses("x1 | x2\n" * 100_000, X)


@pytest.mark.parametrize(("answer", "true"), [
    ("x1, x3", {"x1", "x3"}), ("X1 and x3.", {"x1", "x3"}), ("x1=1 x2=0 x3=T", {"x1", "x3"}),
    ("x1 = true, x2 = false", {"x1"}), ("-x1 x2", {"x2"}), ("not x1, x2", {"x2"}), ("1 -2 3", {"x1", "x3"}),
    ("none", set()), ("Nobody.", set()),
])
def test_assignments_name_the_true_variables(answer: str, true: set[str]) -> None:
    assert parse_assignment(answer, X) == true


@pytest.mark.parametrize("answer", ["UNSAT", "unsatisfiable", "Impossible.", "no solution exists"])
def test_unsat_answers(answer: str) -> None:
    assert parse_assignment(answer, X) is None


@pytest.mark.parametrize("answer", ["x4", "x1 -x1", "x1=maybe", "x1; x2!", "banana"])
def test_malformed_assignments_are_errors(answer: str) -> None:
    with pytest.raises(ParseError):
        parse_assignment(answer, X)


def test_satisfies_matches_evaluation_and_the_solver() -> None:
    rng = random.Random(3)
    for _ in range(40):
        clauses = random_kcnf(rng, 5, 21, 3)
        models = [{v for v, bit in zip(range(1, 6), bits, strict=True) if bit}
                  for bits in itertools.product([0, 1], repeat=5)]
        by_hand = [m for m in models if all(any((lit > 0) == (abs(lit) in m) for lit in c) for c in clauses)]
        assert [m for m in models if satisfies(m, clauses)] == by_hand
        model = solve(clauses)
        assert (model is None) == (not by_hand)
        if model is not None:
            assert satisfies([lit for lit in model if lit > 0], clauses)


def test_random_kcnf_is_seeded_and_well_formed() -> None:
    a = random_kcnf(random.Random(1), 6, 26)
    assert a == random_kcnf(random.Random(1), 6, 26) != random_kcnf(random.Random(2), 6, 26)
    assert len(a) == 26 and all(len({abs(lit) for lit in c}) == 3 for c in a)
    with pytest.raises(ValueError):
        random_kcnf(random.Random(1), 2, 3, k=3)


def test_solver_gives_up_at_the_conflict_limit() -> None:
    # pigeonhole 8 -> 7 is unsatisfiable and needs many conflicts
    pigeons, holes = 8, 7
    var = lambda p, h: p * holes + h + 1  # noqa: E731
    clauses = [[var(p, h) for h in range(holes)] for p in range(pigeons)]
    clauses += [[-var(p, h), -var(q, h)] for h in range(holes) for p in range(pigeons) for q in range(p + 1, pigeons)]
    with pytest.raises(SizeError, match="gave up after 50 conflicts"):
        solve(clauses, Limits(max_conflicts=50))
