from __future__ import annotations

import pytest

from ponder.answers import AnswerChecker
from ponder.strategies.voting import cluster_answers, vote


@pytest.fixture(scope="module")
def checker() -> AnswerChecker:
    with AnswerChecker() as c:
        yield c


async def test_equivalent_forms_vote_together(checker: AnswerChecker) -> None:
    result = await vote(["0.5", "\\frac{1}{2}", "2", "1/2", None, "2"], checker.equivalent)
    assert result.winner in {"0.5", "\\frac{1}{2}", "1/2"}
    assert result.tally[result.winner] == 3
    assert result.share == pytest.approx(3 / 6)


async def test_tie_breaks_toward_first_sampled(checker: AnswerChecker) -> None:
    assert (await vote(["5", "6", "6", "5"], checker.equivalent)).winner == "5"
    assert (await vote(["6", "5", "5", "6"], checker.equivalent)).winner == "6"


async def test_weights_can_overturn_the_count(checker: AnswerChecker) -> None:
    result = await vote(["5", "5", "6"], checker.equivalent, weights=[0.1, 0.1, 0.9])
    assert result.winner == "6" and result.share == pytest.approx(0.9 / 1.1)


async def test_no_answers_no_winner(checker: AnswerChecker) -> None:
    result = await vote([None, None], checker.equivalent)
    assert result.winner is None and result.share == 0.0


async def test_clusters_keep_members_in_order(checker: AnswerChecker) -> None:
    clusters = await cluster_answers(["1,000", "7", "1000", "7.0"], checker.equivalent)
    assert [c.members for c in clusters] == [[0, 2], [1, 3]]
