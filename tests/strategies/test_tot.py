"""Tree of Thoughts on scripted models: the solution is reachable only by searching past a dead end."""

from __future__ import annotations

import re

import pytest

from ponder.backends.fake import FakeBackend
from ponder.context import Ctx, Sampling
from ponder.errors import ConfigError
from ponder.search.tree import SearchTree
from ponder.strategies import get_strategy
from ponder.strategies.tot import read_value
from ponder.tasks.game24 import Puzzle, check_expression, puzzle_problem
from ponder.types import GenerationRequest, Problem
from tests.conftest import make_problem

# 1 2 3 4 -> 24. The first proposal (4 - 3 = 1) is a dead end: 1 1 2 cannot make 24. The second one leads to
# 2 * 3 = 6, 4 * 6 = 24. Two more proposals are invalid (a number not left; wrong arithmetic).
PROPOSALS = {
    "1 2 3 4": "4 - 3 = 1 (left: 1 1 2)\n1 * 2 = 2 (left: 2 3 4)\n4 + 8 = 12 (left: 12)\n1 + 2 = 4 (left: 3 4 4)",
    "1 1 2": "1 + 1 = 2 (left: 2 2)",
    "2 2": "2 + 2 = 4 (left: 4)",
    "2 3 4": "2 * 3 = 6 (left: 4 6)",
    "4 6": "4 * 6 = 24 (left: 24)",
}
DEAD_END_LOOKS_BEST = {"1 1 2": "sure", "2 3 4": "likely", "2 2": "likely", "4 6": "sure"}
WAY_LOOKS_BEST = {"1 1 2": "likely", "2 3 4": "sure", "2 2": "likely", "4 6": "sure"}


def puzzle_model(verdicts: dict[str, str]) -> FakeBackend:
    """Answers the ToT propose prompt from PROPOSALS and the value prompt from ``verdicts``."""

    def script(request: GenerationRequest, index: int) -> str:
        prompt = request.messages[-1]["content"]
        proposed = re.search(r"Input: ([^\n]*)\nPossible next steps:\n$", prompt)
        if proposed:
            return PROPOSALS.get(proposed.group(1), "I am not sure.")
        if prompt.startswith("Evaluate if given numbers can reach"):
            state = prompt.strip().splitlines()[-1]
            return f"{state}\nthinking...\n{verdicts.get(state, 'impossible')}"
        raise AssertionError(f"unexpected prompt {prompt[:80]!r}")

    return FakeBackend(script)


def problem_1234() -> Problem:
    return puzzle_problem(Puzzle((1, 2, 3, 4), 24), "p1234")


async def run_tot(backend: FakeBackend, problem: Problem, token_budget: int | None = None, **params: object):
    # calls reserve their worst case from a budget: keep it small enough for the budget tests to bite
    ctx = Ctx(backend, problem, token_budget=token_budget, sampling=Sampling(max_tokens=64))
    result = await get_strategy("tot")(problem, ctx, **params)
    return result, ctx


def test_value_is_the_papers_sum_of_verdicts() -> None:
    assert read_value(["...\nsure", "likely", "Impossible"]) == pytest.approx(21.001)
    assert read_value(["no verdict here", "sure. Then likely"]) == 20.0  # first verdict of a sample counts


async def test_bfs_searches_past_the_dead_end_the_value_prefers() -> None:
    result, _ = await run_tot(puzzle_model(DEAD_END_LOOKS_BEST), problem_1234())
    assert result.answer is not None and check_expression(result.answer, [1, 2, 3, 4], 24)
    assert result.confidence == 1.0
    assert result.info["path"] == ["1 * 2 = 2 (left: 2 3 4)", "2 * 3 = 6 (left: 4 6)", "4 * 6 = 24 (left: 24)"]
    assert result.info["rejected_steps"] == 2
    tree = SearchTree.from_json(result.info["tree"])
    dead = next(n for n in tree.nodes if n.step.startswith("4 - 3 = 1"))
    assert dead.value == 60.0 and dead.children  # valued best and expanded, yet not the way
    assert [n.step for n in tree.nodes if n.selected] == result.info["path"]


async def test_breadth_one_follows_the_value_into_the_dead_end() -> None:
    # the same model with b=1 commits to the best-valued state and fails; so breadth is what solved it above
    result, _ = await run_tot(puzzle_model(DEAD_END_LOOKS_BEST), problem_1234(), breadth=1)
    assert result.answer is None and result.confidence == 0.0
    # and with b=1 the state evaluator decides: when it prefers the right state, the search succeeds
    result, _ = await run_tot(puzzle_model(WAY_LOOKS_BEST), problem_1234(), breadth=1)
    assert result.answer is not None and check_expression(result.answer, [1, 2, 3, 4], 24)


