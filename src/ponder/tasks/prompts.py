"""Prompt templates shared by the task loaders."""

from __future__ import annotations

from ponder.types import Message

MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
"""Appended to every math problem (GSM8K, MATH-500, AIME, AMC), as in the Qwen2.5-Math evaluation."""

ARITHMETIC_INSTRUCTION = "Answer with the number at the end as 'The answer is N.'"
"""Appended to every generated arithmetic question (the prompt style of the DESIGN.md testbeds)."""


def math_messages(problem: str) -> list[Message]:
    return [{"role": "user", "content": f"{problem.strip()}\n\n{MATH_INSTRUCTION}"}]


def arithmetic_messages(question: str) -> list[Message]:
    return [{"role": "user", "content": f"{question} {ARITHMETIC_INSTRUCTION}"}]
