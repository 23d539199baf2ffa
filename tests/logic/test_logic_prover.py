"""The entailment prover: hand-checked verdicts, agreement with brute-force model enumeration, limits."""

from __future__ import annotations

import itertools
import random
import time
from collections import Counter

import pytest

from ponder.logic import (
    InconsistentPremises,
    ParseError,
    SizeError,
    Undecided,
    decide,
    decide_text,
)
from ponder.logic.fewshot import FOL_EXAMPLES
from ponder.logic.syntax import And, Atom, Const, Formula, Iff, Implies, Not, Or, Quant, Var, Xor, constants

TRANSITIVE = "all x y z.((R(x, y) & R(y, z)) -> R(x, z))"


@pytest.mark.parametrize(("premises", "conclusion", "label"), [
    (["all x.(Man(x) -> Mortal(x))", "Man(socrates)"], "Mortal(socrates)", "True"),
    (["all x.(Man(x) -> Mortal(x))", "Man(socrates)"], "-Mortal(socrates)", "False"),
    (["all x.(Man(x) -> Mortal(x))", "Man(socrates)"], "Mortal(plato)", "Unknown"),
    (["all x.(Man(x) -> Mortal(x))", "Mortal(socrates)"], "Man(socrates)", "Unknown"),  # affirming the consequent
    (["P(a) | Q(a)", "-P(a)"], "Q(a)", "True"),
    (["A <-> B", "A"], "B", "True"),
    (["A xor B", "A"], "B", "False"),
    ([], "P | -P", "True"),
    ([], "P & -P", "False"),
    ([], "P", "Unknown"),
    (["-(exists x. P(x))"], "all x. -P(x)", "True"),
    (["all x. P(x)"], "exists x. P(x)", "True"),  # domains are non-empty
    (["exists x. P(x)"], "P(a)", "Unknown"),
    (["P(a) | P(b)"], "exists x. P(x)", "True"),
    (["exists x. (P(x) & Q(x))"], "exists x. P(x) & exists y. Q(y)", "True"),
    (["exists x. P(x) & exists y. Q(y)"], "exists x. (P(x) & Q(x))", "Unknown"),
    ([TRANSITIVE, "R(a, b)", "R(b, c)"], "R(a, c)", "True"),
    ([TRANSITIVE, "R(a, b)", "R(b, c)"], "R(c, a)", "Unknown"),
    ([TRANSITIVE, "all x. -R(x, x)", "R(a, b)"], "R(b, a)", "False"),
    ([], "exists x. (Drinks(x) -> all y. Drinks(y))", "True"),  # the drinker paradox is valid
])
def test_hand_checked_verdicts(premises: list[str], conclusion: str, label: str) -> None:
    decision = decide_text(premises, conclusion)
    assert decision.label == label
    assert decision.exact


@pytest.mark.parametrize("example", FOL_EXAMPLES, ids=lambda e: e.conclusion[0])
def test_the_few_shot_examples_carry_their_labels(example) -> None:  # type: ignore[no-untyped-def]
    assert decide_text([fol for _, fol in example.premises], example.conclusion[1]).label == example.label


def test_outside_the_fragment_the_prover_stays_sound() -> None:
    serial = "all x. exists y. Likes(x, y)"
    # refuted through Herbrand instances with a Skolem function
    proved = decide_text([serial], "exists x y. Likes(x, y)")
    assert proved.label == "True" and not proved.exact
    # countermodels both ways, found over the finite domain
    assert decide_text([serial], "Likes(a, a)").label == "Unknown"
    assert decide_text([serial, "all x. -Likes(x, x)"], "exists x y. (Likes(x, y) & -Likes(y, x))").label == "Unknown"
    # a strict order without end has only infinite models: no finite countermodel, no refutation either
    with pytest.raises(Undecided, match="outside the exactly decided fragment"):
        decide_text([serial, "all x. -Likes(x, x)", TRANSITIVE.replace("R(", "Likes(")], "Likes(a, b)")


def test_inconsistent_premises_are_reported_not_labelled() -> None:
    with pytest.raises(InconsistentPremises):
        decide_text(["exists x. (P(x) & Q(x))", "all x. (Q(x) -> -P(x))"], "R(a)")


def test_signature_and_parse_errors_name_their_place() -> None:
    with pytest.raises(ParseError, match="predicate P is used with 1 and with 2 arguments"):
        decide_text(["P(a)"], "P(a, b)")
    with pytest.raises(ParseError, match=r"^premise 2: "):
        decide_text(["P(a)", "P(a) &"], "P(a)")
    with pytest.raises(ParseError, match=r"^conclusion: "):
        decide_text(["P(a)"], "")


