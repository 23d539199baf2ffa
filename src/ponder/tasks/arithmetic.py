"""Generated arithmetic testbeds: seeded, contamination-free, easy enough for a 135M model to half-solve.

These are the DESIGN.md testbeds where the embedded SmolLM2-135M shows real test-time effects (majority
voting and confidence both matter). Problem ``i`` of task ``t`` with seed ``s`` depends only on ``(t, s, i)``,
so any slice of any size is reproducible.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from ponder.answers import check_math, extract_number_answer
from ponder.tasks.prompts import arithmetic_messages
from ponder.tasks.registry import DEFAULT_SIZE, LoadOptions, TaskSpec, register_task
from ponder.types import Problem

MAX_TOKENS = 96


@dataclass(frozen=True)
class Item:
    question: str
    gold: int
    a: int
    b: int


def add1(rng: random.Random) -> Item:
    a, b = rng.randint(1, 9), rng.randint(1, 9)
    return Item(f"What is {a} + {b}?", a + b, a, b)


def apples(rng: random.Random) -> Item:
    a, b = rng.randint(2, 9), rng.randint(2, 9)
    return Item(f"Tom has {a} apples. He buys {b} more. How many apples does Tom have now?", a + b, a, b)


def larger(rng: random.Random) -> Item:
    a, b = rng.sample(range(1, 100), 2)  # distinct, so there is a larger one
    return Item(f"Which number is larger, {a} or {b}?", max(a, b), a, b)


def add21(rng: random.Random) -> Item:
    a, b = rng.randint(10, 99), rng.randint(1, 9)
    return Item(f"What is {a} + {b}?", a + b, a, b)


GENERATORS: dict[str, tuple[Callable[[random.Random], Item], str]] = {
    "add1": (add1, "one-digit addition, a + b with a, b in 1..9"),
    "apples": (apples, "'Tom has a apples. He buys b more.' with a, b in 2..9"),
    "larger": (larger, "'Which number is larger, a or b?' with distinct a, b in 1..99"),
    "add21": (add21, "two-digit + one-digit addition, a in 10..99, b in 1..9"),
}


def item(task: str, seed: int, index: int) -> Item:
    """Problem ``index`` of ``task`` under ``seed`` (string seeds hash with SHA-512: stable everywhere)."""
    generate, _ = GENERATORS[task]
    return generate(random.Random(f"ponder/{task}/{seed}/{index}"))


def generate(task: str, options: LoadOptions) -> list[Problem]:
    size = options.size if options.size is not None else DEFAULT_SIZE
    problems = []
    for i in options.window(size):
        it = item(task, options.seed, i)
        problems.append(
            Problem(
                id=f"{task}/seed{options.seed}/{i}",
                messages=arithmetic_messages(it.question),
                gold=str(it.gold),
                checker=check_math,
                # The prompt asks for "The answer is N.", and the model often copies the N: only a number counts.
                extract=extract_number_answer,
                meta={"a": it.a, "b": it.b, "seed": options.seed, "index": i},
            )
        )
    return problems


def _loader(task: str) -> Callable[[LoadOptions], list[Problem]]:
    return lambda options: generate(task, options)


for _name, (_, _description) in GENERATORS.items():
    register_task(
        TaskSpec(
            name=_name,
            description=_description,
            source="generated",
            data=f"generated from the seed (default size {DEFAULT_SIZE})",
            max_tokens=MAX_TOKENS,
            loader=_loader(_name),
        )
    )
