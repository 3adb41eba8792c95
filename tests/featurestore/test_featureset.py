"""FeatureLabelSet definitions and ``prepare`` / ``walk_forward`` on real built frames (no look-ahead
in the fitting: scaling, categories and rebalancing see the training part only)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from atlas_ray.errors import FeatureError
from atlas_ray.featurestore import (
    Boundaries,
    FeatureLabelSet,
    LogReturns,
    MarketStore,
    Midpoint,
    Percentiles,
    Task,
    TimeSplit,
    Volatility,
    Volume,
    WalkForward,
    apply_categories,
    apply_scaling,
)

FEATURES = [
    LogReturns().kraken().one_min().lookback(5),
    Volatility().kraken().one_min().window(30),
    Volume().kraken().one_min(),
    Midpoint().coinbase().one_min(),
]
LABEL = LogReturns().kraken().one_min().lookforward(3)


@pytest.fixture(scope="module")
def frame(minute_store: MarketStore) -> pd.DataFrame:
    """Four real days (March 3rd to 6th) holding Coinbase's long gap and three UTC midnights."""
    return FeatureLabelSet(FEATURES, [LABEL]).build_local("2023-03-03", "2023-03-07", minute_store)


# ----------------------------------------------------------------------------------- definitions
def test_definition_round_trips_through_json() -> None:
    fls = FeatureLabelSet(
        FEATURES,
        [LABEL],
        categories=Percentiles((25.0, 75.0), boundary="drop"),
        rebalance="oversample",
        window=8,
    )
    assert isinstance(fls.features, tuple) and isinstance(fls.labels, tuple)
    text = json.dumps(fls.definition())
    assert FeatureLabelSet.from_definition(json.loads(text)) == fls
    assert fls.definition()["labels"] == [LABEL.name]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: FeatureLabelSet([*FEATURES, LABEL], [LABEL]),
            r"The feature LogReturns\(\)\.kraken\(\)\.one_min\(\)\.lookforward\(3\) looks 3 row\(s\) "
            "forward: "
            "a label leaking",
        ),
        (lambda: FeatureLabelSet([], [LABEL]), "needs at least one feature"),
        (lambda: FeatureLabelSet(FEATURES, []), "needs at least one label"),
        (
            lambda: FeatureLabelSet([Volume().kraken().five_min()], [LABEL]),
            r"LogReturns\(\)\.kraken\(\)\.one_min\(\)\.lookforward\(3\) is at resolution one_min, but "
            r"Volume\(\)\.kraken\(\)\.five_min\(\) is at five_min",
        ),
        (
            lambda: FeatureLabelSet(FEATURES, [LABEL], rebalance="undersample"),
            "rebalancing needs `categories`",
        ),
        (lambda: FeatureLabelSet(FEATURES, [LABEL], window=0), "The value of `window` is 0"),
        (lambda: FeatureLabelSet(FEATURES, [LABEL], scaling="minmax"), "The value of `scaling` is 'minmax'"),
        (lambda: FeatureLabelSet(FEATURES, [LABEL], fill_limit=-1), "The value of `fill_limit` is -1"),
        (lambda: FeatureLabelSet([*FEATURES, FEATURES[0]], [LABEL]), "appear twice"),
        (lambda: FeatureLabelSet.from_definition({"features": [], "labels": [], "seed": 1}), r"\['seed'\]"),
    ],
)
def test_bad_definitions_are_refused(make: object, message: str) -> None:
    with pytest.raises(FeatureError, match=message):
        make()  # type: ignore[operator]


