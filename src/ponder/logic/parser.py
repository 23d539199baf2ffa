"""A hand-written recursive-descent parser for first-order formulas (no eval, bounded work).

Accepted notation (ASCII, NLTK/Prover9 style, or the Unicode of FOLIO):

    negation     -P   ~P   !P   ¬P   not P
    and / or     P & Q   P ∧ Q   P and Q        P | Q   P ∨ Q   P or Q
    implies      P -> Q   P => Q   P → Q        (right-associative)
    iff / xor    P <-> Q   P <=> Q   P ↔ Q  P ⟷ Q      P xor Q   P ⊕ Q
    quantifiers  all x.P(x)   forall x. P(x)   exists x y.R(x, y)   ∀x (P(x))   ∃x ∃y R(x, y)

Binding, loosest first: quantifier bodies reach as far right as they can (``all x. P(x) -> Q(x)`` quantifies
the implication), then <->, ->, xor, |, &, and negation binds tightest. A name bound by an enclosing
quantifier is a variable; any other argument name is a constant. Function terms and equality are rejected.

Limits (``Limits``) cap the characters, tokens and nesting depth, so hostile input fails fast with a
``ParseError`` instead of exhausting the stack.
"""

from __future__ import annotations

import re
from typing import Literal

from ponder.logic.errors import DEFAULT_LIMITS, Limits, ParseError
from ponder.logic.syntax import And, Atom, Const, Formula, Iff, Implies, Not, Or, Quant, Term, Var, Xor

_SYMBOLS = {
    "<->": "IFF", "<=>": "IFF", "↔": "IFF", "⟷": "IFF", "⇔": "IFF",
    "->": "IMP", "=>": "IMP", "→": "IMP", "⇒": "IMP",
    "&": "AND", "∧": "AND", "&&": "AND",
    "|": "OR", "∨": "OR", "||": "OR",
    "⊕": "XOR", "⊻": "XOR",
    "-": "NOT", "~": "NOT", "!": "NOT", "¬": "NOT",
    "∀": "ALL", "∃": "EXISTS",
    "(": "(", ")": ")", ",": ",", ".": ".", ":": ":",
}
_KEYWORDS = {"all": "ALL", "forall": "ALL", "exists": "EXISTS", "not": "NOT", "and": "AND", "or": "OR",
             "xor": "XOR"}
_REJECTED = {
    "=": "equality is not supported; use a predicate such as Same(a, b)",
    "!=": "equality is not supported; use a predicate such as Same(a, b)",
    "^": "'^' is ambiguous: write & for 'and', xor (or ⊕) for 'exclusive or'",
}
_SYMBOL_PATTERN = "|".join(re.escape(s) for s in sorted([*_SYMBOLS, *_REJECTED], key=len, reverse=True))
_TOKEN = re.compile(rf"\s*(?:(?P<name>\w+)|(?P<sym>{_SYMBOL_PATTERN})|(?P<bad>\S))")

Token = tuple[str, str, int]  # (kind, text, position)


def tokenize(text: str, limits: Limits = DEFAULT_LIMITS) -> list[Token]:
    if len(text) > limits.max_chars:
        raise ParseError(f"formula too long: {len(text)} characters (limit {limits.max_chars})")
    tokens: list[Token] = []
    for match in _TOKEN.finditer(text):
        pos = match.start(match.lastgroup or 0)
        if match.group("bad") is not None:
            raise ParseError(f"unexpected character {match.group('bad')!r} at position {pos}")
        name = match.group("name")
        if name is not None:
            tokens.append((_KEYWORDS.get(name, "NAME"), name, pos))  # keywords are lower case only
        else:
            sym = match.group("sym")
            if sym in _REJECTED:
                raise ParseError(f"{_REJECTED[sym]} (at position {pos})")
            tokens.append((_SYMBOLS[sym], sym, pos))
        if len(tokens) > limits.max_tokens:
            raise ParseError(f"formula too long: more than {limits.max_tokens} tokens")
    return tokens


