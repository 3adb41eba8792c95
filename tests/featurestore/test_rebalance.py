"""Rebalancing the training classes: counts after undersampling and oversampling, time order kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atlas_ray.errors import FeatureError
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
    with pytest.raises(FeatureError, match=r"The value of `rebalance` is 'smote'"):
        rebalance_positions(classes, "smote")


def test_the_seed_decides_the_draws(classes: np.ndarray) -> None:
    a = rebalance_positions(classes, "undersample", seed=1)
    np.testing.assert_array_equal(a, rebalance_positions(classes, "undersample", seed=1))
    assert not np.array_equal(a, rebalance_positions(classes, "undersample", seed=2))
