"""The exact solver: every value reachable from a set of numbers, and one expression for a target."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from functools import cache

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
