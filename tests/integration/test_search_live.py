"""Step-level beam search on the real embedded llama-server (SmolLM2-135M): prefill steps, scoring, budget."""

from __future__ import annotations

import pytest

from ponder.backends.local import LlamaServer
from ponder.backends.openai import OpenAIBackend
from ponder.context import Ctx, Sampling
from ponder.search import SearchTree
from ponder.search.steps import expand
from ponder.strategies import get_strategy
from ponder.tasks import load_task

pytestmark = pytest.mark.integration


async def test_steps_continue_the_prefill_and_stop_at_the_blank_line(llama_server: LlamaServer) -> None:
    backend = OpenAIBackend(llama_server.base_url)
    (problem,) = load_task("add1", limit=1)
    prefix = "Let's add the two numbers step by step."
    try:
        ctx = Ctx(backend, problem, sampling=Sampling(max_tokens=64, seed=2))
        candidates = await expand(ctx, problem, [prefix], 2, max_step_tokens=32)
    finally:
        await backend.aclose()
    (call,) = ctx.calls
    assert call.request.messages[-1] == {"role": "assistant", "content": prefix + "\n\n"}
    assert call.request.stop == ["\n\n"]
    for candidate in candidates:
        assert "\n\n" not in candidate.step and not candidate.step.startswith(prefix)  # echo cut, stopped
        if candidate.step:
            assert candidate.step.trace is not None and candidate.step.trace.logprobs
    assert ctx.usage.completion_tokens == sum(c.tokens for c in candidates) > 0


@pytest.mark.parametrize("scorer", ["judge", "confidence"])
async def test_beam_search_on_the_embedded_model(llama_server: LlamaServer, scorer: str) -> None:
    backend = OpenAIBackend(llama_server.base_url)
    (problem,) = load_task("add1", limit=1, offset=1 if scorer == "judge" else 0)
    try:
        ctx = Ctx(backend, problem, sampling=Sampling(max_tokens=64, seed=1))
        result = await get_strategy("beam")(problem, ctx, n=2, expansions=2, max_depth=2, max_step_tokens=32,
                                            scorer=scorer, budget=600)
    finally:
        await backend.aclose()
    tree = SearchTree.from_json(result.info["tree"])
    scored = [n for n in tree.nodes[1:] if n.step]
    assert len(tree.root.children) >= 2 and scored
    assert all(n.score is not None and 0.0 <= n.score <= 1.0 for n in scored if not n.pruned or n.score is not None)
    assert ctx.usage.completion_tokens <= 600
    generated = sum(n.tokens for n in tree.nodes)
    if scorer == "confidence":  # no model call besides the steps: the tree accounts for every token
        assert generated == ctx.usage.completion_tokens
    else:  # each scored step cost one short judge call
        judge_calls = [c for c in ctx.calls if c.request.max_tokens == 8]
        assert len(judge_calls) == result.info["scorer_calls"] == len([n for n in scored if not n.meta.get(
            "duplicate_of")])
        assert generated + sum(c.usage.completion_tokens for c in judge_calls) == ctx.usage.completion_tokens
    # the answer comes from a path the search marked, and is one of the voted answers
    if result.answer is not None:
        assert result.answer in result.votes
        assert any(n.selected for n in tree.nodes)
    deeper = [c for c in ctx.calls if c.request.messages[-1]["role"] == "assistant"]
    for call in deeper:  # every later step was drawn with the path so far as the assistant prefill
        assert call.request.messages[-1]["content"].endswith("\n\n")
