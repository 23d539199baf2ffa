"""The formula parser: notations, precedence, scoping, clear errors, and bounded work on hostile input."""

from __future__ import annotations

import random
import re
import time

import pytest

from ponder.logic import Limits, ParseError, parse_formula
from ponder.logic.syntax import And, Atom, Const, Formula, Iff, Implies, Not, Or, Quant, Var, Xor, to_text

P, Q, R = Atom("P"), Atom("Q"), Atom("R")


def px(name: str, term: Var | Const) -> Atom:
    return Atom(name, (term,))


@pytest.mark.parametrize(("text", "expected"), [
    ("P | Q & R", Or((P, And((Q, R))))),
    ("-P & Q", And((Not(P), Q))),
    ("P -> Q -> R", Implies(P, Implies(Q, R))),
    ("P & Q -> R", Implies(And((P, Q)), R)),
    ("P <-> Q -> R", Iff(P, Implies(Q, R))),
    ("P xor Q | R", Xor(P, Or((Q, R)))),
    ("--P", Not(Not(P))),
    ("not P and Q or R", Or((And((Not(P), Q)), R))),
])
def test_precedence(text: str, expected: Formula) -> None:
    assert parse_formula(text) == expected


def test_quantifier_body_reaches_right_and_binds_variables() -> None:
    x = Var("x")
    assert parse_formula("all x. P(x) -> Q(x)") == Quant("all", "x", Implies(px("P", x), px("Q", x)))
    # parenthesised, the quantifier stops: the x outside is a constant named x
    assert parse_formula("(all x. P(x)) -> Q(x)") == Implies(Quant("all", "x", px("P", x)), px("Q", Const("x")))
    assert parse_formula("all x. R(x, y)") == Quant("all", "x", Atom("R", (x, Const("y"))))
    assert parse_formula("exists x y. R(x, y)") == parse_formula("exists x. exists y. R(x, y)")
    assert parse_formula("all x, y: R(x, y)") == parse_formula("all x. all y. R(x, y)")
    assert parse_formula("all x. (all x. P(x))") == Quant("all", "x", Quant("all", "x", px("P", x)))


def test_unicode_folio_notation_equals_ascii() -> None:
    pairs = [
        ("∀x (Dog(x) → Animal(x))", "all x.(Dog(x) -> Animal(x))"),
        ("∃x ∃y (Likes(x, y) ∧ ¬Likes(y, x))", "exists x y.(Likes(x, y) & -Likes(y, x))"),
        ("A ⊕ B", "A xor B"),
        ("(A ∨ B) ↔ C", "(A | B) <-> C"),
        ("forall x. ~P(x) => Q(x)", "all x.(-P(x) -> Q(x))"),
        ("!P(a) || Q(a) && R(a)", "-P(a) | (Q(a) & R(a))"),
    ]
    for unicode, ascii_ in pairs:
        assert parse_formula(unicode) == parse_formula(ascii_)


def test_keywords_are_lower_case_only() -> None:
    assert parse_formula("All(a) & Or(b)") == And((px("All", Const("a")), px("Or", Const("b"))))


def _random_formula(rng: random.Random, depth: int, scope: tuple[str, ...]) -> Formula:
    if depth == 0 or rng.random() < 0.25:
        terms = [Var(v) for v in scope] + [Const("a"), Const("b")]
        pred = rng.choice(["P", "Q", "R", "S"])
        return Atom(pred, tuple(rng.choice(terms) for _ in range({"P": 1, "Q": 1, "R": 2, "S": 0}[pred])))
    kind = rng.randrange(7)
    sub = lambda: _random_formula(rng, depth - 1, scope)  # noqa: E731
    if kind == 0:
        return Not(sub())
    if kind == 1:
        return And(tuple(sub() for _ in range(rng.randint(2, 3))))
    if kind == 2:
        return Or(tuple(sub() for _ in range(rng.randint(2, 3))))
    if kind == 3:
        return Implies(sub(), sub())
    if kind == 4:
        return rng.choice([Iff, Xor])(sub(), sub())
    var = rng.choice(["x", "y", "z"])
    return Quant(rng.choice(["all", "exists"]), var, _random_formula(rng, depth - 1, (*scope, var)))


def test_printed_formulas_parse_back_to_themselves() -> None:
    rng = random.Random(7)
    for _ in range(500):
        f = _random_formula(rng, 5, ())
        assert parse_formula(to_text(f)) == f, to_text(f)


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty formula"),
    ("P(", "expected a name but the formula ended"),
    ("P(a", "expected ')'"),
    ("P & ", "expected a formula"),
    ("P(a) Q(a)", "expected an operator or the end"),
    ("P(f(a))", "function terms are not supported"),
    ("a = b", "equality is not supported"),
    ("P ^ Q", "'^' is ambiguous"),
    ("P(a) @ Q", "unexpected character '@' at position 5"),
    ("all . P(a)", "expected a variable"),
    ("P(a, b, c, d, e)", "5 arguments"),
])
def test_errors_say_what_and_where(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=re.escape(message)):
        parse_formula(text)


@pytest.mark.parametrize("text", [
    "(" * 100_000 + "P" + ")" * 100_000,
    "-" * 3000 + "P",
    " & ".join(f"P(c{i})" for i in range(100_000)),
    "all x. " * 2000 + "P(x)",
    "P -> " * 1500 + "P",
])
def test_hostile_input_fails_fast_with_a_parse_error(text: str) -> None:
    start = time.perf_counter()
    with pytest.raises(ParseError, match=r"too long|too deeply"):
        parse_formula(text)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("text", ["(" * 500 + "P" + ")" * 500, "-" * 500 + "P", "all x. " * 300 + "P(x)",
                                  "P -> " * 400 + "P"])
def test_nesting_depth_is_bounded_below_the_length_limits(text: str) -> None:
    roomy = Limits(max_chars=10**6, max_tokens=10**6)
    with pytest.raises(ParseError, match="nested too deeply"):
        parse_formula(text, roomy)
    # even with the depth limit lifted past Python's stack, the answer is a ParseError, not a crash
    with pytest.raises(ParseError, match="nested too deeply"):
        parse_formula("(" * 50_000 + "P" + ")" * 50_000, Limits(max_chars=10**6, max_tokens=10**6, max_depth=10**6))


def test_long_flat_formulas_within_limits_parse() -> None:
    text = " & ".join(f"P(c{i})" for i in range(200))
    f = parse_formula(text)
    assert isinstance(f, And) and len(f.parts) == 200
