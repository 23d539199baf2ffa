"""``Session``: one owner for everything a strategy needs while it runs.

A session opens the model's backend (starting a llama-server for ``local``), keeps the agent backends that
multi-agent strategies open (debate, moa, plangen), bounds the traces in flight with one ``Slots``, and closes all
of it, in reverse order, when its ``async with`` ends, whether by return, exception or cancellation. ``ponder ask``,
``ponder eval`` and ``ponder serve`` all sit on it, and so does the Python API::

    async with ponder.Session("openai:http://localhost:8000/v1") as session:
        answer = await session.solve("What is 7 + 5?", strategy="deepconf", n=16)
        outcome = await session.evaluate("gsm8k", strategy="self-consistency", n=8, limit=20)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ponder.agents import AgentPool, using_pool
from ponder.backends import Backend, BackendSpec, open_backend, parse_model_spec
from ponder.context import Ctx, Sampling, Slots
from ponder.errors import ConfigError
from ponder.types import Problem, Trace, Usage

if TYPE_CHECKING:
    from ponder.runner import EvalOutcome, ProgressHook
    from ponder.store import Store


@dataclass
class Answer:
    """What ``Session.solve`` (and ``ponder.ask`` / ``ponder.solve``) return for one question."""

    answer: str | None
    confidence: float | None
    votes: dict[str, float]
    usage: Usage
    traces: list[Trace]
    strategy: str
    params: dict[str, Any]  # the strategy's parameters, defaults filled in
    info: dict[str, Any] = field(default_factory=dict)  # what the strategy reports about how it decided
    correct: bool | None = None  # whether the answer equals the gold one, when a gold answer was given


class Session:
    """Owns a backend, the agent backends, the in-flight bound and (optionally) a store; see the module docstring.

    ``model`` is a ``--model`` spec (``local``, ``local:/path.gguf``, ``openai:URL``, ``fake``), a parsed
    ``BackendSpec``, or a ready ``Backend`` (the session closes it too). ``sampling`` sets the defaults of every
    call; ``max_inflight`` bounds traces in flight across everything the session runs.
    """

    def __init__(self, model: str | BackendSpec | Backend = "local", *, sampling: Sampling | None = None,
                 max_inflight: int = 64, model_name: str | None = None, api_key: str | None = None,
                 server_bin: str | None = None, slots: int = 16) -> None:
        if max_inflight < 1:
            raise ConfigError(f"max_inflight must be at least 1, got {max_inflight}")
        self._given: Backend | None = None
        if isinstance(model, str):
            self.spec = parse_model_spec(model, model_name=model_name, api_key=api_key, server_bin=server_bin,
                                         slots=slots)
        elif isinstance(model, BackendSpec):
            self.spec = model
        else:
            self._given = model
            self.spec = BackendSpec(kind=model.name)
        self.sampling = sampling or Sampling()
        self.spec = self.spec.sized_for(self.sampling.max_tokens)
        self.slots = Slots(max_inflight)
        self.agents = AgentPool()
        self._backend: Backend | None = None
        self._stack: AsyncExitStack | None = None

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            raise ConfigError("the session is not open: use it as 'async with Session(...) as session:'")
        return self._backend

    async def __aenter__(self) -> Session:
        if self._stack is not None:
            raise ConfigError("this session is already open; a Session is opened once")
        stack = AsyncExitStack()
        try:
            if self._given is not None:
                stack.push_async_callback(self._given.aclose)
                self._backend = self._given
            else:
                self._backend = await stack.enter_async_context(open_backend(self.spec))
            stack.push_async_callback(self.agents.close)  # last in, first out: agents close before the backend
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        stack, self._stack = self._stack, None
        self._backend = None
        if stack is not None:
            await stack.aclose()

    @contextmanager
    def active(self) -> Iterator[None]:
        """Agents opened inside belong to this session (the runner and the server enter this around work)."""
        with using_pool(self.agents):
            yield

    # ---- one question ----------------------------------------------------------------------------

    async def solve(self, question: str | Problem, strategy: str = "self-consistency", *, gold: str | None = None,
                    raw: bool = False, token_budget: int | None = None, **params: Any) -> Answer:
        """Answer one question (or a ready ``Problem``) with a strategy.

        A string gets ponder's step-by-step and ``\\boxed{}`` instruction unless ``raw``; ``gold`` (or the
        problem's own) makes ``Answer.correct`` say whether the answer is right.
        """
        from ponder.asking import question_problem
        from ponder.runner import solve as run_strategy
        from ponder.strategies import coerce_params, get_strategy

        checked = coerce_params(get_strategy(strategy), params)
        if isinstance(question, Problem):
            problem = question if gold is None else dataclasses.replace(question, gold=gold)
        else:
            problem = dataclasses.replace(question_problem(question, raw=raw), gold=gold)
        ctx = Ctx(self.backend, problem, sampling=self.sampling, slots=self.slots, token_budget=token_budget)
        with self.active():
            result = await run_strategy(problem, ctx, strategy, checked)
        return Answer(answer=result.answer, confidence=result.confidence, votes=result.votes, usage=ctx.usage,
                      traces=result.traces, strategy=strategy, params=checked, info=result.info,
                      correct=result.correct if problem.gold is not None else None)

    # ---- a task ----------------------------------------------------------------------------------

    async def evaluate(self, task: str, strategy: str = "self-consistency", *, store: Store | str | Path | None = None,
                       params: dict[str, Any] | None = None, limit: int | None = None, offset: int = 0,
                       concurrency: int = 8, token_budget: int | None = None, data_dir: str | Path | None = None,
                       run_id: str | None = None, on_progress: ProgressHook | None = None,
                       **strategy_params: Any) -> EvalOutcome:
        """Evaluate a strategy on a task through this session's backend; results go to ``store`` (a ``Store``,
        a path, or the default ``./ponder.db``) and a rerun with the same settings resumes."""
        from ponder.runner import EvalConfig, run_eval
        from ponder.store import Store, default_store_path

        config = EvalConfig(task=task, strategy=strategy, model=self.spec,
                            params={**(params or {}), **strategy_params}, sampling=self.sampling, limit=limit,
                            offset=offset, data_dir=Path(data_dir) if data_dir is not None else None,
                            concurrency=concurrency, max_inflight=self.slots.capacity, token_budget=token_budget,
                            run_id=run_id)
        if isinstance(store, Store):
            return await run_eval(config, store, on_progress, backend=self.backend, agents=self.agents)
        with Store(Path(store) if store is not None else default_store_path()) as opened:
            return await run_eval(config, opened, on_progress, backend=self.backend, agents=self.agents)
