"""Format variants: copies of the real files as other exports write them (renamed, extra and reordered
columns, quoted numbers, other time zone notations) read into exactly the rows of the original; a file
no format accepts is refused naming its columns and the closest format; two overlapping versions of an
export add each trade once."""

from __future__ import annotations

import csv
import io
import lzma
from pathlib import Path

import pandas as pd
import pytest

from atlas_ray.errors import IngestError
from atlas_ray.featurestore import MarketStore

FLYER = "bitflyer_2018-01"
EXECUTIONS = f"{FLYER}/bitflyer.execution.20180122.BTC_JPY.csv.gz"
ROWS = 15_000


@pytest.fixture(scope="module")
def executions(data_dir: Path) -> pd.DataFrame:
    """The first rows of one real day of bitFlyer executions, every field as the text in the file."""
    return pd.read_csv(data_dir / EXECUTIONS, dtype=str, keep_default_na=False, nrows=ROWS)


def _write(frame: pd.DataFrame, path: Path, quote_all: bool = False) -> Path:
    frame.to_csv(path, index=False, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL)
    return path


def _utc_z(text: pd.Series) -> pd.Series:
    """``2018-01-22T00:00:01.234+09:00`` written as UTC with a ``Z``."""
    times = pd.to_datetime(text, format="ISO8601", utc=True)
    return times.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"


def _trades(store: MarketStore) -> pd.DataFrame:
    return store.read("bitflyer", "btc_jpy", "trades")


