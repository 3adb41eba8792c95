"""Z-scaling fitted on the training part only, applied unchanged to later rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atlas_ray.errors import FeatureError
from atlas_ray.featurestore._featuresets._scaling import apply_scaling, fit_scaling, identity_scaling


@pytest.fixture(scope="module")
def frame(data_dir: Path) -> pd.DataFrame:
    bars = pd.read_parquet(data_dir / "minute_bars_2023-03" / "coinbase_btcusd.parquet")
    return pd.DataFrame({"close": bars["close"], "volume": bars["volume"], "flat": 1.0})


def test_train_statistics_are_zero_and_one_and_test_is_not(frame: pd.DataFrame) -> None:
    train, test = frame.iloc[:10_000], frame.iloc[20_000:]
    scaling = fit_scaling(train, ["close", "volume"])
    assert scaling["mean"]["close"] == pytest.approx(train["close"].mean())
    scaled_train = apply_scaling(train, scaling)
    assert scaled_train.mean().to_numpy() == pytest.approx([0.0, 0.0], abs=1e-9)
    assert scaled_train.std(ddof=0).to_numpy() == pytest.approx([1.0, 1.0])
    # Prices rose after the SVB weekend: scaled with training statistics the test part is far from 0.
    scaled_test = apply_scaling(test, scaling)
    assert abs(scaled_test["close"].mean()) > 1.0


def test_constant_column_is_centred_not_divided_by_zero(frame: pd.DataFrame) -> None:
    scaling = fit_scaling(frame, ["flat"])
    assert scaling == {"mean": {"flat": 1.0}, "std": {"flat": 1.0}}
    assert (apply_scaling(frame, scaling)["flat"] == 0.0).all()


def test_identity_and_bad_scaling(frame: pd.DataFrame) -> None:
    same = apply_scaling(frame, identity_scaling(["close"]))
    np.testing.assert_array_equal(same["close"].to_numpy(), frame["close"].to_numpy())
    with pytest.raises(FeatureError, match=r"lacks the column\(s\) \['spread'\]"):
        apply_scaling(frame, {"mean": {"spread": 0.0}, "std": {"spread": 1.0}})
    with pytest.raises(FeatureError, match="same names"):
        apply_scaling(frame, {"mean": {"close": 0.0}})
