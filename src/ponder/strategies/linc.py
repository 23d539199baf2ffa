"""LINC: the model translates premises and conclusion into first-order logic; a prover decides."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from typing import Annotated

from annotated_types import Ge, Interval

from ponder.context import Ctx
from ponder.errors import ConfigError
from ponder.logic import LogicError, decide_text
from ponder.logic.errors import ParseError
from ponder.logic.fewshot import FOL_EXAMPLES, FolExample
from ponder.strategies.registry import strategy
from ponder.strategies.voting import vote
from ponder.types import Message, Problem, Result

INSTRUCTIONS = (
    "The following is a first-order logic (FOL) problem.\n"
    "The problem is to determine whether the conclusion follows from the premises.\n"
    "The task is to translate each of the premises and the conclusion into FOL expressions, so that the "
    "expressions can be evaluated by a theorem prover to determine whether the conclusion follows from the "
    "premises.\n"
    "Write one 'TEXT:' line and one 'FOL:' line for each premise and then for the conclusion. Predicates start "
    "with a capital letter, names of individuals are lower-case constants; use - (not), & (and), | (or), "
    "-> (implies), <-> (iff), xor, 'all x.' and 'exists x.'."
)
STOP = "</EVALUATE>"


def problem_block(premises: Sequence[str], conclusion: str) -> str:
    return ("<PREMISES>\n" + "".join(f"{p.strip()}\n" for p in premises) + "</PREMISES>\n"
            f"<CONCLUSION>\n{conclusion.strip()}\n</CONCLUSION>\n<EVALUATE>")


def example_answer(example: FolExample) -> str:
    pairs = [*example.premises, example.conclusion]
    return "".join(f"TEXT:\t{text}\nFOL:\t{fol}\n" for text, fol in pairs) + STOP


def linc_messages(premises: Sequence[str], conclusion: str, shots: int) -> list[Message]:
    """LINC's prompt as a chat: instructions, ``shots`` worked translations, then the problem."""
    messages: list[Message] = [{"role": "system", "content": INSTRUCTIONS}]
    for example in FOL_EXAMPLES[:shots]:
        messages.append({"role": "user", "content": problem_block([t for t, _ in example.premises],
                                                                  example.conclusion[0])})
        messages.append({"role": "assistant", "content": example_answer(example)})
    messages.append({"role": "user", "content": problem_block(premises, conclusion)})
    return messages


def parse_translation(text: str) -> tuple[list[str], str]:
    """LINC's post-processing: every ``FOL:`` line before ``</EVALUATE>``; the last is the conclusion."""
    body = text.split(STOP)[0]
    formulas = [line.split("FOL:", 1)[1].strip() for line in body.splitlines() if "FOL:" in line]
    if not formulas:
        raise ParseError("no 'FOL:' line in the translation")
    return formulas[:-1], formulas[-1]


def _decide(text: str) -> str:
    premises, conclusion = parse_translation(text)
    return decide_text(premises, conclusion).label


@strategy("linc")
async def linc(
    problem: Problem,
    ctx: Ctx,
    k: Annotated[int, Ge(1), "translations sampled and decided by the prover (paper: 10)"] = 10,
    shots: Annotated[int, Interval(ge=0, le=len(FOL_EXAMPLES)), "worked examples in the prompt (paper: 8)"] = 8,
) -> Result:
    """LINC (Olausson et al., 2023): the model only formalises; a first-order prover decides; majority over K.

    From "LINC: A Neurosymbolic Approach for Logical Reasoning by Combining Language Models with First-Order
    Logic Provers". The model sees ``shots`` worked examples (premises and conclusion in, a ``TEXT:``/``FOL:``
    pair per sentence out) and translates the problem's premises and conclusion; each of ``k`` sampled
    translations goes to the prover (``ponder.logic``: grounding + SAT, exact on function-free formulas without
    an 'exists' inside an 'all'), which labels it True (premises entail the conclusion), False (they entail its
    negation) or Unknown. Translations that do not parse, are too large, have contradictory premises or fall
    outside what the prover can settle are dropped and counted by kind; the majority of the remaining verdicts
    is the answer (confidence: its share of all ``k``). Paper defaults: k=10 samples at temperature 0.8,
    8-shot prompts (its shots are FOLIO problems; ponder ships eight hand-written ones). The problem must carry
    ``meta["premises"]`` (a list of sentences) and ``meta["conclusion"]``, as the ``logic`` task does.
    """
    premises, conclusion = problem.meta.get("premises"), problem.meta.get("conclusion")
    if not isinstance(premises, list) or not isinstance(conclusion, str):
        raise ConfigError("linc needs a problem with meta['premises'] (a list of sentences) and "
                          "meta['conclusion'] (a sentence), as the 'logic' task provides")
    traces = await ctx.sample(linc_messages(premises, conclusion, shots), n=k, stop=[STOP])
    verdicts: list[str | None] = []
    failures: Counter[str] = Counter()
    errors: list[str] = []
    for trace in traces:
        try:
            verdict: str | None = await asyncio.to_thread(_decide, trace.text)
        except LogicError as e:
            verdict = None
            failures[type(e).__name__] += 1
            errors.append(str(e))
        trace.answer = verdict  # this translation's verdict, not a label the model wrote
        verdicts.append(verdict)
    result = await vote(verdicts, _same)
    info = {"verdicts": verdicts, "decided": sum(v is not None for v in verdicts), "failures": dict(failures),
            "errors": errors[:5]}
    return result.result(traces, info)


async def _same(a: str, b: str) -> bool:
    return a == b
