"""Bars from trades and coarser bars from finer ones, against independent pandas computations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atlas_ray.errors import MissingDataError
from atlas_ray.featurestore import MarketStore, Resolution, as_resolution, bars_from_trades, resample_bars
from atlas_ray.featurestore._store._bars import bars_source, closed_before

FREQS = {"1m": "1min", "5m": "5min", "10m": "10min", "1h": "1h"}


@pytest.fixture(scope="module")
def executions(data_dir: Path) -> pd.DataFrame:
    """The real bitFlyer executions of 2018-01-21 (JST), read by pandas alone."""
    raw = pd.read_csv(data_dir / "bitflyer_2018-01" / "bitflyer.execution.20180121.BTC_JPY.csv.gz")
    raw = raw.dropna(subset=["exec_date"]).drop_duplicates(subset=["id"])
    raw["timestamp"] = pd.to_datetime(raw["exec_date"], format="ISO8601", utc=True)
    return raw.sort_values(["timestamp", "id"], kind="stable").set_index("timestamp")


def _pandas_bars(trades: pd.DataFrame, freq: str) -> pd.DataFrame:
    sampler = trades.assign(pv=trades["price"] * trades["size"]).resample(freq)
    out = pd.DataFrame(
        {
            "open": sampler["price"].first(),
            "high": sampler["price"].max(),
            "low": sampler["price"].min(),
            "close": sampler["price"].last(),
            "volume": sampler["size"].sum(),
            "trades": sampler["price"].count(),
            "pv": sampler["pv"].sum(),
        }
    )
    out = out.loc[out["trades"] > 0]
    out["vwap"] = out["pv"] / out["volume"]
    return out.drop(columns="pv")


@pytest.mark.parametrize("short", ["1m", "5m", "10m", "1h"])
def test_bars_from_trades_match_pandas_resample(executions: pd.DataFrame, short: str) -> None:
    ours = bars_from_trades(executions[["price", "size"]], short)
    theirs = _pandas_bars(executions[["price", "size"]], FREQS[short])
    assert ours.index.equals(theirs.index.as_unit("ns").rename("timestamp"))
    for column in ("open", "high", "low", "close", "trades"):
        np.testing.assert_array_equal(ours[column].to_numpy(), theirs[column].to_numpy(), err_msg=column)
    np.testing.assert_allclose(ours["volume"].to_numpy(), theirs["volume"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours["vwap"].to_numpy(), theirs["vwap"].to_numpy(), rtol=1e-12)


def test_store_builds_bars_from_stored_trades(bitflyer_store: MarketStore, executions: pd.DataFrame) -> None:
    # The next day's file also holds trades of 14:59 UTC, so the last minute is left out here.
    start, end = "2018-01-20 15:00", "2018-01-21 14:59"
    ours = bitflyer_store.bars("bitflyer", "btc_jpy", "1m", start, end)
    theirs = _pandas_bars(executions[["price", "size"]], "1min").loc[:"2018-01-21 14:58"]
    assert list(ours.columns) == ["open", "high", "low", "close", "volume", "vwap", "trades"]
    assert ours.index.equals(theirs.index.as_unit("ns").rename("timestamp"))
    np.testing.assert_array_equal(ours["close"].to_numpy(), theirs["close"].to_numpy())
    np.testing.assert_array_equal(ours["trades"].to_numpy(), theirs["trades"].to_numpy())


def _pandas_resample(bars: pd.DataFrame, freq: str) -> pd.DataFrame:
    sampler = bars.assign(pv=bars["vwap"] * bars["volume"]).resample(freq)
    out = pd.DataFrame(
        {
            "open": sampler["open"].first(),
            "high": sampler["high"].max(),
            "low": sampler["low"].min(),
            "close": sampler["close"].last(),
            "volume": sampler["volume"].sum(),
            "trades": sampler["trades"].sum(),
            "pv": sampler["pv"].sum(),
            "n": sampler["open"].count(),
        }
    )
    out = out.loc[out["n"] > 0]
    out["vwap"] = out["pv"] / out["volume"]
    return out


@pytest.mark.parametrize("short", ["5m", "10m", "1h"])
def test_resample_matches_pandas_on_binance_bars(minute_store: MarketStore, short: str) -> None:
    fine = minute_store.bars("binance", "btc_usdt", "1m", "2023-03-09", "2023-03-12")
    ours = resample_bars(fine, short)
    theirs = _pandas_resample(fine, FREQS[short])
    assert ours.index.equals(theirs.index)
    for column in ("open", "high", "low", "close", "trades"):
        np.testing.assert_array_equal(ours[column].to_numpy(), theirs[column].to_numpy(), err_msg=column)
    np.testing.assert_allclose(ours["vwap"].to_numpy(), theirs["vwap"].to_numpy(), rtol=1e-9)


def test_store_aggregates_finer_bars_over_whole_coarse_bars(minute_store: MarketStore) -> None:
    # Coinbase omits minutes without trades; the 5m bars are built from the minutes there are.
    fine = minute_store.bars("coinbase", "btc_usd", "1m", "2023-03-04 16:00", "2023-03-04 17:00")
    coarse = minute_store.bars("coinbase", "btc_usd", "5m", "2023-03-04 16:02", "2023-03-04 16:50")
    assert coarse.index[0] == pd.Timestamp("2023-03-04 16:05", tz="UTC")
    assert coarse.index[-1] == pd.Timestamp("2023-03-04 16:45", tz="UTC")
    last = fine.loc["2023-03-04 16:45":"2023-03-04 16:49"]
    assert coarse["close"].iloc[-1] == last["close"].iloc[-1]
    assert coarse["volume"].iloc[-1] == pytest.approx(last["volume"].sum(), rel=1e-12)
    assert coarse["trades"].eq(-1).all() and coarse["vwap"].isna().all()  # unknown in Coinbase candles
    hourly = minute_store.bars("kraken", "btc_usd", "1h")
    assert hourly.index.minute.unique().tolist() == [0]
    assert len(hourly) == 21 * 24


def test_stored_bars_at_the_resolution_are_used(cdd_store: MarketStore) -> None:
    bars = cdd_store.bars("bitfinex", "btc_usd", Resolution.HOUR, "2019-03-01", "2019-03-02")
    stored = cdd_store.read("bitfinex", "btc_usd", "bars_1h", "2019-03-01", "2019-03-02")
    assert len(bars) == len(stored) >= 23
    pd.testing.assert_frame_equal(bars, stored[bars.columns.tolist()])


def test_missing_bars_name_exchange_pair_and_resolution(
    cdd_store: MarketStore, minute_store: MarketStore
) -> None:
    with pytest.raises(MissingDataError, match=r"no 1m bars for bitstamp/btc_usd.*bars_1h"):
        cdd_store.bars("bitstamp", "btc_usd", "one_min")
    with pytest.raises(MissingDataError, match=r"no 5m bars for itbit/btc_usd"):
        minute_store.bars("itbit", "btc_usd", "5m")


def test_resolution_names() -> None:
    assert as_resolution("one_min") is as_resolution("1m") is as_resolution("1min") is Resolution.ONE_MIN
    assert as_resolution("bars_1h") is Resolution.HOUR
    with pytest.raises(ValueError, match=r"The value of `resolution` is '2m'"):
        as_resolution("2m")


# ------------------------------------------------------------------------ open ends and closed bars
@pytest.mark.parametrize("short", ["5m", "10m", "1h"])
def test_a_range_open_to_the_end_of_time_reads_to_the_newest_bar(
    minute_store: MarketStore, short: str
) -> None:
    # a feed following the store reads up to Timestamp.max: the end is open, not rounded past pandas' range
    start = pd.Timestamp("2023-03-21 20:00", tz="UTC")
    open_end = minute_store.bars("kraken", "btc_usd", short, start, pd.Timestamp.max.tz_localize("UTC"))
    pd.testing.assert_frame_equal(open_end, minute_store.bars("kraken", "btc_usd", short, start))
    assert open_end.index[-1] == pd.Timestamp("2023-03-21 23:59", tz="UTC").floor(FREQS[short])


def test_bars_source_is_what_read_bars_reads(minute_store: MarketStore, bitflyer_store: MarketStore) -> None:
    assert bars_source(minute_store, "kraken", "btc_usd", "1m") == "bars_1m"
    assert bars_source(minute_store, "kraken", "btc_usd", "1h") == "bars_1m"
    assert bars_source(bitflyer_store, "bitflyer", "btc_jpy", "5m") == "trades"
    with pytest.raises(MissingDataError, match="no 5m bars for itbit/btc_usd"):
        bars_source(minute_store, "itbit", "btc_usd", "5m")


@pytest.mark.parametrize("short", ["1m", "5m", "10m", "1h"])
def test_closed_bars_equal_the_bars_of_the_whole_store(minute_store: MarketStore, short: str) -> None:
    """A store cut after any minute: the bars ``closed_before`` calls closed are exactly the bars the
    whole store has there (the forming one is left out), at every resolution."""
    res = as_resolution(short)
    whole = minute_store.bars("kraken", "btc_usd", short, "2023-03-06 22:00", "2023-03-07 02:00")
    fine = minute_store.read("kraken", "btc_usd", "bars_1m", "2023-03-06 22:00", "2023-03-07 02:00")
    for cut in range(0, len(fine), 7):
        newest = fine.index[cut]
        closed = closed_before(newest, "bars_1m", res)
        assert closed is not None and closed <= newest + pd.Timedelta("1min")
        partial = resample_bars(fine.iloc[: cut + 1], res) if short != "1m" else fine.iloc[: cut + 1]
        taken = partial.loc[partial.index < closed]
        pd.testing.assert_frame_equal(taken, whole.loc[taken.index], check_dtype=False)
        # every bar it leaves out is still forming: the next minute is part of it
        assert len(partial) - len(taken) <= 1
        if len(partial) > len(taken):
            assert partial.index[-1] + res.offset > newest + pd.Timedelta("1min")
    # from trades: closed once a trade at or after the end is stored
    assert closed_before(pd.Timestamp("2023-03-07 01:04:59", tz="UTC"), "trades", "5m") == pd.Timestamp(
        "2023-03-07 01:00", tz="UTC"
    )
    assert closed_before(pd.Timestamp("2023-03-07 01:05", tz="UTC"), "trades", "5m") == pd.Timestamp(
        "2023-03-07 01:05", tz="UTC"
    )


def test_the_wall_clock_closes_bars_after_a_grace() -> None:
    newest = pd.Timestamp("2023-03-07 01:01", tz="UTC")
    now = pd.Timestamp("2023-03-07 01:05:20", tz="UTC")
    assert closed_before(newest, "bars_1m", "5m") == pd.Timestamp("2023-03-07 01:00", tz="UTC")
    grace = pd.Timedelta(seconds=30)
    assert closed_before(newest, "bars_1m", "5m", now=now, grace=grace) == pd.Timestamp(
        "2023-03-07 01:00", tz="UTC"
    )
    later = now + pd.Timedelta(seconds=10)
    assert closed_before(newest, "bars_1m", "5m", now=later, grace=grace) == pd.Timestamp(
        "2023-03-07 01:05", tz="UTC"
    )
    assert closed_before(None, "bars_1m", "5m") is None
    with pytest.raises(ValueError, match="must be `grace >= 0`"):
        closed_before(newest, "bars_1m", "5m", now=now, grace=-grace)
