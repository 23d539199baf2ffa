"""Exact checking of arithmetic expressions over given numbers, and reading one out of a completion.

Model text is parsed, never evaluated as code: a small recursive-descent parser over integers, ``+ - * /`` and
parentheses that computes with ``Fraction`` (no unary minus, no powers, no names; bounded length and nesting).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

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
