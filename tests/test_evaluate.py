"""Boundary scoring: one-to-one matching within a tolerance, and the empty-set conventions."""

from __future__ import annotations

import pytest

from videoqa.bench.boundaries import BoundaryScore, score_boundaries


def test_cuts_within_the_tolerance_match() -> None:
    score = score_boundaries([4.6, 10.0, 30.0], [4.0, 11.0, 20.0], tolerance_s=1.0)
    assert (score.matched, score.predicted, score.true) == (2, 3, 3)
    assert score.precision == score.recall == score.f1 == pytest.approx(2 / 3)


def test_the_tolerance_edge_counts_and_order_does_not_matter() -> None:
    assert score_boundaries([11.0, 9.0], [10.0, 3.0], tolerance_s=1.0).matched == 1
    assert score_boundaries([11.01], [10.0], tolerance_s=1.0).matched == 0
    assert score_boundaries([10.0], [10.0], tolerance_s=0.0).matched == 1


def test_no_true_cuts() -> None:
    nothing = score_boundaries([], [])
    assert (nothing.precision, nothing.recall, nothing.f1) == (1.0, 1.0, 1.0)
    false_alarm = score_boundaries([5.0], [])
    assert (false_alarm.precision, false_alarm.recall, false_alarm.f1) == (0.0, 1.0, 0.0)


def test_no_predictions() -> None:
    score = score_boundaries([], [5.0, 9.0])
    assert (score.matched, score.precision, score.recall, score.f1) == (0, 1.0, 0.0, 0.0)


def test_two_predictions_near_one_true_cut_score_one_hit_and_one_false_cut() -> None:
    score = score_boundaries([9.6, 10.4], [10.0])
    assert (score.matched, score.predicted, score.true) == (1, 2, 1)
    assert (score.precision, score.recall) == (0.5, 1.0)
    assert score.f1 == pytest.approx(2 / 3)


def test_matching_finds_the_most_pairs_not_the_nearest() -> None:
    # Pairing 11.0 with its nearest prediction (10.9) would leave 10.0 unmatched; both can be matched.
    assert score_boundaries([10.9, 11.95], [10.0, 11.0]).matched == 2


def test_scores_add_up_to_a_micro_average() -> None:
    total = sum([BoundaryScore(1, 2, 1), BoundaryScore(3, 3, 5)], start=BoundaryScore(0, 0, 0))
    assert total == BoundaryScore(4, 5, 6)
    assert (total.precision, total.recall) == pytest.approx((0.8, 4 / 6))


def test_inputs_are_validated() -> None:
    with pytest.raises(ValueError):
        score_boundaries([1.0], [1.0], tolerance_s=-1.0)
    with pytest.raises(ValueError):
        BoundaryScore(matched=2, predicted=1, true=3)
