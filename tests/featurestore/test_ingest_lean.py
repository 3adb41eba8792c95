"""LEAN crypto files at every resolution, each read as what it is.

The second, hour, daily and tick files are written here from the real minute data in LEAN's
documented layouts:

* QuantConnect Documentation, "LEAN Engine > Data Format > Crypto" (Folder Structure and Bar Data):
  tick / second / minute zips are ``<date>_<tickType>.zip`` holding
  ``<date>_<ticker>_<resolution>_<tickType>.csv``; hour / daily zips are ``<ticker>_<tickType>.zip``
  holding ``<ticker>.csv``; a trade bar row is ``time,open,high,low,close,volume`` and a quote bar row
  ``time,bid o,h,l,c,last bid size,ask o,h,l,c,last ask size``.
* QuantConnect/Lean, ``Common/Util/LeanData.cs`` (``GenerateLine``): second and minute rows start with
  the milliseconds since midnight, hour and daily rows with the time as ``DateFormat.TwelveCharacter``
  = ``"yyyyMMdd HH:mm"`` (``Common/Global.cs``).
* QuantConnect/Lean, ``PandasHistoryRequest`` column names for crypto ticks: a trade tick is
  ``lastprice, quantity``, a quote tick ``bidprice, bidsize, askprice, asksize`` (after the time).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pandas as pd
import pytest

from atlas_ray.featurestore import MarketStore

LEAN = "lean_coinbase_btcusd"
DAY = "20170903"
_OHLCV = ["open", "high", "low", "close", "volume"]


@pytest.fixture(scope="module")
def minute(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The real LEAN minute trade bars of one day, as stored."""
    store = MarketStore(tmp_path_factory.mktemp("lean_minute") / "store")
    store.ingest(data_dir / LEAN / f"{DAY}_trade.zip", exchange="coinbase", pair="btc_usd")
    return store.read("coinbase", "btc_usd", "bars_1m")


def _zip(path: Path, member: str, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, "\n".join(lines) + "\n")
    return path


def _millis(time: pd.Timestamp) -> int:
    return int((time - time.normalize()) / pd.Timedelta(milliseconds=1))


def _bar_line(first: str, bar: pd.Series) -> str:
    return f"{first},{bar.open},{bar.high},{bar.low},{bar.close},{bar.volume}"


def test_second_bars_are_stored_as_seconds_and_aggregate_exactly(
    minute: pd.DataFrame, tmp_path: Path
) -> None:
    lines = []
    for time, bar in minute.iterrows():
        ms = _millis(time)
        # Two second bars a minute whose aggregate is the minute bar exactly (halving is exact).
        lines.append(f"{ms},{bar.open},{bar.high},{bar.low},{bar.open},{bar.volume / 2}")
        top, bottom = max(bar.open, bar.close), min(bar.open, bar.close)
        lines.append(f"{ms + 30_000},{bar.open},{top},{bottom},{bar.close},{bar.volume / 2}")
    path = _zip(tmp_path / "second" / "btcusd" / f"{DAY}_trade.zip", f"{DAY}_btcusd_second_trade.csv", lines)
    store = MarketStore(tmp_path / "store")
    report = store.ingest(path, exchange="coinbase", pair="btc_usd")
    assert report.kinds == ("bars_1s",) and report.rows_written == 2 * len(minute)
    assert store.kinds("coinbase", "btc_usd") == ["bars_1s"]
    seconds = store.read("coinbase", "btc_usd", "bars_1s")
    assert (seconds.index.second % 30 == 0).all() and len(seconds) == 2 * len(minute)
    bars = store.bars("coinbase", "btc_usd", "1m")
    pd.testing.assert_frame_equal(bars[_OHLCV], minute[_OHLCV], check_freq=False)


def test_second_rows_in_a_minute_file_never_enter_the_minute_partition(
    minute: pd.DataFrame, tmp_path: Path
) -> None:
    lines = [_bar_line(str(_millis(t)), b) for t, b in minute.iterrows()]
    lines += [_bar_line(str(_millis(t) + 15_000), b) for t, b in minute.iloc[:5].iterrows()]
    lines.sort(key=lambda line: int(line.split(",")[0]))
    path = _zip(tmp_path / f"{DAY}_trade.zip", f"{DAY}_btcusd_minute_trade.csv", lines)
    store = MarketStore(tmp_path / "store")
    report = store.ingest(path, exchange="coinbase", pair="btc_usd")
    assert report.rejected["misaligned"] == 5
    pd.testing.assert_frame_equal(store.read("coinbase", "btc_usd", "bars_1m"), minute)