# -------------------------------------------------------------------------------------- prepare
def test_scaling_is_fitted_on_train_only(frame: pd.DataFrame) -> None:
    prepared = FeatureLabelSet(FEATURES, [LABEL]).prepare(frame)
    assert prepared.task is Task.REGRESSION and prepared.categories is None and prepared.classes == ()
    train_x = prepared.train.X.astype("float64")
    np.testing.assert_allclose(train_x.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(train_x.std(axis=0), 1.0, atol=1e-5)
    midpoint = FEATURES[3].name
    train_rows = frame.loc[prepared.train.index]
    assert prepared.scaling["mean"][midpoint] == pytest.approx(train_rows[midpoint].mean())
    assert prepared.scaling["std"][midpoint] == pytest.approx(train_rows[midpoint].std(ddof=0))
    # March 6th (the test part) was calmer than the training days: in training units its spread is
    # well under 1 for every feature, where statistics fitted on the test rows would give exactly 1.
    assert (prepared.test.X.std(axis=0) < 0.7).all()
    # Regression: y is the label itself (float32), label_value the float64 original.
    np.testing.assert_array_equal(prepared.test.y, prepared.test.label_value.astype("float32"))
    # Serving applies the kept numbers and gets the same inputs.
    served = apply_scaling(frame.loc[prepared.test.index], prepared.scaling).to_numpy(dtype="float32")
    np.testing.assert_array_equal(served, prepared.test.X)


def test_part_types_follow_the_prepared_set_contract(frame: pd.DataFrame) -> None:
    prepared = FeatureLabelSet(FEATURES, [LABEL], categories=Percentiles()).prepare(frame)
    assert prepared.task is Task.MULTICLASS and prepared.classes == ("down", "flat", "up")
    for part in prepared.parts().values():
        assert part.X.dtype == np.float32 and part.X.shape == (len(part), len(FEATURES))
        assert part.y.dtype == np.int64 and set(np.unique(part.y)) <= {0, 1, 2}
        assert part.label_value.dtype == np.float64
        assert str(part.index.dtype) == "datetime64[ns, UTC]"
    assert prepared.featureset["categories"] == Percentiles().definition()
    assert json.dumps({"s": prepared.scaling, "c": prepared.categories})


def test_categories_are_fitted_on_train_only(frame: pd.DataFrame) -> None:
    prepared = FeatureLabelSet(FEATURES, [LABEL], categories=Percentiles((33.3, 66.7))).prepare(frame)
    train_labels = frame.loc[prepared.train.index, LABEL.name].to_numpy()
    assert prepared.categories is not None
    assert prepared.categories["boundaries"] == pytest.approx(list(np.percentile(train_labels, [33.3, 66.7])))
    everything = list(np.percentile(frame[LABEL.name].to_numpy(), [33.3, 66.7]))
    assert prepared.categories["boundaries"] != pytest.approx(everything, rel=1e-6)
    np.testing.assert_array_equal(
        apply_categories(prepared.validation.label_value, prepared.categories), prepared.validation.y
    )


@pytest.mark.parametrize(("mode", "zero_class"), [("assign_left", 0), ("assign_right", 1), ("drop", None)])
def test_each_boundary_mode(frame: pd.DataFrame, mode: str, zero_class: int | None) -> None:
    # Kraken's 3-minute returns are exactly 0.0 on many rows, and 0.0 is their median: a boundary.
    fls = FeatureLabelSet(FEATURES, [LABEL], categories=Percentiles((50.0,), boundary=mode))  # type: ignore[arg-type]
    prepared = fls.prepare(frame)
    assert prepared.task is Task.BINARY and prepared.classes == ("down", "up")
    assert prepared.categories is not None and prepared.categories["boundaries"] == [0.0]
    for part in prepared.parts().values():
        zeros = part.label_value == 0.0
        if zero_class is None:
            assert not zeros.any()
        else:
            assert zeros.sum() > 10 and set(part.y[zeros]) == {zero_class}
        assert set(part.y[part.label_value < 0]) == {0} and set(part.y[part.label_value > 0]) == {1}
    if zero_class is None:
        kept = sum(len(p) for p in prepared.parts().values())
        assert kept < len(frame) - 2 * LABEL.horizon


def test_purge_gap_defaults_to_the_label_horizon(frame: pd.DataFrame) -> None:
    position = {t: i for i, t in enumerate(frame.index)}
    for split, gap in ((TimeSplit(), LABEL.horizon), (TimeSplit(0.6, 0.2, 0.2, purge=20), 20)):
        prepared = FeatureLabelSet(FEATURES, [LABEL]).prepare(frame, split)
        train, validation, test = prepared.train, prepared.validation, prepared.test
        assert position[validation.index[0]] - position[train.index[-1]] == gap + 1
        assert position[test.index[0]] - position[validation.index[-1]] == gap + 1
        assert validation.index[0] - train.index[-1] >= (gap + 1) * pd.Timedelta(minutes=1)
        assert len(train) + len(validation) + len(test) == len(frame) - 2 * gap


def test_walk_forward_folds_are_disjoint_and_ordered(frame: pd.DataFrame) -> None:
    folds = FeatureLabelSet(FEATURES, [LABEL]).walk_forward(frame, folds=3)
    assert len(folds) == 3
    for fold in folds:
        assert fold.train.index[-1] < fold.validation.index[0]
        assert fold.validation.index[-1] < fold.test.index[0]
    for earlier, later in itertools.pairwise(folds):
        assert earlier.test.index[-1] < later.test.index[0]  # test blocks disjoint, in order
        assert len(later.train) > len(earlier.train)  # expanding
        assert later.scaling != earlier.scaling  # each fold fitted on its own training rows
    assert folds[-1].test.index[-1] == frame.index[-1]


def test_windows_never_span_a_day_or_a_gap(frame: pd.DataFrame) -> None:
    window = 20
    fls = FeatureLabelSet(FEATURES, [LABEL], window=window)
    prepared = fls.prepare(frame)
    assert prepared.window == window
    minute = pd.Timedelta(minutes=1)
    all_times = pd.DatetimeIndex(frame.index)
    for part in prepared.parts().values():
        assert part.X.shape == (len(part), window, len(FEATURES))
        starts = part.index - (window - 1) * minute
        assert (starts.normalize() == part.index.normalize()).all()  # never across UTC midnight
        assert all_times.get_indexer(starts).min() >= 0  # the first row exists
        positions = all_times.get_indexer(part.index)
        assert (positions - all_times.get_indexer(starts) == window - 1).all()  # no gap inside
    # The real gap (no Coinbase bar 2023-03-04 17:00 .. 21:36, rows filled to 17:04): the first window
    # after it ends window - 1 bars after the first row after the gap.
    jump = int(np.argmax(np.diff(all_times.asi8)))
    first_row_after = all_times[jump + 1]
    assert first_row_after == pd.Timestamp("2023-03-04 21:37", tz="UTC")
    after_gap = prepared.train.index[prepared.train.index > all_times[jump]][0]
    assert after_gap == first_row_after + (window - 1) * minute
    # A window holds the scaled rows it ends on.
    k = len(prepared.test) // 2
    end = all_times.get_loc(prepared.test.index[k])
    rows = apply_scaling(frame.iloc[end - window + 1 : end + 1], prepared.scaling).to_numpy(dtype="float32")
    np.testing.assert_array_equal(prepared.test.X[k], rows)


@pytest.mark.parametrize("how", ["undersample", "oversample"])
def test_rebalance_applies_to_train_only(frame: pd.DataFrame, how: str) -> None:
    categories = Boundaries((-0.0005, 0.0005))
    plain = FeatureLabelSet(FEATURES, [LABEL], categories=categories).prepare(frame)
    balanced = FeatureLabelSet(FEATURES, [LABEL], categories=categories, rebalance=how).prepare(frame)  # type: ignore[arg-type]
    before = np.bincount(plain.train.y, minlength=3)
    after = np.bincount(balanced.train.y, minlength=3)
    assert before.max() > 2 * before.min()
    expected = before.min() if how == "undersample" else before.max()
    assert (after == expected).all()
    assert (np.diff(balanced.train.index.asi8) >= 0).all()  # still in time order
    np.testing.assert_array_equal(balanced.test.y, plain.test.y)
    np.testing.assert_array_equal(balanced.validation.X, plain.validation.X)


def test_prepare_refuses_a_frame_without_the_columns(frame: pd.DataFrame) -> None:
    fls = FeatureLabelSet(FEATURES, [LABEL])
    with pytest.raises(
        FeatureError, match=r"lacks the column\(s\) \['Volume\(\)\.kraken\(\)\.one_min\(\)'\]"
    ):
        fls.prepare(frame.drop(columns=[FEATURES[2].name]))
    with pytest.raises(FeatureError, match=r"The value of `label` is 'x'"):
        fls.prepare(frame, label="x")
    broken = frame.copy()
    broken.iloc[10, 0] = np.nan
    with pytest.raises(
        FeatureError, match=r"is nan at 2023-03-03T00:\d\d:00\+00:00, but features must be finite"
    ):
        fls.prepare(broken)


# ----------------------------------------------------------------------------- walk-forward folds
def test_walk_forward_prepares_each_fold_on_its_own_training_window(frame: pd.DataFrame) -> None:
    from atlas_ray.featurestore import FoldedSet
    from atlas_ray.featurestore._featuresets._scaling import fit_scaling

    fls = FeatureLabelSet(FEATURES, [LABEL], categories=Percentiles((33.3, 66.7)))
    folded = fls.prepare(frame, WalkForward(folds=3, test=0.15, embargo=4))
    assert isinstance(folded, FoldedSet) and len(folded.folds) == 3
    assert folded.split["purge"] == LABEL.horizon and folded.split["embargo"] == 4
    for fold in folded.folds:
        train = frame.loc[fold.train.index]
        assert fold.scaling == fit_scaling(train, list(fls.feature_names))  # fitted on its train only
        assert fold.train.index.max() < fold.validation.index.min()
        assert fold.validation.index.max() < folded.test.index.min()  # the test block after every fold
        assert (fold.test.index == folded.test.index).all()
    ends = [fold.validation.index.max() for fold in folded.folds]
    assert ends == sorted(ends)
    assert folded.last is folded.folds[-1] and folded.task is Task.MULTICLASS


# ------------------------------------------------------------------------------------ label gaps
def test_label_gaps_are_counted_and_dropped_on_request(frame: pd.DataFrame) -> None:
    counts = FeatureLabelSet(FEATURES, [LABEL]).label_gap_counts(frame)
    gaps = counts[LABEL.name]
    assert gaps > 0  # Kraken misses some bars in these four days
    stamps = frame.attrs["label_gaps"][LABEL.name]
    kept = FeatureLabelSet(FEATURES, [LABEL]).prepare(frame)
    dropped = FeatureLabelSet(FEATURES, [LABEL], label_gaps="drop").prepare(frame)
    for part in dropped.parts().values():
        assert not np.isin(part.index.asi8, stamps).any()
    assert sum(len(p) for p in kept.parts().values()) > sum(len(p) for p in dropped.parts().values())
    with pytest.raises(FeatureError, match=r"The value of `label_gaps` is 'fill', but must be one of"):
        FeatureLabelSet(FEATURES, [LABEL], label_gaps="fill")  # type: ignore[arg-type]
    fls = FeatureLabelSet(FEATURES, [LABEL], label_gaps="drop")
    assert FeatureLabelSet.from_definition(json.loads(json.dumps(fls.definition()))) == fls


def test_a_label_gap_is_a_missing_bar_within_the_label_horizon(minute_store: MarketStore) -> None:
    """Row t's 3-minute label spans bars t+1 .. t+3: it is a gap exactly when one of them is missing."""
    fls = FeatureLabelSet([Volume().kraken().one_min()], [LABEL])
    built = fls.build_local("2023-03-03", "2023-03-07", minute_store)
    bars = minute_store.bars("kraken", "btc_usd", LABEL.resolution, "2023-03-03", "2023-03-08")
    present = set(pd.DatetimeIndex(bars.index).asi8)
    step = LABEL.resolution.offset
    expected = [
        t.value for t in built.index if any((t + k * step).value not in present for k in (1, 2, 3))
    ]
    assert list(built.attrs["label_gaps"][LABEL.name]) == expected


def test_labels_of_several_horizons_and_markets_each_get_their_own_gaps(minute_store: MarketStore) -> None:
    """The labels share one read of each market (the longest horizon's window); each label's gaps are
    still its own horizon's over its own market's bars."""
    labels = [
        LABEL,
        LogReturns().kraken().one_min().lookforward(20),
        LogReturns().coinbase().one_min().lookforward(7),
    ]
    fls = FeatureLabelSet([Volume().kraken().one_min()], labels)
    built = fls.build_local("2023-03-03", "2023-03-07", minute_store)
    step = LABEL.resolution.offset
    for label, exchange, horizon in zip(labels, ("kraken", "kraken", "coinbase"), (3, 20, 7), strict=True):
        bars = minute_store.bars(exchange, "btc_usd", LABEL.resolution, "2023-03-03", "2023-03-08")
        present = set(pd.DatetimeIndex(bars.index).asi8)
        ahead = range(1, horizon + 1)
        expected = [t.value for t in built.index if any((t + k * step).value not in present for k in ahead)]
        assert expected  # the range holds gaps of both markets (Coinbase's 4h38m outage among them)
        assert list(built.attrs["label_gaps"][label.name]) == expected, label.name


def test_the_cache_key_changes_with_the_feature_code(monkeypatch: pytest.MonkeyPatch) -> None:
    from atlas_ray.featurestore._featuresets import _fs_cache

    start, end = pd.Timestamp("2023-03-01", tz="UTC"), pd.Timestamp("2023-03-02", tz="UTC")
    definition = FeatureLabelSet(FEATURES, [LABEL]).definition()
    before = _fs_cache.cache_key(definition, start, end, [])
    assert len(_fs_cache.feature_code_version()) == 64
    monkeypatch.setattr(_fs_cache, "feature_code_version", lambda: "a fixed feature")
    assert _fs_cache.cache_key(definition, start, end, []) != before


def test_rebalancing_draws_from_the_seed(frame: pd.DataFrame) -> None:
    fls = FeatureLabelSet(FEATURES, [LABEL], categories=Percentiles((50.0,)), rebalance="undersample")
    a = fls.prepare(frame, seed=1).train.index
    assert (a == fls.prepare(frame, seed=1).train.index).all()
    assert not (len(a) == len(fls.prepare(frame, seed=2).train.index)
                and (a == fls.prepare(frame, seed=2).train.index).all())
