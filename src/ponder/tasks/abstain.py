"""Abstention tasks: answerable problems mixed with unanswerable variants of them, ReliableMath-style.

ReliableMath (Xue et al., 2025) makes a solvable problem unsolvable by *removing* a condition it needs or by
*adding* a contradictory one, with LLM rewriting and human checks. ponder does both by rule, deterministically
from the task seed, so a variant can be regenerated and tested:

- **remove**: a number the reference solution computes with is replaced by a vague quantity everywhere it
  occurs ("16 eggs" -> "some eggs", "$80,000" -> "some money", "60%" -> "some percent"); the value is gone
  from the question.
- **contradict**: a statement holding such a number is followed by the same statement with another number,
  "In other words, ...": two values for one quantity.

Each problem is answerable or unanswerable with probability 1/2 (either kind of variant equally often, the
other kind when the drawn one does not apply). Unanswerable problems have the gold answer ``ABSTAIN``; every
problem's prompt allows abstaining (``ponder.tasks.prompts``), its extractor reads abstentions as ``ABSTAIN``,
and its checker counts an abstention right exactly on the unanswerable ones. ``meta`` records the variant, the
original question and gold, and the number removed or contradicted.

Departures: ReliableMath's variants come from competition math with human verification; these come from GSM8K
(and a generated addition testbed) by rule. "Needed" means used by GSM8K's reference solution (its ``<<a*b=c>>``
annotations), which is close to but not a proof of unanswerability: a removed value that the problem restates
in words ("three") or implies some other way may leave a variant answerable.

Tasks: ``gsm8k-abstain`` (the GSM8K test set, read like ``gsm8k``) and ``add1-abstain`` (offline: ``add1``'s
"What is a + b?" items, an operand removed, or "if x = a and x = c" for the contradiction).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ponder.answers import extract_number_answer
from ponder.answers.abstain import ABSTAIN, check_abstain, with_abstention
from ponder.tasks import arithmetic
from ponder.tasks.datasets import SETS, RowError, load_set
from ponder.tasks.prompts import (
    ABSTAIN_ARITHMETIC_CLAUSE,
    ABSTAIN_MATH_CLAUSE,
    abstain_arithmetic_messages,
    abstain_math_messages,
)
from ponder.tasks.registry import DEFAULT_SIZE, LoadOptions, TaskSpec, register_task
from ponder.types import Message, Problem

UNANSWERABLE_SHARE = 0.5

# A quantity written with digits, with its "$" or "%": not part of a word ("3rd", "30mph"), a fraction ("1/2"), a
# time ("3:00") or a longer number.
_QUANTITY = re.compile(
    r"(?<![\w.,/:$])(?P<dollar>\$\s?)?(?P<number>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(?P<percent>%|\s?percent\b)?(?![\w%]|[.,/:]\d)"
)
_OPERAND = re.compile(r"\d+(?:\.\d+)?|\.\d+")
_ANY_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")
_ANNOTATION = re.compile(r"<<([^=>]*)=")
# A sentence ends at . ! or ? before the next capitalised sentence or the end (decimals have no space after ".").
_SENTENCE_END = re.compile(r"[.!?](?=\s+[A-Z\"'“]|\s*$)")
_VAGUE = ("some", "a few", "several")
# Sentence openers that are not names: lowercased after "In other words,".
_LOWERCASE_FIRST = frozenset((
    "he", "she", "it", "they", "we", "the", "a", "an", "each", "every", "there", "this", "that", "these", "those",
    "his", "her", "their", "its", "our", "one", "in", "on", "at", "for", "if", "when", "after", "before", "during",
))


@dataclass(frozen=True)
class Variant:
    """A question as posed: ``kind`` is answerable, remove or contradict; ``detail`` says what was changed."""

    question: str
    kind: str
    detail: dict[str, Any]

    @property
    def answerable(self) -> bool:
        return self.kind == "answerable"


def value_of(number: str) -> float:
    """The numeric value of a written number: ``"80,000"`` -> 80000.0."""
    return float(number.replace(",", ""))


def needed_values(solution: str) -> set[float]:
    """The numbers a GSM8K reference solution computes with: the operands of its ``<<expr=result>>``
    annotations, or, without annotations, every number it writes."""
    expressions = _ANNOTATION.findall(solution)
    sources = expressions if expressions else [solution.replace(",", "")]
    return {float(x) for source in sources for x in _OPERAND.findall(source)}


def quantities(question: str) -> list[re.Match[str]]:
    """The quantities written with digits in ``question`` (groups ``dollar``, ``number``, ``percent``)."""
    return list(_QUANTITY.finditer(question))


def _quantities(question: str, values: set[float]) -> list[re.Match[str]]:
    """The quantities of ``question`` with one of ``values`` that can be removed whole: a value also written inside
    a word ("30mph") would survive the removal, so it is left alone."""
    everywhere = [value_of(m.group()) for m in _ANY_NUMBER.finditer(question)]
    found = [m for m in quantities(question) if value_of(m.group("number")) in values]
    return [m for m in found
            if everywhere.count(value_of(m.group("number"))) == sum(
                value_of(f.group("number")) == value_of(m.group("number")) for f in found)]


def remove_number(question: str, value: float, rng: random.Random) -> str:
    """``question`` with every quantity of ``value`` replaced by a vague one; the phrase is drawn from ``rng``."""
    vague = rng.choice(_VAGUE)

    def phrase(match: re.Match[str]) -> str:
        if value_of(match.group("number")) != value:
            return match.group()
        if match.group("dollar"):
            return "some money"
        if match.group("percent"):
            return "some percent"
        # before a noun, "some eggs"; elsewhere ("3 + 4?"), "some number"
        rest = question[match.end() :]
        return vague if re.match(r"\s+[A-Za-z]", rest) else "some number"

    return _QUANTITY.sub(phrase, question)


def _sentence_span(question: str, position: int) -> tuple[int, int]:
    start = 0
    for end in _SENTENCE_END.finditer(question):
        if end.end() > position:
            return start, end.end()
        start = end.end()
    return start, len(question)


def _other_value(number: str, rng: random.Random) -> str:
    """A different value written like ``number`` (commas kept, integers stay integers)."""
    value = value_of(number)
    if value.is_integer():
        other = int(value) + rng.randint(1, max(2, int(value) // 2))
        return f"{other:,}" if "," in number else str(other)
    return f"{value + 0.5 * rng.randint(1, 4):g}"


def contradict_number(question: str, match: re.Match[str], rng: random.Random) -> tuple[str, str] | None:
    """``question`` with the statement holding ``match`` restated with another number ("In other words, ..."), and
    that number; None when ``match`` is not in a statement (a question sentence cannot be restated as a fact)."""
    start, end = _sentence_span(question, match.start())
    sentence = question[start:end].strip()
    if not sentence.endswith("."):
        return None
    other = _other_value(match.group("number"), rng)
    offset = match.start() - (start + question[start:end].index(sentence))
    written = match.group()
    restated = sentence[:offset] + written.replace(match.group("number"), other, 1) + sentence[offset + len(written) :]
    first = restated.split(" ", 1)[0]
    if first.lower() in _LOWERCASE_FIRST:
        restated = restated[0].lower() + restated[1:]
    return f"{question[:end].rstrip()} In other words, {restated} {question[end:].lstrip()}".rstrip(), other


def make_variant(question: str, needed: set[float], rng: random.Random) -> Variant:
    """The question as posed: answerable, or one of the two unanswerable kinds (module docstring), from ``rng``."""
    if rng.random() >= UNANSWERABLE_SHARE:
        return Variant(question, "answerable", {})
    candidates = _quantities(question, needed)
    first = rng.choice(("remove", "contradict"))
    for kind in (first, "contradict" if first == "remove" else "remove"):
        if not candidates:
            break
        if kind == "remove":
            value = rng.choice(sorted({value_of(m.group("number")) for m in candidates}))
            removed = next(m.group("number") for m in candidates if value_of(m.group("number")) == value)
            return Variant(remove_number(question, value, rng), "remove", {"removed": removed})
        statements = [m for m in candidates if _sentence_ends_with_period(question, m)]
        if statements:
            match = rng.choice(statements)
            outcome = contradict_number(question, match, rng)
            if outcome is not None:
                text, other = outcome
                return Variant(text, "contradict", {"contradicted": match.group("number"), "with": other})
    return Variant(question, "answerable", {"note": "no needed number to remove or contradict"})


def _sentence_ends_with_period(question: str, match: re.Match[str]) -> bool:
    start, end = _sentence_span(question, match.start())
    return question[start:end].strip().endswith(".")


def _problem(pid: str, messages: list[Message], variant: Variant, gold: str, clause: str,
             meta: dict[str, Any]) -> Problem:
    return Problem(
        id=pid,
        messages=messages,
        gold=gold if variant.answerable else ABSTAIN,
        checker=check_abstain,
        extract=with_abstention(extract_number_answer, echoes=(clause,)),
        meta={**meta, "variant": variant.kind, "answerable": variant.answerable, "original_gold": gold,
              **variant.detail},
    )


def _rng(task: str, seed: int, index: int) -> random.Random:
    return random.Random(f"ponder/{task}/{seed}/{index}/variant")


# ---------------------------------------------------------------------------------------------- GSM8K


def _gsm8k_converter(seed: int) -> Callable[[dict[str, Any], int], Problem]:
    def convert(row: dict[str, Any], index: int) -> Problem:
        original = SETS["gsm8k"].convert(row, index)  # the checks and gold of the plain task
        question, solution = str(row.get("question", "")), str(row.get("answer", ""))
        if not question:
            raise RowError("missing field 'question'")
        variant = make_variant(question, needed_values(solution), _rng("gsm8k-abstain", seed, index))
        return _problem(f"gsm8k-abstain/seed{seed}/{index}", abstain_math_messages(variant.question), variant,
                        str(original.gold), ABSTAIN_MATH_CLAUSE,
                        {"index": index, "seed": seed, "original_question": question})

    return convert


def load_gsm8k_abstain(options: LoadOptions) -> list[Problem]:
    return load_set(replace(SETS["gsm8k"], convert=_gsm8k_converter(options.seed)), options)


# ----------------------------------------------------------------------------------------------- add1


def add1_variant(a: int, b: int, rng: random.Random) -> Variant:
    """``add1``'s "What is a + b?" as posed: answerable, an operand removed, or "if x = a and x = c"."""
    question = f"What is {a} + {b}?"
    if rng.random() >= UNANSWERABLE_SHARE:
        return Variant(question, "answerable", {})
    if rng.random() < 0.5:
        value = rng.choice((a, b))
        return Variant(remove_number(question, value, rng), "remove", {"removed": str(value)})
    other = rng.choice([c for c in range(1, 10) if c != a])
    return Variant(f"What is x + {b}, if x = {a} and x = {other}?", "contradict",
                   {"contradicted": str(a), "with": str(other)})


