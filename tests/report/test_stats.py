from __future__ import annotations

import math

import pytest

from ponder.report.stats import (
    expected_calibration_error,
    is_probability,
    mean_across_repeats,
    paired_difference,
    pareto_frontier,
    reliability_bins,
    t_quantile_975,
)


def test_ece_on_hand_made_data() -> None:
    # bin [0.9, 1.0): confidence 0.9, accuracy 3/4, gap 0.15, weight 4/6; bin [0.1, 0.2): 0.1 vs 0/2, weight 2/6
    confidences = [0.9, 0.9, 0.9, 0.9, 0.1, 0.1]
    correct = [True, True, True, False, False, False]
    assert expected_calibration_error(confidences, correct) == pytest.approx(4 / 6 * 0.15 + 2 / 6 * 0.1)


def test_ece_is_zero_when_calibrated_and_one_when_maximally_wrong() -> None:
    assert expected_calibration_error([0.5, 0.5, 0.25, 0.25, 0.25, 0.25],
                                      [True, False, True, False, False, False]) == pytest.approx(0.0)
    assert expected_calibration_error([1.0, 1.0, 0.0], [False, False, True]) == pytest.approx(1.0)


def test_ece_mixes_confidences_within_a_bin_before_comparing() -> None:
    # 0.62 and 0.68 share bin [0.6, 0.7): mean confidence 0.65 against accuracy 0.5
    assert expected_calibration_error([0.62, 0.68], [True, False]) == pytest.approx(0.15)
    # with 2 bins, 0.3 and 0.45 share [0, 0.5): mean 0.375 vs accuracy 1.0
    assert expected_calibration_error([0.3, 0.45], [True, True], bins=2) == pytest.approx(0.625)


def test_reliability_bins_are_equal_width_and_edges_go_where_expected() -> None:
    bins = reliability_bins([0.0, 0.1, 0.35, 0.999, 1.0], [False, True, True, True, False])
    assert len(bins) == 10
    assert [b.count for b in bins] == [1, 1, 0, 1, 0, 0, 0, 0, 0, 2]
    assert bins[0].low == 0.0 and bins[9].high == 1.0 and bins[3].low == pytest.approx(0.3)
    assert bins[9].mean_confidence == pytest.approx(0.9995) and bins[9].accuracy == 0.5
    assert math.isnan(bins[2].accuracy) and math.isnan(bins[2].mean_confidence)


def test_calibration_rejects_non_probabilities_and_empty_is_nan() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        expected_calibration_error([1.5], [True])
    with pytest.raises(ValueError, match="correctness"):
        expected_calibration_error([0.5, 0.5], [True])
    assert math.isnan(expected_calibration_error([], []))
    assert is_probability([0.0, 1.0, 0.5]) and not is_probability([0.5, 3.2]) and not is_probability([math.nan])


def test_pareto_frontier_on_known_points() -> None:
    points = [(10, 0.5), (20, 0.6), (15, 0.4), (30, 0.6), (5, 0.2), (40, 0.9)]
    # (15, 0.4) loses to (10, 0.5); (30, 0.6) loses to (20, 0.6) on tokens alone
    assert pareto_frontier(points) == [4, 0, 1, 5]


def test_pareto_frontier_keeps_ties_and_drops_nan() -> None:
    assert pareto_frontier([(10, 0.5), (10, 0.5), (10, 0.4)]) == [0, 1]
    assert pareto_frontier([(10, math.nan), (20, 0.3)]) == [1]
    assert pareto_frontier([]) == []
    # more accuracy for the same tokens dominates
    assert pareto_frontier([(10, 0.5), (10, 0.7)]) == [1]


def test_paired_difference_sign_and_interval() -> None:
    better = {f"p{i}": 1.0 for i in range(60)}
    worse = {f"p{i}": float(i % 2) for i in range(60)}
    up = paired_difference(better, worse)
    assert up.mean == pytest.approx(0.5) and up.n == 60
    assert 0 < up.low < 0.5 < up.high <= 1
    down = paired_difference(worse, better)
    assert down.mean == pytest.approx(-0.5) and down.high < 0
    same = paired_difference(worse, worse)
    assert (same.mean, same.low, same.high) == (0.0, 0.0, 0.0)


def test_paired_difference_matches_by_problem_id_only() -> None:
    a = {"x": 1.0, "y": 0.0, "only-a": 1.0}
    b = {"y": 1.0, "x": 1.0, "only-b": 0.0}
    d = paired_difference(a, b)
    assert d.n == 2 and d.mean == pytest.approx(-0.5)
    assert paired_difference(a, b) == d  # reproducible for a seed
    empty = paired_difference({"a": 1.0}, {"b": 1.0})
    assert empty.n == 0 and math.isnan(empty.mean)


def test_paired_difference_is_narrower_than_unpaired_when_problems_vary() -> None:
    # hard problems are missed by both: pairing cancels problem difficulty
    a = {f"p{i}": 1.0 if i < 50 else 0.0 for i in range(100)}
    b = {f"p{i}": 1.0 if i < 45 else 0.0 for i in range(100)}
    d = paired_difference(a, b)
    assert d.mean == pytest.approx(0.05) and d.high - d.low < 0.12


def test_mean_across_repeats_uses_student_t() -> None:
    e = mean_across_repeats([0.5, 0.6, 0.7])
    half = 4.303 * 0.1 / math.sqrt(3)
    assert e.mean == pytest.approx(0.6) and e.n == 3
    assert (e.low, e.high) == (pytest.approx(0.6 - half), pytest.approx(0.6 + half))
    clipped = mean_across_repeats([0.9, 1.0, 1.0], (0.0, 1.0))
    assert clipped.high == 1.0 and clipped.low < 0.9 and clipped.mean == pytest.approx(29 / 30)
    one = mean_across_repeats([0.4])
    assert one.mean == 0.4 and math.isnan(one.low) and one.n == 1
    assert math.isnan(mean_across_repeats([]).mean)


def test_t_quantiles() -> None:
    assert t_quantile_975(1) == 12.706 and t_quantile_975(30) == 2.042
    assert t_quantile_975(40) == pytest.approx(2.021, abs=1e-3)
    assert t_quantile_975(120) == pytest.approx(1.980, abs=1e-3)
    with pytest.raises(ValueError):
        t_quantile_975(0)
