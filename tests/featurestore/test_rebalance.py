"""Rebalancing the training classes: counts after undersampling, oversampling and SMOTE, time order kept;
SMOTE through ``FeatureLabelSet.prepare`` on real walk-forward folds (training rows only, seeded), its
refusals and its definition round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atlas_ray.errors import FeatureError
from atlas_ray.featurestore import (
    FeatureLabelSet,
    FoldedSet,
    LogReturns,
    MarketStore,
    Smote,
    SplitPart,
    Volatility,
    Volume,
    WalkForward,
)
from atlas_ray.featurestore._featuresets._fs_cache import cache_key
from atlas_ray.featurestore._featuresets._labels import Boundaries, apply_categories, fit_categories
from atlas_ray.featurestore._featuresets._rebalance import rebalance_positions


@pytest.fixture(scope="module")
def classes(data_dir: Path) -> np.ndarray:
    bars = pd.read_parquet(data_dir / "minute_bars_2023-03" / "coinbase_btcusd.parquet")
    returns = np.log(bars["close"]).diff().dropna().to_numpy()
    ids = apply_categories(returns, fit_categories(returns, Boundaries((-0.001, 0.001))))
    counts = np.bincount(ids)
    assert counts.max() > 3 * counts.min()  # real returns: "flat" dominates
    return ids


def test_undersample_keeps_the_rarest_count(classes: np.ndarray) -> None:
    rows = rebalance_positions(classes, "undersample")
    counts = np.bincount(classes[rows])
    assert (counts == np.bincount(classes).min()).all()
    assert (np.diff(rows) > 0).all()  # sorted, no row twice


def test_oversample_reaches_the_commonest_count(classes: np.ndarray) -> None:
    rows = rebalance_positions(classes, "oversample")
    counts = np.bincount(classes[rows])
    assert (counts == np.bincount(classes).max()).all()
    assert (np.diff(rows) >= 0).all()
    assert set(range(len(classes))) <= set(rows.tolist())  # every original row kept


def test_same_seed_same_rows(classes: np.ndarray) -> None:
    np.testing.assert_array_equal(
        rebalance_positions(classes, "undersample"), rebalance_positions(classes, "undersample")
    )


def test_bad_rebalance_is_refused(classes: np.ndarray) -> None:
    with pytest.raises(FeatureError, match=r"The value of `rebalance` is 'adasyn', but must be None, Smote"):
        rebalance_positions(classes, "adasyn")


def test_the_seed_decides_the_draws(classes: np.ndarray) -> None:
    a = rebalance_positions(classes, "undersample", seed=1)
    np.testing.assert_array_equal(a, rebalance_positions(classes, "undersample", seed=1))
    assert not np.array_equal(a, rebalance_positions(classes, "undersample", seed=2))


# ------------------------------------------------------------------------------------------ SMOTE
FEATURES = [
    LogReturns().kraken().one_min().lookback(5),
    Volatility().kraken().one_min().window(30),
    Volume().kraken().one_min(),
]
LABEL = LogReturns().kraken().one_min().lookforward(3)
SKEWED = Boundaries((-0.0008, 0.0008))  # real 3-minute returns: "flat" is most rows
SPLIT = WalkForward(folds=2, test=0.2)


def _smote(rebalance: object = "smote", **more: object) -> FeatureLabelSet:
    more = {"categories": SKEWED, **more}
    return FeatureLabelSet(FEATURES, [LABEL], rebalance=rebalance, **more)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def frame(minute_store: MarketStore) -> pd.DataFrame:
    return FeatureLabelSet(FEATURES, [LABEL]).build_local("2023-03-09", "2023-03-11", minute_store)


@pytest.fixture(scope="module")
def plain(frame: pd.DataFrame) -> FoldedSet:
    return FeatureLabelSet(FEATURES, [LABEL], categories=SKEWED).prepare(frame, SPLIT, seed=7)


@pytest.fixture(scope="module")
def smoted(frame: pd.DataFrame) -> FoldedSet:
    return _smote(Smote(k_neighbors=3)).prepare(frame, SPLIT, seed=7)


def _same(a: SplitPart, b: SplitPart) -> None:
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.index.asi8, b.index.asi8)
    np.testing.assert_array_equal(a.label_value, b.label_value)


def test_smote_adds_rows_to_each_folds_training_part_only(plain: FoldedSet, smoted: FoldedSet) -> None:
    for before, after in zip(plain.folds, smoted.folds, strict=True):
        counts = np.bincount(before.train.y, minlength=3)
        assert counts.max() > 3 * counts.min()  # real returns: skewed
        assert (np.bincount(after.train.y, minlength=3) == counts.max()).all()  # balanced at the commonest
        assert (np.diff(after.train.index.asi8) >= 0).all()  # in time order
        _same(after.validation, before.validation)  # never resampled
        _same(after.test, before.test)
        # every real training row is kept; the added rows are new points (not copies of real rows)
        real = {row.tobytes() for row in before.train.X}
        kept = [row.tobytes() in real for row in after.train.X]
        assert sum(kept) == len(before.train)
        assert len(after.train) - sum(kept) == counts.max() * 3 - counts.sum()
        # a synthetic row takes the time of a real training row of its own class
        stamps = dict(zip(before.train.index.asi8, before.train.y, strict=True))
        assert all(stamps[t] == c for t, c in zip(after.train.index.asi8, after.train.y, strict=True))


def test_smote_is_seeded_from_the_prepare_seed(frame: pd.DataFrame, smoted: FoldedSet) -> None:
    again = _smote(Smote(k_neighbors=3)).prepare(frame, SPLIT, seed=7)
    _same(again.last.train, smoted.last.train)
    other = _smote(Smote(k_neighbors=3)).prepare(frame, SPLIT, seed=8)
    assert not np.array_equal(other.last.train.X, smoted.last.train.X)


def test_smote_refusals_name_the_field(frame: pd.DataFrame) -> None:
    smote = r"^The value of `rebalance` is Smote\(k_neighbors=5\), but "
    regression = r"rebalancing needs `categories` \(a regression label has no classes to balance\)\.$"
    with pytest.raises(FeatureError, match=smote + regression):
        FeatureLabelSet(FEATURES, [LABEL], rebalance="smote")
    windows = r"SMOTE is refused with `window` \(8\): use rebalance='oversample' for windows"
    with pytest.raises(FeatureError, match=smote + windows):
        _smote(window=8)
    with pytest.raises(FeatureError, match=r"^The value of `k_neighbors` is 0, but must be an integer"):
        Smote(k_neighbors=0)
    rare = _smote(Smote(k_neighbors=50), categories=Boundaries((-0.004, 0.004)))
    too_few = (r"^The training part has \d+ row\(s\) of class '(down|up)', but "
               r"rebalance=Smote\(k_neighbors=50\) needs at least k_neighbors \+ 1 = 51 in every class")
    with pytest.raises(FeatureError, match=too_few):
        rare.prepare(frame, SPLIT)


def test_smote_round_trips_through_definitions() -> None:
    """``definition()`` is what result.json keeps and what the featureset cache key (kept in
    experiment.json's provenance) hashes."""
    fls = _smote(Smote(k_neighbors=3))
    definition = json.loads(json.dumps(fls.definition()))
    assert definition["rebalance"] == {"method": "smote", "k_neighbors": 3}
    assert FeatureLabelSet.from_definition(definition) == fls
    assert _smote("smote") == _smote(Smote())  # one spelling, one definition
    assert _smote("oversample").definition()["rebalance"] == "oversample"  # old definitions unchanged
    lo, hi = pd.Timestamp("2023-03-09", tz="UTC"), pd.Timestamp("2023-03-11", tz="UTC")
    key = cache_key(fls.definition(), lo, hi, [])
    assert cache_key(FeatureLabelSet.from_definition(definition).definition(), lo, hi, []) == key
    assert cache_key(_smote(Smote(k_neighbors=4)).definition(), lo, hi, []) != key
    with pytest.raises(FeatureError, match=r"The value of `rebalance` is \{'method': 'adasyn'\}"):
        FeatureLabelSet.from_definition({**definition, "rebalance": {"method": "adasyn"}})
