"""Skolemization and Herbrand universes: the refutation side of the prover outside the exact fragment.

``skolemize`` pushes negations inward and replaces each existential by a Skolem term over the universal
variables it depends on, giving a universal sentence that is satisfiable iff the input is. By Herbrand's
theorem such a sentence is unsatisfiable iff some finite set of its ground instances is; ``herbrand_universe``
lists the ground terms up to a depth, so grounding over it and finding the instances unsatisfiable is a sound
proof of unsatisfiability (a semi-decision: deeper universes prove more).
"""

from __future__ import annotations

import itertools

from ponder.logic.syntax import (
    And,
    Atom,
    Const,
    Fn,
    Formula,
    Iff,
    Implies,
    Not,
    Or,
    Quant,
    Term,
    Var,
    Xor,
    free_vars,
    term_vars,
)


class Skolemizer:
    """Skolemizes formulas with function names that never repeat across calls (``sk1``, ``sk2``, ...)."""

    def __init__(self) -> None:
        self.functions: dict[str, int] = {}  # name -> arity
        self._count = itertools.count(1)

    def skolemize(self, f: Formula, positive: bool = True) -> Formula:
        """An NNF, existential-free sentence equisatisfiable with ``f`` (or with ``¬f`` if not positive)."""
        return self._walk(f, positive, (), {})

    def _walk(self, f: Formula, positive: bool, scope: tuple[str, ...], subst: dict[str, Term]) -> Formula:
        if isinstance(f, Atom):
            atom = Atom(f.pred, tuple(subst.get(t.name, t) if isinstance(t, Var) else t for t in f.args))
            return atom if positive else Not(atom)
        if isinstance(f, Not):
            return self._walk(f.body, not positive, scope, subst)
        if isinstance(f, And | Or):
            parts = tuple(self._walk(p, positive, scope, subst) for p in f.parts)
            return (And if isinstance(f, And) == positive else Or)(parts)
        if isinstance(f, Implies):
            left, right = Not(f.left), f.right
            if positive:
                return Or((self._walk(left, True, scope, subst), self._walk(right, True, scope, subst)))
            return And((self._walk(left, False, scope, subst), self._walk(right, False, scope, subst)))
        if isinstance(f, Iff | Xor):
            same = isinstance(f, Iff) == positive  # the result must say "left and right agree"
            a, b = f.left, f.right
            if same:
                pair = Or((self._walk(a, False, scope, subst), self._walk(b, True, scope, subst))), \
                    Or((self._walk(a, True, scope, subst), self._walk(b, False, scope, subst)))
            else:
                pair = Or((self._walk(a, True, scope, subst), self._walk(b, True, scope, subst))), \
                    Or((self._walk(a, False, scope, subst), self._walk(b, False, scope, subst)))
            return And(pair)
        universal = (f.kind == "all") == positive
        if universal:
            fresh = f"{f.var}#{next(self._count)}"  # unique, so Skolem terms never capture a shadowed name
            body = self._walk(f.body, positive, (*scope, fresh), {**subst, f.var: Var(fresh)})
            return Quant("all", fresh, body)
        # The witness depends only on the universals the body mentions (none: a Skolem constant).
        used = set().union(*(term_vars(subst.get(v, Var(v))) for v in free_vars(f.body, frozenset({f.var}))))
        args = tuple(Var(v) for v in scope if v in used)
        name = f"sk{next(self._count)}"
        self.functions[name] = len(args)
        term = Fn(name, args)
        return self._walk(f.body, positive, scope, {**subst, f.var: term})


def render(term: Term, env: dict[str, str]) -> str:
    """The ground term as a string, with variables replaced from ``env``."""
    if isinstance(term, Const):
        return term.name
    if isinstance(term, Var):
        return env[term.name]
    if not term.args:
        return term.name
    return f"{term.name}({','.join(render(a, env) for a in term.args)})"


def herbrand_universe(constants: set[str], functions: dict[str, int], depth: int, cap: int) -> list[str] | None:
    """Ground terms of nesting depth at most ``depth``; None if there would be more than ``cap``."""
    base = sorted(constants | {name for name, arity in functions.items() if arity == 0}) or ["#0"]
    terms = list(base)
    seen = set(terms)
    applied = sorted((n, a) for n, a in functions.items() if a > 0)
    for _ in range(depth):
        new = []
        for name, arity in applied:
            for args in itertools.product(terms, repeat=arity):
                term = f"{name}({','.join(args)})"
                if term not in seen:
                    seen.add(term)
                    new.append(term)
                    if len(seen) > cap:
                        return None
        if not new:
            break
        terms.extend(new)
    return terms
