"""Game of 24 and countdown: reach a target from given numbers with + - * /, each number used exactly once.

The test bed of Tree of Thoughts (Yao et al., 2023). Instances are generated from the seed and kept only when
the exact solver finds a solution, so every problem is solvable; ``gold`` is one solution.

Checking is exact and never evaluates model text as code: ``parse_expression`` is a small recursive-descent
parser over integers, ``+ - * /`` and parentheses that computes with ``Fraction`` (no unary minus, no powers, no
names; bounded length and nesting), and ``check_expression`` demands the multiset of numbers in the expression
to equal the given one and the value to equal the target. ``apply_step`` checks one ToT step ("4 + 8 = 12") the
same way: both operands must be numbers still left, and the stated result must be the exact one.

Tasks: ``game24`` (four numbers in 1..13, target 24, the prompts of the ToT paper), ``countdown`` (four numbers
in 1..25, a reachable target in 10..100) and ``countdown3`` (three numbers in 1..9, a reachable target in
10..60: two steps, the easiest of the three).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from typing import Any

from ponder.tasks.registry import DEFAULT_SIZE, LoadOptions, TaskSpec, register_task
from ponder.types import Message, Problem

MAX_TOKENS = 256
MAX_EXPRESSION_CHARS = 200
MAX_NESTING = 20
MAX_DIGITS = 9

# ---- exact expression checking ------------------------------------------------------------------------------


class InvalidExpression(ValueError):
    """Not an arithmetic expression over integers with + - * / and parentheses, or division by zero."""


_TOKEN = re.compile(r"\s*(?:(\d+)|([-+*/()]))")
_SYMBOLS = str.maketrans({"×": "*", "·": "*", "÷": "/", "−": "-", "–": "-", "[": "(", "]": ")"})


@dataclass(frozen=True)
class Evaluated:
    value: Fraction
    numbers: tuple[int, ...]  # the integer literals, in order of appearance


def _tokens(text: str) -> list[str]:
    text = text.translate(_SYMBOLS)
    if len(text) > MAX_EXPRESSION_CHARS:
        raise InvalidExpression(f"longer than {MAX_EXPRESSION_CHARS} characters")
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            raise InvalidExpression(f"unexpected {text[pos:].strip()[:10]!r}")
        number, symbol = match.groups()
        if number is not None and len(number) > MAX_DIGITS:
            raise InvalidExpression(f"number {number[:12]}... is too long")
        tokens.append(number if number is not None else symbol)
        pos = match.end()
    return tokens


class _Parser:
    """expr := term (('+'|'-') term)* ; term := factor (('*'|'/') factor)* ; factor := INT | '(' expr ')'."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.numbers: list[int] = []

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise InvalidExpression("ends too early")
        self.pos += 1
        return token

    def expr(self, depth: int) -> Fraction:
        value = self.term(depth)
        while self.peek() in ("+", "-"):
            op, right = self.take(), self.term(depth)
            value = value + right if op == "+" else value - right
        return value

    def term(self, depth: int) -> Fraction:
        value = self.factor(depth)
        while self.peek() in ("*", "/"):
            op, right = self.take(), self.factor(depth)
            if op == "*":
                value = value * right
            elif right == 0:
                raise InvalidExpression("division by zero")
            else:
                value = value / right
        return value

    def factor(self, depth: int) -> Fraction:
        token = self.take()
        if token == "(":
            if depth >= MAX_NESTING:
                raise InvalidExpression(f"nested deeper than {MAX_NESTING}")
            value = self.expr(depth + 1)
            if self.take() != ")":
                raise InvalidExpression("unbalanced parentheses")
            return value
        if token.isdigit():
            self.numbers.append(int(token))
            return Fraction(int(token))
        raise InvalidExpression(f"expected a number or '(', got {token!r}")  # unary signs, '**', ')' ...


def parse_expression(text: str) -> Evaluated:
    """Evaluate an arithmetic expression exactly, without ``eval``; raises ``InvalidExpression``."""
    parser = _Parser(_tokens(text))
    if not parser.tokens:
        raise InvalidExpression("empty")
    value = parser.expr(0)
    if parser.peek() is not None:
        raise InvalidExpression(f"unexpected {parser.peek()!r}")
    return Evaluated(value, tuple(parser.numbers))


