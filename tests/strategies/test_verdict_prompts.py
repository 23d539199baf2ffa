"""Prompts that ask the model to judge, value or plan show the problem without the task's answer instruction.

A math task's question ends with "Please reason step by step, and put your final answer within \\boxed{}". Inside a
prompt that asks for Yes/No, sure/likely/impossible or a list of constraints, that instruction asks for something
else; on GSM8K with Qwen2.5-Coder-0.5B it made PAL's program prompt come back as prose in 62 of 120 replies.
"""

from __future__ import annotations

from ponder.answers import check_math, extract_answer
from ponder.backends.fake import FakeBackend
from ponder.context import Ctx, Sampling
from ponder.strategies import get_strategy
from ponder.strategies.cqot import assessment_prompt
from ponder.strategies.deepprune import _judge_messages
from ponder.tasks.prompts import MATH_INSTRUCTION, math_messages
from ponder.types import GenerationRequest, Problem, Trace

SHOWN = "Problem:\nWhat is 3 + 4?"


def math_problem() -> Problem:
    return Problem(id="p", messages=math_messages("What is 3 + 4?"), gold="7", checker=check_math,
                   extract=extract_answer)


def assert_problem_only(prompt: str) -> None:
    assert SHOWN in prompt and MATH_INSTRUCTION not in prompt, prompt


def test_cqot_and_deepprune_verdict_prompts() -> None:
    problem = math_problem()
    assert_problem_only(assessment_prompt(problem, "1. 3 + 4 = 7."))
    trace = Trace(text="3 + 4 = 7", completion_tokens=4)
    assert_problem_only(_judge_messages(problem, trace, trace)[-1]["content"])


def answer_everything(request: GenerationRequest, index: int) -> str:
    prompt = request.messages[-1]["content"]
    if prompt.startswith("Evaluate whether the partial solution"):
        return "Checks out.\nsure"
    if "Reply with the number of the algorithm only." in prompt:
        return "1"
    if prompt.startswith("You are verifying a proposed solution"):
        return "Score: 9"
    return "3 + 4 = 7. The answer is \\boxed{7}."


async def test_tot_value_and_plangen_agent_prompts() -> None:
    for name, params in (("tot", {"k": 2}), ("plangen", {"algorithms": "cot"})):
        backend = FakeBackend(answer_everything)
        problem = math_problem()
        await get_strategy(name)(problem, Ctx(backend, problem, sampling=Sampling(max_tokens=64)), **params)
        judged = [c.request.messages[-1]["content"] for c in backend.calls
                  if "Problem:\n" in c.request.messages[-1]["content"]]
        assert judged, f"{name} sent no prompt that shows the problem to a judge"
        for prompt in judged:
            assert_problem_only(prompt)
