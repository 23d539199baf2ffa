"""Program verification (prove) and forward-backward verification (fobar) on the real embedded llama-server.

SmolLM2-135M rarely writes a correct program or solves a backward question, so these tests check that the whole
pipeline runs for real (model-written code executed in the sandbox, backward questions built and asked, every
token counted), not the accuracy."""

from __future__ import annotations

import pytest

from ponder.backends.local import LlamaServer
from ponder.backends.openai import OpenAIBackend
from ponder.context import Ctx, Sampling
from ponder.strategies import get_strategy
from tests.conftest import make_problem

pytestmark = pytest.mark.integration

QUESTION = "Tom has 3 apples and buys 4 more. How many apples does he have? Answer with 'The answer is N.'"


async def test_prove_runs_model_written_programs_in_the_sandbox(llama_server: LlamaServer) -> None:
    backend = OpenAIBackend(llama_server.base_url)
    problem = make_problem(QUESTION, gold="7")
    ctx = Ctx(backend, problem, sampling=Sampling(max_tokens=48, temperature=0.8, seed=3))
    try:
        result = await get_strategy("prove")(problem, ctx, n=2, timeout_s=3.0)
    finally:
        await backend.aclose()
    info = result.info
    assert info["sampled"] == 2 and len(result.traces) == 2
    assert len(info["programs"]) == info["answered"] == sum(t.answer is not None for t in result.traces)
    assert len(ctx.calls) == 1 + info["answered"] and all(c.error is None for c in ctx.calls)
    for program in info["programs"]:  # each program either ran (and ended somehow) or had no code block
        assert program["killed_reason"] in (None, "no code", "cpu_time", "wall_time", "output", "memory")
        assert not program["verified"] or program["output"] is not None
    assert (info["fallback"] is None) == (info["verified"] > 0)
    assert ctx.usage.completion_tokens == sum(t.completion_tokens for c in ctx.calls for t in c.traces) > 0
    if result.answer is not None:
        assert result.answer in result.votes


async def test_fobar_asks_backward_questions_of_the_embedded_model(llama_server: LlamaServer) -> None:
    backend = OpenAIBackend(llama_server.base_url)
    problem = make_problem(QUESTION, gold="7")
    ctx = Ctx(backend, problem, sampling=Sampling(max_tokens=48, temperature=0.8, seed=5))
    try:
        result = await get_strategy("fobar")(problem, ctx, n=3, backward_n=2)
    finally:
        await backend.aclose()
    info = result.info
    candidates = len(info["forward"])
    if candidates == 0:
        pytest.skip("no forward sample had an answer")
    assert [m["number"] for m in info["masked"]] == ["3", "4"]
    backward_calls = ctx.calls[1:]
    assert len(backward_calls) == 2 * candidates  # one chain per masked number per candidate
    prompts = [c.request.messages[-1]["content"] for c in backward_calls]
    assert all("what is the value of unknown variable x?" in p for p in prompts)
    assert any("Tom has x apples" in p for p in prompts) and any("buys x more" in p for p in prompts)
    assert set(info["backward"]) == set(info["forward"])
    assert result.answer in info["forward"] and 0 <= (result.confidence or 0) <= 1
    assert ctx.usage.completion_tokens == sum(t.completion_tokens for c in ctx.calls for t in c.traces) > 0
