"""Propositional CNF: random k-CNF instances, clause and assignment parsing, and exact checks with python-sat.

Clause text (what a model writes when it formalises a constraint problem): one clause per line, literals
separated by ``|``, ``∨``, ``or``, ``,`` or spaces, negation written ``-``, ``~``, ``¬``, ``!`` or ``not``;
surrounding parentheses and a DIMACS ``0`` terminator are allowed, ``p cnf`` and ``c`` comment lines are
skipped. Assignments are lists of the variables that are true (every other variable is false), optionally
with explicit ``-x`` / ``x=0`` / ``x=false`` for false ones.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ponder.logic.errors import DEFAULT_LIMITS, Limits, ParseError, SizeError
from ponder.logic.ground import sat_solver

Clause = list[int]
UNSAT_WORDS = ("unsat", "unsatisfiable", "impossible", "no solution", "not satisfiable", "no assignment")
_NONE_WORDS = ("none", "nobody", "no one", "nothing", "all false")
_NEGATION = re.compile(r"^(?:-|~|¬|!|not\s+)\s*", re.IGNORECASE)
_SEPARATOR = re.compile(r"\s*(?:\||∨|\bor\b|,|;|\s)\s*", re.IGNORECASE)
_NAME = re.compile(r"\w+")
_VALUE = re.compile(r"^(\w+)\s*[=:]\s*(\w+)$")
_TRUE = {"1", "t", "true", "yes", "on"}
_FALSE = {"0", "f", "false", "no", "off"}


def random_kcnf(rng: random.Random, variables: int, clauses: int, k: int = 3) -> list[Clause]:
    """``clauses`` clauses over variables 1..n, each of ``k`` distinct variables with random signs."""
    if not 1 <= k <= variables:
        raise ValueError(f"k must be in 1..{variables}, got {k}")
    return [[v if rng.random() < 0.5 else -v for v in sorted(rng.sample(range(1, variables + 1), k))]
            for _ in range(clauses)]


def solve(clauses: Sequence[Sequence[int]], limits: Limits = DEFAULT_LIMITS) -> list[int] | None:
    """A model (a list of signed variables) or None if unsatisfiable; raises SizeError past the conflict limit."""
    with sat_solver(clauses) as solver:
        solver.conf_budget(limits.max_conflicts)
        outcome = solver.solve_limited()
        if outcome is None:
            raise SizeError(f"the SAT solver gave up after {limits.max_conflicts} conflicts")
        return list(solver.get_model() or []) if outcome else None


def satisfies(true_vars: Iterable[int], clauses: Sequence[Sequence[int]]) -> bool:
    """Whether the assignment (these variables true, all others false) makes every clause true."""
    true = set(true_vars)
    return all(any((lit > 0) == (abs(lit) in true) for lit in clause) for clause in clauses)


@dataclass(frozen=True)
class Cnf:
    """Clauses over named variables: variable ``i`` (1-based) is ``names[i - 1]``."""

    names: tuple[str, ...]
    clauses: tuple[tuple[int, ...], ...]

    def true_names(self, model: Iterable[int]) -> list[str]:
        return [self.names[lit - 1] for lit in model if lit > 0 and lit <= len(self.names)]


def parse_clauses(text: str, variables: Sequence[str] | None = None, limits: Limits = DEFAULT_LIMITS) -> Cnf:
    """Parse clause lines. With ``variables`` given, every name must be one of them (case-insensitive) and
    the result numbers them in that order; a bare integer ``i`` then means the i-th variable."""
    if len(text) > 50 * limits.max_chars:
        raise ParseError(f"clause text too long: {len(text)} characters (limit {50 * limits.max_chars})")
    canonical = {v.lower(): v for v in variables} if variables is not None else None
    names: dict[str, int] = {v: i for i, v in enumerate(variables or (), start=1)}
    clauses: list[tuple[int, ...]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip().strip("()[]{}").strip()
        if not line or line.lower().startswith(("c ", "p cnf")) or line == "c":
            continue
        tokens = _split(line)
        if len(tokens) > 1 and tokens[-1] == "0":
            tokens.pop()  # DIMACS clause terminator
        literals = []
        for token in tokens:
            negative = bool(_NEGATION.match(token))
            name = _NEGATION.sub("", token).strip("()")
            if not _NAME.fullmatch(name):
                raise ParseError(f"line {number}: {token!r} is not a literal")
            try:
                name = _resolve(name, canonical, variables)
            except ParseError as e:
                raise ParseError(f"line {number}: {e}") from None
            if name not in names:
                names[name] = len(names) + 1
            literals.append(-names[name] if negative else names[name])
        if not literals:
            raise ParseError(f"line {number}: an empty clause")
        clauses.append(tuple(literals))
        if len(clauses) > limits.max_ground_nodes // 100:
            raise SizeError(f"more than {limits.max_ground_nodes // 100} clauses")
    if not clauses:
        raise ParseError("no clauses found")
    if len(names) > limits.max_tokens:
        raise SizeError(f"{len(names)} variables (limit {limits.max_tokens})")
    return Cnf(tuple(names), tuple(clauses))


def _split(line: str) -> list[str]:
    # "not x" is one literal: glue the word to what follows before splitting on spaces
    glued = re.sub(r"\bnot\s+", "not~", line, flags=re.IGNORECASE)
    return [t.replace("not~", "not ") for t in _SEPARATOR.split(glued) if t]


def _resolve(name: str, canonical: Mapping[str, str] | None, variables: Sequence[str] | None) -> str:
    if canonical is None or variables is None:
        return name
    if name.lower() in canonical:
        return canonical[name.lower()]
    if name.isdigit() and 1 <= int(name) <= len(variables):
        return variables[int(name) - 1]
    raise ParseError(f"unknown variable {name!r}; the variables are {', '.join(variables)}")


def parse_assignment(text: str, variables: Sequence[str]) -> set[str] | None:
    """The set of true variables named in an answer, or None for an UNSAT answer; raises ParseError.

    Listed names are true, ``-x`` / ``not x`` / ``x=0`` / ``x=false`` false, unlisted ones false; naming a
    variable both ways, or a name that is not a variable, is an error.
    """
    answer = text.strip().strip(".").strip()
    lowered = answer.lower()
    if any(lowered == w or lowered.startswith(w + " ") for w in UNSAT_WORDS):
        return None
    if lowered in _NONE_WORDS:
        return set()
    canonical = {v.lower(): v for v in variables}
    values: dict[str, bool] = {}
    answer = re.sub(r"\s*([=:])\s*", r"\1", answer)  # "x1 = true" -> "x1=true"
    answer = re.sub(r"\bnot\s+", "-", answer, flags=re.IGNORECASE)
    for token in re.split(r"\s*(?:,|;|\band\b|\s)\s*", answer):
        token = token.strip().strip("()")
        if not token:
            continue
        value = not _NEGATION.match(token)
        token = _NEGATION.sub("", token)
        explicit = _VALUE.match(token)
        if explicit:
            token, word = explicit.group(1), explicit.group(2).lower()
            if word not in _TRUE | _FALSE:
                raise ParseError(f"{word!r} is not a truth value")
            value = value == (word in _TRUE)
        if not _NAME.fullmatch(token):
            raise ParseError(f"{token!r} is not a variable")
        name = _resolve(token, canonical, variables)
        if values.setdefault(name, value) != value:
            raise ParseError(f"{name} is given both values")
    return {name for name, value in values.items() if value}
