"""Building FeatureLabelSets on real Ray: partitioned == single-process, realignment, gaps, errors, cache."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from atlas_ray.errors import AtlasError, MissingDataError
from atlas_ray.featurestore import (
    FeatureLabelSet,
    InterExchangeSpread,
    LogReturns,
    MarketStore,
    Midpoint,
    Volatility,
    Volume,
)

pytestmark = pytest.mark.slow  # builds on Ray Data: not in scripts/test.sh --quick

START, END = "2023-03-03", "2023-03-06"  # holds Coinbase's gap: no bar from 2023-03-04 17:00 to 21:36


def featureset() -> FeatureLabelSet:
    """Halos of 30 and 45 rows back and 7 forward: a 97-row chunk edge always falls inside one."""
    return FeatureLabelSet(
        [
            LogReturns().coinbase().one_min().lookback(30),
            Volatility().coinbase().one_min().window(45),
            Volume().kraken().one_min(),
            InterExchangeSpread(Midpoint().coinbase().one_min(), Midpoint().kraken().one_min()),
        ],
        [LogReturns().coinbase().one_min().lookforward(7)],
    )


@pytest.fixture(scope="module")
def local_frame(minute_store: MarketStore) -> pd.DataFrame:
    return featureset().build_local(START, END, minute_store)


@pytest.mark.parametrize("chunk_rows", [None, 97, 1440, 2500])
def test_partitioned_build_equals_single_process_build(
    ray_cluster: None, minute_store: MarketStore, local_frame: pd.DataFrame, chunk_rows: int | None
) -> None:
    built = featureset().build(START, END, minute_store, chunk_rows=chunk_rows, cache=False, parallel=True)
    pd.testing.assert_frame_equal(built, local_frame, check_exact=True)
    # Each chunk finds its rows' label gaps from the bars it read: the same rows as one build finds.
    gaps = local_frame.attrs["label_gaps"][featureset().label_names[0]]
    assert len(gaps) >= 2  # the filled bars before Coinbase's gap
    assert built.attrs == local_frame.attrs
    assert list(built.columns) == [*featureset().feature_names, *featureset().label_names]
    assert (built.dtypes == "float64").all()
    assert str(built.index.dtype) == "datetime64[ns, UTC]"


def test_rows_inside_a_long_gap_are_dropped_and_short_fills_kept(local_frame: pd.DataFrame) -> None:
    assert not local_frame.isna().to_numpy().any()
    index = local_frame.index
    before = index[index < pd.Timestamp("2023-03-04 19:00", tz="UTC")][-1]
    after = index[index > pd.Timestamp("2023-03-04 19:00", tz="UTC")][0]
    # Coinbase's last bar before the gap is 16:59; fill_limit=5 fills 17:00 .. 17:04. The label looks 7
    # bars ahead, so 16:57 (needing 17:04, filled) is the last row kept. Bars resume at 21:37; the
    # Volatility window of 45 bars needs 21:37 .. 22:22, so 22:22 is the first row after the gap.
    assert before == pd.Timestamp("2023-03-04 16:57", tz="UTC")
    assert after == pd.Timestamp("2023-03-04 22:22", tz="UTC")


def test_realignment_to_the_common_valid_range(ray_cluster: None, minute_store: MarketStore) -> None:
    fls = featureset()
    # March 21st: Coinbase's last bar is 23:59, Kraken's 23:58; fills run 5 bars past each.
    start, end = "2023-03-21 20:00", "2023-03-22 02:00"
    coverage = fls.coverage(start, end, minute_store)
    volume, returns = "Volume().kraken().one_min()", fls.feature_names[0]
    assert coverage.loc[volume, "last_valid"] < coverage.loc[returns, "last_valid"]
    built = fls.build(start, end, minute_store, cache=False)
    # The label (7 bars ahead of Coinbase's last fill at 00:04) ends first, at 23:57.
    assert built.index[-1] == coverage["last_valid"].min() == pd.Timestamp("2023-03-21 23:57", tz="UTC")
    assert built.index[0] == coverage["first_valid"].max()
    # At the start of the data, the lookback halos cut the leading rows.
    early = fls.build("2023-03-01 00:00", "2023-03-01 03:00", minute_store, cache=False)
    assert early.index[0] == pd.Timestamp("2023-03-01 00:45", tz="UTC")  # Volatility window(45)


def test_times_are_read_as_utc(ray_cluster: None, minute_store: MarketStore) -> None:
    fls = featureset()
    naive = fls.build("2023-03-05 00:00", "2023-03-05 06:00", minute_store, cache=False)
    zoned = fls.build("2023-03-05T01:00+01:00", "2023-03-05T07:00+01:00", minute_store, cache=False)
    pd.testing.assert_frame_equal(naive, zoned, check_exact=True)
    assert naive.index[0] == pd.Timestamp("2023-03-05 00:00", tz="UTC")
    assert naive.index[-1] == pd.Timestamp("2023-03-05 05:59", tz="UTC")


def test_empty_range_and_range_without_data_are_refused(minute_store: MarketStore) -> None:
    fls = featureset()
    with pytest.raises(AtlasError, match=r"range \[2023-03-05T00:00:00\+00:00, 2023-03-05T00:00:00\+00:00\)"):
        fls.build("2023-03-05", "2023-03-05", minute_store)
    # the source rule decides over the range's days: a range without data is refused before any work
    with pytest.raises(AtlasError, match=r"bars for coinbase btc_usd on a day of \[2024-01-01, 2024-01-01\]"):
        fls.build_local("2024-01-01", "2024-01-02", minute_store)


def test_missing_data_is_refused_before_building(minute_store: MarketStore) -> None:
    fls = FeatureLabelSet([Volume().bitstamp().one_min()], [LogReturns().coinbase().one_min().lookforward(1)])
    with pytest.raises(MissingDataError, match=r"Volume\(\)\.bitstamp\(\)\.one_min\(\).*bitstamp btc_usd"):
        fls.build(START, END, minute_store)


@pytest.fixture
def own_store(minute_store: MarketStore, tmp_path: Path) -> MarketStore:
    """A writable copy of the real minute-bar store (the shared one stays read-only)."""
    shutil.copytree(minute_store.root, tmp_path / "store")
    return MarketStore(tmp_path / "store")


def test_second_build_reads_the_cache(ray_cluster: None, own_store: MarketStore) -> None:
    fls = featureset()
    start, end = "2023-03-05", "2023-03-06"
    path = fls.cache_path(start, end, own_store)
    assert path.startswith(str(Path(own_store.root).resolve() / "_featuresets"))
    assert not os.path.exists(path)
    first = fls.build(start, end, own_store)
    assert os.path.exists(path)
    pd.testing.assert_frame_equal(pq.read_table(path).to_pandas(), first, check_exact=True)
    # Mark the cached file: a second build that returns the mark read the cache and computed nothing.
    marked = first.copy()
    marked.iloc[0, 0] = 12345.0
    pq.write_table(pa.Table.from_pandas(marked, preserve_index=True), path)
    second = fls.build(start, end, own_store)
    assert second.iloc[0, 0] == 12345.0
    pd.testing.assert_frame_equal(second.iloc[1:], first.iloc[1:], check_exact=True)
    # New data in the range (a partition rewritten) changes the key: the set is built again.
    partition = next(p for p in own_store.partitions() if p.exchange == "kraken" and p.date == "2023-03-05")
    os.utime(partition.path, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    assert fls.cache_path(start, end, own_store) != path
    third = fls.build(start, end, own_store)
    pd.testing.assert_frame_equal(third, first, check_exact=True)
    assert np.isclose(third.iloc[0, 0], first.iloc[0, 0])


def test_ray_data_settings_hold_for_the_build_only() -> None:
    """Progress output off, blocks in order, and no per-operator CPU reservation (which left the chunk
    computation one CPU of two on a small cluster) during a build; the user's settings after it."""
    from ray.data import DataContext

    from atlas_ray.featurestore._featuresets._build import _data_context

    context = DataContext.get_current()
    before = (context.op_resource_reservation_enabled, context.enable_progress_bars)
    with _data_context():
        assert context.op_resource_reservation_enabled is False
        assert context.enable_progress_bars is False
        assert context.execution_options.preserve_order is True
    assert (context.op_resource_reservation_enabled, context.enable_progress_bars) == before
