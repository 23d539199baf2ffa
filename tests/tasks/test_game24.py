"""Game of 24 / countdown: the exact checker (no eval), the extractor, step checking and the generated tasks."""

from __future__ import annotations

import builtins
import re
from fractions import Fraction

import pytest

from ponder.tasks import load_task
from ponder.tasks.game24 import (
    COUNTDOWN_COT,
    GAME24_COT,
    InvalidExpression,
    Puzzle,
    State,
    apply_step,
    check_expression,
    check_puzzle,
    extract_expression,
    parse_expression,
    puzzle_of,
    puzzle_problem,
    solve,
)
from ponder.types import Problem


@pytest.fixture(autouse=True)
def no_eval(monkeypatch: pytest.MonkeyPatch) -> None:
    """Model text must never reach eval/exec: make any use of them fail every test here."""

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("eval/exec called on model text")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("(4 + 8) * (6 - 4)", 24),
        ("8 / (3 - 8 / 3)", 24),  # exact fractions: a float would give 23.999999999999996
        ("1 + 2 * 3 - 4 / 2", 5),  # precedence
        ("10 - 4 - 3", 3),  # left associative
        ("48 / 4 / 2", 6),
        ("((((5))))", 5),
        ("3 × 8", 24),
        ("9 ÷ 3 − 1", 2),
    ],
)
def test_exact_value(text: str, value: int) -> None:
    assert parse_expression(text).value == value


def test_fractions_are_exact_and_numbers_are_listed() -> None:
    result = parse_expression("1 / 3 + 1 / 6")
    assert result.value == Fraction(1, 2) and result.numbers == (1, 3, 1, 6)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "2 ** 3",  # powers are not an operator of the game
        "2 ^ 30",
        "9 ** 9 ** 9 ** 9",
        "__import__('os').system('touch /tmp/pwned')",
        "(lambda: 24)()",
        "open('/etc/passwd')",
        "24 if True else 0",
        "-4 + 28",  # no unary minus
        "+24",
        "2.5 * 4",  # integers only
        "1 / 0",
        "6 / (4 - 4)",  # division by a zero made on the way
        "(1 + 2",
        "1 + 2)",
        "1 2 + 3",
        "4 4",
        "x + 1",
        "1e3",
        "9" * 20,  # absurdly long literal
        "(" * 30 + "1" + ")" * 30,  # nesting beyond the limit
        "1 + " * 200 + "1",  # longer than any real answer
    ],
)
def test_hostile_or_malformed_expressions_are_rejected(text: str) -> None:
    with pytest.raises(InvalidExpression):
        parse_expression(text)
    assert not check_expression(text, [1, 2, 3, 4], 24)


@pytest.mark.parametrize(
    ("text", "numbers", "ok"),
    [
        ("(4 + 8) * (6 - 4)", [4, 4, 6, 8], True),
        ("(8 + 4) * (6 - 4)", [8, 6, 4, 4], True),  # any order
        ("4 * 6", [4, 6, 1, 1], False),  # numbers left unused
        ("4 * 6 * 1 * 1 * 1", [4, 6, 1, 1], False),  # a number used twice
        ("(4 + 8) * (6 - 4) + 0", [4, 4, 6, 8], False),  # a number that was not given
        ("12 * 2 * 1 * 1", [12, 2, 1, 1], True),
        ("12 * 2 * 1 * 1", [12, 2, 1, 2], False),
        ("(4 + 8) * (6 - 4) - 1", [4, 4, 6, 8, 1], False),  # right numbers, wrong value (23)
        (None, [4, 4, 6, 8], False),
    ],
)
def test_check_expression(text: str | None, numbers: list[int], ok: bool) -> None:
    assert check_expression(text, numbers, 24) is ok


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Steps:\n4 + 8 = 12 (left: 4 6 12)\nAnswer: (6 - 4) * (4 + 8) = 24", "(6 - 4) * (4 + 8)"),
        ("**Answer:** 3 * 8 = 24.", "3 * 8"),
        ("The answer is $(1 + 8 / 4) * 8$.", "(1 + 8 / 4) * 8"),
        ("so \\boxed{(13 - 9) * (10 - 4)}", "(13 - 9) * (10 - 4)"),
        ("I tried.\n(5 + 5) + 5 + 9 = 24", "(5 + 5) + 5 + 9"),
        # a model that invents the next few-shot example has already answered this one
        ("Answer: 2 * 12 * (10 - 9) = 24\nInput: 1 2 3 4\nSteps:\nAnswer: 1 * 2 * 3 * 4 = 24", "2 * 12 * (10 - 9)"),
        ("Input: 2 9 10 12\nSteps:\nAnswer: 2 * 12 * (10 - 9) = 24", "2 * 12 * (10 - 9)"),  # echoed input
        ("Output: (8 / 4 + 3) * 6 = 12", "(8 / 4 + 3) * 6"),
        ("2 3 10", None),  # numbers without an operator are no expression
        ("4 + 8 = 12 (left: 4 6 12)", None),  # a step is not an answer
        ("I do not know.", None),
    ],
)
def test_extract_expression(text: str, expected: str | None) -> None:
    assert extract_expression(text) == expected


def test_solver() -> None:
    assert solve([3, 3, 8, 8], 24) is not None and check_expression(solve([3, 3, 8, 8], 24), [3, 3, 8, 8], 24)
    assert solve([1, 1, 1, 1], 24) is None
    assert check_expression(solve([5, 5, 5, 1], 24), [5, 5, 5, 1], 24)  # needs the fraction 1/5


