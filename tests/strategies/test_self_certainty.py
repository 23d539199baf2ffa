from __future__ import annotations

import pytest

from ponder.backends.fake import FakeBackend, Scripted
from ponder.context import Ctx
from ponder.strategies import get_strategy
from tests.conftest import make_problem

# three unsure samples say 8, two sure ones say 7
SCRIPT = [Scripted("Maybe it is 8. The answer is 8.", 0.3), Scripted("Clearly 3 + 4 = 7. The answer is 7.", 0.9),
          Scripted("Perhaps 8. The answer is 8.", 0.35), Scripted("So 7. The answer is 7.", 0.85),
          Scripted("I guess 8. The answer is 8.", 0.25)]


async def test_best_of_n_picks_the_most_certain_sample() -> None:
    problem = make_problem()
    majority = await get_strategy("self-consistency")(problem, Ctx(FakeBackend(SCRIPT), problem), n=5)
    assert majority.answer == "8"
    result = await get_strategy("self-certainty")(problem, Ctx(FakeBackend(SCRIPT), problem), n=5,
                                                  selection="best")
    assert result.answer == "7" and result.info["best"] == 1
    assert result.confidence == pytest.approx(2 / 5)  # the share of samples that agree with the pick
    scores = result.info["scores"]
    assert isinstance(scores, list) and max(scores) == scores[1]


async def test_borda_weighs_ranks_not_counts() -> None:
    problem = make_problem()
    # ranks: the two 7s take ranks 1-2, the 8s ranks 3-5: sqrt(5) + sqrt(4) = 4.24 beats sqrt(3) + sqrt(2) + 1
    result = await get_strategy("self-certainty")(problem, Ctx(FakeBackend(SCRIPT), problem), n=5,
                                                  selection="borda")
    assert result.answer == "7"
    assert result.votes["7"] == pytest.approx(5**0.5 + 2)
    assert result.votes["8"] == pytest.approx(3**0.5 + 2**0.5 + 1)
    # power 0 gives every rank one vote: plain majority again
    flat = await get_strategy("self-certainty")(problem, Ctx(FakeBackend(SCRIPT), problem), n=5,
                                                selection="borda", power=0.0)
    assert flat.answer == "8"


async def test_best_of_n_does_not_skip_an_unanswered_most_certain_sample() -> None:
    # best-of-N returns the most certain sample's answer; skipping it for the next one would give the selector
    # a filter on "has an answer" that the paper's best-of-N does not have
    problem = make_problem()
    script = [Scripted("no idea at all", 0.99), Scripted("The answer is 7.", 0.5)]
    result = await get_strategy("self-certainty")(problem, Ctx(FakeBackend(script), problem), n=2,
                                                  selection="best")
    assert result.info["best"] == 0 and result.answer is None


def test_borda_ties_share_their_ranks() -> None:
    # equal self-certainty gets equal weight, whichever sample came first (rank order used to decide)
    from ponder.strategies.self_certainty import _mean_ranks

    assert _mean_ranks([0.5, 0.9, 0.5]) == [2.5, 1.0, 2.5]
    assert _mean_ranks([0.1, 0.1, 0.1, 0.1]) == [2.5] * 4
    assert _mean_ranks([3.0, 2.0, 1.0]) == [1.0, 2.0, 3.0]
    assert _mean_ranks([float("-inf"), 1.0, float("-inf")]) == [2.5, 1.0, 2.5]
