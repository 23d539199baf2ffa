"""Tree of Thoughts and MCTS on the embedded SmolLM2 model: the machinery holds up on real, messy output."""

from __future__ import annotations

import pytest

from ponder.backends.local import LlamaServer
from ponder.backends.openai import OpenAIBackend
from ponder.context import Ctx, Sampling
from ponder.search.tree import SearchTree
from ponder.strategies import get_strategy
from ponder.tasks import load_task
from ponder.tasks.game24 import State, apply_step, check_expression, puzzle_of

pytestmark = pytest.mark.integration


async def test_tot_on_countdown(llama_server: LlamaServer) -> None:
    problem = load_task("countdown3", limit=1)[0]
    puzzle = puzzle_of(problem)
    assert puzzle is not None
    backend = OpenAIBackend(llama_server.base_url)
    try:
        ctx = Ctx(backend, problem, sampling=Sampling(max_tokens=64, seed=1))
        result = await get_strategy("tot")(problem, ctx, breadth=1, n_evaluate=1, propose_tokens=48,
                                           value_tokens=16, prefill=True)
    finally:
        await backend.aclose()
    tree = SearchTree.from_json(result.info["tree"])
    assert sum(n.tokens for n in tree.nodes) == ctx.usage.completion_tokens > 0
    assert ctx.usage.calls >= 1 + int(len(tree.root.children) > 0)
    # every state the search kept is an exactly checked step from its parent's numbers
    states = {0: State.start(puzzle.numbers)}
    for node in tree.nodes[1:]:
        if node.meta.get("rejected"):
            assert apply_step(states[node.parent], node.step) is None
            continue
        applied = apply_step(states[node.parent], node.step)
        assert applied is not None and applied[1] == node.step
        states[node.id] = applied[0]
    if result.answer is not None:
        assert check_expression(result.answer, puzzle.numbers, puzzle.target)


async def test_mcts_with_rollouts_on_countdown(llama_server: LlamaServer) -> None:
    problem = load_task("countdown3", limit=2)[1]
    backend = OpenAIBackend(llama_server.base_url)
    try:
        ctx = Ctx(backend, problem, sampling=Sampling(max_tokens=64, seed=1))
        result = await get_strategy("mcts")(problem, ctx, iterations=3, k=2, delimiter="\\n", step_tokens=24,
                                            rollout_tokens=64)
    finally:
        await backend.aclose()
    tree = SearchTree.from_json(result.info["tree"])
    assert sum(n.tokens + n.meta.get("eval_tokens", 0) for n in tree.nodes) == ctx.usage.completion_tokens > 0
    assert tree.root.visits == result.info["iterations"] >= 1
    assert result.info["scorer"] == "exact verifier"
    puzzle = puzzle_of(problem)
    assert puzzle is not None
    assert (result.confidence == 1.0) == check_expression(result.answer, puzzle.numbers, puzzle.target)
