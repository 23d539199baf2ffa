"""DVTS: independent subtrees, each greedy under the scorer; the answer by weighted vote over the subtrees."""

from __future__ import annotations

import pytest

from ponder.backends.fake import Scripted
from ponder.context import Ctx
from ponder.errors import ConfigError
from ponder.search import SearchTree
from ponder.strategies import get_strategy
from tests.conftest import make_problem
from tests.search.search_scripts import TRAP, likes_seven, stepper

dvts = get_strategy("dvts")


async def test_each_subtree_greedily_keeps_the_step_the_scorer_prefers() -> None:
    problem = make_problem()
    ctx = Ctx(stepper(TRAP, judge=likes_seven), problem)
    result = await dvts(problem, ctx, n=4, expansions=2)
    assert result.answer == "7" and result.votes == {"7": 2.0}
    tree = SearchTree.from_json(result.info["tree"])
    assert result.info["subtrees"] == 2 and result.info["completed"] == 2
    # the subtrees grew the question independently: two candidate first steps each
    firsts = [tree.nodes[i] for i in tree.root.children]
    assert sorted(n.meta["subtree"] for n in firsts) == [0, 0, 1, 1]
    for subtree in (0, 1):
        mine = [n for n in firsts if n.meta["subtree"] == subtree]
        kept = [n for n in mine if not n.pruned]
        assert len(kept) == 1 and "seven" in kept[0].step  # greedy: the better-scored one, the other pruned
    assert sum(n.selected for n in tree.nodes) == 2  # one chosen path: first step and its answer


async def test_without_a_preference_the_first_sampled_steps_lead_astray() -> None:
    problem = make_problem()
    ctx = Ctx(stepper(TRAP, judge=lambda step: False), problem)
    result = await dvts(problem, ctx, n=4, expansions=2)
    assert result.answer == "8"


# Each subtree (expansions=1) follows its own first step: two reach 7 with middling scores, one reaches 8 with
# a high score. The weighted vote sums the values per answer; "best" takes the single best path.
SPLIT: dict[str, list[str | Scripted]] = {
    "": [Scripted("Count on: seven.", 0.6), Scripted("Recall: eight.", 0.95), Scripted("Add: seven.", 0.6)],
    "Count on: seven.": [Scripted("The answer is 7.", 0.6)],
    "Recall: eight.": [Scripted("The answer is 8.", 0.95)],
    "Add: seven.": [Scripted("The answer is 7.", 0.6)],
}


@pytest.mark.parametrize(("select", "answer"), [("weighted", "7"), ("vote", "7"), ("best", "8")])
async def test_final_selection(select: str, answer: str) -> None:
    problem = make_problem()
    ctx = Ctx(stepper(SPLIT), problem)
    result = await dvts(problem, ctx, n=3, expansions=1, scorer="confidence:neg_perplexity", select=select)
    assert result.answer == answer
    assert set(result.votes) == {"7", "8"} and len(result.traces) == 3
    if select == "weighted":
        assert result.votes["7"] > result.votes["8"] and result.confidence == pytest.approx(
            result.votes["7"] / sum(result.votes.values()))
    if select == "best":
        assert result.confidence == pytest.approx(0.95, abs=0.1)


async def test_subtrees_share_the_budget() -> None:
    problem = make_problem()
    ctx = Ctx(stepper({}, otherwise=["Think more."]), problem)
    result = await dvts(problem, ctx, n=8, expansions=2, budget=50)
    assert ctx.usage.completion_tokens <= 50 and result.info["stopped"] == "budget"


async def test_n_must_cover_the_subtrees() -> None:
    problem = make_problem()
    with pytest.raises(ConfigError, match=r"'n'.*'expansions'"):
        await dvts(problem, Ctx(stepper(TRAP), problem), n=2, expansions=4)