async def test_dfs_backtracks_out_of_the_dead_end() -> None:
    result, _ = await run_tot(puzzle_model(DEAD_END_LOOKS_BEST), problem_1234(), search="dfs")
    assert result.answer is not None and check_expression(result.answer, [1, 2, 3, 4], 24)
    tree = SearchTree.from_json(result.info["tree"])
    failed = next(n for n in tree.nodes if n.step.startswith("2 + 2 = 4"))
    assert failed.terminal and failed.pruned  # it went down the dead end first, found 4, and came back
    # pruning: "likely" x 3 = 3 is below the threshold, so the way out is cut and nothing is found
    pruned, _ = await run_tot(puzzle_model(DEAD_END_LOOKS_BEST), problem_1234(), search="dfs", prune_below=5.0)
    assert pruned.answer is None


async def test_invalid_steps_cannot_fake_a_solution() -> None:
    problem = puzzle_problem(Puzzle((4, 6), 24), "p46")

    def script(request: GenerationRequest, index: int) -> str:
        return "4 + 6 = 24 (left: 24)\n6 * 4 = 25 (left: 25)\n4 + 6 = 10 (left: 10)"

    result, _ = await run_tot(FakeBackend(script), problem)
    assert result.answer is None
    tree = SearchTree.from_json(result.info["tree"])
    assert sum(bool(n.meta.get("rejected")) for n in tree.nodes) == 2
    assert any(n.terminal and n.step.startswith("4 + 6 = 10") and not n.meta["solved"] for n in tree.nodes)


async def test_every_token_is_on_a_node_and_the_tree_is_stored() -> None:
    backend = puzzle_model(DEAD_END_LOOKS_BEST)
    result, ctx = await run_tot(backend, problem_1234())
    tree = SearchTree.from_json(result.info["tree"])
    assert sum(n.tokens for n in tree.nodes) == ctx.usage.completion_tokens > 0
    assert ctx.usage.calls == len(backend.calls)
    # proposals and verdicts are not answers: nothing but the result is judged as one
    assert all(t.answer is None for call in ctx.calls for t in call.traces)


async def test_budget_stops_the_search_without_an_error() -> None:
    result, ctx = await run_tot(puzzle_model(DEAD_END_LOOKS_BEST), problem_1234(), token_budget=400)
    assert "budget_stop" in result.info and result.answer is None
    assert 0 < ctx.usage.completion_tokens <= 400
    assert len(SearchTree.from_json(result.info["tree"]).nodes) > 1  # the partial tree is kept


async def test_generic_tasks_keep_the_best_valued_finished_path() -> None:
    problem = make_problem("What is 3 + 4?", "7")

    def script(request: GenerationRequest, index: int) -> str:
        prompt = request.messages[-1]["content"]
        if prompt.startswith("Evaluate whether the partial solution"):
            return "Checks out.\nsure" if "is 7" in prompt else "Wrong sum.\nimpossible"
        return ["3 + 4 = 8. The answer is 8.", "3 + 4 = 7. The answer is 7."][index % 2]

    result, ctx = await run_tot(FakeBackend(script), problem, k=2)
    assert result.answer == "7"  # the first sampled thought says 8
    assert result.info["mode"] == "steps"
    assert result.confidence == pytest.approx(1.0)
    tree = SearchTree.from_json(result.info["tree"])
    assert sum(n.tokens for n in tree.nodes) == ctx.usage.completion_tokens


@pytest.mark.parametrize(
    ("params", "named"),
    [({"breadth": 0}, "breadth"), ({"n_evaluate": 0}, "n_evaluate"), ({"depth": -1}, "depth")],
)
async def test_bad_parameters_name_themselves(params: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        await run_tot(puzzle_model({}), problem_1234(), **params)


def test_paper_defaults() -> None:
    defaults = get_strategy("tot").defaults()
    assert defaults["breadth"] == 5 and defaults["n_evaluate"] == 3 and defaults["n_propose"] == 1
    assert defaults["search"] == "bfs"


async def test_prefill_sends_the_papers_prompt_as_the_start_of_the_reply() -> None:
    backend = puzzle_model(DEAD_END_LOOKS_BEST)
    result, _ = await run_tot(backend, problem_1234(), prefill=True)
    assert result.answer is not None and check_expression(result.answer, [1, 2, 3, 4], 24)
    for call in backend.calls:
        user, reply = call.request.messages
        assert user["role"] == "user" and reply["role"] == "assistant"
        assert reply["content"].startswith(("Input: 2 8 8 14", "Evaluate if given numbers"))
