"""``ponder ask``: one question through one strategy."""

from __future__ import annotations

from typing import Any

from ponder.agents import close_agents
from ponder.answers import check_math, extract_answer
from ponder.backends import BackendSpec, open_backend
from ponder.context import Ctx, Sampling
from ponder.strategies import coerce_params, get_strategy
from ponder.tasks.prompts import math_messages
from ponder.types import Problem, Result, Usage


def question_problem(question: str, *, raw: bool = False) -> Problem:
    """A gold-less problem; by default the question gets the step-by-step and \\boxed{} instruction."""
    messages = [{"role": "user", "content": question}] if raw else math_messages(question)
    return Problem(id="ask", messages=messages, gold=None, checker=check_math, extract=extract_answer)


async def ask_question(question: str, *, strategy: str, params: dict[str, Any], spec: BackendSpec,
                       sampling: Sampling, raw: bool = False) -> tuple[Result, Usage]:
    info = get_strategy(strategy)
    checked = coerce_params(info, params)
    problem = question_problem(question, raw=raw)
    async with open_backend(spec) as backend:
        ctx = Ctx(backend, problem, sampling=sampling)
        try:
            result = await info(problem, ctx, **checked)
        finally:
            await close_agents()
    return result, ctx.usage