def test_steps_are_checked_exactly() -> None:
    state = State.start([4, 4, 6, 8])
    applied = apply_step(state, "8 + 4 = 12 (left: 4 6 12)")
    assert applied is not None
    after, text = applied
    assert text == "8 + 4 = 12 (left: 4 6 12)" and after.left == "4 6 12"
    # the model's bookkeeping is recomputed, not trusted
    fixed = apply_step(state, "1. 4 * 6 = 24 (left: 24)")
    assert fixed is not None and fixed[1] == "4 * 6 = 24 (left: 4 8 24)"
    assert apply_step(state, "4 + 8 = 13 (left: 4 6 13)") is None  # wrong arithmetic
    assert apply_step(state, "5 + 7 = 12 (left: 4 6 12)") is None  # numbers not left
    assert apply_step(state, "8 + 8 = 16 (left: 4 4 6 16)") is None  # only one 8
    assert apply_step(state, "4 + 4 = 8 (left: 6 8 8)") is not None  # two 4s
    assert apply_step(state, "Let me think about 4 and 8.") is None
    zero = apply_step(State.start([4, 4, 6]), "4 - 4 = 0")
    assert zero is not None and apply_step(zero[0], "6 / 0 = 0") is None  # division by zero


def test_fractional_steps_reach_24_exactly() -> None:
    puzzle = Puzzle((3, 3, 8, 8), 24)
    state = State.start(puzzle.numbers)
    for line in ["8 / 3 = 2.67 (left: 2.67 3 8)", "3 - 2.67 = 0.33 (left: 0.33 8)", "8 / 0.33 = 24 (left: 24)"]:
        applied = apply_step(state, line)
        assert applied is not None, line
        state = applied[0]
    assert puzzle.solved(state)
    assert check_expression(state.expression(), puzzle.numbers, 24)
    assert apply_step(State.start([8, 3]), "8 / 3 = 2.7") is None  # stated too roughly


@pytest.mark.parametrize("template", [GAME24_COT, COUNTDOWN_COT])
def test_prompt_examples_are_correct(template: str) -> None:
    examples = template.split("Input: ")[1:-1]
    assert len(examples) == 5
    for block in examples:
        lines = block.strip().splitlines()
        numbers = [int(n) for n in re.findall(r"\d+", lines[0].split("(")[0])]
        target = int(m.group(1)) if (m := re.search(r"target: (\d+)", lines[0])) else 24
        state = State.start(numbers)
        for line in lines[2:-1]:
            applied = apply_step(state, line)
            assert applied is not None and applied[1] == line, line
            state = applied[0]
        assert Puzzle(tuple(numbers), target).solved(state)
        assert check_expression(extract_expression(block), numbers, target)


@pytest.mark.parametrize("name", ["game24", "countdown", "countdown3"])
def test_generated_tasks_are_seeded_and_solvable(name: str) -> None:
    problems = load_task(name, size=40)
    again = load_task(name, size=40)
    other = load_task(name, size=40, seed=1)
    assert [p.meta for p in problems] == [p.meta for p in again]
    assert [p.meta["numbers"] for p in problems] != [p.meta["numbers"] for p in other]
    assert [p.id for p in load_task(name, size=40, offset=30, limit=5)] == [p.id for p in problems[30:35]]
    for p in problems:
        puzzle = puzzle_of(p)
        assert puzzle is not None
        assert check_expression(p.gold, puzzle.numbers, puzzle.target), p.gold
        assert puzzle.input_line() in p.question and p.extract is extract_expression


def test_variant_ranges() -> None:
    for p in load_task("game24", size=50):
        assert p.meta["target"] == 24 and len(p.meta["numbers"]) == 4
        assert all(1 <= n <= 13 for n in p.meta["numbers"])
        assert "Input: " + " ".join(map(str, p.meta["numbers"])) + "\n" in p.question
    for p in load_task("countdown", size=50):
        assert 10 <= p.meta["target"] <= 100 and len(p.meta["numbers"]) == 4
        assert f"(target: {p.meta['target']})" in p.question
    for p in load_task("countdown3", size=50):
        assert 10 <= p.meta["target"] <= 60 and len(p.meta["numbers"]) == 3
        assert all(1 <= n <= 9 for n in p.meta["numbers"])


async def test_checker_uses_the_problem_numbers() -> None:
    problem = puzzle_problem(Puzzle((4, 4, 6, 8), 24), "p")
    assert await check_puzzle("(4 + 8) * (6 - 4)", problem)
    assert not await check_puzzle("(4 + 8) * (6 - 4) * 1", problem)
    assert not await check_puzzle(None, problem)
    assert not await check_puzzle("3 * 8", problem)


def test_puzzle_of_reads_reasoning_gym_entries() -> None:
    def gym_problem(dataset: str, metadata: dict[str, object]) -> Problem:
        return Problem("g", [{"role": "user", "content": "?"}], None, check_puzzle, extract_expression,
                       meta={"dataset": dataset, "entry": {"metadata": metadata}})

    assert puzzle_of(gym_problem("puzzle24", {"numbers": [1, 3, 5, 9]})) == Puzzle((1, 3, 5, 9), 24)
    assert puzzle_of(gym_problem("countdown", {"numbers": [6, 61], "target": 67})) == Puzzle((6, 61), 67)
    assert puzzle_of(gym_problem("basic_arithmetic", {"numbers": [1]})) is None
