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


from ponder.tasks.game24 import domain as _domain  # noqa: F401  (registers the search domain)
from ponder.tasks.game24.expression import (
    InvalidExpression,
    check_expression,
    extract_expression,
    parse_expression,
)
from ponder.tasks.game24.puzzle import COUNTDOWN_COT, GAME24_COT, Puzzle, State, apply_step, puzzle_of, show
from ponder.tasks.game24.solver import solve, strip_parens
from ponder.tasks.game24.task import VARIANTS, check_puzzle, make_puzzle, puzzle_problem

__all__ = [
    "COUNTDOWN_COT",
    "GAME24_COT",
    "VARIANTS",
    "InvalidExpression",
    "Puzzle",
    "State",
    "apply_step",
    "check_expression",
    "check_puzzle",
    "extract_expression",
    "make_puzzle",
    "parse_expression",
    "puzzle_of",
    "puzzle_problem",
    "show",
    "solve",
    "strip_parens",
]
