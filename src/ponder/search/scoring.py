"""The step-scorer interface shared by the search strategies, and how per-step scores combine into one.

A scorer judges a partial solution: given the problem and the steps so far, it returns a score in [0, 1] for
the newest step in the context of the ones before it. Implementations live in ``ponder.search.scorers``
(the model's own P("Yes"), a confidence measure, a process reward model over HTTP); searches combine the
scores along a path with ``aggregate``, as the PRM literature does (min, last, or product).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, Protocol

from ponder.errors import ConfigError
from ponder.types import Problem

if TYPE_CHECKING:
    from ponder.context import Ctx

Aggregation = Literal["min", "last", "product"]
AGGREGATIONS: tuple[Aggregation, ...] = ("min", "last", "product")


class StepScorer(Protocol):
    """Scores the newest step of a partial solution; every model call goes through ``ctx``."""

    name: str

    async def score(self, ctx: Ctx, problem: Problem, steps: Sequence[str]) -> float:
        """A value in [0, 1] for ``steps[-1]`` given ``steps[:-1]``; higher is better."""
        ...


def aggregate(scores: Sequence[float], how: Aggregation | str = "min") -> float:
    """One value for a path from its per-step scores: the weakest step, the last step, or their product."""
    if not scores:
        return 0.0
    if how == "min":
        return min(scores)
    if how == "last":
        return scores[-1]
    if how == "product":
        return math.prod(scores)
    raise ConfigError(f"unknown score aggregation {how!r}; use one of {', '.join(AGGREGATIONS)}")