def load_add1_abstain(options: LoadOptions) -> list[Problem]:
    size = options.size if options.size is not None else DEFAULT_SIZE
    problems = []
    for i in options.window(size):
        item = arithmetic.item("add1", options.seed, i)  # the same a and b as add1
        variant = add1_variant(item.a, item.b, _rng("add1-abstain", options.seed, i))
        problems.append(_problem(f"add1-abstain/seed{options.seed}/{i}", abstain_arithmetic_messages(variant.question),
                                 variant, str(item.gold), ABSTAIN_ARITHMETIC_CLAUSE,
                                 {"a": item.a, "b": item.b, "seed": options.seed, "index": i,
                                  "original_question": item.question}))
    return problems


register_task(
    TaskSpec(
        name="gsm8k-abstain",
        description="GSM8K test with half the problems made unanswerable (a needed number removed or "
        "contradicted); abstaining is right only on those",
        source="jsonl",
        data="gsm8k-test.jsonl (data dir), else Hugging Face openai/gsm8k; variants drawn from the task seed",
        max_tokens=1024,
        loader=load_gsm8k_abstain,
    )
)
register_task(
    TaskSpec(
        name="add1-abstain",
        description="add1 with half the items unanswerable (an operand removed, or x given two values); "
        "abstaining is right only on those",
        source="generated",
        data=f"generated from the seed (default size {DEFAULT_SIZE})",
        max_tokens=arithmetic.MAX_TOKENS,
        loader=load_add1_abstain,
    )
)
