"""A puzzle (numbers and a target), its chain-of-thought prompt, and step-by-step play over its states."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from ponder.tasks.game24.expression import _SYMBOLS
from ponder.tasks.game24.solver import Item, strip_parens
from ponder.types import Message, Problem

# ---- step-by-step play (Tree of Thoughts states) ------------------------------------------------------------


def show(value: Fraction) -> str:
    """A state's number as the model sees it: an integer, or a decimal with two places."""
    return str(value.numerator) if value.denominator == 1 else f"{float(value):.2f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class State:
    """The numbers left, each with the expression (over the original numbers) that made it."""

    items: tuple[Item, ...]

    @classmethod
    def start(cls, numbers: Sequence[int]) -> State:
        return cls(tuple((Fraction(n), str(n)) for n in numbers))

    @property
    def left(self) -> str:
        return " ".join(show(v) for v in sorted(v for v, _ in self.items))

    @property
    def done(self) -> bool:
        return len(self.items) == 1

    def key(self) -> tuple[Fraction, ...]:
        return tuple(sorted(v for v, _ in self.items))

    def expression(self) -> str:
        return strip_parens(self.items[0][1]) if self.done else ""


_STEP = re.compile(
    r"(-?\d+(?:\.\d+)?)\s*([-+*/×x÷−])\s*(-?\d+(?:\.\d+)?)\s*=\s*(-?\d+(?:\.\d+)?)"
)


def _take(items: list[Item], shown: str) -> Item | None:
    for i, item in enumerate(items):
        if show(item[0]) == shown or (shown.endswith(".0") and show(item[0]) == shown[:-2]):
            return items.pop(i)
    return None


def apply_step(state: State, line: str) -> tuple[State, str] | None:
    """The state after one proposed step such as ``4 + 8 = 12 (left: 4 6 12)``, and the step as checked
    (``4 + 8 = 12 (left: 4 6 12)``, with the numbers left recomputed); None when the step is invalid: no
    ``a op b = c`` in the line, an operand that is not among the numbers left, division by zero, or a stated
    result that is not the exact one (a non-integer result may be stated to two decimals)."""
    match = _STEP.search(line.translate(_SYMBOLS))
    if match is None or state.done:
        return None
    a_text, op, b_text, claimed = match.groups()
    op = {"x": "*", "×": "*", "÷": "/", "−": "-"}.get(op, op)
    items = list(state.items)
    a, b = _take(items, a_text), None
    if a is not None:
        b = _take(items, b_text)
    if a is None or b is None:
        return None
    x, y = a[0], b[0]
    if op == "/" and y == 0:
        return None
    value = {"+": x + y, "-": x - y, "*": x * y, "/": x / y if y else x}[op]
    if abs(Fraction(claimed) - value) > Fraction(1, 100):
        return None
    new = State((*items, (value, f"({a[1]} {op} {b[1]})")))
    return new, f"{a_text} {op} {b_text} = {show(value)} (left: {new.left})"


# ---- prompts ------------------------------------------------------------------------------------------------

# The 5-shot chain-of-thought prompt of the ToT paper (princeton-nlp/tree-of-thought-llm, prompts/game24.py).
GAME24_COT = """Use numbers and basic arithmetic operations (+ - * /) to obtain 24. Each step, you are only allowed \
to choose two of the remaining numbers to obtain a new number.
Input: 4 4 6 8
Steps:
4 + 8 = 12 (left: 4 6 12)
6 - 4 = 2 (left: 2 12)
2 * 12 = 24 (left: 24)
Answer: (6 - 4) * (4 + 8) = 24
Input: 2 9 10 12
Steps:
12 * 2 = 24 (left: 9 10 24)
10 - 9 = 1 (left: 1 24)
24 * 1 = 24 (left: 24)
Answer: (12 * 2) * (10 - 9) = 24
Input: 4 9 10 13
Steps:
13 - 10 = 3 (left: 3 4 9)
9 - 3 = 6 (left: 4 6)
4 * 6 = 24 (left: 24)
Answer: 4 * (9 - (13 - 10)) = 24
Input: 1 4 8 8
Steps:
8 / 4 = 2 (left: 1 2 8)
1 + 2 = 3 (left: 3 8)
3 * 8 = 24 (left: 24)
Answer: (1 + 8 / 4) * 8 = 24
Input: 5 5 5 9
Steps:
5 + 5 = 10 (left: 5 9 10)
10 + 5 = 15 (left: 9 15)
15 + 9 = 24 (left: 24)
Answer: ((5 + 5) + 5) + 9 = 24
Input: {input}
"""

# The same prompt for any target: the target is part of each input.
COUNTDOWN_COT = """Use numbers and basic arithmetic operations (+ - * /) to obtain the target. Each step, you are \
only allowed to choose two of the remaining numbers to obtain a new number. Use every number exactly once.
Input: 4 4 6 8 (target: 24)
Steps:
4 + 8 = 12 (left: 4 6 12)
6 - 4 = 2 (left: 2 12)
2 * 12 = 24 (left: 24)
Answer: (6 - 4) * (4 + 8) = 24
Input: 3 5 7 (target: 22)
Steps:
3 * 5 = 15 (left: 7 15)
15 + 7 = 22 (left: 22)
Answer: 3 * 5 + 7 = 22
Input: 2 9 10 12 (target: 50)
Steps:
12 - 9 = 3 (left: 2 3 10)
3 + 2 = 5 (left: 5 10)
5 * 10 = 50 (left: 50)
Answer: (12 - 9 + 2) * 10 = 50
Input: 6 8 9 (target: 7)
Steps:
8 - 6 = 2 (left: 2 9)
9 - 2 = 7 (left: 7)
Answer: 9 - (8 - 6) = 7
Input: 1 4 8 8 (target: 24)
Steps:
8 / 4 = 2 (left: 1 2 8)
1 + 2 = 3 (left: 3 8)
3 * 8 = 24 (left: 24)
Answer: (1 + 8 / 4) * 8 = 24
Input: {input}
"""


@dataclass(frozen=True)
class Puzzle:
    """A Game-of-24-style puzzle: the numbers to use once each and the target to reach."""

    numbers: tuple[int, ...]
    target: int

    @property
    def is_24(self) -> bool:
        return self.target == 24 and len(self.numbers) == 4

    def input_line(self, state: State | None = None) -> str:
        """``4 4 6 8`` for the Game of 24 (the paper's format), ``4 4 6 8 (target: 50)`` otherwise."""
        numbers = state.left if state is not None else " ".join(map(str, self.numbers))
        return numbers if self.is_24 else f"{numbers} (target: {self.target})"

    def messages(self) -> list[Message]:
        template = GAME24_COT if self.is_24 else COUNTDOWN_COT
        return [{"role": "user", "content": template.format(input=self.input_line())}]

    def solved(self, state: State) -> bool:
        return state.done and state.items[0][0] == self.target


def puzzle_of(problem: Problem) -> Puzzle | None:
    """The puzzle behind a problem: ``meta["numbers"]``/``meta["target"]`` (these tasks), or a reasoning-gym
    ``puzzle24``/``countdown`` entry (``gym:puzzle24``, ``gym:countdown``); None for any other problem."""
    meta = problem.meta
    if "numbers" in meta and "target" in meta:
        return Puzzle(tuple(int(n) for n in meta["numbers"]), int(meta["target"]))
    entry = meta.get("entry")
    if isinstance(entry, dict) and meta.get("dataset") in ("puzzle24", "countdown"):
        data = entry.get("metadata", {})
        if "numbers" in data:
            return Puzzle(tuple(int(n) for n in data["numbers"]), int(data.get("target", 24)))
    return None
