"""Prompt templates shared by the task loaders."""

from __future__ import annotations

from ponder.types import Message, Problem

MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
"""Appended to every math problem (GSM8K, MATH-500, AIME, AMC), as in the Qwen2.5-Math evaluation."""

ARITHMETIC_INSTRUCTION = "Answer with the number at the end as 'The answer is N.'"
"""Appended to every generated arithmetic question (the prompt style of the DESIGN.md testbeds)."""

ABSTAIN_MATH_CLAUSE = (
    "If the problem cannot be answered because information is missing or contradictory, put "
    "\\boxed{\\text{unanswerable}} instead; if you do not know, say \\boxed{\\text{I don't know}}."
)
ABSTAIN_ARITHMETIC_CLAUSE = "If it cannot be answered from what it gives, say 'The answer is unanswerable.'"
"""The abstention tasks' permission to decline (ReliableMath's "reliable prompt" in spirit): the format instruction
stays, and an abstention is one more answer it allows."""

ABSTAIN_MATH_INSTRUCTION = f"{MATH_INSTRUCTION} {ABSTAIN_MATH_CLAUSE}"
ABSTAIN_ARITHMETIC_INSTRUCTION = f"{ARITHMETIC_INSTRUCTION} {ABSTAIN_ARITHMETIC_CLAUSE}"

ANSWER_INSTRUCTIONS = (
    ABSTAIN_MATH_INSTRUCTION,
    ABSTAIN_ARITHMETIC_INSTRUCTION,
    MATH_INSTRUCTION,
    ARITHMETIC_INSTRUCTION,
)
"""Every answer-format instruction a task appends, longest first (so the abstaining ones match whole)."""


def math_messages(problem: str) -> list[Message]:
    return [{"role": "user", "content": f"{problem.strip()}\n\n{MATH_INSTRUCTION}"}]


def arithmetic_messages(question: str) -> list[Message]:
    return [{"role": "user", "content": f"{question} {ARITHMETIC_INSTRUCTION}"}]


def abstain_math_messages(problem: str) -> list[Message]:
    return [{"role": "user", "content": f"{problem.strip()}\n\n{ABSTAIN_MATH_INSTRUCTION}"}]


def abstain_arithmetic_messages(question: str) -> list[Message]:
    return [{"role": "user", "content": f"{question} {ABSTAIN_ARITHMETIC_INSTRUCTION}"}]


def split_instruction(content: str) -> tuple[str, str]:
    """A task prompt as (problem, answer-format instruction); the instruction is "" when none is known.

    Prompting strategies put their own words between the two, so the task's format instruction stays the last
    thing the model reads and extraction keeps working."""
    text = content.rstrip()
    for instruction in ANSWER_INSTRUCTIONS:
        if text.endswith(instruction):
            return text[: -len(instruction)].rstrip(), instruction
    return text, ""


def problem_statement(problem: Problem) -> str:
    """The problem as a verifier or program writer should read it: its question without the task's
    answer-format instruction. "Please reason step by step, and put your final answer within \\boxed{}" inside
    a prompt that asks for a Python program or a Yes/No verdict contradicts it."""
    return split_instruction(problem.question)[0]
