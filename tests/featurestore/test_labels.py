"""Labels made categorical: boundaries fitted on training values only, each boundary mode, class names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atlas_ray.errors import FeatureError
from atlas_ray.featurestore._featuresets._labels import (
    Boundaries,
    Percentiles,
    apply_categories,
    categories_from_definition,
    class_names,
    fit_categories,
)


@pytest.fixture(scope="module")
def kraken_returns(data_dir: Path) -> np.ndarray:
    """Real one-minute log returns of Kraken BTC-USD (many exactly 0: a price that did not move)."""
    bars = pd.read_parquet(data_dir / "minute_bars_2023-03" / "kraken_btcusd.parquet")
    return np.log(bars["close"]).diff().dropna().to_numpy()


def test_percentiles_are_fitted_on_the_values_given(kraken_returns: np.ndarray) -> None:
    train = kraken_returns[: len(kraken_returns) // 2]
    fitted = fit_categories(train, Percentiles((33.3, 66.7)))
    assert fitted["kind"] == "percentiles"
    assert fitted["boundaries"] == pytest.approx(list(np.percentile(train, [33.3, 66.7])))
    everything = fit_categories(kraken_returns, Percentiles((33.3, 66.7)))
    assert fitted["boundaries"] != everything["boundaries"]
    ids = apply_categories(train, fitted)
    shares = np.bincount(ids, minlength=3) / len(ids)
    assert shares == pytest.approx([0.333, 0.334, 0.333], abs=0.02)
    assert fitted["classes"] == ["down", "flat", "up"]


@pytest.mark.parametrize(
    ("mode", "zero_class"),
    [("assign_left", 0), ("assign_right", 1), ("drop", -1)],
)
def test_boundary_modes_on_values_that_lie_on_the_boundary(
    kraken_returns: np.ndarray, mode: str, zero_class: int
) -> None:
    # The median of Kraken's returns is exactly 0.0, a value thousands of rows hold.
    fitted = fit_categories(kraken_returns, Percentiles((50.0,), boundary=mode))  # type: ignore[arg-type]
    assert fitted["boundaries"] == [0.0]
    assert fitted["classes"] == ["down", "up"]
    ids = apply_categories(kraken_returns, fitted)
    on_boundary = kraken_returns == 0.0
    assert on_boundary.sum() > 1000
    assert set(ids[on_boundary]) == {zero_class}
    assert set(ids[kraken_returns < 0]) == {0}
    assert set(ids[kraken_returns > 0]) == {1}


def test_fixed_boundaries_and_nan() -> None:
    fitted = fit_categories(np.array([]), Boundaries((-0.0005, 0.0005)))
    ids = apply_categories([-0.001, -0.0005, 0.0, 0.0005, 0.002, np.nan], fitted)
    assert ids.tolist() == [0, 0, 1, 1, 2, -1]
    right = fit_categories(np.array([]), Boundaries((-0.0005, 0.0005), boundary="assign_right"))
    assert apply_categories([-0.0005, 0.0005], right).tolist() == [1, 2]


def test_class_names() -> None:
    assert class_names(2) == ("down", "up")
    assert class_names(3) == ("down", "flat", "up")
    assert class_names(5) == ("c0", "c1", "c2", "c3", "c4")


def test_definition_round_trip() -> None:
    for categories in (Percentiles((10.0, 50.0, 90.0), boundary="drop"), Boundaries((0.0,))):
        assert categories_from_definition(categories.definition()) == categories


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Percentiles((66.7, 33.3)), "must be strictly increasing"),
        (lambda: Percentiles((0.0, 50.0)), "0 < p < 100"),
        (lambda: Percentiles(()), "non-empty"),
        (lambda: Boundaries((0.0, float("nan"))), "finite number"),
        (lambda: Boundaries((0.0,), boundary="middle"), "`Boundaries.boundary` is 'middle'"),
        (lambda: categories_from_definition({"kind": "quantiles", "values": [1]}), "'percentiles' or"),
        (lambda: categories_from_definition({"kind": "boundaries", "values": [0], "x": 1}), "['x']"),
    ],
)
def test_bad_definitions_are_refused(make: object, message: str) -> None:
    with pytest.raises(FeatureError) as error:
        make()  # type: ignore[operator]
    assert message in str(error.value)


def test_percentiles_that_collapse_are_refused(kraken_returns: np.ndarray) -> None:
    # Around the median the returns are all exactly 0.0: the 49th and 51st percentiles coincide.
    with pytest.raises(FeatureError, match=r"give boundaries \[0\.0, 0\.0\].*strictly increasing"):
        fit_categories(kraken_returns, Percentiles((49.0, 51.0)), label="LogReturns")
