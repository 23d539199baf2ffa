"""Seeded FOLIO/ProofWriter-style problems whose labels the prover computes exactly.

Each problem names a few people, gives facts, rules ("All kind people are quiet."), negative rules,
disjunctions, conditionals, a relation and existentials, each written in English and in the formal syntax,
and asks whether a conclusion is True, False or Unknown. Every formula is universal or existential without
an existential under a universal, so the problems lie in the fragment ``decide`` settles exactly. Labels are
balanced by rejection: problem ``i`` aims for label ``LABELS[i % 3]`` and redraws until the prover agrees;
inconsistent premise sets, conclusions that repeat a premise, and True/False conclusions that the facts
settle without any rule are redrawn too, so every True/False answer takes at least one rule application.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass

from ponder.logic.errors import InconsistentPremises
from ponder.logic.prover import LABELS, Label, decide_text

PEOPLE = ("Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Gina", "Hank")
ADJECTIVES = ("kind", "quiet", "young", "smart", "rich", "tall", "brave", "calm", "happy", "shy")
RELATIONS = ("likes", "helps", "visits")
MAX_TRIES = 2000


@dataclass(frozen=True)
class Statement:
    text: str
    fol: str


@dataclass(frozen=True)
class LogicItem:
    premises: tuple[Statement, ...]
    conclusion: Statement
    label: Label


class _Vocabulary:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.people = rng.sample(PEOPLE, rng.randint(2, 3))
        self.adjectives = rng.sample(ADJECTIVES, rng.randint(4, 5))
        self.relation = rng.choice(RELATIONS)

    def person(self) -> str:
        return self.rng.choice(self.people)

    def adjs(self, k: int) -> list[str]:
        return self.rng.sample(self.adjectives, k)


def _p(adj: str, term: str) -> str:
    return f"{adj.capitalize()}({term})"


def _c(person: str) -> str:
    return person.lower()


def _rel(v: _Vocabulary, a: str, b: str) -> str:
    return f"{v.relation[:-1].capitalize()}({a}, {b})"  # "likes" -> Like(x, y)


def fact(v: _Vocabulary) -> Statement:
    e, (a,) = v.person(), v.adjs(1)
    return Statement(f"{e} is {a}.", _p(a, _c(e)))


def negative_fact(v: _Vocabulary) -> Statement:
    e, (a,) = v.person(), v.adjs(1)
    return Statement(f"{e} is not {a}.", f"-{_p(a, _c(e))}")


def rule(v: _Vocabulary) -> Statement:
    a, b = v.adjs(2)
    return Statement(f"All {a} people are {b}.", f"all x.({_p(a, 'x')} -> {_p(b, 'x')})")


def conjunctive_rule(v: _Vocabulary) -> Statement:
    a, b, c = v.adjs(3)
    return Statement(f"Everyone who is {a} and {b} is {c}.",
                     f"all x.(({_p(a, 'x')} & {_p(b, 'x')}) -> {_p(c, 'x')})")


def negative_rule(v: _Vocabulary) -> Statement:
    a, b = v.adjs(2)
    return Statement(f"No {a} person is {b}.", f"all x.({_p(a, 'x')} -> -{_p(b, 'x')})")


def disjunctive_rule(v: _Vocabulary) -> Statement:
    a, b, c = v.adjs(3)
    return Statement(f"Every {a} person is {b} or {c}.",
                     f"all x.({_p(a, 'x')} -> ({_p(b, 'x')} | {_p(c, 'x')}))")


def disjunction(v: _Vocabulary) -> Statement:
    e, (a, b) = v.person(), v.adjs(2)
    return Statement(f"{e} is {a} or {b}.", f"{_p(a, _c(e))} | {_p(b, _c(e))}")


def conditional(v: _Vocabulary) -> Statement:
    e1, e2, (a, b) = v.person(), v.person(), v.adjs(2)
    return Statement(f"If {e1} is {a}, then {e2} is {b}.", f"{_p(a, _c(e1))} -> {_p(b, _c(e2))}")


def relation_fact(v: _Vocabulary) -> Statement:
    e1, e2 = v.rng.sample(v.people, 2)
    return Statement(f"{e1} {v.relation} {e2}.", _rel(v, _c(e1), _c(e2)))


def relation_rule(v: _Vocabulary) -> Statement:
    e, (a,) = v.person(), v.adjs(1)
    return Statement(f"Everyone who {v.relation} {e} is {a}.", f"all x.({_rel(v, 'x', _c(e))} -> {_p(a, 'x')})")


def existential(v: _Vocabulary) -> Statement:
    a, b = v.adjs(2)
    return Statement(f"Someone is {a} and {b}.", f"exists x.({_p(a, 'x')} & {_p(b, 'x')})")


def someone(v: _Vocabulary) -> Statement:
    (a,) = v.adjs(1)
    return Statement(f"Someone is {a}.", f"exists x.{_p(a, 'x')}")


Template = Callable[[_Vocabulary], Statement]
PREMISE_TEMPLATES: tuple[tuple[Template, int], ...] = (
    (fact, 6), (negative_fact, 2), (rule, 6), (conjunctive_rule, 2), (negative_rule, 2), (disjunctive_rule, 1),
    (disjunction, 1), (conditional, 1), (relation_fact, 1), (relation_rule, 1), (existential, 1),
)
CONCLUSION_TEMPLATES: tuple[tuple[Template, int], ...] = (
    (fact, 5), (negative_fact, 3), (disjunction, 1), (someone, 1),
)


def _draw(rng: random.Random, templates: tuple[tuple[Template, int], ...], v: _Vocabulary) -> Statement:
    choices, weights = zip(*templates, strict=True)
    return rng.choices(choices, weights)[0](v)


def generate_item(rng: random.Random, target: Label) -> LogicItem:
    """A problem whose prover label is ``target`` (drawn until one is; deterministic given ``rng``)."""
    for _ in range(MAX_TRIES):
        v = _Vocabulary(rng)
        premises: list[Statement] = []
        wanted = rng.randint(4, 6)
        for _ in range(100):  # distinct statements; the vocabulary allows far more than six
            s = _draw(rng, PREMISE_TEMPLATES, v)
            if s not in premises:
                premises.append(s)
            if len(premises) == wanted:
                break
        conclusion = _draw(rng, CONCLUSION_TEMPLATES, v)
        if conclusion in premises:
            continue
        try:
            label = decide_text([p.fol for p in premises], conclusion.fol).label
        except InconsistentPremises:
            continue
        if label == target and (label == "Unknown" or _needs_a_rule(premises, conclusion, label)):
            return LogicItem(tuple(premises), conclusion, label)
    raise RuntimeError(f"no {target} problem in {MAX_TRIES} draws")  # pragma: no cover - rates are ~1/4 or more


def _needs_a_rule(premises: list[Statement], conclusion: Statement, label: Label) -> bool:
    """Whether the facts alone (without the rules and conditionals) would not settle the conclusion."""
    facts = [p.fol for p in premises if "->" not in p.fol]
    return decide_text(facts, conclusion.fol).label != label


@functools.lru_cache(maxsize=4096)  # drawing takes ~20 ms of prover calls; tasks reload the same items
def item(seed: int, index: int) -> LogicItem:
    """Problem ``index`` under ``seed``: depends on nothing else."""
    return generate_item(random.Random(f"ponder/logic/{seed}/{index}"), LABELS[index % len(LABELS)])
