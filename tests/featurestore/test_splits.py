"""Time splits and walk-forward folds: in order, disjoint, with purge gaps of the asked size."""

from __future__ import annotations

import itertools

import pytest

from atlas_ray.errors import FeatureError
from atlas_ray.featurestore._featuresets._splits import (
    TimeSplit,
    WalkForward,
    split_positions,
    walk_forward_positions,
    walk_forward_split,
)


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


@pytest.mark.parametrize("window", ["expanding", "rolling"])
@pytest.mark.parametrize(("purge", "embargo"), [(0, 0), (3, 0), (5, 7)])
def test_walk_forward_split_orders_folds_and_seals_a_purged_test_block(
    window: str, purge: int, embargo: int
) -> None:
    n = 10_000
    split = WalkForward(folds=4, test=0.2, embargo=embargo, window=window)  # type: ignore[arg-type]
    folds, test = walk_forward_split(n, split, purge)
    assert test == slice(8000, 10_000)
    assert len(folds) == 4
    for fold in folds:
        assert fold.test == test
        assert fold.validation.start - fold.train.stop == purge  # purge after the training window
        assert fold.train.stop <= fold.validation.start < fold.validation.stop <= test.start
    for previous, fold in itertools.pairwise(folds):
        # validation blocks in time order, the embargo left out after each one
        assert fold.validation.start - previous.validation.stop >= embargo + purge
        assert fold.train.stop == previous.validation.stop + embargo
    assert test.start - folds[-1].validation.stop == embargo + purge  # the test block is purged too
    if window == "expanding":
        assert all(fold.train.start == 0 for fold in folds)
    else:
        lengths = {fold.train.stop - fold.train.start for fold in folds}
        assert max(lengths) - min(lengths) <= 1  # one block each


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"folds": 0}, r"The value of `folds` is 0, but must be an integer `folds >= 1`"),
        ({"test": 1.0}, r"The value of `test` is 1.0"),
        ({"embargo": -1}, r"The value of `embargo` is -1"),
        ({"purge": -2}, r"The value of `purge` is -2"),
        ({"window": "sliding"}, r"The value of `window` is 'sliding', but must be one of"),
    ],
)
def test_bad_walk_forward_settings_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(FeatureError, match=message):
        WalkForward(**kwargs)  # type: ignore[arg-type]


def test_too_few_rows_for_the_folds_is_refused() -> None:
    with pytest.raises(FeatureError, match=r"walk-forward fold 1 of 5 .* every part needs at least one row"):
        walk_forward_split(20, WalkForward(folds=5), 3)
