"""Multi-agent strategies on the real embedded llama-server: agents on separate backends share one server."""

from __future__ import annotations

import pytest

from ponder.agents import agent_backend, close_agents
from ponder.backends.local import LlamaServer
from ponder.backends.openai import OpenAIBackend
from ponder.context import Ctx, Sampling
from ponder.strategies import get_strategy
from tests.conftest import make_problem

pytestmark = pytest.mark.integration

QUESTION = "What is 3 + 4?"


async def test_debate_across_two_agent_backends_on_the_embedded_model(llama_server: LlamaServer) -> None:
    run_model = OpenAIBackend(llama_server.base_url)
    # Two spellings of one server are two specs, so two backends (each its own connection pool), as two servers
    # would be. Kept small (two agents, one discussion round, short replies): the machine may be busy.
    agents = f"openai:{llama_server.base_url},{llama_server.base_url}"
    problem = make_problem(QUESTION, gold="7")
    ctx = Ctx(run_model, problem, sampling=Sampling(max_tokens=32, temperature=0.8, seed=1))
    try:
        result = await get_strategy("debate")(problem, ctx, agents=agents, n_agents=2, rounds=1)
        first, second = await agent_backend(f"openai:{llama_server.base_url}"), await agent_backend(
            llama_server.base_url)
    finally:
        await close_agents()
        await run_model.aclose()
    assert first is not second and isinstance(first, OpenAIBackend) and isinstance(second, OpenAIBackend)
    assert all(client.is_closed for client in first._clients + second._clients)  # closed by close_agents
    rounds = result.info["rounds"]
    assert 1 <= len(rounds) <= 2 and all(len(r) == 2 for r in rounds)
    assert result.info["stopped"] in ("consensus", "rounds")
    # every round asked each agent's backend once: two calls per round, all in the problem's record
    assert len(ctx.calls) == 2 * len(rounds) and all(c.error is None for c in ctx.calls)
    assert {c.request.n for c in ctx.calls} == {1}
    traces = [t for c in ctx.calls for t in c.traces]
    assert all(t.text for t in traces) and len(result.traces) == len(traces)
    assert ctx.usage.completion_tokens == sum(t.completion_tokens for t in traces) > 0
    if result.answer is not None:
        assert result.answer in result.votes and 0 < (result.confidence or 0) <= 1
    weights = [s["weight"] for r in rounds for s in r]
    assert set(weights) <= {0.1, 0.3, 0.5, 0.8, 1.0}
