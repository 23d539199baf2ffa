"""Pull the final answer out of a model completion.

Priority: last ``\\boxed{...}``/``\\fbox{...}``, then the last ``#### N``, then the last "the answer is ..." /
"final answer: ..." / "Answer: ..." phrase, then the last number. The first of these that is present is the
completion's *final statement*; later rules are never consulted once an earlier one has found something, so a
statement that is not an answer (a prompt's placeholder, a word where a number is wanted) means no answer, not
a fall back to some earlier number.

A phrase is trimmed to its answer: markdown and math delimiters, a trailing justification ("5, since ..."),
leading hedges ("probably 12", "approximately 3.14") and surrounding prose ("The total is 15 apples" -> 15).
A number includes its scale word or exponent ("1.5 million", "3e5", "3 \\times 10^5"; normalisation writes
them out), and a number that ends a compound quantity stands for the whole quantity ("3 hours and 20 minutes",
never 20).

``extract_answer`` gives the final statement as written (normalisation and equivalence deal with its form).
``extract_number_answer`` is for tasks whose answers are numbers: it gives the final statement's number in
normalised form, or None when the statement is not one number.

Every step is a linear scan (plain ``str`` searches, regexes that cannot backtrack badly, phrase rules only on a
bounded slice), so megabyte-long outputs cannot blow up. An "answer" longer than ``MAX_ANSWER_CHARS`` is not one
(a megabyte of digits, a box around a whole essay): extraction gives None for it, and normalisation and
equivalence compare such strings as they are.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from itertools import islice

__all__ = ["MAX_ANSWER_CHARS", "extract_answer", "extract_number_answer", "find_closing_brace"]

MAX_ANSWER_CHARS = 4000  # longer than any real final answer (a 20x20 grid is ~800 characters)

_BOX_COMMANDS = ("\\boxed", "\\fbox")
# A LaTeX escape (``\{``, ``\}``, ``\\``) is one token, so escaped braces never count as grouping braces.
_BRACE_TOKEN = re.compile(r"\\[{}\\]|[{}]")
_ANSWER_PHRASE = re.compile(
    r"answer(?:\*\*|__)?[ \t]*(?::|\bis\b[ \t]*:?|=)",  # also ends "final answer: ..." / "**Answer:**"
    re.IGNORECASE,
)
# Signs only where they cannot be a binary minus ("10-20" gives 20, "x = -3" gives -3); U+2212 is a minus too.
# A number keeps its exponent ("3e5", "1.2E-3", "3 \\times 10^{5}") or scale word ("1.5 million"): without
# them it would be read as 5 or 1.5. An exponent must end the token ("3e5x" is not 3e5).
_NUMBER = re.compile(
    r"(?:(?<![\w)\]}])[-\u2212])?(?<![\d.])(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d|,\d)|\d+(?:\.\d+)?(?:/\d+)?|\.\d+)"
    r"(?:[eE][-+\u2212]?\d+(?!\w|\.\d)"
    r"|[ \t]*(?:\\times|\\cdot|\u00d7)[ \t]*10[ \t]*\^[ \t]*(?:\{[ \t]*[-+\u2212]?\d+[ \t]*\}|[-+\u2212]?\d+)"
    r"|[ \t]+(?:hundred|thousand|million|billion|trillion)\b)?"
)
# A quantity in several units ("3 hours and 20 minutes", "5 feet 3 inches") is one answer, never its last
# number. Only unit words count, so "3 apples and 4 pears" stays two numbers.
_UNIT = (
    r"(?:hours?|hrs?|minutes?|mins?|seconds?|secs?|days?|weeks?|months?|years?|feet|foot|ft|inch(?:es)?|yards?"
    r"|yds?|miles?|met(?:er|re)s?|centimet(?:er|re)s?|cm|millimet(?:er|re)s?|mm|kilomet(?:er|re)s?|km|pounds?"
    r"|lbs?|ounces?|oz|kilograms?|kg|grams?|tons?|dollars?|cents?|gallons?|quarts?|pints?|cups?|lit(?:er|re)s?)"
)
_QUANTITY = rf"\d+(?:\.\d+)?[ \t]*{_UNIT}\b"
_COMPOUND = re.compile(rf"(?<![\d.]){_QUANTITY}(?:[ \t]*(?:,[ \t]*)?(?:and[ \t]+)?{_QUANTITY})+", re.IGNORECASE)
_COMPOUND_REACH = 200  # how far before its last number a compound quantity may start
_COMPOUND_NUMBER_MAX = 40  # a longer number is never one part of a compound quantity
# Hedges before an answer ("probably 12", "approx. 3.14", "\\approx 7"): the answer is what follows.
_HEDGE_WORDS = (
    r"probably|likely|approximately|approx\.|about|around|roughly|exactly|just|simply|definitely|clearly|certainly"
    r"|surely|precisely|actually|indeed|basically|essentially|maybe|perhaps|possibly|equal to|equals"
)
_LEADING_HEDGE = re.compile(
    rf"(?:(?:(?:most|very|quite)[ \t]+)?(?:{_HEDGE_WORDS})(?![\w.])[ \t,:]*|(?:\u2248|~|\\approx(?![a-zA-Z]))[ \t]*)+",
    re.IGNORECASE,
)
_TRAILING_HEDGE = re.compile(rf",[ \t]*(?:(?:most|very|quite)[ \t]+)?(?:{_HEDGE_WORDS})\W*$", re.IGNORECASE)
# Template slots copied from a format instruction ("[your answer]", "<number>"): never an answer, in any task.
_TEMPLATE_SLOT = re.compile(
    r"[<\[{]\s*(?:(?:your|the|final|my)\s+)*(?:answer|number|value|result|solution)(?:\s+here)?\s*[>\]}]"
    r"|your\s+(?:final\s+)?answer(?:\s+here)?",
    re.IGNORECASE,
)
# A trailing justification is not part of the answer: "5, since ...", "x = 2 because ...".
_CLAUSE = re.compile(r",?\s+(?:because|since|which|as|so that|given that|where)\b", re.IGNORECASE)
# "4 + 4 = 8 units", "16 x 4 = 64": worked arithmetic, whose result is what follows the last "=".
_ARITHMETIC_CHAIN = re.compile(r"[\d\s+\-*/×x÷().,^]+=(?:[\d\s+\-*/×x÷().,^]+=)*([^=]+)")
_WORD = re.compile(r"(?<![\\a-zA-Z])[A-Za-z]{2,}\b")
_PHRASE_MAX = 300  # a longer "answer" is prose, not an answer; also keeps later normalisation cheap
_THINK_END = "</think>"
_QUOTES = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019", "\u201d": "\u201d", "\u2019": "\u2019"}


def find_closing_brace(text: str, open_idx: int, limit: int | None = None) -> int:
    """Index of the ``}`` matching the ``{`` at ``open_idx``, or -1 if it does not close before ``limit``."""
    depth = 0
    for match in _BRACE_TOKEN.finditer(text, open_idx, len(text) if limit is None else limit):
        token = match.group()
        if token == "{":
            depth += 1
        elif token == "}":
            depth -= 1
            if depth == 0:
                return match.start()
    return -1


def _last_boxed(text: str) -> str | None:
    """Content of the last complete, non-empty ``\\boxed{...}``/``\\fbox{...}``.

    Candidates are tried from the last one backwards. A box that never closes cannot be closed by one that
    opened earlier either, so each scan stops where the previous candidate began: linear in total. A box longer
    than ``MAX_ANSWER_CHARS`` counts as one that never closes.
    """
    starts: list[tuple[int, str]] = []
    for command in _BOX_COMMANDS:
        pos = text.find(command)
        while pos != -1:
            starts.append((pos, command))
            pos = text.find(command, pos + 1)
    if not starts:
        return None
    starts.sort()
    limit = len(text)
    for pos, command in reversed(starts):
        after = pos + len(command)
        if after < len(text) and (text[after].isalpha()):
            limit = pos  # e.g. \boxedx or \fboxsep: another command
            continue
        i = after
        while i < limit and text[i] in " \t":
            i += 1
        if i < limit and text[i] == "{":
            # a box closing beyond MAX_ANSWER_CHARS holds no answer: scan no further (linear in total)
            close = find_closing_brace(text, i, min(limit, i + MAX_ANSWER_CHARS + 2))
            if close != -1:
                content = text[i + 1 : close].strip()
                if content:
                    return content
        elif i < limit and i > after:
            # "\boxed 5": TeX takes the next token as the argument
            j = i
            while j < limit and not text[j].isspace() and text[j] not in "$\\":
                j += 1
            if j > i:
                return text[i:j]
        limit = pos
    return None


def _last_hashes(text: str) -> str | None:
    """The GSM8K-style ``#### N`` answer: the rest of the line after the last non-empty ``####``."""
    pos = text.rfind("####")
    while pos != -1:
        end = text.find("\n", pos)
        line = text[pos + 4 : end if end != -1 else len(text)]
        if line.strip("# \t\r"):  # cheap test first: a long run of empty "####" lines stays linear
            cleaned = _clean_phrase(line.lstrip("#")[: _PHRASE_MAX * 4])
            if cleaned:
                return cleaned
        pos = text.rfind("####", 0, pos)
    return None


def _clean_phrase(raw: str) -> str:
    """Trim markdown, punctuation and leading hedges around an answer phrase: ``**$18$**.`` -> ``18``,
    ``probably 12`` -> ``12``."""
    s = _strip_hedge(raw.strip())
    for command in _BOX_COMMANDS:  # a box that never closed (cut-off output): keep what it holds
        if s.startswith(command + "{"):
            s = s[len(command) + 1 :].strip()
    # A math span at the start is the answer ("$x = 5$, which ..."): keep only the span.
    for opener, closer in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if s.startswith(opener):
            end = s.find(closer, len(opener))
            if end != -1:
                return s[len(opener) : end].strip().rstrip(".,;:").strip()  # "$1001,$ which is ..."
            break
    # Otherwise the sentence ends at ". " (a decimal point is never followed by a space).
    for stop in (". ", ".\t"):
        cut = s.find(stop)
        if cut != -1:
            s = s[:cut]
    s = s.strip()
    for _ in range(3):  # markers nest, e.g. "**$42$**."
        before = s
        s = s.strip().rstrip(".").strip()
        if len(s) >= 2 and s[-1] in _QUOTES and s[-2] in ".!?":
            s = s[:-1]  # the end of a quoted sentence: "... 'The answer is N.'"
        elif len(s) >= 2 and _QUOTES.get(s[0]) == s[-1]:
            s = s[1:-1]
        for marker in ("**", "__", "*", "$", "`"):
            if s.startswith(marker) and s.endswith(marker) and len(s) >= 2 * len(marker):
                s = s[len(marker) : len(s) - len(marker)]
            elif s.endswith(marker) and marker in ("**", "$") and marker not in s[:-len(marker)]:
                s = s[: -len(marker)]
            elif s.startswith(marker) and marker in ("**", "$") and marker not in s[len(marker):]:
                s = s[len(marker) :]
        if s == before:
            break
    return _strip_hedge(s.strip())


def _strip_hedge(s: str) -> str:
    """``probably 12`` -> ``12``; a phrase that is nothing but hedges is left as it is."""
    match = _LEADING_HEDGE.match(s)
    return s[match.end() :] if match is not None and match.end() < len(s) else s


def _last_phrase(text: str) -> str | None:
    """What follows the last "answer is" / "final answer:" / "Answer:" on its line (or on the next line)."""
    last: re.Match[str] | None = None
    for match in _ANSWER_PHRASE.finditer(text):
        last = match
    if last is None:
        return None
    start = last.end()
    # "Final Answer:\n42": the answer may sit on the next non-empty line.
    line_end = text.find("\n", start)
    line = text[start : line_end if line_end != -1 else len(text)][: _PHRASE_MAX * 4]
    if not _clean_phrase(line) and line_end != -1:
        nxt = line_end + 1
        while nxt < len(text) and text[nxt] in " \t\r\n" and nxt - line_end < 200:
            nxt += 1
        next_end = text.find("\n", nxt)
        line = text[nxt : next_end if next_end != -1 else len(text)]
    answer = _clean_phrase(line[: _PHRASE_MAX * 4])
    if not answer or len(answer) > _PHRASE_MAX:
        return None
    return _trim_prose(answer)


def _trim_prose(phrase: str) -> str:
    """Reduce a sentence to its answer: "15, since 3 * 5 = 15" -> "15"; "The total is 15 apples" -> "15";
    "4 + 4 = 8 units" -> "8 units"."""
    phrase = _CLAUSE.split(phrase, maxsplit=1)[0].strip() or phrase
    phrase = _TRAILING_HEDGE.sub("", phrase).strip() or phrase  # "12, probably"
    chain = _ARITHMETIC_CHAIN.fullmatch(phrase)
    if chain is not None and any(c.isdigit() for c in phrase.split("=", 1)[0]):  # not "x = 5"
        phrase = chain.group(1).strip()
    # Prose (several words, no LaTeX) around a number: the number is the answer. Short phrases such as
    # "7 apples" or "New York" are left whole for normalisation to deal with.
    if "\\" not in phrase and len(_WORD.findall(phrase)) >= 3:
        number = _last_number(phrase)
        if number is not None:
            return number
    return phrase


def _last_number(text: str) -> str | None:
    """The last number, or the whole compound quantity it ends ("3 hours and 20 minutes")."""
    last: re.Match[str] | None = None
    for match in _NUMBER.finditer(text):
        last = match
    if last is None:
        return None
    if last.end() - last.start() > _COMPOUND_NUMBER_MAX:
        return last.group()  # a megabyte of digits is not part of "3 hours and 20 minutes"
    # Only a bounded window around the last number is searched, so this stays linear on any input.
    start = max(0, last.start() - _COMPOUND_REACH)
    if start:
        space = text.find(" ", start, last.start())  # do not begin inside a number or word
        start = space + 1 if space != -1 else last.start()
    for compound in _COMPOUND.finditer(text, start, min(len(text), last.end() + 40)):
        if compound.start() <= last.start() and compound.end() >= last.end():
            return compound.group()
    return last.group()


def _extract(text: str) -> str | None:
    for finder in (_last_boxed, _last_hashes, _last_phrase, _last_number):
        found = finder(text)
        if found:
            return found if len(found) <= MAX_ANSWER_CHARS else None
    return None


def _final_statement(text: str) -> str | None:
    """What the completion states as its answer (see the module doc), before any judgement of its content.

    When the text holds a closed ``<think>`` block, the part after it (the visible answer) is searched first,
    so a number mentioned while thinking never beats the answer the model gave.
    """
    if not text:
        return None
    end = text.rfind(_THINK_END)
    if end != -1:
        found = _extract(text[end + len(_THINK_END) :])
        if found:
            return found
    return _extract(text)


def extract_answer(text: str, *, placeholders: Collection[str] = ()) -> str | None:
    """The final answer of a completion, or None when it contains nothing answer-like.

    A final statement that is a template slot (``[your answer]``, ``<number>``) or one of ``placeholders`` is
    no answer, and no earlier statement is used instead: the model copied the format instruction rather than
    answering. ``placeholders`` are the tokens a task's own prompt uses as the answer's stand-in (the "N" of
    "The answer is N."); they must be declared by the task, because a bare capital letter is a legitimate
    multiple-choice answer elsewhere. A task binds them with ``functools.partial(extract_answer,
    placeholders=("N",))``; a task whose answers are numbers should use ``extract_number_answer`` instead, which
    refuses every non-number.
    """
    found = _final_statement(text)
    if found is None or _TEMPLATE_SLOT.fullmatch(found) or (placeholders and _is_placeholder(found, placeholders)):
        return None
    return found


def _is_placeholder(found: str, placeholders: Collection[str]) -> bool:
    from ponder.answers.normalize import normalize_answer  # normalize imports this module

    if found.strip() in placeholders:
        return True
    return normalize_answer(found) in {normalize_answer(p) for p in placeholders}  # "$N$", "\\text{N}"


def extract_number_answer(text: str) -> str | None:
    """The final answer of a completion to a task whose answers are numbers, normalised (``"1234.5"``), or None.

    The final statement is found as by ``extract_answer``; it must then be one number: the value after its last
    ``=`` if it has one ("4 + 4 = 8"), read through normalisation (``$1,234.50`` -> ``1234.5``, ``1.5 million``
    -> ``1500000``, ``3e5`` -> ``300000``, ``50%`` -> ``50``), or else the only number it contains
    ("(A) 12" -> ``12``). A statement with no number ("The answer is N.", a bare letter, "twelve") or several
    ("5:1", "3 hours and 20 minutes") gives None, never an earlier number: the model's stated answer was not a
    number. Fractions in LaTeX (``\\frac{1}{2}``) count as numbers.
    """
    found = _final_statement(text)
    return _as_number(found) if found is not None else None


def _as_number(statement: str) -> str | None:
    from ponder.answers.normalize import normalize_answer, parse_number  # normalize imports this module

    value = statement[statement.rfind("=") + 1 :]  # the result of worked arithmetic or of "x = 5"
    if _COMPOUND.search(value):
        return None  # several units: converting "3 hours and 20 minutes" would need to know the wanted unit
    normal = normalize_answer(value)
    if parse_number(normal) is not None:
        return normal
    numbers = [match.group() for match in islice(_NUMBER.finditer(value), 2)]  # one, or more than one
    if len(numbers) == 1:
        normal = normalize_answer(numbers[0])
        if parse_number(normal) is not None:
            return normal
    return None
