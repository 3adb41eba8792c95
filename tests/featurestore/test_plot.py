"""``plot_data`` draws a real built featureset headless; ``coverage`` summarises a range."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from atlas_ray.featurestore import FeatureLabelSet, LogReturns, MarketStore, Volatility, Volume

pytestmark = pytest.mark.slow  # starts Ray: not in scripts/test.sh --quick

FLS = FeatureLabelSet(
    [
        LogReturns().coinbase().one_min().lookback(5),
        Volatility().coinbase().one_min().window(30),
        Volume().kraken().one_min(),
    ],
    [LogReturns().coinbase().one_min().lookforward(1)],
)


def _pixels(figure: Figure) -> np.ndarray:
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())[..., :3]  # type: ignore[attr-defined]


@pytest.fixture
def own_store(minute_store: MarketStore, tmp_path: Path) -> MarketStore:
    shutil.copytree(minute_store.root, tmp_path / "store")  # plot_data builds, and the build caches
    return MarketStore(tmp_path / "store")


@pytest.mark.parametrize("subplots", [True, False])
def test_plot_data_renders_the_series(ray_cluster: None, own_store: MarketStore, subplots: bool) -> None:
    figure = FLS.plot_data("2023-03-04 12:00", "2023-03-05 00:00", subplots=subplots, store=own_store)
    axes = figure.get_axes()
    assert len(axes) == (4 if subplots else 1)
    lines = [line for ax in axes for line in ax.get_lines()]
    assert len(lines) == 4
    assert all(len(line.get_xdata()) > 100 for line in lines)  # type: ignore[arg-type]
    pixels = _pixels(figure)
    coloured = np.any(np.abs(pixels.astype(int) - 255) > 30, axis=-1)
    assert coloured.mean() > 0.02  # ink on the page, not a blank canvas
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20


def test_coverage_reports_valid_ranges_nan_share_and_gaps(minute_store: MarketStore) -> None:
    coverage = FLS.coverage("2023-03-04", "2023-03-05", minute_store)
    assert list(coverage.index) == [*FLS.feature_names, *FLS.label_names]
    assert list(coverage.columns) == ["first_valid", "last_valid", "nan_share", "gaps"]
    volatility = coverage.loc[FLS.feature_names[1]]
    # Coinbase has no bar 17:00 .. 21:36 on March 4th (277 bars): 5 are filled, 272 stay NaN, and the
    # volatility window needs 30 more bars after 21:37 to recover: one gap of 302 rows.
    assert volatility["gaps"] == 1
    assert volatility["nan_share"] == pytest.approx((277 - 5 + 30) / 1440)
    assert coverage.loc["Volume().kraken().one_min()", "gaps"] == 0
    assert coverage.loc["Volume().kraken().one_min()", "first_valid"] == pd.Timestamp("2023-03-04", tz="UTC")