@pytest.mark.parametrize(("folder", "freq", "kind"), [("hour", "1h", "bars_1h"), ("daily", "1D", "bars_1d")])
def test_hour_and_daily_files_are_read_at_their_resolution(
    minute: pd.DataFrame, tmp_path: Path, folder: str, freq: str, kind: str
) -> None:
    coarse = minute.resample(freq, label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    lines = [_bar_line(f"{t:%Y%m%d %H:%M}", b) for t, b in coarse.iterrows()]
    path = _zip(tmp_path / folder / "btcusd_trade.zip", "btcusd.csv", lines)
    store = MarketStore(tmp_path / "store")
    report = store.ingest(path, exchange="coinbase", pair="btc_usd")
    assert report.format == "lean_trade" and report.kinds == (kind,)
    assert report.rows_written == len(coarse) and report.rows_rejected == 0
    stored = store.read("coinbase", "btc_usd", kind)
    pd.testing.assert_frame_equal(stored[_OHLCV], coarse[_OHLCV], check_freq=False, check_names=False)
    # Outside a folder named for it, the resolution is read from the rows' spacing.
    bare = _zip(tmp_path / "bare" / "btcusd_trade.zip", "btcusd.csv", lines)
    again = MarketStore(tmp_path / "bare_store").ingest(bare, exchange="coinbase", pair="btc_usd")
    assert again.kinds == (kind,)


def test_hour_quote_bars_become_quotes_at_their_close(data_dir: Path, tmp_path: Path) -> None:
    quotes = MarketStore(tmp_path / "minute")
    quotes.ingest(data_dir / LEAN / f"{DAY}_quote.zip", exchange="coinbase", pair="btc_usd")
    raw = pd.read_csv(data_dir / LEAN / f"{DAY}_quote.zip", header=None)
    raw.index = pd.Timestamp(DAY, tz="UTC") + pd.to_timedelta(raw[0], unit="ms")
    hourly = raw.resample("1h").agg(
        {
            **{c: "first" for c in (1, 6)},
            **{c: "last" for c in (4, 5, 9, 10)},
            2: "max",
            3: "min",
            7: "max",
            8: "min",
        }
    )
    lines = [
        f"{t:%Y%m%d %H:%M},{r[1]},{r[2]},{r[3]},{r[4]},{r[5]},{r[6]},{r[7]},{r[8]},{r[9]},{r[10]}"
        for t, r in hourly.iterrows()
    ]
    path = _zip(tmp_path / "hour" / "btcusd_quote.zip", "btcusd.csv", lines)
    store = MarketStore(tmp_path / "store")
    report = store.ingest(path, exchange="coinbase", pair="btc_usd")
    assert report.format == "lean_quote" and report.rows_written == 24
    stored = store.quotes("coinbase", "btc_usd")
    minute_quotes = quotes.quotes("coinbase", "btc_usd")
    # The quote at an hour's close is the minute quote at the same instant (the last minute's close;
    # where the file has no bar for the hour's last minute, the hour closes on an earlier one).
    common = stored.index.intersection(minute_quotes.index)
    assert len(common) >= 23
    pd.testing.assert_frame_equal(stored.loc[common], minute_quotes.loc[common], check_freq=False)


def test_tick_files_become_trades_and_quotes(minute: pd.DataFrame, tmp_path: Path) -> None:
    trades = [f"{_millis(t)},{b.close},{b.volume}" for t, b in minute.iterrows()]
    trade_zip = _zip(tmp_path / "tick" / f"{DAY}_trade.zip", f"{DAY}_btcusd_tick_trade.csv", trades)
    quotes = [f"{_millis(t)},{b.low},1.5,{b.high},2.5" for t, b in minute.iterrows()]
    quotes += [f"{_millis(minute.index[0])},{minute.low.iloc[0] - 1},1.0,{minute.high.iloc[0]},2.0"]
    quotes.sort(key=lambda line: int(line.split(",")[0]))
    quote_zip = _zip(tmp_path / "tick" / f"{DAY}_quote.zip", f"{DAY}_btcusd_tick_quote.csv", quotes)
    store = MarketStore(tmp_path / "store")
    report = store.ingest(trade_zip, exchange="coinbase", pair="btc_usd")
    assert report.format == "lean_tick_trade" and report.kinds == ("trades",)
    bars = store.bars("coinbase", "btc_usd", "1m")
    assert (bars["close"] == minute["close"]).all() and (bars["volume"] == minute["volume"]).all()
    quoted = store.ingest(quote_zip, exchange="coinbase", pair="btc_usd")
    assert quoted.format == "lean_tick_quote" and quoted.rows_written == len(minute)
    book = store.quotes("coinbase", "btc_usd")
    assert book["bid_price"].iloc[0] == minute.low.iloc[0] - 1  # the last update of the millisecond