class _Parser:
    def __init__(self, text: str, limits: Limits) -> None:
        self.text = text
        self.limits = limits
        self.tokens = tokenize(text, limits)
        self.i = 0
        self.depth = 0
        self.bound: list[str] = []

    # ---- helpers ----------------------------------------------------------------------------
    def peek(self, ahead: int = 0) -> str:
        j = self.i + ahead
        return self.tokens[j][0] if j < len(self.tokens) else "END"

    def take(self, kind: str) -> Token:
        if self.peek() != kind:
            raise self.error(f"expected {_describe(kind)}")
        token = self.tokens[self.i]
        self.i += 1
        return token

    def error(self, message: str) -> ParseError:
        if self.i < len(self.tokens):
            _, text, pos = self.tokens[self.i]
            return ParseError(f"{message} but found {text!r} at position {pos}")
        return ParseError(f"{message} but the formula ended")

    def enter(self) -> None:
        self.depth += 1
        if self.depth > self.limits.max_depth:
            raise ParseError(f"formula nested too deeply (more than {self.limits.max_depth} levels)")

    # ---- grammar ----------------------------------------------------------------------------
    def sentence(self) -> Formula:
        if not self.tokens:
            raise ParseError("empty formula")
        f = self.formula()
        if self.peek() != "END":
            raise self.error("expected an operator or the end of the formula")
        return f

    def formula(self) -> Formula:
        self.enter()
        try:
            left = self.implication()
            while self.peek() == "IFF":
                self.i += 1
                left = Iff(left, self.implication())
            return left
        finally:
            self.depth -= 1

    def implication(self) -> Formula:
        left = self.xor()
        if self.peek() == "IMP":
            self.i += 1
            self.enter()
            try:
                return Implies(left, self.implication())
            finally:
                self.depth -= 1
        return left

    def xor(self) -> Formula:
        left = self.disjunction()
        while self.peek() == "XOR":
            self.i += 1
            left = Xor(left, self.disjunction())
        return left

    def disjunction(self) -> Formula:
        parts = [self.conjunction()]
        while self.peek() == "OR":
            self.i += 1
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def conjunction(self) -> Formula:
        parts = [self.unary()]
        while self.peek() == "AND":
            self.i += 1
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def unary(self) -> Formula:
        kind = self.peek()
        if kind == "NOT":
            self.i += 1
            self.enter()
            try:
                return Not(self.unary())
            finally:
                self.depth -= 1
        if kind in ("ALL", "EXISTS"):
            return self.quantified("all" if kind == "ALL" else "exists")
        if kind == "(":
            self.i += 1
            inner = self.formula()
            self.take(")")
            return inner
        if kind == "NAME":
            return self.atom()
        raise self.error("expected a formula")

    def quantified(self, kind: Literal["all", "exists"]) -> Formula:
        self.i += 1
        names = self.variables()
        self.bound.extend(names)
        self.enter()
        try:
            body = self.formula()  # the body reaches as far right as it can
        finally:
            self.depth -= 1
            del self.bound[len(self.bound) - len(names) :]
        for name in reversed(names):
            body = Quant(kind, name, body)
        return body

    def variables(self) -> list[str]:
        """``x``, or a list ``x y`` / ``x, y`` closed by ``.`` or ``:``; a single variable needs no dot."""
        j = self.i
        while self.peek(j - self.i) in ("NAME", ","):
            j += 1
        if j > self.i and self.peek(j - self.i) in (".", ":"):
            names = [text for kind, text, _ in self.tokens[self.i : j] if kind == "NAME"]
            if not names or self.tokens[self.i][0] != "NAME":
                raise self.error("expected a variable after the quantifier")
            self.i = j + 1
            return names
        if self.peek() != "NAME":
            raise self.error("expected a variable after the quantifier")
        return [self.take("NAME")[1]]

    def atom(self) -> Formula:
        _, name, _ = self.take("NAME")
        if self.peek() != "(":
            return Atom(name)
        self.i += 1
        args = [self.term()]
        while self.peek() == ",":
            self.i += 1
            args.append(self.term())
        self.take(")")
        if len(args) > self.limits.max_arity:
            raise ParseError(f"predicate {name} has {len(args)} arguments (limit {self.limits.max_arity})")
        return Atom(name, tuple(args))

    def term(self) -> Term:
        _, name, _ = self.take("NAME")
        if self.peek() == "(":
            raise self.error(f"function terms are not supported ({name}(...)); use a predicate instead,")
        return Var(name) if name in self.bound else Const(name)


def _describe(kind: str) -> str:
    return {"NAME": "a name", "(": "'('", ")": "')'", ",": "','"}.get(kind, kind)


def parse_formula(text: str, limits: Limits = DEFAULT_LIMITS) -> Formula:
    """Parse one closed formula; raises ``ParseError`` with the position of the problem."""
    try:
        return _Parser(text, limits).sentence()
    except RecursionError:  # only reachable if max_depth is raised past what Python's stack allows
        raise ParseError("formula nested too deeply for the parser") from None