def test_size_limits_fail_fast() -> None:
    many = [f"P(c{i})" for i in range(40)]
    start = time.perf_counter()
    with pytest.raises(SizeError, match="domain of 40 elements"):
        decide_text(many, "P(c0)")
    wide = [f"P(c{i})" for i in range(25)]
    with pytest.raises(SizeError, match="grounding would build"):
        decide_text(wide, "all x y z w. (R(x, y, z, w) -> P(x))")
    with pytest.raises(SizeError, match="premises"):
        decide_text(["P"] * 100, "P")
    assert time.perf_counter() - start < 2.0


# ---- agreement with brute force -------------------------------------------------------------------

UNARY = ("P", "Q")


def _random(rng: random.Random, depth: int, scope: tuple[str, ...]) -> Formula:
    if depth == 0 or rng.random() < 0.3:
        terms = [Var(v) for v in scope] + [Const("a"), Const("b")]
        return Atom(rng.choice(UNARY), (rng.choice(terms),))
    kind = rng.randrange(8)
    if kind == 0:
        return Not(_random(rng, depth - 1, scope))
    if kind in (1, 2):
        parts = tuple(_random(rng, depth - 1, scope) for _ in range(2))
        return And(parts) if kind == 1 else Or(parts)
    if kind == 3:
        return Implies(_random(rng, depth - 1, scope), _random(rng, depth - 1, scope))
    if kind == 4:
        return rng.choice([Iff, Xor])(_random(rng, depth - 1, scope), _random(rng, depth - 1, scope))
    var = "xyz"[len(scope) % 3]
    return Quant(rng.choice(["all", "exists"]), var, _random(rng, depth - 1, (*scope, var)))


def _holds(f: Formula, structure: dict[str, object], env: dict[str, int], size: int) -> bool:
    if isinstance(f, Atom):
        (t,) = f.args
        element = env[t.name] if isinstance(t, Var) else structure[t.name]
        return element in structure[f.pred]  # type: ignore[operator]
    if isinstance(f, Not):
        return not _holds(f.body, structure, env, size)
    if isinstance(f, And):
        return all(_holds(p, structure, env, size) for p in f.parts)
    if isinstance(f, Or):
        return any(_holds(p, structure, env, size) for p in f.parts)
    if isinstance(f, Implies):
        return not _holds(f.left, structure, env, size) or _holds(f.right, structure, env, size)
    if isinstance(f, Iff | Xor):
        same = _holds(f.left, structure, env, size) == _holds(f.right, structure, env, size)
        return same if isinstance(f, Iff) else not same
    assert isinstance(f, Quant)
    values = (_holds(f.body, structure, {**env, f.var: e}, size) for e in range(size))
    return all(values) if f.kind == "all" else any(values)


def _structures(size: int, names: list[str]):  # type: ignore[no-untyped-def]
    """Every interpretation over {0..size-1}: constants may coincide (no unique-name assumption)."""
    subsets = [frozenset(e for e in range(size) if mask >> e & 1) for mask in range(2**size)]
    for extensions in itertools.product(subsets, repeat=len(UNARY)):
        for values in itertools.product(range(size), repeat=len(names)):
            yield {**dict(zip(UNARY, extensions, strict=True)), **dict(zip(names, values, strict=True))}


def _brute_force(premises: list[Formula], conclusion: Formula, max_size: int) -> str:
    names = sorted(set().union(*(constants(f) for f in [*premises, conclusion])))
    can_hold = can_fail = False
    for size in range(1, max_size + 1):
        for s in _structures(size, names):
            if all(_holds(p, s, {}, size) for p in premises):
                if _holds(conclusion, s, {}, size):
                    can_hold = True
                else:
                    can_fail = True
    if not (can_hold or can_fail):
        return "Inconsistent"
    return "Unknown" if can_hold and can_fail else ("True" if can_hold else "False")


def test_prover_agrees_with_enumerating_every_small_model() -> None:
    """Monadic formulas with 2 constants, 2 predicates: the prover's domain (constants + one witness per existential) is
    small, and every model up to that size is enumerated independently of the prover's encoding."""
    rng = random.Random(2024)
    seen: Counter[str] = Counter()
    checked = 0
    while checked < 150:
        premises = [_random(rng, 3, ()) for _ in range(rng.randint(1, 3))]
        conclusion = _random(rng, 3, ())
        try:
            decision = decide(premises, conclusion)
            label = decision.label
            size = len(decision.domain)
        except InconsistentPremises:
            label, size = "Inconsistent", 3
        if size > 3:
            continue
        assert _brute_force(premises, conclusion, max(size, 3)) == label
        seen[label] += 1
        checked += 1
    assert min(seen[k] for k in ("True", "False", "Unknown", "Inconsistent")) >= 5, seen
