"""Decide entailment by grounding to propositional logic and asking a SAT solver (python-sat).

``decide(premises, conclusion)`` answers as LINC's prover does: **True** when the premises entail the
conclusion (premises ∧ ¬conclusion has no model), **False** when they entail its negation (premises ∧
conclusion has no model), **Unknown** when both have models.

Exact fragment. Formulas have no function symbols and no equality. When no existential quantifier (once
negations are pushed inward) depends on an enclosing universal variable, the problem lies in the
Bernays-Schönfinkel class: by Herbrand's theorem it has a model iff it has one whose domain is its constants
plus one witness per existential, so grounding the quantifiers over that finite domain and solving the
propositional result decides it, soundly and completely. (Extra elements never hurt: an equality-free model
can always be enlarged by copying an element, so constants may as well name distinct elements.)

Outside it (``∀x ∃y ...`` with y depending on x) the prover stays sound and may give up: a model over the
finite domain is a real countermodel, and unsatisfiability is proved Herbrand-style, by Skolemizing and
finding the ground instances over terms up to ``Limits.herbrand_depth`` unsatisfiable. If neither settles the
question it raises ``Undecided``. Premises without a model raise ``InconsistentPremises``: classically they
entail everything, which says nothing about the conclusion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ponder.logic.errors import DEFAULT_LIMITS, InconsistentPremises, Limits, ParseError, SizeError, Undecided
from ponder.logic.ground import Encoder, ground_cost, satisfiable
from ponder.logic.parser import parse_formula
from ponder.logic.skolem import Skolemizer, herbrand_universe
from ponder.logic.syntax import And, Atom, Formula, Implies, Not, Or, Quant, constants, free_vars, predicates

Label = Literal["True", "False", "Unknown"]
LABELS: tuple[Label, ...] = ("True", "False", "Unknown")
_QUERIES = ("premises", "premises and not conclusion", "premises and conclusion")


@dataclass(frozen=True)
class Decision:
    """The verdict and what it cost: the finite domain grounded over, its ground atoms and CNF clauses."""

    label: Label
    domain: tuple[str, ...]
    atoms: int
    clauses: int
    exact: bool  # inside the exactly decided fragment


def decide_text(premises: Sequence[str], conclusion: str, limits: Limits = DEFAULT_LIMITS) -> Decision:
    """Parse, then ``decide``; a ``ParseError`` names the premise (1-based) or the conclusion it is about."""
    parsed = []
    for number, text in enumerate(premises, start=1):
        try:
            parsed.append(parse_formula(text, limits))
        except ParseError as e:
            raise ParseError(f"premise {number}: {e}") from None
    try:
        goal = parse_formula(conclusion, limits)
    except ParseError as e:
        raise ParseError(f"conclusion: {e}") from None
    return decide(parsed, goal, limits)


def decide(premises: Sequence[Formula], conclusion: Formula, limits: Limits = DEFAULT_LIMITS) -> Decision:
    formulas = [*premises, conclusion]
    if len(formulas) > limits.max_formulas:
        raise SizeError(f"{len(premises)} premises (limit {limits.max_formulas - 1})")
    _check_signature(formulas)
    witnesses, exact = 0, True
    for f, polarities in [*((p, (True,)) for p in premises), (conclusion, (True, False))]:
        for positive in polarities:
            count, dependent = _existentials(f, positive, frozenset())
            witnesses, exact = witnesses + count, exact and not dependent
    names = sorted(set().union(*(constants(f) for f in formulas)))
    extra = max(witnesses + (0 if exact else limits.extra_elements), 0 if names else 1)
    domain = (*names, *(f"#{i}" for i in range(1, extra + 1)))  # '#' names cannot clash with parsed names
    if len(domain) > limits.max_domain:
        raise SizeError(f"a domain of {len(domain)} elements (limit {limits.max_domain})")
    cost = sum(ground_cost(f, len(domain)) for f in formulas)
    if cost > limits.max_ground_nodes:
        raise SizeError(f"grounding would build {cost} nodes over {len(domain)} elements "
                        f"(limit {limits.max_ground_nodes})")
    encoder = Encoder(domain)
    encoder.clauses.extend([encoder.lit(p)] for p in premises)
    goal = encoder.lit(conclusion)
    has_model = satisfiable(encoder.clauses, ([], [-goal], [goal]), limits)
    refuted = [not m for m in has_model] if exact else _refute(premises, conclusion, has_model, limits)
    if refuted[0] or (refuted[1] and refuted[2]):
        raise InconsistentPremises("the premises contradict each other, so they entail any conclusion")
    label: Label
    if refuted[1]:
        label = "True"
    elif refuted[2]:
        label = "False"
    elif has_model[1] and has_model[2]:
        label = "Unknown"
    else:
        open_ = [q for q, m, r in zip(_QUERIES, has_model, refuted, strict=True) if not (m or r)]
        raise Undecided(f"outside the exactly decided fragment (an 'exists' depends on an enclosing 'all'): "
                        f"found neither a model nor a refutation of {' / '.join(open_)}")
    return Decision(label, domain, len(encoder.atoms), len(encoder.clauses), exact)


def _refute(premises: Sequence[Formula], conclusion: Formula, has_model: list[bool], limits: Limits) -> list[bool]:
    """Which of the three queries are proved unsatisfiable by ground instances over Herbrand terms."""
    skolem = Skolemizer()
    sentences = [skolem.skolemize(p) for p in premises]
    positive, negative = skolem.skolemize(conclusion, True), skolem.skolemize(conclusion, False)
    names = set().union(*(constants(f) for f in [*sentences, positive, negative]))
    refuted = [False, False, False]
    for depth in range(limits.herbrand_depth + 1):
        universe = herbrand_universe(names, skolem.functions, depth, limits.max_domain)
        if universe is None:
            break
        if sum(ground_cost(f, len(universe)) for f in [*sentences, positive, negative]) > limits.max_ground_nodes:
            break
        encoder = Encoder(universe)
        encoder.clauses.extend([encoder.lit(s)] for s in sentences)
        pos, neg = encoder.lit(positive), encoder.lit(negative)
        open_ = [i for i in range(3) if not (has_model[i] or refuted[i])]
        try:
            found = satisfiable(encoder.clauses, [([], [neg], [pos])[i] for i in open_], limits)
        except SizeError:
            break
        for i, sat in zip(open_, found, strict=True):
            refuted[i] = not sat
        if all(has_model[i] or refuted[i] for i in range(3)) or all(a == 0 for a in skolem.functions.values()):
            break  # settled, or no Skolem functions: deeper universes add nothing
    return refuted


def _check_signature(formulas: Sequence[Formula]) -> None:
    arity: dict[str, int] = {}
    for f in formulas:
        for name, n in sorted(predicates(f)):
            if arity.setdefault(name, n) != n:
                raise ParseError(f"predicate {name} is used with {arity[name]} and with {n} arguments")


def _existentials(f: Formula, positive: bool, universals: frozenset[str]) -> tuple[int, bool]:
    """(existential quantifiers once negations are pushed inward, whether one depends on a universal)."""
    if isinstance(f, Atom):
        return 0, False
    if isinstance(f, Not):
        return _existentials(f.body, not positive, universals)
    if isinstance(f, Quant):
        if (f.kind == "all") == positive:
            return _existentials(f.body, positive, universals | {f.var})
        count, dependent = _existentials(f.body, positive, universals - {f.var})
        depends = bool(free_vars(f.body, frozenset({f.var})) & universals)
        return count + 1, dependent or depends
    if isinstance(f, And | Or):
        branches = [(p, positive) for p in f.parts]
    elif isinstance(f, Implies):
        branches = [(f.left, not positive), (f.right, positive)]
    else:  # Iff, Xor: each side occurs in both polarities
        branches = [(side, pol) for side in (f.left, f.right) for pol in (True, False)]
    total, dependent = 0, False
    for part, pol in branches:
        count, dep = _existentials(part, pol, universals)
        total, dependent = total + count, dependent or dep
    return total, dependent