def check_expression(text: str | None, numbers: Sequence[int], target: int) -> bool:
    """True iff ``text`` uses exactly the given numbers (each once) and equals ``target``."""
    if text is None:
        return False
    try:
        evaluated = parse_expression(text)
    except InvalidExpression:
        return False
    return sorted(evaluated.numbers) == sorted(numbers) and evaluated.value == target


# ---- extraction ---------------------------------------------------------------------------------------------

_ANSWER_LINE = re.compile(r"(?:answer\s*(?:is)?|output)\s*[:=]?\s*(.*)", re.IGNORECASE)
_EXPRESSION_LINE = re.compile(r"^[\d\s+\-*/()×÷·−\[\]]+$")
_NEXT_INPUT = re.compile(r"^\s*Input:", re.MULTILINE)
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")


def _lhs(candidate: str) -> str:
    """``(4 + 8) * (6 - 4) = 24`` -> ``(4 + 8) * (6 - 4)``; also drops markdown and a trailing period."""
    text = candidate.replace("$", "").replace("`", "")
    return text.split("=")[0].strip().rstrip(".").strip("* ")


def extract_expression(text: str) -> str | None:
    """The final expression: the last ``\\boxed{}``, else the last "Answer: ..." (or "Output: ...") line, else
    the last line that is nothing but an arithmetic expression (an ``= N`` tail is dropped).

    Text after a new ``Input:`` line is ignored: a few-shot prompted model that goes on to invent the next
    example has already answered this one.
    """
    text = next((part for part in _NEXT_INPUT.split(text) if part.strip()), "")
    boxed = _BOXED.findall(text)
    if boxed:
        return _lhs(boxed[-1]) or None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        match = _ANSWER_LINE.search(line)
        if match and match.group(1).strip():
            return _lhs(match.group(1)) or None
    for line in reversed(lines):
        lhs = _lhs(line)
        if _EXPRESSION_LINE.match(lhs) and re.search(r"\d\s*\)*\s*[-+*/×÷·−]", lhs) and "left" not in line:
            return lhs
    return None


# ---- the solver (instance generation and gold) --------------------------------------------------------------

Item = tuple[Fraction, str]  # a value and the expression that makes it


def _combine(a: Item, b: Item) -> list[Item]:
    (x, ex), (y, ey) = a, b
    out = [(x + y, f"({ex} + {ey})"), (x * y, f"({ex} * {ey})"), (x - y, f"({ex} - {ey})"),
           (y - x, f"({ey} - {ex})")]
    if y != 0:
        out.append((x / y, f"({ex} / {ey})"))
    if x != 0:
        out.append((y / x, f"({ey} / {ex})"))
    return out


@cache
def _reachable(numbers: tuple[int, ...]) -> dict[Fraction, str]:
    """Every value reachable using all ``numbers`` exactly once, with one expression for each."""
    found: dict[Fraction, str] = {}

    def search(items: list[Item]) -> None:
        if len(items) == 1:
            found.setdefault(items[0][0], items[0][1])
            return
        for i in range(len(items)):
            for j in range(i + 1, len(items)):
                rest = [items[k] for k in range(len(items)) if k not in (i, j)]
                for made in _combine(items[i], items[j]):
                    search([*rest, made])

    search([(Fraction(n), str(n)) for n in numbers])
    return found


def strip_parens(expression: str) -> str:
    """Drop one pair of parentheses around the whole expression, if they enclose all of it."""
    if not (expression.startswith("(") and expression.endswith(")")):
        return expression
    depth = 0
    for i, ch in enumerate(expression):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and i < len(expression) - 1:
            return expression
    return expression[1:-1]


def solve(numbers: Sequence[int], target: int) -> str | None:
    """One expression reaching ``target`` with every number once, or None if there is none."""
    expression = _reachable(tuple(sorted(numbers))).get(Fraction(target))
    return None if expression is None else strip_parens(expression)


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
