"""The backends of multi-agent strategies (debate, moa, plangen): one model spec per agent.

A strategy's ``agents`` parameter lists model specs separated by commas, in the ``--model`` syntax
(``openai:http://host:8000/v1``, a bare ``http(s)://`` URL, ``local``, ``local:/path/model.gguf``, ``fake``), plus
``run`` for the run's own backend. ``#NAME`` after a spec picks a model on a server that serves several
(``openai:http://host:8000/v1#qwen2.5-7b``). An empty list means every agent uses the run's backend.

Opening a backend can start a llama-server or a connection pool, so each distinct spec is opened once and shared
by all problems of a run. Inside a ``ponder.Session`` the session owns the pool (``AgentPool``, made current with
``using_pool``) and closes it with everything else it owns. Outside one, the pool belongs to the event loop and
``close_agents()`` closes it (call it inside the loop that opened them); whatever is still open at interpreter
exit is closed then. Every agent samples through
``ctx.on(backend)``, so its tokens count toward the problem's usage and budget and its calls are stored.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
from collections.abc import Iterator
from contextlib import AsyncExitStack
from contextvars import ContextVar
from dataclasses import dataclass, field

from ponder.backends import Backend, open_backend, parse_model_spec
from ponder.context import Ctx
from ponder.errors import ConfigError
from ponder.types import Message, Trace

RUN = "run"
"""The agent spec that means the run's own backend (``ctx.backend``)."""

_CLOSE_AT_EXIT_S = 10.0


def parse_agents(agents: str, *, param: str = "agents") -> list[str]:
    """The specs of a comma-separated agent list, each checked; ConfigError names ``param`` and the bad spec."""
    specs = [part.strip() for part in agents.split(",")] if agents.strip() else []
    for spec in specs:
        if not spec:
            raise ConfigError(f"parameter {param!r} has an empty entry in {agents!r}: give one model spec per agent, "
                              f"or {RUN!r} for the run's own model")
        if spec == RUN:
            continue
        target, _, name = spec.partition("#")
        try:
            parse_model_spec(target, model_name=name or None)
        except ConfigError as exc:
            raise ConfigError(f"parameter {param!r}: {exc}") from None
    return specs


@dataclass
class AgentPool:
    """The agent backends opened by one owner: a ``Session``, or else an event loop."""

    stack: AsyncExitStack = field(default_factory=AsyncExitStack)
    opening: dict[str, asyncio.Future[Backend]] = field(default_factory=dict)

    async def open(self, spec: str) -> Backend:
        target, _, name = spec.partition("#")
        return await self.stack.enter_async_context(open_backend(parse_model_spec(target, model_name=name or None)))

    async def close(self) -> None:
        running = _running_loop()
        pending = [t for t in self.opening.values() if not t.done() and t.get_loop() is running]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self.opening.clear()
        await self.stack.aclose()


_pools: dict[asyncio.AbstractEventLoop, AgentPool] = {}
# The pool of the Session whose work is running (a context variable: it follows the session's tasks).
_CURRENT: ContextVar[AgentPool | None] = ContextVar("ponder_agent_pool", default=None)


@contextlib.contextmanager
def using_pool(pool: AgentPool) -> Iterator[None]:
    """Agents opened inside (and in the tasks started inside) come from and stay in ``pool``."""
    token = _CURRENT.set(pool)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _pool() -> AgentPool:
    current = _CURRENT.get()
    if current is not None:
        return current
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None:
        pool = _pools[loop] = AgentPool()
    return pool


async def agent_backend(spec: str) -> Backend:
    """The backend of ``spec``, opened on first use in this event loop and shared afterwards.

    Concurrent first uses of one spec wait for the same opening; a failed opening is forgotten, so a later call
    tries again.
    """
    pool = _pool()
    task = pool.opening.get(spec)
    if task is None:
        task = pool.opening[spec] = asyncio.get_running_loop().create_task(pool.open(spec))
    try:
        # shield: one caller being cancelled must not abort an opening that others wait for
        return await asyncio.shield(task)
    except Exception:
        if task.done() and pool.opening.get(spec) is task:
            del pool.opening[spec]
        raise


def install_agent(spec: str, backend: Backend) -> None:
    """Serve ``spec`` from ``backend`` in this event loop (tests inject scripted agents this way).

    The backend is closed by ``close_agents`` like the ones opened here.
    """
    pool = _pool()
    future: asyncio.Future[Backend] = asyncio.get_running_loop().create_future()
    future.set_result(backend)
    pool.opening[spec] = future
    pool.stack.push_async_callback(backend.aclose)


async def agent_contexts(ctx: Ctx, agents: str, count: int, *, param: str = "agents") -> list[Ctx]:
    """One context per agent: agent ``i`` uses spec ``i mod len(specs)``; no specs means the run's backend.

    Agents on the run's backend share ``ctx`` itself; the others get ``ctx.on(backend)``, which shares the
    problem's usage, budget, call record and seed sequence.
    """
    specs = parse_agents(agents, param=param) or [RUN]
    distinct = [spec for spec in dict.fromkeys(specs) if spec != RUN]
    backends = await asyncio.gather(*map(agent_backend, distinct))  # servers that must start, start together
    contexts: dict[str, Ctx] = {RUN: ctx, **{spec: ctx.on(b) for spec, b in zip(distinct, backends, strict=True)}}
    return [contexts[specs[i % len(specs)]] for i in range(count)]


async def ask_all(contexts: list[Ctx], messages: list[Message]) -> list[Trace]:
    """One reply per agent to the same prompt, in agent order; agents sharing a context go in one request."""
    groups: dict[int, list[int]] = {}
    for agent, ctx in enumerate(contexts):
        groups.setdefault(id(ctx), []).append(agent)
    replies = await asyncio.gather(*(contexts[members[0]].sample(messages, n=len(members))
                                     for members in groups.values()))
    traces: list[Trace] = [Trace() for _ in contexts]
    for members, group_traces in zip(groups.values(), replies, strict=True):
        for agent, trace in zip(members, group_traces, strict=True):
            traces[agent] = trace
    return traces


def agent_labels(agents: str, count: int) -> list[str]:
    """The spec each of ``count`` agents uses, for a result's info."""
    specs = parse_agents(agents) or [RUN]
    return [specs[i % len(specs)] for i in range(count)]


async def close_agents() -> None:
    """Close every agent backend opened in this event loop outside a session (and stop any server one of them
    started). A session's own agents close with the session."""
    pool = _pools.pop(asyncio.get_running_loop(), None)
    if pool is not None:
        await pool.close()


@atexit.register
def _close_at_exit() -> None:
    """Backends left open by a run that never called ``close_agents``: close them in a fresh loop if need be."""
    while _pools:
        loop, pool = _pools.popitem()
        with contextlib.suppress(Exception):
            if not loop.is_closed() and not loop.is_running():
                loop.run_until_complete(asyncio.wait_for(pool.close(), _CLOSE_AT_EXIT_S))
            else:
                asyncio.run(asyncio.wait_for(pool.close(), _CLOSE_AT_EXIT_S))
