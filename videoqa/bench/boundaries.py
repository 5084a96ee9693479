"""Scoring scene boundaries against ground truth: precision, recall and F1 within a time tolerance.

A predicted cut counts as found when it lies within the tolerance of a true cut that no other prediction
has claimed (one-to-one matching), so two predictions around one true cut score one hit and one false
cut. Scores hold counts, so the scores of many videos add up to a micro-average.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class BoundaryScore:
    """How predicted cuts match true cuts. An empty set is trivially precise or fully recalled, so a
    video with no cuts where none are predicted scores 1.0 throughout."""

    matched: int  # predicted cuts paired with a true cut
    predicted: int  # predicted cuts in all
    true: int  # true cuts in all

    def __post_init__(self) -> None:
        if not 0 <= self.matched <= min(self.predicted, self.true):
            raise ValueError(
                f"matched cuts ({self.matched}) must lie within 0 and both the predicted "
                f"({self.predicted}) and true ({self.true}) counts"
            )

    def __add__(self, other: BoundaryScore) -> BoundaryScore:
        return BoundaryScore(
            self.matched + other.matched, self.predicted + other.predicted, self.true + other.true
        )

    @property
    def precision(self) -> float:
        return self.matched / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.matched / self.true if self.true else 1.0

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


def score_boundaries(
    predicted_s: Sequence[float], true_s: Sequence[float], tolerance_s: float = 1.0
) -> BoundaryScore:
    """Match predicted to true cut times (seconds) one-to-one within ``tolerance_s``; count the pairs.

    Both lists are sorted, then each true cut takes the earliest unclaimed prediction within reach.
    Every true cut's reach is a window of the same width, so the windows are ordered at both ends and
    this greedy pass finds the largest possible number of pairs.
    """
    if not (tolerance_s >= 0 and math.isfinite(tolerance_s)):
        raise ValueError(f"tolerance_s must be a number >= 0, got {tolerance_s}")
    predictions, truths = sorted(predicted_s), sorted(true_s)
    matched, next_prediction = 0, 0
    for true_time in truths:
        # Predictions too early for this true cut are too early for every later one too.
        while next_prediction < len(predictions) and predictions[next_prediction] < true_time - tolerance_s:
            next_prediction += 1
        if next_prediction < len(predictions) and predictions[next_prediction] <= true_time + tolerance_s:
            matched += 1
            next_prediction += 1
    return BoundaryScore(matched=matched, predicted=len(predictions), true=len(truths))