@pytest.fixture(scope="module")
def original(executions: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    folder = tmp_path_factory.mktemp("variants_original")
    store = MarketStore(folder / "store")
    store.ingest(_write(executions, folder / "original.csv.gz"), exchange="bitflyer", pair="btc_jpy")
    return _trades(store)


@pytest.mark.parametrize(
    "variant",
    ["renamed_id", "shuffled_columns", "extra_columns", "quoted_numbers", "utc_z", "compact_offset"],
)
def test_execution_variants_read_as_the_original(
    executions: pd.DataFrame, original: pd.DataFrame, tmp_path: Path, variant: str
) -> None:
    frame = executions.copy()
    quote_all = False
    if variant == "renamed_id":
        frame = frame.rename(columns={"id": "exec_id", "exec_date": "Exec Date"})
    elif variant == "shuffled_columns":
        frame = frame[list(reversed(frame.columns))]
    elif variant == "extra_columns":
        frame.insert(3, "venue", "tokyo")
        frame["fee"] = "0.0"
    elif variant == "quoted_numbers":
        quote_all = True
    elif variant == "utc_z":
        frame["exec_date"] = _utc_z(frame["exec_date"])
    elif variant == "compact_offset":
        frame["exec_date"] = frame["exec_date"].str.replace("+09:00", "+0900", regex=False)
    store = MarketStore(tmp_path / "store")
    report = store.ingest(
        _write(frame, tmp_path / f"{variant}.csv.gz", quote_all), exchange="bitflyer", pair="btc_jpy"
    )
    assert report.format == "bitflyer_executions"
    pd.testing.assert_frame_equal(_trades(store), original)


def test_minute_bar_variants_read_as_the_original(data_dir: Path, tmp_path: Path) -> None:
    path = data_dir / "minute_bars_2023-03" / "binance_btcusdt.parquet"
    clean = MarketStore(tmp_path / "clean")
    clean.ingest(path, exchange="binance", pair="btc_usdt")
    frame = pd.read_parquet(path).reset_index()
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S UTC")
    renamed = frame.rename(
        columns={
            "timestamp": "Open Time",
            "quote_volume": "Quote Asset Volume",
            "trades": "Number of Trades",
            "volume": "Volume",
        }
    )
    renamed = renamed[list(reversed(renamed.columns))]
    renamed["exchange_note"] = "binance.us"
    variant = tmp_path / "klines_variant.csv"
    renamed.to_csv(variant, index=False, quoting=csv.QUOTE_NONNUMERIC)
    store = MarketStore(tmp_path / "store")
    report = store.ingest(variant, exchange="binance", pair="btc_usdt")
    assert report.format == "minute_bars" and report.kinds == ("bars_1m",)
    pd.testing.assert_frame_equal(
        store.read("binance", "btc_usdt", "bars_1m"), clean.read("binance", "btc_usdt", "bars_1m")
    )


def test_order_event_variant_reads_as_the_original(
    book_store: MarketStore, data_dir: Path, tmp_path: Path
) -> None:
    raw = pd.read_csv(
        io.BytesIO(lzma.decompress((data_dir / "bitstamp_orders_2015-05-01" / "orders.csv.xz").read_bytes())),
        dtype=str,
    )
    variant = raw.rename(columns={"id": "order_id", "direction": "side", "action": "event"})
    variant = variant[["side", "price", "event", "timestamp", "volume", "order_id"]]
    path = tmp_path / "orders_variant.csv"
    variant.to_csv(path, index=False)
    store = MarketStore(tmp_path / "store")
    store.ingest(path, exchange="bitstamp", pair="btc_usd")
    pd.testing.assert_frame_equal(store.book("bitstamp", "btc_usd"), book_store.book("bitstamp", "btc_usd"))


def test_unreadable_header_names_its_columns_and_the_closest_format(
    executions: pd.DataFrame, tmp_path: Path
) -> None:
    frame = executions.rename(columns={"id": "serial", "side": "taker"})
    path = _write(frame, tmp_path / "odd.csv.gz")
    store = MarketStore(tmp_path / "store")
    with pytest.raises(IngestError) as caught:
        store.ingest(path, exchange="bitflyer", pair="btc_jpy")
    message = str(caught.value)
    assert "\n" not in message
    assert "domain, product_code, loaded, serial, exec_date, taker, price, size" in message
    assert "the closest is bitflyer_executions, which also needs id (or exec_id" in message
    assert "side (or taker_side" in message
    with pytest.raises(IngestError, match=r"lacks the columns id \(or exec_id"):
        store.ingest(path, exchange="bitflyer", pair="btc_jpy", format="bitflyer_executions")
    assert store.exchanges() == []


def test_two_overlapping_export_versions_add_each_trade_once(
    executions: pd.DataFrame, original: pd.DataFrame, tmp_path: Path
) -> None:
    first = executions.iloc[:10_000]
    # A later export: another id column name, times in UTC cut to whole seconds, every field quoted, a
    # new column; its first 4,000 rows are trades the first version holds already (same ids, but not
    # the same times: only the id says they are the same trades).
    second = executions.iloc[6_000:].rename(columns={"id": "execution_id"})
    whole_seconds = pd.to_datetime(second["exec_date"], format="ISO8601", utc=True).dt.floor("s")
    second = second.assign(exec_date=whole_seconds.dt.strftime("%Y-%m-%dT%H:%M:%SZ"), exported="v2")
    store = MarketStore(tmp_path / "store")
    one = store.ingest(_write(first, tmp_path / "v1.csv.gz"), exchange="bitflyer", pair="btc_jpy")
    two = store.ingest(_write(second, tmp_path / "v2.csv.gz", True), exchange="bitflyer", pair="btc_jpy")
    stored = _trades(store)
    assert stored["trade_id"].is_unique
    assert set(stored["trade_id"]) == set(original["trade_id"])
    assert one.rows_written + two.rows_written == len(stored) == len(original)
    assert two.rejected["duplicate"] > 3_900
    from_first = original["trade_id"].isin(first["id"])
    pd.testing.assert_frame_equal(stored.loc[stored["trade_id"].isin(first["id"])], original.loc[from_first])


def test_cdd_variant_reads_as_the_original(cdd_store: MarketStore, data_dir: Path, tmp_path: Path) -> None:
    lines = [
        line
        for line in (data_dir / "hourly_cdd" / "Bitstamp_BTCUSD_1h.csv").read_bytes().split(b"\n")[1:]
        if line.strip()
    ]
    rows = []
    for line in lines:
        try:
            fields = line.decode("utf-8").split(";")
        except UnicodeDecodeError:
            continue
        stamp = pd.Timestamp(pd.to_datetime(fields[0], format="%Y-%m-%d %I-%p"), tz="UTC")
        rows.append([str(stamp.value // 1_000_000), fields[1], *fields[2:6], fields[7], fields[6], "12"])
    # A newer CryptoDataDownload layout: the site line, commas, a Unix column in ms, the quote volume
    # first, a trade count column.
    header = "unix,symbol,open,high,low,close,Volume USD,Volume BTC,tradecount"
    text = "https://www.CryptoDataDownload.com\n" + header + "\n" + "\n".join(",".join(r) for r in rows)
    path = tmp_path / "Bitstamp_BTCUSD_1h_new.csv"
    path.write_text(text + "\n")
    store = MarketStore(tmp_path / "store")
    report = store.ingest(path, exchange="bitstamp", pair="btc_usd")
    assert report.format == "cdd" and report.rows_fixed == 0
    got = store.read("bitstamp", "btc_usd", "bars_1h")
    want = cdd_store.read("bitstamp", "btc_usd", "bars_1h")
    assert (got["trades"] == 12).all()
    pd.testing.assert_frame_equal(got.drop(columns="trades"), want.drop(columns="trades"))


def test_ticker_variant_reads_as_the_original(data_dir: Path, tmp_path: Path) -> None:
    path = data_dir / FLYER / "bitflyer.ticker.20180122.BTC_JPY.csv.gz"
    clean = MarketStore(tmp_path / "clean")
    clean.ingest(path, exchange="bitflyer", pair="btc_jpy")
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    variant = raw.rename(
        columns={
            "best_bid": "bid",
            "best_ask": "ask",
            "best_bid_size": "Bid Size",
            "best_ask_size": "ask_size",
        }
    )
    variant["timestamp"] = variant["timestamp"].str.replace("+09:00", " +09:00", regex=False)
    variant = variant[list(reversed(variant.columns))]
    store = MarketStore(tmp_path / "store")
    store.ingest(
        _write(variant, tmp_path / "ticker_variant.csv.gz", True), exchange="bitflyer", pair="btc_jpy"
    )
    pd.testing.assert_frame_equal(store.quotes("bitflyer", "btc_jpy"), clean.quotes("bitflyer", "btc_jpy"))


def test_unreadable_parquet_names_the_closest_format(data_dir: Path, tmp_path: Path) -> None:
    frame = pd.read_parquet(data_dir / "minute_bars_2023-03" / "kraken_btcusd.parquet").iloc[:100]
    path = tmp_path / "odd.parquet"
    frame.drop(columns=["close", "volume"]).rename(columns={"high": "top"}).to_parquet(path)
    with pytest.raises(IngestError) as caught:
        MarketStore(tmp_path / "store").ingest(path, exchange="kraken", pair="btc_usd")
    message = str(caught.value)
    assert "open, top, low, trades" in message
    assert "the closest is minute_bars, which also needs high (or h, high_price), close" in message
