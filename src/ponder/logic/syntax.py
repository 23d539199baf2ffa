"""First-order formulas without function symbols or equality: the syntax LINC's translations are written in.

Terms are variables (bound by a quantifier) or constants (any other name); function terms exist only as
Skolem terms made by the prover. Formulas are atoms, negation,
n-ary conjunction and disjunction, implication, biconditional, exclusive or, and the two quantifiers.
``to_text`` prints the ASCII form the parser reads back (NLTK/Prover9 style: ``all x.(P(x) -> Q(x))``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Var:
    name: str


@dataclass(frozen=True)
class Const:
    name: str


@dataclass(frozen=True)
class Fn:
    """A function applied to terms. The parser never makes one: only Skolemization does."""

    name: str
    args: tuple[Term, ...] = ()


Term = Var | Const | Fn


@dataclass(frozen=True)
class Atom:
    pred: str
    args: tuple[Term, ...] = ()


@dataclass(frozen=True)
class Not:
    body: Formula


@dataclass(frozen=True)
class And:
    parts: tuple[Formula, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Formula, ...]


@dataclass(frozen=True)
class Implies:
    left: Formula
    right: Formula


@dataclass(frozen=True)
class Iff:
    left: Formula
    right: Formula


@dataclass(frozen=True)
class Xor:
    left: Formula
    right: Formula


@dataclass(frozen=True)
class Quant:
    kind: Literal["all", "exists"]
    var: str
    body: Formula


Formula = Atom | Not | And | Or | Implies | Iff | Xor | Quant


def children(f: Formula) -> tuple[Formula, ...]:
    if isinstance(f, Atom):
        return ()
    if isinstance(f, Not | Quant):
        return (f.body,)
    if isinstance(f, And | Or):
        return f.parts
    return (f.left, f.right)


def walk(f: Formula) -> Iterator[Formula]:
    """Every subformula, the formula first (iterative: parsed formulas are depth-bounded, built ones may not be)."""
    stack = [f]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(children(node)))


def constants(f: Formula) -> set[str]:
    return {t.name for node in walk(f) if isinstance(node, Atom) for t in node.args if isinstance(t, Const)}


def predicates(f: Formula) -> set[tuple[str, int]]:
    """(name, arity) of every predicate used."""
    return {(node.pred, len(node.args)) for node in walk(f) if isinstance(node, Atom)}


def free_vars(f: Formula, bound: frozenset[str] = frozenset()) -> set[str]:
    """Names of variables occurring in ``f`` outside the scope of a quantifier binding them."""
    if isinstance(f, Atom):
        return {v for t in f.args for v in term_vars(t)} - bound
    if isinstance(f, Quant):
        return free_vars(f.body, bound | {f.var})
    return set().union(*(free_vars(c, bound) for c in children(f)))


def term_vars(t: Term) -> set[str]:
    if isinstance(t, Var):
        return {t.name}
    if isinstance(t, Fn):
        return set().union(*(term_vars(a) for a in t.args))
    return set()


def size(f: Formula) -> int:
    return sum(1 for _ in walk(f))


def _term(t: Term) -> str:
    if isinstance(t, Fn) and t.args:
        return f"{t.name}({', '.join(map(_term, t.args))})"
    return t.name


def to_text(f: Formula) -> str:
    """ASCII text that ``parse_formula`` reads back to the same formula."""
    if isinstance(f, Atom):
        return f"{f.pred}({', '.join(map(_term, f.args))})" if f.args else f.pred
    if isinstance(f, Not):
        return f"-{_wrapped(f.body)}"
    if isinstance(f, And | Or):
        op = " & " if isinstance(f, And) else " | "
        return op.join(_wrapped(p) for p in f.parts)
    if isinstance(f, Quant):
        return f"{f.kind} {f.var}.{_wrapped(f.body)}"
    op = {Implies: " -> ", Iff: " <-> ", Xor: " xor "}[type(f)]
    return f"{_wrapped(f.left)}{op}{_wrapped(f.right)}"


def _wrapped(f: Formula) -> str:
    text = to_text(f)
    return text if isinstance(f, Atom | Not) else f"({text})"
