from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from ponder import agents
from ponder.agents import agent_backend, agent_contexts, close_agents, install_agent, parse_agents
from ponder.backends import BackendSpec, FakeBackend
from ponder.context import Ctx
from ponder.errors import BackendUnavailable, ConfigError
from tests.conftest import make_problem


@dataclass
class ClosingFake(FakeBackend):
    closed: int = 0

    async def aclose(self) -> None:
        self.closed += 1


class Opener:
    """Stands in for ``open_backend``: counts openings, takes a moment to open (so callers overlap), and can fail."""

    def __init__(self, fail_first: bool = False) -> None:
        self.opened: list[BackendSpec] = []
        self.backends: list[ClosingFake] = []
        self.fail_first = fail_first

    @asynccontextmanager
    async def __call__(self, spec: BackendSpec) -> AsyncIterator[ClosingFake]:
        self.opened.append(spec)
        await asyncio.sleep(0.01)
        if self.fail_first and len(self.opened) == 1:
            raise BackendUnavailable("server down")
        backend = ClosingFake(name=f"fake:{spec.target}")
        self.backends.append(backend)
        try:
            yield backend
        finally:
            await backend.aclose()


@pytest.fixture
async def opener(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Opener]:
    fake = Opener()
    monkeypatch.setattr(agents, "open_backend", fake)
    yield fake
    await close_agents()


def test_parse_agents_checks_every_spec() -> None:
    assert parse_agents("") == []
    assert parse_agents(" fake , run,openai:http://h:8000/v1#qwen ") == ["fake", "run", "openai:http://h:8000/v1#qwen"]
    with pytest.raises(ConfigError, match=r"'agents'.*unknown --model 'gpt'"):
        parse_agents("fake,gpt")
    with pytest.raises(ConfigError, match="'agents' has an empty entry"):
        parse_agents("fake,,fake")
    with pytest.raises(ConfigError, match=r"'proposers'.*needs a URL"):
        parse_agents("openai:localhost", param="proposers")


async def test_each_spec_opens_once_even_when_asked_concurrently(opener: Opener) -> None:
    got = await asyncio.gather(*(agent_backend(spec) for spec in ["fake:a"] * 5 + ["fake:b"] * 3))
    assert len(opener.opened) == 2
    assert len({id(b) for b in got[:5]}) == 1 and len({id(b) for b in got[5:]}) == 1 and got[0] is not got[5]
    assert {id(b) for b in got} == {id(b) for b in opener.backends}
    assert await agent_backend("fake:a") is got[0]  # later problems reuse it
    assert len(opener.opened) == 2


async def test_close_agents_closes_each_once_and_a_later_use_reopens(opener: Opener) -> None:
    first = await agent_backend("fake:a")
    await agent_backend("fake:b")
    await close_agents()
    assert [b.closed for b in opener.backends] == [1, 1]
    await close_agents()  # nothing left: no double close
    assert [b.closed for b in opener.backends] == [1, 1]
    again = await agent_backend("fake:a")
    assert again is not first and len(opener.opened) == 3


async def test_a_failed_opening_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = Opener(fail_first=True)
    monkeypatch.setattr(agents, "open_backend", fake)
    try:
        with pytest.raises(BackendUnavailable):
            await agent_backend("fake:a")
        backend = await agent_backend("fake:a")
        assert backend is fake.backends[0] and len(fake.opened) == 2
    finally:
        await close_agents()


async def test_the_fake_spec_opens_a_real_fake_backend() -> None:
    try:
        backend = await agent_backend("fake")
        assert isinstance(backend, FakeBackend)
    finally:
        await close_agents()


async def test_agent_contexts_share_the_problems_usage() -> None:
    problem = make_problem("What is 2 + 3?")
    run = FakeBackend(["The answer is 5."], name="run")
    other = ClosingFake(["Adding gives five. The answer is 5."], name="other")
    ctx = Ctx(run, problem)
    try:
        install_agent("fake:other", other)
        contexts = await agent_contexts(ctx, "fake:other,run", 3)
        assert contexts[1] is ctx and contexts[0] is contexts[2] and contexts[0].backend is other
        await contexts[0].sample(n=2)
        await contexts[1].sample(n=1)
        assert len(other.calls) == 1 and len(run.calls) == 1
        assert ctx.usage.traces == 3 and len(ctx.calls) == 2
        assert ctx.usage.completion_tokens == sum(t.completion_tokens for c in ctx.calls for t in c.traces)
        assert await agent_contexts(ctx, "", 2) == [ctx, ctx]
    finally:
        await close_agents()
    assert other.closed == 1


@pytest.mark.parametrize("close_loop", [True, False])
def test_backends_left_open_are_closed_at_interpreter_exit(monkeypatch: pytest.MonkeyPatch, close_loop: bool) -> None:
    fake = Opener()
    monkeypatch.setattr(agents, "open_backend", fake)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(agent_backend("fake:a"))  # a run that never called close_agents
        if close_loop:
            loop.close()  # without asyncio.run's shutdown_asyncgens, nothing closed the backend
        assert fake.backends[0].closed == 0
        agents._close_at_exit()
        assert fake.backends[0].closed == 1 and not agents._pools
    finally:
        loop.close()
