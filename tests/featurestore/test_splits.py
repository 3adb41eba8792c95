"""Time splits and walk-forward folds: in order, disjoint, with purge gaps of the asked size."""

from __future__ import annotations

import itertools

import pytest

from atlas_ray.errors import FeatureError
from atlas_ray.featurestore._splits import TimeSplit, split_positions, walk_forward_positions


@pytest.mark.parametrize("purge", [0, 1, 5, 30])
def test_split_leaves_purge_rows_between_parts(purge: int) -> None:
    parts = split_positions(10_000, TimeSplit(0.7, 0.15, 0.15), purge)
    assert parts.train == slice(0, 7000)
    assert parts.validation.start - parts.train.stop == purge
    assert parts.test.start - parts.validation.stop == purge
    assert parts.test.stop == 10_000


def test_walk_forward_folds_are_ordered_expanding_and_disjoint() -> None:
    folds = walk_forward_positions(10_000, 4, 3, 0.2)
    assert len(folds) == 4
    for previous, fold in itertools.pairwise(folds):
        assert fold.train.stop > previous.train.stop  # expanding
        assert fold.test.start >= previous.test.stop  # test blocks disjoint, in order
    for fold in folds:
        assert fold.train.start == 0
        assert fold.validation.start - fold.train.stop == 3
        assert fold.test.start - fold.validation.stop == 3
    assert folds[-1].test.stop == 10_000


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: TimeSplit(0.7, 0.2, 0.2), "sum to 1.1, but must sum to 1"),
        (lambda: TimeSplit(0.0, 0.5, 0.5), "The value of `train` is 0.0"),
        (lambda: TimeSplit(purge=-1), "The value of `purge` is -1"),
        (lambda: split_positions(10, TimeSplit(), 3), "leaves parts of"),
        (lambda: walk_forward_positions(100, 0, 0, 0.2), "The value of `folds` is 0"),
        (lambda: walk_forward_positions(100, 2, 0, 1.5), "The value of `validation` is 1.5"),
    ],
)
def test_bad_splits_are_refused(make: object, message: str) -> None:
    with pytest.raises(FeatureError) as error:
        make()  # type: ignore[operator]
    assert message in str(error.value)
