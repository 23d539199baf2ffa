"""Prompting strategies: the prompts actually sent, the two-stage extraction, and prompt= on the voting strategies."""

from __future__ import annotations

from typing import get_args

import pytest

from ponder.backends.fake import FakeBackend
from ponder.context import Ctx
from ponder.errors import ConfigError
from ponder.prompts import PLAN_AND_SOLVE_PLUS, PROMPTS, ZERO_SHOT_COT, PromptName, apply_prompt
from ponder.strategies import coerce_params, get_strategy
from ponder.strategies.prompting import ANSWER_CUE
from ponder.tasks import load_task
from ponder.tasks.prompts import ARITHMETIC_INSTRUCTION, MATH_INSTRUCTION, math_messages
from ponder.types import GenerationRequest, Problem
from tests.conftest import make_problem


def arithmetic_problem() -> Problem:
    return load_task("add1", limit=1)[0]  # "What is 4 + 5? Answer with the number at the end as 'The answer is N.'"


def test_every_template_is_a_prompt_name() -> None:
    assert set(PROMPTS) == set(get_args(PromptName))


def test_the_trigger_goes_between_the_problem_and_the_format_instruction() -> None:
    (message,) = apply_prompt(math_messages("What is 3 + 4?"), "plan-and-solve")
    assert message["content"] == f"What is 3 + 4?\n\n{PLAN_AND_SOLVE_PLUS}\n\n{MATH_INSTRUCTION}"
    problem = arithmetic_problem()
    (message,) = apply_prompt(problem.messages, "zero-shot-cot")
    assert message["content"] == f"What is 4 + 5?\n\n{ZERO_SHOT_COT}\n\n{ARITHMETIC_INSTRUCTION}"
    # a prompt without a known instruction gets the trigger at its end; "none" changes nothing
    assert apply_prompt([{"role": "user", "content": "Hi"}], "zero-shot-cot")[0]["content"] == f"Hi\n\n{ZERO_SHOT_COT}"
    assert apply_prompt(problem.messages, "none") == problem.messages
    with pytest.raises(ConfigError, match="unknown prompt 'cot'"):
        apply_prompt(problem.messages, "cot")


async def test_zero_shot_cot_sends_the_trigger_and_decodes_greedily() -> None:
    problem = arithmetic_problem()
    backend = FakeBackend(["Let me add. 4 + 5 = 9. The answer is 9."])
    result = await get_strategy("zero-shot-cot")(problem, Ctx(backend, problem))
    (call,) = backend.calls
    assert call.request.temperature == 0.0 and call.request.n == 1
    assert call.request.messages[-1]["content"].endswith(f"{ZERO_SHOT_COT}\n\n{ARITHMETIC_INSTRUCTION}")
    assert result.answer == "9" and result.votes == {"9": 1.0}


async def test_two_stage_extraction_asks_for_the_answer_after_the_reasoning() -> None:
    problem = arithmetic_problem()
    reasoning = "First, 4 + 5 makes 9 apples in all, or maybe 8."

    def script(request: GenerationRequest, index: int) -> str:
        return " 9." if request.messages[-1]["role"] == "assistant" else reasoning

    backend = FakeBackend(script)
    result = await get_strategy("zero-shot-cot")(problem, Ctx(backend, problem), extraction="two-stage",
                                                 answer_tokens=8)
    first, second = (c.request for c in backend.calls)
    assert second.messages[:-1] == first.messages
    assert second.messages[-1] == {"role": "assistant", "content": f"{reasoning}\n{ANSWER_CUE}"}
    assert second.max_tokens == 8 and second.temperature == 0.0
    thought, answer = result.traces
    # the reasoning's last number (8) is not the answer: the extraction call's continuation is
    assert thought.aux and thought.answer is None
    assert not answer.aux and answer.answer == "9" and result.answer == "9"


