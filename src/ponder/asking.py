"""``ponder ask``: one question through one strategy."""

from __future__ import annotations

from typing import Any

from ponder.answers import check_math, extract_answer
from ponder.backends import BackendSpec
from ponder.context import Sampling
from ponder.tasks.prompts import math_messages
from ponder.types import Problem, Result, Usage


def question_problem(question: str, *, raw: bool = False) -> Problem:
    """A gold-less problem; by default the question gets the step-by-step and \\boxed{} instruction."""
    messages = [{"role": "user", "content": question}] if raw else math_messages(question)
    return Problem(id="ask", messages=messages, gold=None, checker=check_math, extract=extract_answer)


async def ask_question(question: str, *, strategy: str, params: dict[str, Any], spec: BackendSpec,
                       sampling: Sampling, raw: bool = False) -> tuple[Result, Usage]:
    from ponder.session import Session
    from ponder.strategies import coerce_params, get_strategy

    coerce_params(get_strategy(strategy), params)  # bad parameters fail before any server starts
    async with Session(spec, sampling=sampling) as session:
        answer = await session.solve(question, strategy, raw=raw, **params)
    result = Result(answer=answer.answer, confidence=answer.confidence, votes=answer.votes, traces=answer.traces,
                    info=answer.info)
    return result, answer.usage
