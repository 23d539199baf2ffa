"""PAL and Prove on the fake backend: program execution, not the model's prose, decides."""

from __future__ import annotations

import pytest

from ponder.answers import check_math, extract_answer
from ponder.backends.fake import FakeBackend, Scripted
from ponder.context import Ctx
from ponder.errors import ConfigError
from ponder.strategies import get_strategy
from ponder.strategies.pal import extract_code, printed_answer
from ponder.tasks.prompts import MATH_INSTRUCTION, math_messages
from ponder.types import GenerationRequest, Problem
from tests.conftest import make_problem

QUESTION = "Tom has 17 apples and buys 25 more. How many apples does he have?"
WRONG = "Tom starts with 17 and gets 25 more, 17 + 25 = 32. The answer is 32."
RIGHT = "Tom starts with 17 and gets 25 more, 17 + 25 = 42. The answer is 42."


def prove_script(translations: dict[str, str]) -> object:
    """CoT: three wrong solutions, two right ones (the majority is wrong). Translation requests are answered by
    ``translations[solution's stated answer]``: a faithful program recomputes 17 + 25."""

    def script(request: GenerationRequest, index: int) -> str | Scripted:
        prompt = request.messages[-1]["content"]
        if prompt.startswith("Below is a question and a step-by-step solution"):
            stated = extract_answer(prompt.split("Solution:", 1)[1]) or ""
            return translations[stated]
        return [WRONG, RIGHT, WRONG, RIGHT, WRONG][index % 5]

    return script


FAITHFUL = {
    "32": "```python\napples = 17\nbought = 25\nprint(apples + bought)\n```",
    "42": "Here is the program:\n```python\napples = 17\nbought = 25\nprint(apples + bought)\n```",
}


async def test_prove_drops_solutions_whose_program_disagrees_and_overturns_the_majority() -> None:
    problem = make_problem(QUESTION, gold="42")
    majority = await get_strategy("self-consistency")(problem, Ctx(FakeBackend(prove_script(FAITHFUL)), problem), n=5)
    assert majority.answer == "32"
    ctx = Ctx(FakeBackend(prove_script(FAITHFUL)), problem)
    result = await get_strategy("prove")(problem, ctx, n=5)
    assert result.answer == "42" and result.confidence == 1.0
    assert result.votes == {"42": 2.0}
    assert result.info["verified"] == 2 and result.info["fallback"] is None
    programs = result.info["programs"]
    assert [p["verified"] for p in programs] == [False, True, False, True, False]
    assert all(p["output"] == "42" for p in programs)
    # every token went through ctx: five solutions, then one translation per answered solution
    assert ctx.usage.calls == 1 + 5 and ctx.usage.traces == 10
    assert ctx.usage.completion_tokens == sum(t.completion_tokens for c in ctx.calls for t in c.traces)
    # the programs are helpers, not answers to the problem: maj@k / pass@k count only the five solutions
    traces = [t for c in ctx.calls for t in c.traces]
    assert [t.aux for t in traces] == [False] * 5 + [True] * 5


async def test_prove_falls_back_to_the_plain_vote_when_nothing_is_verified() -> None:
    problem = make_problem(QUESTION, gold="42")
    broken = {"32": "```python\nprint(apples)\n```", "42": "I cannot write code for this."}
    result = await get_strategy("prove")(problem, Ctx(FakeBackend(prove_script(broken)), problem), n=5)
    assert result.answer == "32" and result.info["verified"] == 0
    assert "plain majority vote" in result.info["fallback"]
    assert {p["killed_reason"] for p in result.info["programs"]} == {None, "no code"}
    assert any("NameError" in p["stderr_tail"] for p in result.info["programs"])


async def test_prove_survives_hostile_programs() -> None:
    problem = make_problem(QUESTION, gold="42")
    hostile = {"32": "```python\nwhile True:\n    pass\n```", "42": FAITHFUL["42"]}
    result = await get_strategy("prove")(problem, Ctx(FakeBackend(prove_script(hostile)), problem), n=5,
                                         timeout_s=1.0)
    assert result.answer == "42"
    reasons = {p["killed_reason"] for p in result.info["programs"] if not p["verified"]}
    assert reasons <= {"cpu_time", "wall_time"} and reasons


