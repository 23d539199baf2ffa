"""The tasks ``game24``, ``countdown`` and ``countdown3``: generated, solvable by construction, checked exactly."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ponder.tasks.game24.expression import check_expression, extract_expression
from ponder.tasks.game24.puzzle import Puzzle, puzzle_of
from ponder.tasks.game24.solver import _reachable, solve
from ponder.tasks.registry import DEFAULT_SIZE, LoadOptions, TaskSpec, register_task
from ponder.types import Problem

MAX_TOKENS = 256

# ---- the tasks ----------------------------------------------------------------------------------------------


async def check_puzzle(answer: str | None, problem: Problem) -> bool:
    """The task checker: the answer expression uses each given number once and equals the target."""
    puzzle = puzzle_of(problem)
    return puzzle is not None and check_expression(answer, puzzle.numbers, puzzle.target)


@dataclass(frozen=True)
class Variant:
    count: int
    low: int
    high: int
    target: int | tuple[int, int]  # fixed, or a range of reachable targets to draw from
    description: str


VARIANTS = {
    "game24": Variant(4, 1, 13, 24, "Game of 24: four numbers in 1..13, reach 24 (the Tree of Thoughts test bed)"),
    "countdown": Variant(4, 1, 25, (10, 100), "countdown: four numbers in 1..25, reach a target in 10..100"),
    "countdown3": Variant(3, 1, 9, (10, 60), "countdown: three numbers in 1..9, reach a target in 10..60"),
}


def make_puzzle(variant: Variant, rng: random.Random) -> tuple[Puzzle, str]:
    """A solvable puzzle of ``variant`` and one solution: numbers are redrawn until the target is reachable."""
    while True:
        numbers = tuple(rng.randint(variant.low, variant.high) for _ in range(variant.count))
        if isinstance(variant.target, int):
            target = variant.target
        else:
            low, high = variant.target
            reachable = sorted(int(v) for v in _reachable(tuple(sorted(numbers)))
                               if v.denominator == 1 and low <= v <= high and v not in numbers)
            if not reachable:
                continue
            target = rng.choice(reachable)
        solution = solve(numbers, target)
        if solution is not None:
            return Puzzle(numbers, target), solution


def puzzle_problem(puzzle: Puzzle, pid: str, gold: str | None = None, **meta: Any) -> Problem:
    """A problem for ``puzzle``: the chain-of-thought prompt, the exact checker and the expression extractor."""
    meta = {"numbers": list(puzzle.numbers), "target": puzzle.target, **meta}
    return Problem(id=pid, messages=puzzle.messages(), gold=gold, checker=check_puzzle, extract=extract_expression,
                   meta=meta)


def generate(name: str, options: LoadOptions) -> list[Problem]:
    variant = VARIANTS[name]
    size = options.size if options.size is not None else DEFAULT_SIZE
    problems = []
    for i in options.window(size):
        puzzle, solution = make_puzzle(variant, random.Random(f"ponder/{name}/{options.seed}/{i}"))
        problems.append(puzzle_problem(puzzle, f"{name}/seed{options.seed}/{i}", solution, seed=options.seed,
                                       index=i))
    return problems


def _loader(name: str) -> Callable[[LoadOptions], list[Problem]]:
    return lambda options: generate(name, options)


for _name, _variant in VARIANTS.items():
    register_task(TaskSpec(name=_name, description=_variant.description, source="generated",
                           data=f"generated from the seed, solvable by construction (default size {DEFAULT_SIZE})",
                           max_tokens=MAX_TOKENS, loader=_loader(_name)))
