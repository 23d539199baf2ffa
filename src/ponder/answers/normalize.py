"""Canonical string form of an answer, used to group votes and as the cache key of the equivalence checker.

Only presentation is removed (wrappers, spacing, units, degree and percent signs, thousands separators, a
variable name before a plain value, the option text after a multiple-choice letter: ``(A) 12`` is ``A``), as
MATH-style graders also ignore it; the mathematics itself is never rewritten, so the result is safe as a grouping
key. The one rewrite is exact: a plain number with a scale word or a power of ten is written out as a decimal
(``1.5 million`` and ``1.5 \\times 10^6`` are ``1500000``, ``1.2E-3`` is ``0.0012``; exponents beyond
±``MAX_EXPONENT`` are left alone). ``normalize_answer`` is idempotent.

Unicode look-alikes are folded first (``fold_unicode``): fullwidth forms become ASCII, the minus signs U+2212 and
friends become ``-``, decimal digits of every script become ASCII digits (``٣`` is 3), and invisible characters
(zero-width spaces, bidi overrides, control characters) are dropped, so an answer cannot look equal and compare
unequal, or the reverse. Superscripts and vulgar fractions are not digits and are kept (``x²`` is not ``x2``).
Answers longer than ``MAX_ANSWER_CHARS`` only have their whitespace collapsed.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Context, Decimal
from fractions import Fraction

from ponder.answers.extract import MAX_ANSWER_CHARS, find_closing_brace

__all__ = ["fold_unicode", "normalize_answer", "parse_number"]

# soft hyphen, zero-width characters, word joiner, BOM, and the bidi marks, embeddings, overrides and isolates
_INVISIBLE = "\u00ad\u200b\u200c\u200d\u2060\ufeff\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e" \
             "\u2066\u2067\u2068\u2069"
_FOLD = {
    **{ord(c): None for c in _INVISIBLE},
    **{c: None for c in [*range(32), 127] if chr(c) not in "\t\n\r"},
    **{ord(c): "-" for c in "\u2212\u2796\ufe63\u2010\u2011"},
    0x3000: " ",  # ideographic space
    **{c: chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)},  # fullwidth ASCII
}

# Commands whose argument is just text or font: \text{Evelyn} -> Evelyn.
_UNWRAP_COMMANDS = ("text", "textbf", "textit", "textrm", "textnormal", "mathrm", "mathbf", "mbox", "boxed", "fbox")
_UNWRAP = re.compile(r"\\(" + "|".join(_UNWRAP_COMMANDS) + r")(?![a-zA-Z])\s*\{")
_DELIMITER_SIZE = re.compile(r"\\(?:left|right)\.|\\(?:left|right|[bB]igg?[lr]?)(?![a-zA-Z])")
_FRAC_VARIANTS = re.compile(r"\\[dtc]frac(?![a-zA-Z])")
# "\\" (a matrix row break) is matched as a unit first, so the space after it is not taken for "\ ".
_SPACING = re.compile(r"(\\\\)|\\[,;: ]|\\q?quad(?![a-zA-Z])|~")
# "1,\!000", "1{,}000", "1\,000": LaTeX thousands separators, safe to join wherever three digits follow.
_LATEX_THOUSANDS = re.compile(r"(\d)(?:,\s*\\!|\{,\}|\\,)\s*(?=\d{3}(?!\d))")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\circ(?![a-zA-Z])|°|\\degree(?![a-zA-Z])")
_PERCENT = re.compile(r"\s*\\?%$")
_PLAIN_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_DECIMAL = re.compile(r"([+-]?)(\d*)(?:\.(\d*))?")
# "x = 5", "\theta = \frac{\pi}{2}", "x \in [1, 3)": a single variable named before its value.
_ASSIGNMENT = re.compile(r"([A-Za-z]|\\[a-zA-Z]+)\s*(?:=|\\in(?![a-zA-Z]))\s*(.+)", re.DOTALL)
_LATEX_COMMAND = re.compile(r"\\[a-zA-Z]+")
_UNITS = re.compile(
    r"(.+?)\s*(?:\b[A-Za-z]{2,}\b(?:\s+[A-Za-z]+)*|\b[mgslh]\b)(?:\s*\^\s*\{?[23]\}?)?",
    re.DOTALL,
)
# "(A)" alone or followed by its option text ("(A) 12"); not set algebra such as "(A) \cup (B)".
_CHOICE = re.compile(
    r"\(([A-Z])\)(?:\s+(?![=+\-*/^<>|&]|\\(?:cup|cap|setminus|times|cdot|to|le|ge|leq|geq|neq|in|subset|subseteq"
    r"|wedge|vee|oplus)(?![a-zA-Z]))\S.*)?",
    re.DOTALL,
)
# A plain number scaled by a word or a power of ten, optionally followed by unit words ("1.5 million dollars").
_SCALED = re.compile(
    r"(-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+)"
    r"(?:\s*(hundred|thousand|million|billion|trillion)\b"
    r"|[eE]([-+]?\d+)"
    r"|\s*(?:\\times|\\cdot|\u00d7|\*)\s*10\s*\^\s*(?:\{\s*([-+]?\d+)\s*\}|([-+]?\d+)))"
    r"(\s+[A-Za-z][A-Za-z ]*)?",
    re.IGNORECASE,
)
_SCALE_WORDS = {"hundred": 2, "thousand": 3, "million": 6, "billion": 9, "trillion": 12}
MAX_EXPONENT = 100  # 1e999 stays as written: no answer needs a thousand-digit expansion
_EXACT = Context(prec=400)  # enough digits for any mantissa under _SHORT characters times 10^±MAX_EXPONENT
_WORDS = re.compile(r"[A-Za-z]+(?: [A-Za-z]+)*")
_SPACE_RUN = re.compile(r"\s+")
# A space matters only between two word characters ("\pi r", "new york"); elsewhere it is layout.
_LAYOUT_SPACE = re.compile(r"(?<!\w) | (?!\w)")
_COMMA_SPACE = re.compile(r",(?! )")

_SHORT = 120  # the unit and assignment rules only make sense for short answers; keeps long inputs linear

_INT = re.compile(r"-?\d+")
_DEC = re.compile(r"-?(\d*)\.(\d+)")
_SLASH = re.compile(r"(-?\d+)/(\d+)")
_FRAC = re.compile(r"(-?)(\d+)?\\frac(?:\{(-?\d+)\}|(\d))(?:\{(-?\d+)\}|(\d))")


def _unwrap(s: str) -> str:
    """Replace each ``\\text{X}``-like command by X (innermost braces kept balanced)."""
    out: list[str] = []
    pos = 0
    while True:
        match = _UNWRAP.search(s, pos)
        if match is None:
            break
        close = find_closing_brace(s, match.end() - 1)
        if close == -1:
            break
        out.append(s[pos : match.start()])
        out.append(s[match.end() : close])
        pos = close + 1
    out.append(s[pos:])
    return "".join(out)


def _strip_wrappers(s: str) -> str:
    """Remove one layer of math delimiters around the whole answer: ``$...$``, ``\\(...\\)``, ``\\[...\\]``."""
    for opener, closer in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if s.startswith(opener) and s.endswith(closer) and len(s) >= len(opener) + len(closer):
            inner = s[len(opener) : len(s) - len(closer)]
            if closer not in inner:  # "$5$ and $6$" is two spans, not one
                return inner.strip()
    return s


def _canonical_decimal(s: str) -> str:
    """``5.00`` -> ``5``, ``0.50`` -> ``0.5``, ``.5`` -> ``0.5``, ``+3`` -> ``3``, ``-0`` -> ``0``."""
    match = _DECIMAL.fullmatch(s)
    if match is None or not (match.group(2) or match.group(3)):
        return s
    sign, whole, frac = match.group(1), match.group(2).lstrip("0") or "0", (match.group(3) or "").rstrip("0")
    body = f"{whole}.{frac}" if frac else whole
    if body == "0" or sign == "+":
        sign = ""
    return sign + body


def _strip_assignment(s: str) -> str:
    """``x = 5`` -> ``5`` when the right side names no variable (``y = 2x + 3`` is kept: it is an equation)."""
    match = _ASSIGNMENT.fullmatch(s) if len(s) <= _SHORT else None
    if match is None:
        return s
    rhs = match.group(2).strip()
    if "=" in rhs or re.search(r"[A-Za-z]", _LATEX_COMMAND.sub("", rhs)) or match.group(1) in ("\\frac", "\\sqrt"):
        return s
    return rhs


def _expand_scaled(s: str) -> str:
    """``1.5 million`` -> ``1500000``, ``3e5`` -> ``300000``, ``3 \\times 10^{-2} m`` -> ``0.03 m`` (exactly)."""
    match = _SCALED.fullmatch(s) if len(s) <= _SHORT else None
    if match is None:
        return s
    word, *powers = match.group(2, 3, 4, 5)
    exponent = _SCALE_WORDS[word.lower()] if word else int(next(p for p in powers if p is not None))
    if abs(exponent) > MAX_EXPONENT:
        return s
    value = _EXACT.scaleb(Decimal(match.group(1).replace(",", "")), exponent)
    return _canonical_decimal(format(value, "f")) + (match.group(6) or "")


def _strip_units(s: str) -> str:
    """``18 dollars`` -> ``18``, ``15 cm^2`` -> ``15``: unit words after a plain number."""
    match = _UNITS.fullmatch(s) if len(s) <= _SHORT else None
    if match is None:
        return s
    number = match.group(1).strip()
    plain = _PLAIN_THOUSANDS.fullmatch(number) or parse_number(_canonical_decimal(number)) is not None
    return number if plain else s


def _pass(s: str) -> str:
    s = _SPACE_RUN.sub(" ", s).strip()
    s = _strip_wrappers(s)
    if s.startswith("$") and "$" not in s[1:]:
        s = s[1:]  # a currency sign: "$18"
    elif s.endswith("$") and "$" not in s[:-1]:
        s = s[:-1]
    s = s.replace("\\$", "")
    s = _unwrap(s)
    s = _DELIMITER_SIZE.sub("", s)
    s = _FRAC_VARIANTS.sub(r"\\frac", s)
    s = s.replace("\\displaystyle", "")
    s = _LATEX_THOUSANDS.sub(r"\1", s)
    s = s.replace("\\!", "")
    s = _SPACING.sub(lambda m: m.group(1) or " ", s)
    s = _DEGREES.sub("", s)
    s = _PERCENT.sub("", s)
    s = _SPACE_RUN.sub(" ", s).strip()
    if s.endswith(".") and not s.endswith(".."):
        s = s[:-1].rstrip()
    s = _expand_scaled(s)
    if _PLAIN_THOUSANDS.fullmatch(s):
        s = s.replace(",", "")
    s = _strip_units(s)
    s = _strip_assignment(s)
    choice = _CHOICE.fullmatch(s)
    if choice is not None:
        s = choice.group(1)
    return _canonical_decimal(s)


def fold_unicode(s: str) -> str:
    """Fold look-alike characters to their ASCII meaning and drop invisible ones (see the module doc)."""
    s = s.translate(_FOLD)
    if s.isascii():
        return s
    return "".join(c if c.isascii() or not c.isdecimal() else str(unicodedata.decimal(c, c)) for c in s)


def normalize_answer(answer: str) -> str:
    """Canonical form of an answer for grouping and fast comparison (see the module doc)."""
    s = fold_unicode(answer)
    if len(s) > MAX_ANSWER_CHARS:
        return " ".join(s.split())  # not an answer: compared as it is, and never at the cost of a long parse
    # Dropping layout spaces can expose a form a pass rewrites ("- 12E1" -> "-12E1" -> "-120"): repeat the
    # whole procedure until it is stable, so the result is idempotent.
    for _ in range(3):
        new = _canonical(s)
        if new == s:
            break
        s = new
    return s


def _canonical(s: str) -> str:
    for _ in range(6):  # wrappers nest ("$\\text{(B)}$."): peel until nothing changes
        new = _pass(s)
        if new == s:
            break
        s = new
    s = _LAYOUT_SPACE.sub("", s)
    s = _COMMA_SPACE.sub(", ", s)  # one canonical list spacing, so "100, 200" never reads as 100200 later
    if _WORDS.fullmatch(s) and any(c.islower() for c in s):
        s = s.lower()  # plain words ("Evelyn", "east"); all-caps tokens like "AB" may be maths
    return s


def parse_number(s: str) -> tuple[Fraction, int] | None:
    """A normalised plain number as an exact fraction plus its count of decimal digits (0 if not a decimal).

    Accepts integers, decimals, ``a/b``, ``\\frac{a}{b}`` (also ``\\frac12``) and mixed numbers
    (``1\\frac{4}{5}``); anything else gives None.
    """
    if len(s) > 200:
        return None
    if _INT.fullmatch(s):
        return Fraction(int(s)), 0
    match = _DEC.fullmatch(s)
    if match is not None:
        return Fraction(s), len(match.group(2))
    match = _SLASH.fullmatch(s)
    if match is not None:
        num, den = int(match.group(1)), int(match.group(2))
        return (Fraction(num, den), 0) if den else None
    match = _FRAC.fullmatch(s)
    if match is not None:
        num = int(match.group(3) or match.group(4))
        den = int(match.group(5) or match.group(6))
        if den == 0:
            return None
        value = Fraction(num, den)
        if match.group(2) is not None:  # a mixed number, as MATH writes them: 1\frac{4}{5} = 9/5
            if num < 0:
                return None
            value += int(match.group(2))
        return (-value if match.group(1) else value), 0
    return None
