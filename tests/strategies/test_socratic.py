"""Socratic Questioning: sub-questions become hints, confidence decides when to stop, depth and turns bound it."""

from __future__ import annotations

import pytest

from ponder.backends.fake import FakeBackend
from ponder.context import Ctx
from ponder.errors import ConfigError
from ponder.strategies import get_strategy
from ponder.strategies.socratic import (
    CONFIDENCE_REQUEST,
    QA_INSTRUCTION,
    RAISE_INSTRUCTION,
    confidence_of,
    hints_text,
    short_answer,
)
from ponder.tasks.prompts import MATH_INSTRUCTION, math_messages
from ponder.types import GenerationRequest, Problem
from tests.conftest import make_problem

BODY = "Amy has 4 red and 3 blue apples. She eats 2. How many apples does Amy have left?"
RAISE = RAISE_INSTRUCTION.split("{k}")[0]


def problem() -> Problem:
    p = make_problem(gold="5")
    p.messages = math_messages(BODY)
    return p


def kind(request: GenerationRequest) -> str:
    last = request.messages[-1]["content"]
    if last.startswith(RAISE):
        return "raise"
    if last.startswith(QA_INSTRUCTION):
        return "qa"
    return "root"


def test_reading_replies() -> None:
    assert confidence_of("[Answer: 7; Confidence: high]") == "high"
    assert confidence_of("The answer is 7. Confidence: Medium") == "middle"
    assert confidence_of("The answer is 7.") == "low"  # none stated reads as low, as in the reference
    assert short_answer("[Answer: 7 apples; Used hints: None; Confidence: high]") == "7 apples"
    assert short_answer("\n  7 apples\nmore") == "7 apples"
    assert hints_text(["Amy has 7 apples.", "Amy eats 2"]) == "(1) Amy has 7 apples; (2) Amy eats 2."


async def test_one_round_of_subquestions_gives_hints_for_the_answer() -> None:
    p = problem()

    def script(request: GenerationRequest, index: int) -> str:
        return {"raise": "1. How many apples does Amy have at first?\n2. How many apples does Amy eat?",
                "qa": "[Answer: 7; Confidence: high]" if "at first" in request.messages[-1]["content"]
                else "[Answer: 2; Confidence: middle]",
                "root": "7 - 2 = 5, so \\boxed{5}. Confidence: low"}[kind(request)]

    backend = FakeBackend(script)
    result = await get_strategy("socratic")(p, Ctx(backend, p))
    kinds = [kind(c.request) for c in backend.calls]
    assert kinds == ["raise", "qa", "qa", "root"]  # depth 2 and turns 2: sub-questions are leaves; one round
    assert all(c.request.temperature == 0.0 for c in backend.calls)
    qa = backend.calls[1].request.messages[-1]["content"]
    assert f"Context: {BODY}\nQuestion: How many apples does Amy have at first?" in qa
    root = backend.calls[-1].request.messages[-1]["content"]
    assert root == (f"{BODY}\n\nHints: (1) How many apples does Amy have at first? 7; (2) How many apples does Amy "
                    f"eat? 2.\n\n{MATH_INSTRUCTION} {CONFIDENCE_REQUEST}")
    assert result.answer == "5"
    *helpers, answer = result.traces
    assert all(t.aux and t.answer is None for t in helpers) and not answer.aux and answer.answer == "5"


async def test_an_unsure_answer_asks_again_until_confident_or_out_of_turns() -> None:
    p = problem()
    roots = iter(["\\boxed{4} Confidence: low", "\\boxed{5} Confidence: high", "\\boxed{6} Confidence: high"])

    def script(request: GenerationRequest, index: int) -> str:
        return {"raise": "How many apples does Amy have at first?",
                "qa": "[Answer: 7; Confidence: high]", "root": ""}[kind(request)] or next(roots)

    backend = FakeBackend(script)
    result = await get_strategy("socratic")(p, Ctx(backend, p), turns=4)
    assert [kind(c.request) for c in backend.calls] == ["raise", "qa", "root", "raise", "qa", "root"]
    # the second round's question sees the first round's hint; the withdrawn first answer is a helper sample
    assert "Hints: (1) How many apples does Amy have at first? 7." in backend.calls[3].request.messages[-1]["content"]
    first, second = (t for t in result.traces if kind_of_trace(t.text) == "root")
    assert first.aux and first.answer is None and second.answer == "5" and result.answer == "5"
    assert [entry.get("confidence") for entry in result.info["chains"][0] if "hints" in entry] == ["low", "high"]


def kind_of_trace(text: str) -> str:
    return "root" if "boxed" in text else "other"


async def test_unsure_subquestions_recurse_until_the_depth_limit() -> None:
    p = problem()

    def script(request: GenerationRequest, index: int) -> str:
        k = kind(request)
        if k == "raise":
            smaller = "smaller" in request.messages[-1]["content"]
            return "What is an even smaller question?" if smaller else "What is a smaller question?"
        if k == "qa":
            return "[Answer: 1; Confidence: low]"
        return "\\boxed{5} Confidence: low"

    backend = FakeBackend(script)
    await get_strategy("socratic")(p, Ctx(backend, p), questions=1, depth=3, turns=2)
    kinds = [kind(c.request) for c in backend.calls]
    # root raises; the depth-2 question is unsure, raises one of its own, whose depth-3 answer is final (a leaf);
    # the depth-2 question is answered again with that hint (turn 2: a leaf); then the problem is answered
    assert kinds == ["raise", "qa", "raise", "qa", "qa", "root"]
    assert "Question: What is an even smaller question?" in backend.calls[3].request.messages[-1]["content"]
    assert "Hints: (1) What is an even smaller question? 1." in backend.calls[4].request.messages[-1]["content"]
    assert "Hints: (1) What is a smaller question? 1." in backend.calls[5].request.messages[-1]["content"]


async def test_parameters_are_checked() -> None:
    p = problem()
    for bad in ({"depth": 1}, {"turns": 0}, {"questions": 0}, {"n": 0}):
        with pytest.raises(ConfigError):
            await get_strategy("socratic")(p, Ctx(FakeBackend(["x"]), p), **bad)
