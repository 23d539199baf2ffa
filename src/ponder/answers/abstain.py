"""Abstentions: "I don't know" and "this cannot be answered" read as one canonical answer, ``ABSTAIN``.

A completion abstains when

1. its final statement (the last ``\\boxed{}``, ``#### ...`` or "the answer is ..." phrase, see
   ``ponder.answers.extract``) says so: ``\\boxed{\\text{unanswerable}}``, "The answer is I don't know.",
   "Final answer: cannot be determined"; or
2. it ends by saying so after its last answer-like mark (box, answer phrase or number): "... we are never told
   how many eggs she lays, so the problem is unanswerable." Whatever the model states last wins, so reasoning
   that calls a step "impossible" and then goes on to an answer is an answer.

Phrases that count: unanswerable / unsolvable / undeterminable, "cannot be determined" (answered, solved,
known, calculated), "not enough" / "insufficient" / "missing" information, contradictory / inconsistent /
ill-posed, and "I don't know" (not "I don't know if ...", a hedge). Both kinds of abstention, "cannot be
answered" and "I don't know", become the same token: ReliableMath tells them apart (success vs refusal on an
unanswerable problem), ponder does not (see ``ponder.abstention``).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from ponder.answers.equivalence import check_math
from ponder.answers.extract import extract_answer
from ponder.types import Extractor, Problem

ABSTAIN = "unanswerable"
"""The one answer every abstention is read as, and the gold answer of an unanswerable problem."""

_ABSTENTION = re.compile(
    r"\b(?:un(?:answerable|solvable|determinable|knowable)"
    r"|not\s+(?:answerable|solvable|determinable)"
    r"|(?:not\s+enough|insufficient|missing|incomplete)\s+(?:information|info|data)"
    r"|contradictory|inconsistent|ill[- ]posed)\b"
    r"|\b(?:cannot|can\s*not|can[’']?t|could\s+not|couldn[’']?t|impossible\s+to)\s+(?:be\s+)?"
    r"(?:determined?|answered|answer|solved?|known?|calculated?|computed?)\b"
    r"|\b(?:I|we)\s+(?:do\s+not|don[’']?t|cannot|can[’']?t)\s+know\b(?!\s+(?:if|whether|why|that)\b)",
    re.IGNORECASE,
)
# What states an answer: a box, a "####" line, an answer phrase, or a number. An abstention counts only after the
# last of these (or as the final statement itself).
_ANSWER_MARK = re.compile(r"\\boxed|\\fbox|####|answer(?:\*\*|__)?[ \t]*(?::|\bis\b|=)|\d", re.IGNORECASE)
_THINK_END = "</think>"


def is_abstention(statement: str | None) -> bool:
    """Whether an answer as written (a final statement, or ``ABSTAIN`` itself) declines to answer."""
    return statement is not None and (statement.strip() == ABSTAIN or _ABSTENTION.search(statement) is not None)


def states_abstention(text: str) -> bool:
    """Whether a completion ends by declining to answer (rules 1 and 2 of the module docstring)."""
    end = text.rfind(_THINK_END)
    if end != -1 and text[end + len(_THINK_END) :].strip():
        text = text[end + len(_THINK_END) :]  # the visible answer, as extraction reads it
    if is_abstention(extract_answer(text)):
        return True
    last_abstention = _last(_ABSTENTION, text)
    if last_abstention is None:
        return False
    last_mark = _last(_ANSWER_MARK, text)
    return last_mark is None or last_abstention.start() > last_mark.start()


def _last(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    found = deque(pattern.finditer(text), maxlen=1)  # one pass, constant memory
    return found[0] if found else None


@dataclass(frozen=True)
class WithAbstention:
    """An extractor that reads abstentions as ``ABSTAIN`` and everything else as ``extract`` does.

    ``echoes`` are sentences of the task's prompt that a model may copy without meaning them (its abstention
    clause): they are cut from the completion first, as extraction ignores copied template slots."""

    extract: Extractor
    echoes: tuple[str, ...] = ()

    def __call__(self, text: str) -> str | None:
        for echo in self.echoes:
            text = text.replace(echo, " ")
        return ABSTAIN if states_abstention(text) else self.extract(text)


def with_abstention(extract: Extractor, *, echoes: Sequence[str] = ()) -> Extractor:
    """``extract`` that also recognises abstentions (see ``WithAbstention``)."""
    return WithAbstention(extract, tuple(echoes))


async def check_abstain(answer: str | None, problem: Problem) -> bool:
    """The checker of abstention tasks: abstaining is right on an unanswerable problem (gold ``ABSTAIN``) and wrong
    on an answerable one; any other answer is checked against the gold by mathematical equivalence."""
    if problem.gold == ABSTAIN:
        return answer == ABSTAIN
    if answer is None or answer == ABSTAIN:
        return False
    return await check_math(answer, problem)
