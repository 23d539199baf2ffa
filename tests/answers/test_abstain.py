"""Abstentions are read as one token; the checker rewards them exactly on unanswerable problems."""

from __future__ import annotations

import pytest

from ponder.answers import extract_number_answer
from ponder.answers.abstain import ABSTAIN, check_abstain, is_abstention, states_abstention, with_abstention
from ponder.tasks.prompts import ABSTAIN_ARITHMETIC_CLAUSE, ABSTAIN_MATH_CLAUSE
from ponder.types import Problem
from tests.conftest import make_problem

extract = with_abstention(extract_number_answer, echoes=(ABSTAIN_MATH_CLAUSE, ABSTAIN_ARITHMETIC_CLAUSE))


@pytest.mark.parametrize(
    "text",
    [
        "The eggs per day are never given. \\boxed{\\text{unanswerable}}",
        "So the answer is unanswerable.",
        "\\boxed{\\text{I don't know}}",
        "Final answer: cannot be determined",
        "We know she sells 9 eggs, but the price is missing, so the problem cannot be solved.",
        "16 eggs and 21 eggs cannot both hold: the problem is contradictory.",
        "There is not enough information to find how many bolts.",
        "I don’t know.",  # curly apostrophe
        "<think>It is 5? no.</think>I do not know",
        "Hmm. Unsolvable.",
    ],
)
def test_abstentions_become_one_token(text: str) -> None:
    assert extract(text) == ABSTAIN


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("It seems impossible to compute at first, but 3 + 4 = 7. The answer is 7.", "7"),
        ("The answer is 12. I don't know if that is right.", "12"),  # a hedge after the answer is no abstention
        ("The data look inconsistent; converting units gives \\boxed{300}.", "300"),
        ("4 + 5 = 9. The answer is 9.", "9"),
        ("The answer is N.", None),  # a copied placeholder is still no answer, and no abstention either
    ],
)
def test_answers_stated_last_are_answers(text: str, answer: str | None) -> None:
    assert extract(text) == answer


def test_a_copied_abstention_clause_is_not_an_abstention() -> None:
    copied = f"Answer with the number at the end as 'The answer is N.' {ABSTAIN_ARITHMETIC_CLAUSE} 4 + 5 = 9."
    assert states_abstention(copied) and extract(copied) == "9"
    assert extract(f"{ABSTAIN_MATH_CLAUSE}\nSo \\boxed{{9}}") == "9"


def test_is_abstention() -> None:
    assert is_abstention(ABSTAIN) and is_abstention("\\text{Unanswerable}") and is_abstention("I don't know")
    assert not is_abstention("18") and not is_abstention(None) and not is_abstention("no solution")


def _problem(gold: str) -> Problem:
    return make_problem(gold=gold)


async def test_the_checker_rewards_abstaining_only_on_unanswerable_problems() -> None:
    unanswerable, answerable = _problem(ABSTAIN), _problem("7")
    assert await check_abstain(ABSTAIN, unanswerable) is True
    assert await check_abstain("7", unanswerable) is False
    assert await check_abstain(None, unanswerable) is False
    assert await check_abstain(ABSTAIN, answerable) is False
    assert await check_abstain("7.0", answerable) is True  # other answers by equivalence
    assert await check_abstain("8", answerable) is False
