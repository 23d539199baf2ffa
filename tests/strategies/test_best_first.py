"""Best-first decoding: expand the most promising partial solution; back up when a path's step looks bad."""

from __future__ import annotations

import pytest

from ponder.backends.fake import Scripted
from ponder.context import Ctx
from ponder.search import SearchTree
from ponder.strategies import get_strategy
from tests.conftest import make_problem
from tests.search.search_scripts import stepper

best_first = get_strategy("best-first")

# The model's favourite first step looks sure but leads to a weak, wrong finish; the other branch is right.
BACKTRACK: dict[str, list[str | Scripted]] = {
    "": [Scripted("I recall this one.", 0.95), Scripted("Count up from 4 by 3.", 0.6)],
    "I recall this one.": [Scripted("So the answer is 8.", 0.2)],
    "Count up from 4 by 3.": [Scripted("The answer is 7.", 0.6)],
}


async def test_greedy_follows_the_sure_first_step_to_the_wrong_answer() -> None:
    problem = make_problem()
    ctx = Ctx(stepper(BACKTRACK), problem)
    result = await best_first(problem, ctx, expansions=1, scorer="confidence:neg_perplexity")
    assert result.answer == "8"  # with one candidate per expansion there is nothing to back up to


async def test_best_first_backs_up_to_the_better_branch() -> None:
    problem = make_problem()
    ctx = Ctx(stepper(BACKTRACK), problem)
    result = await best_first(problem, ctx, expansions=2, scorer="confidence:neg_perplexity")
    assert result.answer == "7" and result.info["goal_found"]
    tree = SearchTree.from_json(result.info["tree"])
    recall, count = (tree.nodes[i] for i in tree.root.children)
    assert recall.visits == 1 and count.visits == 1  # both were expanded, the sure-looking one first
    assert recall.children[0] < count.children[0]
    assert count.selected and not recall.selected
    # the wrong finish was found too: it is in the votes with its (low) value
    assert set(result.votes) == {"7", "8"} and result.votes["8"] < result.votes["7"]
    assert result.confidence == pytest.approx(0.6, abs=0.1)
    assert result.info["expand_calls"] == 3


async def test_max_expansions_and_budget_bound_the_search() -> None:
    problem = make_problem()
    endless = {"": ["Think about 3."], "Think about 3.": ["Think about 4."], "Think about 3.\n\nThink about 4.":
               ["Think about 5."]}
    ctx = Ctx(stepper(endless), problem)
    result = await best_first(problem, ctx, expansions=1, max_expansions=3, scorer="judge")
    assert result.info["expand_calls"] == 3 and not result.info["goal_found"]
    assert result.answer == "5"  # the best partial path, read as it stands

    ctx = Ctx(stepper(endless), problem)
    result = await best_first(problem, ctx, expansions=2, budget=30)
    assert ctx.usage.completion_tokens <= 30 and result.info["stopped"] == "budget"
