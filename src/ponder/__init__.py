"""ponder: test-time reasoning strategies over any OpenAI-compatible model, measured in accuracy per token.

The Python API in three lines::

    import ponder
    answer = ponder.ask("What is 7 + 5?", strategy="deepconf", model="local", n=16)
    print(answer.answer, answer.confidence, answer.usage.completion_tokens)

``await ponder.solve(...)`` is the same from async code; ``ponder.Session`` keeps one model open for many questions
and evaluations; ``@ponder.strategy("name")`` registers a strategy. Names load lazily, so ``import ponder`` stays
cheap.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import TYPE_CHECKING, Any

from ponder.types import GenerationRequest, Message, Problem, Result, Trace, Usage

if TYPE_CHECKING:
    from ponder.backends import Backend, BackendSpec
    from ponder.context import Ctx, Sampling
    from ponder.session import Answer, Session
    from ponder.strategies.registry import strategy

__all__ = [
    "Answer",
    "Ctx",
    "GenerationRequest",
    "Message",
    "Problem",
    "Result",
    "Sampling",
    "Session",
    "Trace",
    "Usage",
    "ask",
    "solve",
    "strategy",
]
__version__ = "0.1.0"

_LAZY = {
    "Answer": "ponder.session",
    "Session": "ponder.session",
    "Ctx": "ponder.context",
    "Sampling": "ponder.context",
    "strategy": "ponder.strategies.registry",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ponder' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


async def solve(question: str | Problem, strategy: str = "self-consistency", *,
                model: str | BackendSpec | Backend = "local", sampling: Sampling | None = None,
                gold: str | None = None, **params: Any) -> Answer:
    """Answer one question with a strategy on a model opened for this call (and closed after it).

    ``params`` are the strategy's parameters (``ponder strategies`` lists them); ``gold`` fills
    ``Answer.correct``. For many questions, open a ``Session`` once instead.
    """
    from ponder.session import Session

    async with Session(model, sampling=sampling) as session:
        return await session.solve(question, strategy, gold=gold, **params)


def ask(question: str | Problem, strategy: str = "self-consistency", *,
        model: str | BackendSpec | Backend = "local", sampling: Sampling | None = None,
        gold: str | None = None, **params: Any) -> Answer:
    """``solve`` for code that is not async: runs its own event loop, so it cannot be called from inside one."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(solve(question, strategy, model=model, sampling=sampling, gold=gold, **params))
    from ponder.errors import ConfigError

    raise ConfigError("ponder.ask runs its own event loop; inside async code use 'await ponder.solve(...)'")
