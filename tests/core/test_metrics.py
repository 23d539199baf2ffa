from __future__ import annotations

import math

import pytest

from ponder.metrics import answer_groups, bootstrap_mean, maj_at_k, majority_correct, pass_at_k, summarize
from ponder.store import ProblemRecord
from ponder.types import Trace


def test_pass_at_k_matches_the_closed_form() -> None:
    assert pass_at_k(10, 0, 3) == 0.0
    assert pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - math.comb(3, 2) / math.comb(5, 2))
    assert pass_at_k(4, 1, 4) == 1.0
    with pytest.raises(ValueError):
        pass_at_k(2, 1, 3)


def test_bootstrap_interval_covers_the_mean_and_shrinks_with_n() -> None:
    small = bootstrap_mean([1, 0] * 10)
    large = bootstrap_mean([1, 0] * 500)
    assert small.low < 0.5 < small.high and large.low < 0.5 < large.high
    assert (large.high - large.low) < (small.high - small.low)
    assert bootstrap_mean([1, 0, 1], seed=1) == bootstrap_mean([1, 0, 1], seed=1)
    assert math.isnan(bootstrap_mean([]).mean)


def test_majority_groups_all_correct_answers_together() -> None:
    # "7" and "7.0" are both correct: together they outvote two "8"s and one "9"
    assert majority_correct(["8", "7", "8", "7.0", "7", "9"], [False, True, False, True, True, False]) is True
    # a tie goes to the group sampled first
    assert majority_correct(["8", "7", "8", "7.0"], [False, True, False, True]) is False
    assert majority_correct(["7", "8", "8", "7.0"], [True, False, False, True]) is True
    assert majority_correct([None], [False]) is False


async def test_wrong_answers_group_by_equivalence_not_only_normal_form() -> None:
    # gold 7: "1/2", "0.5" and "\\frac{1}{2}" are one wrong answer, and three of it outvote two 7s. Grouped by
    # normal form alone they were three answers of one vote each, and the 7s won a vote they should lose.
    answers = ["7", "1/2", "0.5", "7", "\\frac{1}{2}"]
    correct = [True, False, False, True, False]
    assert majority_correct(answers, correct) is True  # normal forms only: the old, wrong grouping
    groups = await answer_groups(answers)
    assert groups["1/2"] == groups["0.5"] == groups["\\frac{1}{2}"] != groups["7"]
    assert majority_correct(answers, correct, groups) is False
    assert maj_at_k(answers, correct, 5, groups=groups) == 0.0


def test_only_answer_samples_count_in_maj_and_pass_at_k() -> None:
    # a judge's verdict (aux) and a cancelled trace are not samples; a trace cut at max_tokens is one, unanswered
    results = [ProblemRecord("a", 0, "7", "7", True, 0.5, {}, {}, 10, 100, 1, 5, 1, 0.5, None, 1)]
    traces = [("a", Trace(answer="7", correct=True)), ("a", Trace(answer="8", correct=False)),
              ("a", Trace(answer=None, correct=False, finish_reason="length")),
              ("a", Trace(answer=None, correct=False, aux=True)),
              ("a", Trace(answer=None, correct=False, cancelled=True))]
    summary = summarize(results, traces)
    assert summary.samples_per_problem == 3
    assert summary.pass_at[1] == pytest.approx(1 / 3)
    assert summary.capped_traces == 1 and summary.cancelled_traces == 1


def test_maj_at_k_interpolates_between_single_sample_and_full_vote() -> None:
    answers = ["7", "7", "7", "8", "9"]
    correct = [True, True, True, False, False]
    assert maj_at_k(answers, correct, 1, subsets=2000) == pytest.approx(0.6, abs=0.05)
    assert maj_at_k(answers, correct, 5) == 1.0
    assert maj_at_k(answers, correct, 3, subsets=2000) > 0.6


def test_summary_of_a_run() -> None:
    def record(pid: str, correct: bool, error: str | None = None) -> ProblemRecord:
        return ProblemRecord(pid, 0, "7", "7" if correct else "8", None if error else correct, 0.5, {}, {},
                             10, 100, 1, 2, 0, 0.5, error)

    results = [record("a", True), record("b", False), record("c", False, error="BackendError: boom")]
    traces = [("a", Trace(answer="7", correct=True)), ("a", Trace(answer="8", correct=False)),
              ("b", Trace(answer="8", correct=False)), ("b", Trace(answer="8", correct=False))]
    summary = summarize(results, traces)
    assert summary.problems == 3 and summary.errors == 1 and summary.scored == 2
    assert summary.accuracy.mean == pytest.approx(1 / 3)
    assert summary.pass_at[2] == pytest.approx(0.5)
    assert summary.maj_at[1] == pytest.approx(0.25, abs=0.1)
    assert summary.mean_completion_tokens == 100
