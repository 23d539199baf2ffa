"""Grounding over a finite domain, Tseitin encoding to CNF, and bounded SAT calls (python-sat)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ponder.errors import ConfigError
from ponder.logic.errors import Limits, LogicError, SizeError
from ponder.logic.skolem import render
from ponder.logic.syntax import And, Atom, Formula, Iff, Implies, Not, Or, Quant, Xor, children

SOLVER = "minisat22"  # supports conflict budgets (solve_limited)


def ground_cost(f: Formula, domain_size: int) -> int:
    """Nodes of the ground formula, computed without building it."""
    if isinstance(f, Atom):
        return 1
    inner = sum(ground_cost(c, domain_size) for c in children(f))
    return 1 + (domain_size * inner if isinstance(f, Quant) else inner)


class Encoder:
    """Grounds formulas over ``domain`` and Tseitin-encodes them: every subformula gets a literal equivalent to
    it, so one encoding answers several questions through solver assumptions."""

    def __init__(self, domain: Sequence[str]) -> None:
        self.domain = tuple(domain)
        self.atoms: dict[tuple[str, tuple[str, ...]], int] = {}
        self.clauses: list[list[int]] = []
        self.top = 0

    def fresh(self) -> int:
        self.top += 1
        return self.top

    def lit(self, f: Formula, env: dict[str, str] | None = None) -> int:
        env = env or {}
        if isinstance(f, Atom):
            try:
                key = (f.pred, tuple(render(t, env) for t in f.args))
            except KeyError as e:
                raise LogicError(f"variable {e.args[0]} is not bound by a quantifier") from None
            if key not in self.atoms:
                self.atoms[key] = self.fresh()
            return self.atoms[key]
        if isinstance(f, Not):
            return -self.lit(f.body, env)
        if isinstance(f, And):
            return self.conjunction([self.lit(p, env) for p in f.parts])
        if isinstance(f, Or):
            return -self.conjunction([-self.lit(p, env) for p in f.parts])
        if isinstance(f, Implies):
            return -self.conjunction([self.lit(f.left, env), -self.lit(f.right, env)])
        if isinstance(f, Iff | Xor):
            same = self.equivalence(self.lit(f.left, env), self.lit(f.right, env))
            return same if isinstance(f, Iff) else -same
        instances = [self.lit(f.body, {**env, f.var: e}) for e in self.domain]
        if f.kind == "all":
            return self.conjunction(instances)
        return -self.conjunction([-i for i in instances])

    def conjunction(self, lits: list[int]) -> int:
        lits = list(dict.fromkeys(lits))
        if len(lits) == 1:
            return lits[0]
        v = self.fresh()
        self.clauses.extend([-v, lit] for lit in lits)
        self.clauses.append([v, *(-lit for lit in lits)])
        return v

    def equivalence(self, a: int, b: int) -> int:
        v = self.fresh()
        self.clauses.extend([[-v, -a, b], [-v, a, -b], [v, a, b], [v, -a, -b]])
        return v


def sat_solver(clauses: Sequence[Sequence[int]]) -> Any:
    """A python-sat solver loaded with the clauses (use it as a context manager)."""
    try:
        from pysat.solvers import Solver
    except ImportError:  # not a LogicError: a missing package is the user's to fix, not a bad formula
        raise ConfigError("the logic tasks and strategies need python-sat: pip install 'ponder[tasks]'") from None
    return Solver(name=SOLVER, bootstrap_with=[list(c) for c in clauses])


def satisfiable(clauses: list[list[int]], queries: Sequence[Sequence[int]], limits: Limits) -> list[bool]:
    """Satisfiability of the clauses under each list of assumption literals."""
    answers = []
    with sat_solver(clauses) as solver:
        for assumptions in queries:
            solver.conf_budget(limits.max_conflicts)
            outcome = solver.solve_limited(assumptions=list(assumptions))
            if outcome is None:
                raise SizeError(f"the SAT solver gave up after {limits.max_conflicts} conflicts")
            answers.append(bool(outcome))
    return answers
