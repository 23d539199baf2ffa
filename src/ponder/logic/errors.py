"""Errors of the logic package and the size limits that keep untrusted formulas cheap to decide.

Every error is a ``LogicError`` (a ``PonderError``) with a one-line message, so a strategy can count a bad
formalisation by its class name and go on.
"""

from __future__ import annotations

from dataclasses import dataclass

from ponder.errors import PonderError


class LogicError(PonderError):
    """Base class of every error in ``ponder.logic``."""


class ParseError(LogicError):
    """Text that is not a formula (or a clause list) of the accepted syntax."""


class SizeError(LogicError):
    """A formula or problem too large to decide within the limits."""


class InconsistentPremises(LogicError):
    """The premises have no model, so every conclusion follows from them: the verdict says nothing."""


class Undecided(LogicError):
    """Outside the fragment the prover decides exactly, and no countermodel settled the question."""


@dataclass(frozen=True)
class Limits:
    """Bounds on the work one decision may cost; exceeding one raises ``SizeError`` (or ``ParseError``).

    ``max_ground_nodes`` bounds the propositional formula that grounding would build (computed before it is
    built); ``max_conflicts`` bounds the SAT solver's search per call.
    """

    max_chars: int = 4000
    max_tokens: int = 1000
    max_depth: int = 60
    max_formulas: int = 64
    max_arity: int = 4
    max_domain: int = 32
    max_ground_nodes: int = 200_000
    max_conflicts: int = 200_000
    extra_elements: int = 2  # domain elements added outside the exact fragment, to look for countermodels
    herbrand_depth: int = 2  # deepest Skolem terms tried when refuting outside the exact fragment


DEFAULT_LIMITS = Limits()