def pal_script(request: GenerationRequest, index: int) -> str:
    # Every program's prose claims 32; three programs compute 17 + 25, one crashes, one prints a sentence.
    return [
        "The answer is 32.\n```python\n# tom ends with 32 apples\nprint(17 + 25)\n```",
        "```python\ndef solution():\n    apples = 17\n    return apples + 25\n```\nThe answer is 32.",
        "```python\nprint(undefined_name)\n```\nThe answer is 32.",
        "```py\ntotal = 17 + 25\nprint(f'The answer is {total}')\n```",
        "So the answer is 32.",
    ][index % 5]


async def test_pal_answers_with_what_the_programs_print() -> None:
    problem = make_problem(QUESTION, gold="42")
    ctx = Ctx(FakeBackend(pal_script), problem)
    result = await get_strategy("pal")(problem, ctx, n=5)
    assert result.answer == "42"  # reading the replies' text would give 32
    assert result.votes == {"42": 3.0} and result.confidence == pytest.approx(3 / 5)
    assert [t.answer for t in result.traces] == ["42", "42", None, "42", None]
    assert result.info["ran"] == 4 and result.info["answered"] == 3
    assert ctx.usage.calls == 1 and ctx.usage.traces == 5


def test_extract_code_handles_fences_truncation_and_solution_functions() -> None:
    assert extract_code("```python\nprint(1)\n```") == "print(1)\n"
    assert extract_code("```\nprint(2)\n```") == "print(2)\n"
    two = "```python\nprint('draft')\n```\nBetter:\n```Python\nprint('final')\n```"
    assert extract_code(two) == "print('final')\n"
    assert extract_code("```python\nx = 3\nprint(x") == "x = 3\nprint(x\n"  # cut off by max_tokens
    assert extract_code("```json\n{}\n```\n```python\nprint(4)\n```") == "print(4)\n"
    assert extract_code("def solution():\n    return 5\n") == "def solution():\n    return 5\n\nprint(solution())\n"
    assert extract_code("The answer is 6.") is None
    assert extract_code("```text\nnot code\n```") is None


def test_printed_answer_reads_the_last_line() -> None:
    assert printed_answer("working...\n42\n\n", extract_answer) == "42"
    assert printed_answer("The answer is 42\n", extract_answer) == "42"
    assert printed_answer("x = 3/4\n", extract_answer) == "3/4"
    assert printed_answer("sqrt(2)/2\n", extract_answer) == "sqrt(2)/2"
    assert printed_answer("", extract_answer) is None


async def test_parameters_are_validated() -> None:
    problem = make_problem()
    with pytest.raises(ConfigError, match="'n' must be >= 1"):
        await get_strategy("prove")(problem, Ctx(FakeBackend(), problem), n=0)
    with pytest.raises(ConfigError, match="timeout_s"):
        await get_strategy("pal")(problem, Ctx(FakeBackend(), problem), timeout_s=0)
    with pytest.raises(ConfigError, match="program_temperature"):
        await get_strategy("prove")(problem, Ctx(FakeBackend(), problem), program_temperature=-1)


async def test_program_prompts_drop_the_tasks_reason_and_box_instruction() -> None:
    """A GSM8K prompt ends with "reason step by step ... within \\boxed{}". Inside a request for a program that
    instruction contradicts it: on Qwen2.5-Coder-0.5B, 62 of 120 PAL replies were prose with no code at all."""
    problem = Problem(id="p", messages=math_messages(QUESTION), gold="42", checker=check_math, extract=extract_answer)
    prompts: list[str] = []

    def script(request: GenerationRequest, index: int) -> str:
        prompts.append(request.messages[-1]["content"])
        return FAITHFUL["42"] if "Python" in prompts[-1] else RIGHT

    await get_strategy("pal")(problem, Ctx(FakeBackend(script), problem), n=1)
    await get_strategy("prove")(problem, Ctx(FakeBackend(script), problem), n=1)
    program_prompts = [p for p in prompts if "Python" in p]
    assert len(program_prompts) == 2  # PAL's program and Prove's translation
    for prompt in program_prompts:
        assert QUESTION in prompt and MATH_INSTRUCTION not in prompt
    assert prompts.count(problem.question) == 1  # Prove's solutions still answer the task's own prompt
