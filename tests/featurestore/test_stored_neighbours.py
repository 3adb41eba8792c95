"""A price that jumps against the stored rows next to a file is refused as ``price_outlier``, as a jump
within a file is (``_stored_neighbours``); real bitFlyer trades and Kraken minute bars."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from atlas_ray.errors import IngestError
from atlas_ray.featurestore import MarketStore
from atlas_ray.featurestore._store._stored_neighbours import stored_neighbours

FLYER = "bitflyer_2018-01/bitflyer.execution.20180121.BTC_JPY.csv.gz"
MARKET = {"exchange": "bitflyer", "pair": "btc_jpy"}


def _executions(data_dir: Path) -> pd.DataFrame:
    """Real executions, oldest first, each with a time (the file is newest first)."""
    raw = pd.read_csv(data_dir / FLYER, dtype=str, keep_default_na=False, nrows=6000)
    raw = raw.loc[raw["exec_date"] != ""].drop_duplicates("id")
    # (The API's batches overlap: sorted, a slice of rows is a span of time.)
    return raw.sort_values(["exec_date", "id"], kind="stable").reset_index(drop=True)


def _file(frame: pd.DataFrame, path: Path, times: float = 1.0) -> Path:
    frame.assign(price=(frame["price"].astype(float) * times).astype(str)).to_csv(path, index=False)
    return path


def _store_with(data_dir: Path, root: Path, rows: slice) -> tuple[MarketStore, pd.DataFrame]:
    trades = _executions(data_dir)
    store = MarketStore(root)
    store.ingest(_file(trades.iloc[rows], root.parent / f"{root.name}_stored.csv.gz"), **MARKET)
    return store, trades


def test_a_short_file_ten_times_the_stored_price_just_after_them_is_refused(
    data_dir: Path, tmp_path: Path
) -> None:
    store, trades = _store_with(data_dir, tmp_path / "store", slice(0, 2000))
    jump = _file(trades.iloc[2000:2020], tmp_path / "next.csv.gz", times=10)
    # On its own the file agrees with itself: every row kept.
    assert MarketStore(tmp_path / "empty").ingest(jump, **MARKET).rows_written == 20
    report = store.ingest(jump, **MARKET)
    assert report.rows_written == 0 and report.rejected["price_outlier"] == 20
    example = report.examples["price_outlier"][0]
    assert example.field == "price"
    assert example.rule.endswith("(with the stored rows just before and after the file)")
    assert len(store.read("bitflyer", "btc_jpy", "trades")) == 2000


def test_a_file_just_before_the_stored_rows_is_measured_against_them(data_dir: Path, tmp_path: Path) -> None:
    store, trades = _store_with(data_dir, tmp_path / "store", slice(2000, 4000))
    report = store.ingest(_file(trades.iloc[1980:2000], tmp_path / "before.csv.gz", times=0.1), **MARKET)
    assert report.rejected["price_outlier"] == 20 and report.rows_written == 0


def test_the_real_rows_next_to_the_stored_ones_are_all_kept(data_dir: Path, tmp_path: Path) -> None:
    store, trades = _store_with(data_dir, tmp_path / "store", slice(0, 2000))
    before = store.ingest(_file(trades.iloc[2000:2020], tmp_path / "next.csv.gz"), **MARKET)
    assert before.rows_written == 20 and before.rejected["price_outlier"] == 0
    # A row that jumps in the middle of rows that continue the store is refused alone.
    middle = trades.iloc[2020:2040].copy()
    middle.loc[middle.index[5], "price"] = str(float(middle["price"].iloc[5]) * 10)
    report = store.ingest(_file(middle, tmp_path / "middle.csv.gz"), **MARKET)
    assert report.rejected["price_outlier"] == 1 and report.rows_written == 19


def test_strict_refuses_the_file_naming_the_row(data_dir: Path, tmp_path: Path) -> None:
    store, trades = _store_with(data_dir, tmp_path / "store", slice(0, 2000))
    jump = _file(trades.iloc[2000:2003], tmp_path / "next.csv.gz", times=10)
    with pytest.raises(
        IngestError, match=r"^ingest: next\.csv\.gz row \d field 'price': '\d+\.\d+': price_outlier: "
    ):
        store.ingest(jump, **MARKET, strict=True)


def test_bars_that_jump_against_the_stored_bars_are_refused(data_dir: Path, tmp_path: Path) -> None:
    raw = pd.read_parquet(data_dir / "minute_bars_2023-03" / "kraken_btcusd.parquet").iloc[:400]
    store = MarketStore(tmp_path / "store")
    raw.iloc[:300].to_parquet(tmp_path / "stored.parquet")
    store.ingest(tmp_path / "stored.parquet", exchange="kraken", pair="btc_usd")
    jump = raw.iloc[300:310].copy()
    jump[["open", "high", "low", "close"]] *= 10
    jump.to_parquet(tmp_path / "jump.parquet")
    report = store.ingest(tmp_path / "jump.parquet", exchange="kraken", pair="btc_usd")
    assert report.rejected["price_outlier"] == 10 and report.rows_written == 0


def test_neighbours_are_the_rows_next_to_the_span_never_inside_it(data_dir: Path, tmp_path: Path) -> None:
    store, _ = _store_with(data_dir, tmp_path / "store", slice(0, 4000))
    stored = store.read("bitflyer", "btc_jpy", "trades")
    first, last = stored.index[1000], stored.index[2000]
    found = stored_neighbours(store, "bitflyer", "btc_jpy", "trades", first, last, 50)
    assert list(found.before["price"]) == list(stored.loc[stored.index < first, "price"].iloc[-50:])
    assert list(found.after["price"]) == list(stored.loc[stored.index > last, "price"].iloc[:50])
    assert stored_neighbours(store, "bitflyer", "btc_jpy", "quotes", first, last, 50).empty


def test_a_whole_file_at_another_level_than_the_stored_rows_is_refused_in_one_line(
    data_dir: Path, tmp_path: Path
) -> None:
    """A rolling median follows a long file at another level; the edge medians do not."""
    store, trades = _store_with(data_dir, tmp_path / "store", slice(0, 2000))
    before = {p: p.read_bytes() for p in (tmp_path / "store").rglob("*.parquet")}
    path = _file(trades.iloc[2000:2500], tmp_path / "in_sen.csv.gz", times=100)
    assert MarketStore(tmp_path / "alone").ingest(path, **MARKET).rejected["price_outlier"] == 0
    with pytest.raises(IngestError) as refused:
        store.ingest(path, **MARKET)
    message = str(refused.value)
    assert (
        message.startswith("ingest: in_sen.csv.gz row ")
        and " field 'price': the file's first 50 prices " in message
    )
    assert "are 100x off the 50 stored rows just before them" in message
    assert message.endswith("a file in other units or of another market is refused as a whole")
    assert {p: p.read_bytes() for p in (tmp_path / "store").rglob("*.parquet")} == before


def test_stored_rows_more_than_a_day_away_are_not_neighbours(data_dir: Path, tmp_path: Path) -> None:
    store, _ = _store_with(data_dir, tmp_path / "store", slice(0, 2000))
    last = store.read("bitflyer", "btc_jpy", "trades").index[-1]
    later = last + pd.Timedelta(days=1, seconds=1)
    assert stored_neighbours(store, "bitflyer", "btc_jpy", "trades", later, later, 50).empty
    assert (
        len(
            stored_neighbours(
                store, "bitflyer", "btc_jpy", "trades", later, later, 50, pd.Timedelta(days=2)
            ).before
        )
        == 50
    )
