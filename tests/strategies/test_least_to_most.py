"""Least-to-Most: the decomposition is parsed, subquestions are asked in order, each answer is fed to the next."""

from __future__ import annotations

import pytest

from ponder.backends.fake import FakeBackend
from ponder.context import Ctx, Sampling
from ponder.errors import BudgetExceeded, ConfigError
from ponder.strategies import get_strategy
from ponder.strategies.least_to_most import DECOMPOSE_INSTRUCTION, own_question, parse_subquestions
from ponder.tasks.prompts import MATH_INSTRUCTION, math_messages
from ponder.types import GenerationRequest, Problem
from tests.conftest import make_problem

BODY = "Amy has 4 red and 3 blue apples. She eats 2. How many apples does Amy have left?"
DECOMPOSITION = "1. How many apples does Amy have at first?\n2) How many apples does Amy eat?\nHow many apples does " \
                "Amy have left?\nSure, here they are."


def problem() -> Problem:
    p = make_problem(gold="5")
    p.messages = math_messages(BODY)
    return p


def scripted(final: str = "So 7 - 2 = 5. \\boxed{5}") -> FakeBackend:
    def script(request: GenerationRequest, index: int) -> str:
        last = request.messages[-1]["content"]
        if DECOMPOSE_INSTRUCTION in last:
            return DECOMPOSITION
        if "at first?" in last:
            return "She has 4 + 3 = 7 apples."
        if "does Amy eat?" in last:
            return "She eats 2."
        return final

    return FakeBackend(script)


def test_parsing_drops_numbering_repeats_prose_and_the_problem_question() -> None:
    final = own_question(BODY)
    assert final == "How many apples does Amy have left?"
    assert parse_subquestions(DECOMPOSITION, final, 5) == [
        "How many apples does Amy have at first?", "How many apples does Amy eat?"]
    assert parse_subquestions(DECOMPOSITION, final, 1) == ["How many apples does Amy have at first?"]
    assert parse_subquestions("- Q1: What is 3 + 4?\n- what is 3 + 4 ?", final, 5) == ["What is 3 + 4?"]


async def test_subquestions_are_solved_in_order_with_each_answer_fed_to_the_next() -> None:
    p = problem()
    backend = scripted()
    ctx = Ctx(backend, p)
    result = await get_strategy("least-to-most")(p, ctx)
    decompose, first, second, final = (c.request for c in backend.calls)
    assert all(r.temperature == 0.0 for r in (decompose, first, second, final))  # greedy, as in the paper
    assert BODY in decompose.messages[-1]["content"] and "How long does each trip take?" in \
        decompose.messages[-1]["content"]  # the paper's exemplar
    assert first.messages == [{"role": "user", "content": f"{BODY}\n\nQ: How many apples does Amy have at first?"}]
    assert second.messages == [*first.messages, {"role": "assistant", "content": "She has 4 + 3 = 7 apples."},
                               {"role": "user", "content": "Q: How many apples does Amy eat?"}]
    assert final.messages == [*second.messages, {"role": "assistant", "content": "She eats 2."},
                              {"role": "user",
                               "content": f"Q: How many apples does Amy have left?\n\n{MATH_INSTRUCTION}"}]
    assert result.answer == "5" and result.info["subquestions"] == [
        ["How many apples does Amy have at first?", "How many apples does Amy eat?"]]
    *helpers, answer = result.traces
    assert all(t.aux and t.answer is None for t in helpers) and not answer.aux and answer.answer == "5"


async def test_n_chains_vote_and_no_subquestion_means_one_question() -> None:
    p = problem()
    finals = iter(["\\boxed{5}", "\\boxed{6}", "\\boxed{5}"])

    def script(request: GenerationRequest, index: int) -> str:
        last = request.messages[-1]["content"]
        return "I would just answer it." if DECOMPOSE_INSTRUCTION in last else next(finals)

    backend = FakeBackend(script)
    result = await get_strategy("least-to-most")(p, Ctx(backend, p), n=3)
    assert result.answer == "5" and result.votes == {"5": 2.0, "6": 1.0}
    assert result.info["subquestions"] == [[], [], []]
    solves = [c.request for c in backend.calls if DECOMPOSE_INSTRUCTION not in c.request.messages[-1]["content"]]
    assert len(solves) == 3 and all(r.temperature != 0.0 for r in solves)  # n > 1 samples
    assert solves[0].messages[-1]["content"] == f"{BODY}\n\nQ: How many apples does Amy have left?\n\n" \
                                                f"{MATH_INSTRUCTION}"
    # max_subquestions=0 skips the decomposition
    backend = scripted()
    await get_strategy("least-to-most")(p, Ctx(backend, p), max_subquestions=0)
    assert len(backend.calls) == 1


async def test_budget_and_parameters() -> None:
    p = problem()
    ctx = Ctx(scripted(), p, token_budget=30, sampling=Sampling(max_tokens=20))
    with pytest.raises(BudgetExceeded):  # the decomposition fits, the first subquestion cannot
        await get_strategy("least-to-most")(p, ctx)
    with pytest.raises(ConfigError, match="max_subquestions"):
        await get_strategy("least-to-most")(p, Ctx(scripted(), p), max_subquestions=-1)
