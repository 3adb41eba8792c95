"""Every source format ingested from the real data, checked against an independent pandas read."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atlas_ray.featurestore import MarketStore
from atlas_ray.featurestore._formats import detect_format

MINUTE = "minute_bars_2023-03"
FLYER = "bitflyer_2018-01"
LEAN = "lean_coinbase_btcusd"


@pytest.mark.parametrize(
    ("name", "exchange", "pair"),
    [
        ("coinbase_btcusd.parquet", "coinbase", "btc_usd"),
        ("kraken_btcusd.parquet", "kraken", "btc_usd"),
        ("binance_btcusdt.parquet", "binance", "btc_usdt"),
    ],
)
def test_minute_bars_match_the_parquet_file(
    minute_store: MarketStore, data_dir: Path, name: str, exchange: str, pair: str
) -> None:
    raw = pd.read_parquet(data_dir / MINUTE / name)
    bars = minute_store.bars(exchange, pair, "1m")
    assert len(bars) == len(raw)
    assert bars.index.equals(raw.index.tz_convert("UTC").as_unit("ns").rename("timestamp"))
    for column in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(bars[column].to_numpy(), raw[column].to_numpy(dtype="float64"))
    if "trades" in raw:
        np.testing.assert_array_equal(bars["trades"].to_numpy(), raw["trades"].to_numpy())
    else:
        assert (bars["trades"] == -1).all()
    if "quote_volume" in raw:
        expected = raw["quote_volume"].astype(float) / raw["volume"]
        expected[raw["volume"] == 0] = np.nan
        np.testing.assert_allclose(bars["vwap"].to_numpy(), expected.to_numpy(), rtol=1e-12)
    else:
        assert bars["vwap"].isna().all()


def test_minute_bars_report_counts_and_gaps(data_dir: Path, tmp_path: Path) -> None:
    store = MarketStore(tmp_path / "store")
    report = store.ingest(data_dir / MINUTE / "coinbase_btcusd.parquet", exchange="coinbase", pair="btc_usd")
    raw = pd.read_parquet(data_dir / MINUTE / "coinbase_btcusd.parquet")
    steps = raw.index.to_series().diff().dropna() // pd.Timedelta(minutes=1)
    assert report.format == "minute_bars"
    assert report.kinds == ("bars_1m",)
    assert (report.rows_read, report.rows_written) == (len(raw), len(raw))
    assert report.rows_rejected == 0
    assert report.gaps == int((steps - 1).clip(lower=0).sum())
    assert len(report.gap_ranges) == int((steps > 1).sum())
    assert "coinbase_btcusd.parquet" in str(report) and "\n" not in str(report)


def test_reingest_adds_nothing_and_counts_duplicates(data_dir: Path, tmp_path: Path) -> None:
    store = MarketStore(tmp_path / "store")
    path = data_dir / LEAN / "20170903_trade.zip"
    first = store.ingest(path, exchange="coinbase", pair="btc_usd")
    before = {p: p.read_bytes() for p in (tmp_path / "store").rglob("*.parquet")}
    again = store.ingest(path, exchange="coinbase", pair="btc_usd")
    after = {p: p.read_bytes() for p in (tmp_path / "store").rglob("*.parquet")}
    assert first.rows_written == first.rows_read > 0
    assert again.rows_written == 0
    assert again.rejected["duplicate"] == again.rows_read
    assert before == after


def _cdd_frame(path: Path) -> tuple[pd.DataFrame, int]:
    lines = path.read_bytes().split(b"\n")
    good, bad = [], 0
    for line in lines[1:]:
        if not line.strip():
            continue
        try:
            good.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            bad += 1
    frame = pd.read_csv(io.StringIO(lines[0].decode() + "\n" + "\n".join(good)), sep=";")
    frame.index = pd.to_datetime(frame["Date"], format="%Y-%m-%d %I-%p").dt.tz_localize("UTC")
    return frame, bad


@pytest.mark.parametrize(
    ("name", "exchange"), [("Bitstamp_BTCUSD_1h.csv", "bitstamp"), ("Bitfinex_BTCUSD_1h.csv", "bitfinex")]
)
def test_cdd_hourly_bars_match_pandas(
    cdd_store: MarketStore, data_dir: Path, name: str, exchange: str
) -> None:
    raw, bad = _cdd_frame(data_dir / "hourly_cdd" / name)
    assert bad > 0  # the real files carry a few non-UTF-8 rows
    raw = raw.sort_index()
    raw = raw.loc[~raw.index.duplicated(keep="first")]
    bars = cdd_store.bars(exchange, "btc_usd", "1h")
    assert len(bars) == len(raw)
    assert bars.index.equals(raw.index.as_unit("ns").rename("timestamp"))
    np.testing.assert_array_equal(bars["close"].to_numpy(), raw["Close"].to_numpy(dtype=float))
    np.testing.assert_array_equal(bars["volume"].to_numpy(), raw["Volume BTC"].to_numpy(dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        vwap = np.where(raw["Volume BTC"] > 0, raw["Volume USD"] / raw["Volume BTC"], np.nan)
    np.testing.assert_allclose(bars["vwap"].to_numpy(), vwap, rtol=1e-12)


def test_cdd_report_counts_the_non_utf8_rows(data_dir: Path, tmp_path: Path) -> None:
    path = data_dir / "hourly_cdd" / "Bitstamp_BTCUSD_1h.csv"
    raw, bad = _cdd_frame(path)
    report = MarketStore(tmp_path / "s").ingest(path, exchange="bitstamp", pair="btc_usd")
    assert report.kinds == ("bars_1h",)
    assert report.rows_read == len(raw) + bad
    assert report.rejected["unparseable"] == bad
    assert report.rows_written == len(raw)
    # The 50-day hole of 2017-09/11 is one of the gaps.
    assert max(g.missing for g in report.gap_ranges) > 24 * 45


def _executions(data_dir: Path, days: tuple[str, ...]) -> pd.DataFrame:
    frames = [pd.read_csv(data_dir / FLYER / f"bitflyer.execution.{d}.BTC_JPY.csv.gz") for d in days]
    raw = pd.concat(frames, ignore_index=True)
    raw = raw.dropna(subset=["exec_date"]).drop_duplicates(subset=["id"], keep="first")
    raw["timestamp"] = pd.to_datetime(raw["exec_date"], format="ISO8601", utc=True)
    return raw.sort_values(["timestamp", "id"], kind="stable")


def test_bitflyer_executions_become_utc_trades(bitflyer_store: MarketStore, data_dir: Path) -> None:
    raw = _executions(data_dir, ("20180121", "20180122"))
    trades = bitflyer_store.read("bitflyer", "btc_jpy", "trades")
    assert len(trades) == len(raw)
    np.testing.assert_array_equal(
        trades.index.as_unit("ns").asi8, pd.DatetimeIndex(raw["timestamp"]).as_unit("ns").asi8
    )
    np.testing.assert_array_equal(trades["price"].to_numpy(), raw["price"].to_numpy())
    np.testing.assert_array_equal(trades["trade_id"].to_numpy(dtype=str), raw["id"].astype(str).to_numpy())
    # One known execution: 2018-01-21T00:00:11.173+09:00 is 2018-01-20 15:00:11.173 UTC.
    row = trades.loc[trades["trade_id"] == "118745850"]
    assert row.index[0] == pd.Timestamp("2018-01-20 15:00:11.173", tz="UTC")
    assert row["side"].iloc[0] == "buy"
    assert set(trades["side"].unique()) <= {"buy", "sell", ""}


def test_bitflyer_execution_report_counts(data_dir: Path, tmp_path: Path) -> None:
    path = data_dir / FLYER / "bitflyer.execution.20180121.BTC_JPY.csv.gz"
    raw = pd.read_csv(path)
    report = MarketStore(tmp_path / "s").ingest(path, exchange="bitflyer", pair="btc_jpy")
    assert report.format == "bitflyer_executions"
    assert report.rows_read == len(raw)
    assert report.rejected["unparseable"] == raw["exec_date"].isna().sum()
    timed = raw.dropna(subset=["exec_date"])
    assert report.rejected["duplicate"] == timed["id"].duplicated().sum()
    assert report.rows_written == timed["id"].nunique()


def test_bitflyer_ticker_becomes_utc_quotes(bitflyer_store: MarketStore, data_dir: Path) -> None:
    frames = [
        pd.read_csv(data_dir / FLYER / f"bitflyer.ticker.{d}.BTC_JPY.csv.gz")
        for d in ("20180121", "20180122")
    ]
    raw = pd.concat(frames, ignore_index=True).dropna(subset=["timestamp"])
    raw.index = pd.to_datetime(raw["timestamp"], format="ISO8601", utc=True)
    raw = raw.loc[~raw.index.duplicated(keep="first")].sort_index()
    quotes = bitflyer_store.quotes("bitflyer", "btc_jpy")
    assert len(quotes) == len(raw)
    assert quotes.index[0] == pd.Timestamp("2018-01-20 15:00:08.093", tz="UTC")
    np.testing.assert_array_equal(quotes["bid_price"].to_numpy(), raw["best_bid"].to_numpy())
    np.testing.assert_array_equal(quotes["ask_size"].to_numpy(), raw["best_ask_size"].to_numpy())


def test_bitflyer_ticker_rejects_null_and_repeated_times(data_dir: Path, tmp_path: Path) -> None:
    path = data_dir / FLYER / "bitflyer.ticker.20180124.BTC_JPY.csv.gz"
    raw = pd.read_csv(path)
    report = MarketStore(tmp_path / "s").ingest(path, exchange="bitflyer", pair="btc_jpy")
    timed = raw.dropna(subset=["timestamp"])
    assert report.rejected["unparseable"] == raw["timestamp"].isna().sum() > 0
    assert report.rejected["duplicate"] == timed["timestamp"].duplicated().sum() > 0
    assert report.rows_written == timed["timestamp"].nunique()


def _lean(path: Path) -> pd.DataFrame:
    with zipfile.ZipFile(path) as archive:
        raw = pd.read_csv(archive.open(archive.namelist()[0]), header=None)
    day = pd.Timestamp(path.name[:8], tz="UTC")
    raw.index = day + pd.to_timedelta(raw[0], unit="ms")
    return raw


def test_lean_trade_bars(lean_store: MarketStore, data_dir: Path) -> None:
    paths = sorted((data_dir / LEAN).glob("*_trade.zip"))
    raw = pd.concat([_lean(p) for p in paths]).sort_index()
    bars = lean_store.bars("coinbase", "btc_usd", "1m")
    assert len(bars) == len(raw)
    np.testing.assert_array_equal(bars.index.as_unit("ns").asi8, raw.index.as_unit("ns").asi8)
    np.testing.assert_array_equal(
        bars[["open", "high", "low", "close", "volume"]].to_numpy(), raw[[1, 2, 3, 4, 5]].to_numpy()
    )


def test_lean_quotes_are_bar_closes_at_close_time(lean_store: MarketStore, data_dir: Path) -> None:
    paths = sorted((data_dir / LEAN).glob("*_quote.zip"))
    raw = pd.concat([_lean(p) for p in paths]).sort_index()
    quotes = lean_store.quotes("coinbase", "btc_usd")
    assert len(quotes) == len(raw)
    np.testing.assert_array_equal(
        quotes.index.as_unit("ns").asi8, (raw.index + pd.Timedelta(minutes=1)).as_unit("ns").asi8
    )
    np.testing.assert_array_equal(quotes["bid_price"].to_numpy(), raw[4].to_numpy())
    np.testing.assert_array_equal(quotes["bid_size"].to_numpy(), raw[5].to_numpy())
    np.testing.assert_array_equal(quotes["ask_price"].to_numpy(), raw[9].to_numpy())
    np.testing.assert_array_equal(quotes["ask_size"].to_numpy(), raw[10].to_numpy())


def test_bitstamp_orders_report(book_store: MarketStore, data_dir: Path, tmp_path: Path) -> None:
    path = data_dir / "bitstamp_orders_2015-05-01" / "orders.csv.xz"
    raw = pd.read_csv(path)
    report = MarketStore(tmp_path / "s").ingest(path, exchange="bitstamp", pair="btc_usd")
    assert report.kinds == ("book", "quotes")
    assert report.rows_read == len(raw)
    assert report.rejected["duplicate"] == raw.duplicated().sum() == 1
    minutes = pd.date_range(
        pd.Timestamp(raw["timestamp"].min(), unit="ms").floor("min") + pd.Timedelta(minutes=1),
        pd.Timestamp(raw["timestamp"].max(), unit="ms").floor("min"),
        freq="1min",
    )
    assert report.written["quotes"] == len(minutes)
    assert report.written["book"] == len(book_store.book("bitstamp", "btc_usd"))


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        (f"{MINUTE}/kraken_btcusd.parquet", "minute_bars"),
        ("hourly_cdd/Bitfinex_BTCUSD_1h.csv", "cdd"),
        (f"{FLYER}/bitflyer.execution.20180123.BTC_JPY.csv.gz", "bitflyer_executions"),
        (f"{FLYER}/bitflyer.ticker.20180123.BTC_JPY.csv.gz", "bitflyer_ticker"),
        (f"{LEAN}/20180404_trade.zip", "lean_trade"),
        (f"{LEAN}/20180404_quote.zip", "lean_quote"),
        ("bitstamp_orders_2015-05-01/orders.csv.xz", "bitstamp_orders"),
    ],
)
def test_format_is_detected_from_content(
    data_dir: Path, tmp_path: Path, relative: str, expected: str
) -> None:
    # Renamed copies prove detection reads the content, not the name.
    source = data_dir / relative
    copy = tmp_path / ("data" + "".join(source.suffixes[-1:]))
    copy.write_bytes(source.read_bytes())
    if expected.startswith("lean"):
        copy = tmp_path / f"{source.name[:8]}.zip"
        copy.write_bytes(source.read_bytes())
    assert detect_format(copy) == expected


def test_minute_bars_from_csv_and_headerless_klines(data_dir: Path, tmp_path: Path) -> None:
    raw = pd.read_parquet(data_dir / MINUTE / "binance_btcusdt.parquet").iloc[:300]
    headerless = tmp_path / "BTCUSDT-1m-2023-03-01.csv"
    raw.to_csv(headerless, header=False, index=False)
    with_header = tmp_path / "klines.csv"
    raw.reset_index().to_csv(with_header, index=False)
    for path in (headerless, with_header):
        store = MarketStore(tmp_path / path.stem)
        report = store.ingest(path, exchange="binance", pair="btc_usdt")
        assert (report.format, report.rows_written) == ("minute_bars", 300)
        bars = store.bars("binance", "btc_usdt", "1m")
        assert bars.index[0] == pd.Timestamp("2023-03-01", tz="UTC")
        np.testing.assert_array_equal(bars["close"].to_numpy(), raw["close"].to_numpy())
