"""Search domains: state spaces a search strategy can step through and check exactly.

Some problems come with a space of exact states (Game of 24, countdown): a proposed step can be checked, a
finished state solved or not, an answer verified. A task whose problems have one registers a finder with
``register_domain``; ``domain_of(problem)`` asks the finders. Search strategies (tot, mcts) read only this
interface, so they know no task, and a plugin task can bring its own domain.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, Protocol

from ponder.types import Problem


class SearchDomain(Protocol):
    """An exactly checkable state space (states are whatever objects the domain uses)."""

    @property
    def name(self) -> str:
        """The domain's kind, e.g. "game24" or "countdown"."""

    def start(self) -> Any:
        """The state before any step."""

    def steps_needed(self) -> int:
        """How many steps a solution takes (the search depth by default)."""

    def propose_prompt(self, state: Any) -> str:
        """The prompt that asks the model to list possible next steps from ``state``."""

    def value_prompt(self, state: Any) -> str:
        """The prompt that asks the model whether ``state`` can still reach a solution (sure/likely/impossible)."""

    def proposals(self, reply: str) -> list[str]:
        """The lines of a propose reply that try to be steps (others are chatter, neither taken nor counted)."""

    def step(self, state: Any, line: str) -> tuple[Any, str] | None:
        """The state after the step a line proposes, and the step as checked; None for an invalid step."""

    def key(self, state: Any) -> Hashable:
        """States with equal keys are the same (duplicates are dropped)."""

    def show(self, state: Any) -> str:
        """A short description of the state, for the stored tree."""

    def finished(self, state: Any) -> bool:
        """No step is left to take."""

    def solved(self, state: Any) -> bool:
        """A finished state that reaches the goal."""

    def answer(self, state: Any) -> str:
        """The answer a solved state gives (e.g. the expression it built)."""

    def verify(self, answer: str | None) -> bool:
        """Whether an answer, however it was reached, solves the problem exactly."""


DomainFinder = Callable[[Problem], "SearchDomain | None"]
_FINDERS: list[DomainFinder] = []


def register_domain(finder: DomainFinder) -> DomainFinder:
    """Add a finder: given a problem, it returns its domain, or None when the problem is not one of its own."""
    _FINDERS.append(finder)
    return finder


def domain_of(problem: Problem) -> SearchDomain | None:
    """The search domain of a problem, from the first finder that knows it; None for a problem without one."""
    import ponder.tasks  # noqa: F401  (the built-in tasks register their domains on import)

    for finder in _FINDERS:
        found = finder(problem)
        if found is not None:
            return found
    return None
