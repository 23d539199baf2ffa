"""Pull the final answer out of a model completion.

Priority: last ``\\boxed{...}``/``\\fbox{...}``, then the last ``#### N``, then the last "the answer is ..." /
"final answer: ..." / "Answer: ..." phrase, then the last number. Every step is a linear scan (plain ``str``
searches, regexes that cannot backtrack badly, phrase rules only on a bounded slice), so megabyte-long outputs
cannot blow up. An "answer" longer than ``MAX_ANSWER_CHARS`` is not one (a megabyte of digits, a box around a
whole essay): extraction gives None for it, and normalisation and equivalence compare such strings as they are.
"""

from __future__ import annotations

import re

__all__ = ["MAX_ANSWER_CHARS", "extract_answer", "find_closing_brace"]

MAX_ANSWER_CHARS = 4000  # longer than any real final answer (a 20x20 grid is ~800 characters)

_BOX_COMMANDS = ("\\boxed", "\\fbox")
# A LaTeX escape (``\{``, ``\}``, ``\\``) is one token, so escaped braces never count as grouping braces.
_BRACE_TOKEN = re.compile(r"\\[{}\\]|[{}]")
_ANSWER_PHRASE = re.compile(
    r"answer(?:\*\*|__)?[ \t]*(?::|\bis\b[ \t]*:?|=)",  # also ends "final answer: ..." / "**Answer:**"
    re.IGNORECASE,
)
# Signs only where they cannot be a binary minus ("10-20" gives 20, "x = -3" gives -3); U+2212 is a minus too.
_NUMBER = re.compile(
    r"(?:(?<![\w)\]}])[-\u2212])?(?<![\d.])(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d|,\d)|\d+(?:\.\d+)?(?:/\d+)?|\.\d+)"
)
# A trailing justification is not part of the answer: "5, since ...", "x = 2 because ...".
_CLAUSE = re.compile(r",?\s+(?:because|since|which|as|so that|given that|where)\b", re.IGNORECASE)
# "4 + 4 = 8 units", "16 x 4 = 64": worked arithmetic, whose result is what follows the last "=".
_ARITHMETIC_CHAIN = re.compile(r"[\d\s+\-*/×x÷().,^]+=(?:[\d\s+\-*/×x÷().,^]+=)*([^=]+)")
_WORD = re.compile(r"(?<![\\a-zA-Z])[A-Za-z]{2,}\b")
_PHRASE_MAX = 300  # a longer "answer" is prose, not an answer; also keeps later normalisation cheap
_THINK_END = "</think>"


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
    """Trim markdown and punctuation around an answer phrase: ``**$18$**.`` -> ``18``."""
    s = raw.strip()
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
        for marker in ("**", "__", "*", "$", "`"):
            if s.startswith(marker) and s.endswith(marker) and len(s) >= 2 * len(marker):
                s = s[len(marker) : len(s) - len(marker)]
            elif s.endswith(marker) and marker in ("**", "$") and marker not in s[:-len(marker)]:
                s = s[: -len(marker)]
            elif s.startswith(marker) and marker in ("**", "$") and marker not in s[len(marker):]:
                s = s[len(marker) :]
        if s == before:
            break
    return s.strip()


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
    last: re.Match[str] | None = None
    for match in _NUMBER.finditer(text):
        last = match
    return last.group() if last is not None else None


def _extract(text: str) -> str | None:
    for finder in (_last_boxed, _last_hashes, _last_phrase, _last_number):
        found = finder(text)
        if found:
            return found if len(found) <= MAX_ANSWER_CHARS else None
    return None


def extract_answer(text: str) -> str | None:
    """The final answer of a completion, or None when it contains nothing answer-like.

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