async def test_prefill_starts_the_answer_with_the_trigger_as_in_the_paper() -> None:
    problem = arithmetic_problem()

    def script(request: GenerationRequest, index: int) -> str:
        last = request.messages[-1]
        if last["content"].endswith(ANSWER_CUE):
            return " 9."
        return " 4 plus 5 is 9."

    backend = FakeBackend(script)
    result = await get_strategy("zero-shot-cot")(problem, Ctx(backend, problem), prefill=True,
                                                 extraction="two-stage", continue_final_message=True)
    first, second = (c.request for c in backend.calls)
    assert first.messages == [*problem.messages, {"role": "assistant", "content": ZERO_SHOT_COT}]
    assert second.messages[-1]["content"] == f"{ZERO_SHOT_COT} 4 plus 5 is 9.\n{ANSWER_CUE}"
    assert result.answer == "9"
    # vLLM's flags go with the prefilled calls only: here both; without prefill, only the extraction call
    assert all(r.extra == {"continue_final_message": True, "add_generation_prompt": False} for r in (first, second))
    backend = FakeBackend(script)
    await get_strategy("zero-shot-cot")(problem, Ctx(backend, problem), extraction="two-stage",
                                        continue_final_message=True)
    assert [c.request.extra for c in backend.calls] == [{}, {"continue_final_message": True,
                                                             "add_generation_prompt": False}]


async def test_plan_and_solve_sends_the_ps_plus_prompt_and_votes_n_samples() -> None:
    problem = make_problem(question="What is 3 + 4?\n\n" + MATH_INSTRUCTION)
    backend = FakeBackend(["Plan: add. \\boxed{7}", "\\boxed{8}", "So \\boxed{7}"])
    result = await get_strategy("plan-and-solve")(problem, Ctx(backend, problem), n=3)
    (call,) = backend.calls
    assert call.request.n == 3 and call.request.temperature != 0.0  # n > 1 samples at the run's temperature
    assert call.request.messages[-1]["content"] == f"What is 3 + 4?\n\n{PLAN_AND_SOLVE_PLUS}\n\n{MATH_INSTRUCTION}"
    assert result.answer == "7" and result.votes == {"7": 2.0, "8": 1.0}


async def test_self_consistency_composes_with_a_prompt() -> None:
    problem = arithmetic_problem()
    backend = FakeBackend(["The answer is 9.", "The answer is 9.", "The answer is 7."])
    result = await get_strategy("self-consistency")(problem, Ctx(backend, problem), n=3, prompt="plan-and-solve")
    (call,) = backend.calls
    content = call.request.messages[-1]["content"]
    assert PLAN_AND_SOLVE_PLUS in content and content.endswith(ARITHMETIC_INSTRUCTION)
    assert result.answer == "9" and result.confidence == pytest.approx(2 / 3)
    plain = FakeBackend(["The answer is 9."])
    await get_strategy("self-consistency")(problem, Ctx(plain, problem), n=2)
    assert plain.calls[0].request.messages == problem.messages


@pytest.mark.parametrize("mode", ["offline", "online"])
async def test_deepconf_and_adaptive_consistency_send_the_prompt(mode: str) -> None:
    problem = arithmetic_problem()
    backend = FakeBackend(["The answer is 9."])
    await get_strategy("deepconf")(problem, Ctx(backend, problem), mode=mode, n=4, warmup=2, window=4,
                                   prompt="zero-shot-cot")
    assert backend.calls and all(ZERO_SHOT_COT in c.request.messages[-1]["content"] for c in backend.calls)
    backend = FakeBackend(["The answer is 9."])
    await get_strategy("adaptive-consistency")(problem, Ctx(backend, problem), prompt="zero-shot-cot")
    assert all(ZERO_SHOT_COT in c.request.messages[-1]["content"] for c in backend.calls)


async def test_parameters_are_checked() -> None:
    info = get_strategy("self-consistency")
    assert coerce_params(info, {"prompt": "plan-and-solve"})["prompt"] == "plan-and-solve"
    with pytest.raises(ConfigError, match=r"prompt.*none, zero-shot-cot, plan-and-solve"):
        coerce_params(info, {"prompt": "least-to-most"})
    problem = make_problem()
    with pytest.raises(ConfigError, match="'n' must be >= 1"):
        await get_strategy("zero-shot-cot")(problem, Ctx(FakeBackend(["7"]), problem), n=0)
    with pytest.raises(ConfigError, match="answer_cue"):
        await get_strategy("plan-and-solve")(problem, Ctx(FakeBackend(["7"]), problem), extraction="two-stage",
                                             answer_cue=" ")
