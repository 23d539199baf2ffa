"""Abstention tasks: unanswerable variants really lose (or contradict) a needed number, deterministically."""

from __future__ import annotations

import random
import re
from collections import Counter
from pathlib import Path

from ponder.answers.abstain import ABSTAIN
from ponder.tasks import load_task
from ponder.tasks.abstain import contradict_number, make_variant, needed_values, quantities, remove_number
from ponder.tasks.prompts import ABSTAIN_ARITHMETIC_INSTRUCTION, ABSTAIN_MATH_INSTRUCTION

JANET = ("Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her "
         "friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck "
         "egg. How much in dollars does she make every day at the farmers' market?")
JANET_SOLUTION = ("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nShe makes 9 * 2 = $<<9*2=18>>18 every "
                  "day at the farmer’s market.\n#### 18")


def numbers(text: str) -> list[float]:
    return [float(x.replace(",", "")) for x in re.findall(r"\d+(?:,\d{3})*(?:\.\d+)?", text)]


def test_needed_values_are_the_solution_operands() -> None:
    assert needed_values(JANET_SOLUTION) == {16, 3, 4, 9, 2}
    assert needed_values("He pays 80,000 + 50,000 = 130,000.") == {80000, 50000, 130000}


def test_removing_a_number_takes_every_occurrence_away() -> None:
    rng = random.Random(0)
    removed = remove_number(JANET, 16, rng)
    assert 16 not in numbers(removed)
    assert any(f"ducks lay {vague} eggs per day" in removed for vague in ("some", "a few", "several"))
    assert remove_number(JANET, 2, random.Random(0)).count("some money per fresh duck egg") == 1
    twice = remove_number("James runs 3 sprints 3 times a week. He runs 60 meters each sprint.", 3, rng)
    assert 3 not in numbers(twice) and 60 in numbers(twice)
    assert remove_number("What is 3 + 4?", 4, rng) == "What is 3 + some number?"
    assert "some percent" in remove_number("It costs only 60% of the price.", 60, rng)
    assert remove_number("A house for $80,000.", 80000, rng) == "A house for some money."


def test_a_contradiction_restates_a_fact_with_another_number() -> None:
    question = "James runs 3 sprints a week. He runs 60 meters each sprint. How far does he run?"
    match = next(m for m in quantities(question) if m.group("number") == "60")
    text, other = contradict_number(question, match, random.Random(1)) or ("", "")
    assert other != "60" and int(other) > 60
    assert f"He runs 60 meters each sprint. In other words, he runs {other} meters each sprint." in text
    assert text.endswith("How far does he run?")
    (in_a_question,) = quantities("How far is 3 miles?")
    assert contradict_number("How far is 3 miles?", in_a_question, random.Random(1)) is None


def test_variants_are_deterministic_and_mixed() -> None:
    needed = needed_values(JANET_SOLUTION)
    variants = [make_variant(JANET, needed, random.Random(f"s/{i}")) for i in range(200)]
    again = [make_variant(JANET, needed, random.Random(f"s/{i}")) for i in range(200)]
    assert variants == again
    kinds = Counter(v.kind for v in variants)
    assert kinds["answerable"] > 70 and kinds["remove"] > 30 and kinds["contradict"] > 30
    for v in variants:
        if v.kind == "remove":
            assert value(v.detail["removed"]) not in numbers(v.question)
            assert value(v.detail["removed"]) in needed
        elif v.kind == "contradict":
            assert value(v.detail["contradicted"]) in numbers(v.question)
            assert value(v.detail["with"]) in numbers(v.question) and "In other words," in v.question
        else:
            assert v.question == JANET


def value(text: str) -> float:
    return float(text.replace(",", ""))


def test_add1_abstain_works_offline_and_labels_its_items() -> None:
    problems = load_task("add1-abstain", size=60)
    assert [p.id for p in problems] == [p.id for p in load_task("add1-abstain", size=60)]
    assert [p.messages for p in problems] == [p.messages for p in load_task("add1-abstain", size=60)]
    assert [p.messages for p in problems] != [p.messages for p in load_task("add1-abstain", size=60, seed=1)]
    plain = load_task("add1", size=60)
    kinds = Counter(p.meta["variant"] for p in problems)
    assert set(kinds) == {"answerable", "remove", "contradict"}
    for p, original in zip(problems, plain, strict=True):
        content = p.messages[-1]["content"]
        assert content.endswith(ABSTAIN_ARITHMETIC_INSTRUCTION)
        assert p.meta["original_question"] == original.messages[-1]["content"].split(" Answer with")[0]
        if p.meta["answerable"]:
            assert p.gold == original.gold and content.startswith(p.meta["original_question"])
        else:
            assert p.gold == ABSTAIN
        if p.meta["variant"] == "remove":
            assert int(p.meta["removed"]) not in numbers(content.split(" Answer with")[0])


async def test_add1_abstain_extracts_and_checks() -> None:
    problems = load_task("add1-abstain", size=20)
    unanswerable = next(p for p in problems if p.gold == ABSTAIN)
    answerable = next(p for p in problems if p.gold != ABSTAIN)
    said = "x has two values, so The answer is unanswerable."
    assert unanswerable.extract(said) == ABSTAIN and await unanswerable.checker(ABSTAIN, unanswerable)
    assert answerable.extract(said) == ABSTAIN and not await answerable.checker(ABSTAIN, answerable)
    right = f"The answer is {answerable.gold}."
    assert await answerable.checker(answerable.extract(right), answerable)
    assert not await unanswerable.checker(unanswerable.extract(right), unanswerable)


def test_gsm8k_abstain_from_the_data_set(shared_data: Path) -> None:
    problems = load_task("gsm8k-abstain", data_dir=shared_data, limit=200)
    plain = load_task("gsm8k", data_dir=shared_data, limit=200)
    assert problems[0].id == "gsm8k-abstain/seed0/0"
    kinds = Counter(p.meta["variant"] for p in problems)
    assert 70 < kinds["answerable"] < 130 and kinds["remove"] > 30 and kinds["contradict"] > 30
    for p, original in zip(problems, plain, strict=True):
        question = p.messages[-1]["content"]
        assert question.endswith(ABSTAIN_MATH_INSTRUCTION)
        assert (p.gold == ABSTAIN) == (not p.meta["answerable"]) and p.meta["original_gold"] == original.gold
        body = question[: -len(ABSTAIN_MATH_INSTRUCTION)]
        if p.meta["variant"] == "remove":
            assert value(p.meta["removed"]) not in numbers(body)
        if p.meta["variant"] == "answerable":
            assert body.strip() == p.meta["original_question"].strip()
    # the same seed gives the same variants; another seed, others
    assert [p.messages for p in load_task("gsm8k-abstain", data_dir=shared_data, limit=50)] == \
        [p.messages for p in problems[:50]]
    assert [p.meta["variant"] for p in load_task("gsm8k-abstain", data_dir=shared_data, limit=50, seed=3)] != \
        [p.meta["variant"] for p in problems[:50]]
