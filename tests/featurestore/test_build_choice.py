"""``build`` picks the in-process build below ``LOCAL_BUILD_ROWS`` bars and Ray Data from there on;
the frame is the same either way."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from atlas_ray.featurestore import LogReturns, MarketStore, Volatility, Volume
from atlas_ray.featurestore._featuresets import _featureset as featureset_module
from atlas_ray.featurestore._featuresets._featureset import LOCAL_BUILD_ROWS, FeatureLabelSet

pytestmark = pytest.mark.slow  # builds on Ray Data: not in scripts/test.sh --quick

START, END = "2023-03-03", "2023-03-05"  # 2,880 minute bars, holding Coinbase's 4h38m gap


def featureset() -> FeatureLabelSet:
    return FeatureLabelSet(
        [LogReturns().coinbase().one_min().lookback(15), Volatility().kraken().one_min().window(30),
         Volume().kraken().one_min()],
        [LogReturns().coinbase().one_min().lookforward(5)],
    )  # fmt: skip


@pytest.fixture
def paths(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Which build ran: the real builds, each call recorded."""
    taken: list[str] = []
    real_ray, real_local = featureset_module.build_ray, featureset_module.build_local

    def ray_build(*args: Any, **kwargs: Any) -> pd.DataFrame:
        taken.append("ray")
        return real_ray(*args, **kwargs)

    def local_build(*args: Any, **kwargs: Any) -> pd.DataFrame:
        taken.append("local")
        return real_local(*args, **kwargs)

    monkeypatch.setattr(featureset_module, "build_ray", ray_build)
    monkeypatch.setattr(featureset_module, "build_local", local_build)
    return taken


def test_a_small_range_is_built_in_process_and_equals_the_ray_data_build(
    ray_cluster: None, minute_store: MarketStore, paths: list[str]
) -> None:
    fls = featureset()
    assert LOCAL_BUILD_ROWS > 2_880
    small = fls.build(START, END, minute_store, cache=False)
    assert paths == ["local"]
    forced = fls.build(START, END, minute_store, cache=False, parallel=True)
    assert paths == ["local", "ray"]
    pd.testing.assert_frame_equal(small, forced, check_exact=True)
    assert small.attrs == forced.attrs
    assert len(small) > 2_000


def test_from_the_threshold_on_ray_data_builds_and_parallel_false_keeps_it_in_process(
    ray_cluster: None, minute_store: MarketStore, paths: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fls = featureset()
    monkeypatch.setattr(featureset_module, "LOCAL_BUILD_ROWS", 2_880)  # the range holds exactly 2,880 bars
    big = fls.build(START, END, minute_store, cache=False)
    assert paths == ["ray"]
    local = fls.build(START, END, minute_store, cache=False, parallel=False)
    assert paths == ["ray", "local"]
    pd.testing.assert_frame_equal(big, local, check_exact=True)
    monkeypatch.setattr(featureset_module, "LOCAL_BUILD_ROWS", 2_881)
    fls.build(START, END, minute_store, cache=False)
    fls.build(START, END, minute_store, cache=False, chunk_rows=1_000)  # chunks are Ray Data's
    assert paths == ["ray", "local", "local", "ray"]
