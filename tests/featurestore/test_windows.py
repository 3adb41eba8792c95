"""Windows never span a UTC day boundary or a gap in the data (a real Coinbase gap of 4h38m)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atlas_ray.errors import FeatureError
from atlas_ray.featurestore._featuresets._windows import cut_windows, window_ends

MINUTE = pd.Timedelta(minutes=1)


@pytest.fixture(scope="module")
def coinbase(data_dir: Path) -> pd.DataFrame:
    bars = pd.read_parquet(data_dir / "minute_bars_2023-03" / "coinbase_btcusd.parquet")
    return bars.loc["2023-03-03":"2023-03-05", ["close", "volume"]]


def test_windows_never_span_a_day_or_a_gap(coinbase: pd.DataFrame) -> None:
    index = pd.DatetimeIndex(coinbase.index)
    gaps = index[1:][np.diff(index.asi8) > MINUTE.value]
    assert pd.Timestamp("2023-03-04 21:37", tz="UTC") in gaps  # the real 4h38m gap
    window = 30
    ends = window_ends(index, window, MINUTE)
    assert len(ends) > 3000
    starts = index[ends - window + 1]
    stops = index[ends]
    assert ((stops - starts) == (window - 1) * MINUTE).all()  # consecutive bars only
    assert (starts.normalize() == stops.normalize()).all()  # one UTC day
    # Every window that could be cut is: a window ends wherever the previous 30 bars are whole.
    expected = [
        j
        for j in range(window - 1, len(index))
        if index[j] - index[j - window + 1] == (window - 1) * MINUTE
        and index[j].normalize() == index[j - window + 1].normalize()
    ]
    assert ends.tolist() == expected


def test_cut_windows_shape_and_content(coinbase: pd.DataFrame) -> None:
    values = coinbase.to_numpy(dtype="float32")
    ends = window_ends(pd.DatetimeIndex(coinbase.index), 5, MINUTE)
    windows = cut_windows(values, ends, 5)
    assert windows.shape == (len(ends), 5, 2)
    k = len(ends) // 2
    np.testing.assert_array_equal(windows[k], values[ends[k] - 4 : ends[k] + 1])
    assert windows.flags["C_CONTIGUOUS"]


def test_bad_window_is_refused(coinbase: pd.DataFrame) -> None:
    with pytest.raises(FeatureError, match=r"The value of `window` is 0, but must be"):
        window_ends(pd.DatetimeIndex(coinbase.index), 0, MINUTE)
