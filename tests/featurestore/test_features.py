"""Every feature on the real data, through ``MarketData`` and the store, against an independent
plain-pandas computation written here (never the library's maths); and ``MarketData``'s fill,
staleness and caching rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atlas_ray.featurestore import (
    FV,
    VWAP,
    Ask,
    AskStrength,
    AskStrengthUSD,
    Bid,
    BidStrength,
    BidStrengthUSD,
    InterExchangeSpread,
    LogReturns,
    MarketData,
    MarketStore,
    Midpoint,
    MidpointDiff,
    Resolution,
    SignedArbRevenue,
    SignedArbVolumeUSD,
    SimpleReturns,
    Spread,
    Volatility,
    Volume,
)
from tests.featurestore._feature_cases import ARB_SHIFT, BOOK_WINDOW, MINUTE_WINDOW, make_arb_store

ONE_MIN = Resolution.ONE_MIN
LIMIT = 5


def _same(actual: pd.Series, expected: pd.Series, rtol: float = 1e-9, enough: int | None = None) -> None:
    expected = expected.reindex(actual.index).astype("float64")
    assert (actual.isna() == expected.isna()).all(), actual[actual.isna() != expected.isna()].head()
    np.testing.assert_allclose(actual.dropna(), expected.dropna(), rtol=rtol, atol=1e-12)
    assert expected.notna().sum() > (len(actual) / 3 if enough is None else enough)


# ---------------------------------------------------------------------------------- minute bars
@pytest.fixture(scope="module")
def minute_data(minute_store: MarketStore) -> MarketData:
    return MarketData(minute_store, *MINUTE_WINDOW, ONE_MIN, fill_limit=LIMIT)


def _raw_bars(data_dir: Path, name: str) -> pd.DataFrame:
    """A source file's bars on the window's grid, filled as documented: up to 5 missing bars take the
    previous close with volume 0; beyond that NaN."""
    raw = pd.read_parquet(data_dir / "minute_bars_2023-03" / name)
    start, end = MINUTE_WINDOW
    grid = pd.date_range(start - LIMIT * pd.Timedelta("1min"), end, freq="1min", inclusive="left", tz="UTC")
    frame = raw[["open", "high", "low", "close", "volume"]].astype("float64").reindex(grid)
    if "quote_volume" in raw:
        frame["vwap"] = (raw["quote_volume"].astype("float64") / raw["volume"]).reindex(grid)
    previous = frame["close"].ffill(limit=LIMIT)
    filled = frame["close"].isna() & previous.notna()
    for column in ("open", "high", "low", "close"):
        frame.loc[filled, column] = previous[filled]
    frame.loc[filled, "volume"] = 0.0
    return frame.iloc[LIMIT:]


@pytest.fixture(scope="module")
def coinbase(data_dir: Path) -> pd.DataFrame:
    return _raw_bars(data_dir, "coinbase_btcusd.parquet")


@pytest.fixture(scope="module")
def kraken(data_dir: Path) -> pd.DataFrame:
    return _raw_bars(data_dir, "kraken_btcusd.parquet")


@pytest.fixture(scope="module")
def binance(data_dir: Path) -> pd.DataFrame:
    return _raw_bars(data_dir, "binance_btcusdt.parquet")


def test_bars_are_filled_causally_up_to_the_limit(minute_data: MarketData, coinbase: pd.DataFrame) -> None:
    bars = minute_data.bars("coinbase", "btc_usd")
    last = pd.Timestamp("2023-03-04 16:59", tz="UTC")
    close = bars.loc[last, "close"]
    filled = bars.loc[last + pd.Timedelta("1min") : last + pd.Timedelta("5min")]
    assert len(filled) == 5 and (filled[["open", "high", "low", "close"]] == close).all().all()
    assert (filled["volume"] == 0).all() and (filled["trades"] == 0).all() and filled["vwap"].isna().all()
    assert (
        bars.loc[last + pd.Timedelta("6min") : pd.Timestamp("2023-03-04 21:36", tz="UTC"), "close"]
        .isna()
        .all()
    )
    assert bars.index.equals(minute_data.grid)
    _same(bars["close"], coinbase["close"])
    assert minute_data.bars("coinbase", "btc_usd") is bars  # read once, kept


def test_fill_at_the_window_start_equals_a_longer_window(minute_store: MarketStore) -> None:
    start = pd.Timestamp("2023-03-04 17:02", tz="UTC")  # three bars into the gap
    short = MarketData(minute_store, start, start + pd.Timedelta("10min"), ONE_MIN).bars(
        "coinbase", "btc_usd"
    )
    long = MarketData(minute_store, *MINUTE_WINDOW, ONE_MIN).bars("coinbase", "btc_usd")
    pd.testing.assert_frame_equal(short, long.loc[short.index], check_freq=False)
    assert short["close"].notna().sum() == 3  # 17:02, 17:03, 17:04 are filled; 17:05 on is not


def test_bar_features(
    minute_data: MarketData, coinbase: pd.DataFrame, kraken: pd.DataFrame, binance: pd.DataFrame
) -> None:
    close = coinbase["close"]
    one_bar = np.log(close / close.shift(1))
    _same(Volume().coinbase().compute(minute_data), coinbase["volume"])
    _same(LogReturns().coinbase().lookback(5).compute(minute_data), one_bar.rolling(5).sum(), rtol=1e-8)
    _same(LogReturns().coinbase().compute(minute_data), one_bar)
    _same(
        LogReturns().coinbase().lookforward(2).compute(minute_data), one_bar.rolling(2).sum().shift(-2), 1e-8
    )
    complete = close.notna().rolling(4).sum().eq(4)
    _same(
        SimpleReturns().coinbase().lookback(3).compute(minute_data),
        (close / close.shift(3) - 1).where(complete),
    )
    kraken_returns = np.log(kraken["close"] / kraken["close"].shift(1))
    _same(Volatility().kraken().window(10).compute(minute_data), kraken_returns.rolling(10).std(), rtol=1e-7)
    vwap = binance["vwap"].where(binance["volume"] > 0)
    _same(VWAP().binance().compute(minute_data), vwap)


def test_midpoint_falls_back_to_the_bar_middle_without_quotes(
    minute_data: MarketData, coinbase: pd.DataFrame, kraken: pd.DataFrame, binance: pd.DataFrame
) -> None:
    kraken_mid = (kraken["high"] + kraken["low"]) / 2
    coinbase_mid = (coinbase["high"] + coinbase["low"]) / 2
    _same(Midpoint().kraken().compute(minute_data), kraken_mid)
    _same(MidpointDiff().kraken().lookback(3).compute(minute_data), kraken_mid - kraken_mid.shift(3))
    spread = InterExchangeSpread(Midpoint().coinbase().one_min(), Midpoint().kraken().one_min())
    _same(spread.compute(minute_data), coinbase_mid - kraken_mid)


def test_fair_value(
    minute_data: MarketData, coinbase: pd.DataFrame, kraken: pd.DataFrame, binance: pd.DataFrame
) -> None:
    mids = {
        name: (f["high"] + f["low"]) / 2 for name, f in (("cb", coinbase), ("kr", kraken), ("bn", binance))
    }
    volumes = {
        name: f["volume"].rolling(3).sum() for name, f in (("cb", coinbase), ("kr", kraken), ("bn", binance))
    }
    frame = pd.DataFrame(
        {**{f"m_{k}": v for k, v in mids.items()}, **{f"v_{k}": v for k, v in volumes.items()}}
    )
    total = frame[["v_cb", "v_kr", "v_bn"]].sum(axis=1, skipna=False)
    expected = (frame.m_cb * frame.v_cb + frame.m_kr * frame.v_kr + frame.m_bn * frame.v_bn) / total
    fv = FV(Midpoint().coinbase(), Midpoint().kraken(), Midpoint().binance()).window(3)
    _same(fv.compute(minute_data), expected.where(total > 0))
    fixed = FV(Midpoint().coinbase(), Midpoint().kraken()).weights(1.0, 3.0)
    _same(fixed.compute(minute_data), (mids["cb"] + 3 * mids["kr"]) / 4)


# --------------------------------------------------------------------------------- order books
@pytest.fixture(scope="module")
def book_data(book_store: MarketStore) -> MarketData:
    return MarketData(book_store, *BOOK_WINDOW, ONE_MIN, fill_limit=LIMIT)


@pytest.fixture(scope="module")
def snapshots(book_store: MarketStore) -> pd.DataFrame:
    """The stored snapshots, long format, sorted by time, side and level."""
    book = book_store.book("bitstamp", "btc_usd").reset_index()
    return book.sort_values(["timestamp", "side", "level"]).reset_index(drop=True)


def _on_grid(per_snapshot: pd.Series, grid: pd.DatetimeIndex) -> pd.Series:
    """Row t takes the last snapshot stamped <= t + 1 minute, if stamped after t - 5 minutes."""
    stamps = pd.Series(per_snapshot.index, index=per_snapshot.index)
    known = pd.DataFrame({"value": per_snapshot, "stamp": stamps}).sort_index()
    asof = pd.merge_asof(
        pd.DataFrame({"close": grid + pd.Timedelta("1min")}),
        known.reset_index(drop=True).rename(columns={"stamp": "close_stamp"}).assign(close=known.index),
        on="close",
        direction="backward",
    )
    fresh = asof["close_stamp"] > (grid - LIMIT * pd.Timedelta("1min"))
    return pd.Series(asof["value"].where(fresh.to_numpy()).to_numpy(), index=grid)


def _strength(snapshots: pd.DataFrame, side: str, percent: float, usd: bool) -> pd.Series:
    rows = snapshots[snapshots["side"] == side].copy()
    best = rows.groupby("timestamp")["price"].transform("first")
    inside = (
        rows["price"] >= best * (1 - percent / 100)
        if side == "bid"
        else rows["price"] <= best * (1 + percent / 100)
    )
    rows["amount"] = rows["size"] * (rows["price"] if usd else 1.0)
    return rows[inside].groupby("timestamp")["amount"].sum()


@pytest.mark.parametrize(
    ("feature", "side", "percent", "usd"),
    [
        (BidStrength().bitstamp().slippage(0.5), "bid", 0.5, False),
        (AskStrength().bitstamp().slippage(0.3), "ask", 0.3, False),
        (BidStrengthUSD().bitstamp(), "bid", 0.1, True),
        (AskStrengthUSD().bitstamp().slippage(1.0), "ask", 1.0, True),
    ],
)
def test_book_strength(  # type: ignore[no-untyped-def]
    book_data: MarketData, snapshots: pd.DataFrame, feature, side: str, percent: float, usd: bool
) -> None:
    expected = _on_grid(_strength(snapshots, side, percent, usd), book_data.grid)
    _same(feature.compute(book_data), expected, rtol=1e-12)


def _level(snapshots: pd.DataFrame, side: str, level: int) -> pd.Series:
    rows = snapshots[(snapshots["side"] == side) & (snapshots["level"] == level)]
    return rows.set_index("timestamp")["price"]


def test_prices_at_depth(book_data: MarketData, snapshots: pd.DataFrame, book_store: MarketStore) -> None:
    grid = book_data.grid
    quotes = book_store.quotes("bitstamp", "btc_usd")
    bid0 = _on_grid(quotes["bid_price"], grid)
    ask0 = _on_grid(quotes["ask_price"], grid)
    _same(Bid().bitstamp().compute(book_data), bid0)
    _same(Ask().bitstamp().compute(book_data), ask0)
    _same(Spread().bitstamp().compute(book_data), ask0 - bid0)
    _same(Midpoint().bitstamp().compute(book_data), (ask0 + bid0) / 2)
    mid = (ask0 + bid0) / 2
    _same(MidpointDiff().bitstamp().lookforward(2).compute(book_data), mid.shift(-2) - mid)
    _same(Ask().bitstamp().depth(3).compute(book_data), _on_grid(_level(snapshots, "ask", 3), grid))
    spread1 = _level(snapshots, "ask", 1) - _level(snapshots, "bid", 1)
    _same(Spread().bitstamp().depth(1).compute(book_data), _on_grid(spread1, grid))
    assert Bid().bitstamp().depth(200).compute(book_data).isna().all()  # the book holds 50 levels


def test_quotes_go_stale_after_the_fill_limit(book_store: MarketStore) -> None:
    start = pd.Timestamp("2015-05-01 04:50", tz="UTC")
    data = MarketData(book_store, start, start + pd.Timedelta("30min"), ONE_MIN, fill_limit=3)
    quotes = book_store.quotes("bitstamp", "btc_usd")
    last = quotes.index.max()  # 05:04, the last snapshot
    bid = Bid().bitstamp().compute(data)
    # row t sees the last quote stamped <= t + 1 min while it is stamped after t - 3 min
    usable = bid.index < last + pd.Timedelta("3min")
    assert bid[usable].notna().all() and bid[~usable].isna().all() and (~usable).sum() > 10
    carried = bid[(bid.index >= last - pd.Timedelta("1min")) & usable]
    assert len(carried) == 4 and (carried == quotes.loc[last, "bid_price"]).all()


def test_quotes_come_from_the_book_where_no_quotes_are_stored(
    book_store: MarketStore, book_data: MarketData, tmp_path: Path
) -> None:
    only_book = MarketStore(tmp_path / "only_book")
    only_book.write(
        book_store.read("bitstamp", "btc_usd", "book"), exchange="bitstamp", pair="btc_usd", kind="book"
    )
    data = MarketData(only_book, *BOOK_WINDOW, ONE_MIN)
    from_book = data.quotes("bitstamp", "btc_usd")
    stored = book_data.quotes("bitstamp", "btc_usd")
    pd.testing.assert_frame_equal(from_book, stored, check_freq=False)


# ----------------------------------------------------------------------------------- arbitrage
def _independent_cross(a: pd.DataFrame, b: pd.DataFrame) -> tuple[float, float]:
    """Walk a's bids (best first) against b's asks (best first), filling quantities greedily."""
    bids = a[a["side"] == "bid"].sort_values("level")[["price", "size"]].to_numpy().tolist()
    asks = b[b["side"] == "ask"].sort_values("level")[["price", "size"]].to_numpy().tolist()
    revenue = volume = 0.0
    while bids and asks and bids[0][0] > asks[0][0]:
        quantity = min(bids[0][1], asks[0][1])
        revenue += quantity * (bids[0][0] - asks[0][0])
        volume += quantity * asks[0][0]
        bids[0][1] -= quantity
        asks[0][1] -= quantity
        if bids[0][1] <= 0:
            bids.pop(0)
        if asks[0][1] <= 0:
            asks.pop(0)
    return revenue, volume


def test_signed_arbitrage(book_store: MarketStore, snapshots: pd.DataFrame, tmp_path: Path) -> None:
    store = make_arb_store(book_store, str(tmp_path / "arb"))
    data = MarketData(store, *BOOK_WINDOW, ONE_MIN)
    revenue = SignedArbRevenue("bitstamp", "itbit").compute(data)
    volume = SignedArbVolumeUSD("bitstamp", "itbit").compute(data)
    reverse = SignedArbRevenue("itbit", "bitstamp").compute(data)
    by_time = dict(tuple(snapshots.groupby("timestamp")))
    checked = nonzero = 0
    for t in data.grid[::3]:
        now = t + pd.Timedelta("1min")  # the snapshot known at the close of bar t
        if now not in by_time or now + ARB_SHIFT not in by_time:
            continue  # a stale book on one side (checked by the staleness test)
        a, b = by_time[now], by_time[now + ARB_SHIFT]  # bitstamp now; "itbit" = bitstamp 7 min later
        rev_ab, vol_ab = _independent_cross(a, b)
        rev_ba, vol_ba = _independent_cross(b, a)
        np.testing.assert_allclose(
            [revenue[t], volume[t]], [rev_ab - rev_ba, vol_ab - vol_ba], rtol=1e-9, atol=1e-9
        )
        assert reverse[t] == -revenue[t] or (reverse[t] == 0 and revenue[t] == 0)
        checked += 1
        nonzero += revenue[t] != 0
    assert checked > 50 and nonzero > 5


# ------------------------------------------------------------------- other resolutions and sources
def _filled(bars: pd.DataFrame, grid: pd.DatetimeIndex, step: pd.Timedelta) -> pd.DataFrame:
    """Plain-pandas fill on ``grid``: up to 5 missing bars take the previous close, volume 0."""
    extended = pd.date_range(grid[0] - LIMIT * step, grid[-1] + step, freq=step, inclusive="left")
    frame = bars[["high", "low", "close", "volume"]].astype("float64").reindex(extended)
    previous = frame["close"].ffill(limit=LIMIT)
    filled = frame["close"].isna() & previous.notna()
    for column in ("high", "low", "close"):
        frame.loc[filled, column] = previous[filled]
    frame.loc[filled, "volume"] = 0.0
    return frame.loc[grid]


def test_hourly_features_across_a_fifty_day_gap(cdd_store: MarketStore, tmp_path: Path) -> None:
    hour = Resolution.HOUR
    stamps = cdd_store.bars("bitstamp", "btc_usd", hour).index
    jump = np.argmax(np.diff(stamps.asi8))
    gap_start, gap_end = stamps[jump], stamps[jump + 1]
    assert gap_end - gap_start > pd.Timedelta(days=40)
    start, end = gap_start - pd.Timedelta(days=4), gap_end + pd.Timedelta(days=8)
    data = MarketData(cdd_store, start, end, hour)
    step = pd.Timedelta("1h")
    bitstamp = _filled(cdd_store.bars("bitstamp", "btc_usd", hour), data.grid, step)
    bitfinex = _filled(cdd_store.bars("bitfinex", "btc_usd", hour), data.grid, step)
    returns = np.log(bitstamp["close"] / bitstamp["close"].shift(1))
    _same(LogReturns().bitstamp().hour().lookback(24).compute(data), returns.rolling(24).sum(), 1e-8, 100)
    finex = np.log(bitfinex["close"] / bitfinex["close"].shift(1))
    _same(Volatility().bitfinex().hour().window(24).compute(data), finex.rolling(24).std(), 1e-7, 100)
    spread = InterExchangeSpread(Midpoint().bitstamp().hour(), Midpoint().bitfinex().hour()).compute(data)
    _same(
        spread,
        (bitstamp["high"] + bitstamp["low"]) / 2 - (bitfinex["high"] + bitfinex["low"]) / 2,
        enough=100,
    )
    assert spread[gap_start + 6 * step : gap_end - step].isna().all()  # past the fill limit: unknown
    # no look-ahead at the first bar after the gap: a store cut at its close gives the same value
    from tests.featurestore._feature_cases import truncated_copy

    cut = truncated_copy(cdd_store, str(tmp_path / "cut"), gap_end, step)
    short = MarketData(cut, start, gap_end + step, hour)
    for feature in (LogReturns().bitstamp().hour(), Midpoint().bitstamp().hour(), Volume().bitfinex().hour()):
        np.testing.assert_equal(feature.compute(short)[gap_end], feature.compute(data)[gap_end])


def test_bitflyer_bars_from_trades_and_midpoint_from_the_ticker(bitflyer_store: MarketStore) -> None:
    start = pd.Timestamp("2018-01-21 00:00", tz="UTC")
    five = Resolution.FIVE_MIN
    data = MarketData(bitflyer_store, start, start + pd.Timedelta("12h"), five)
    trades = bitflyer_store.read("bitflyer", "btc_jpy", "trades", start - pd.Timedelta("1h"), data.end)
    bucket = trades.index.floor("5min")
    turnover = (trades["price"] * trades["size"]).groupby(bucket).sum()
    volume = trades["size"].groupby(bucket).sum()
    _same(VWAP().bitflyer().five_min().compute(data), (turnover / volume).where(volume > 0), rtol=1e-12)
    close = trades["price"].groupby(bucket).last().reindex(data.grid)
    _same(LogReturns().bitflyer().five_min().compute(data), np.log(close / close.shift(1)))
    ticker = bitflyer_store.read("bitflyer", "btc_jpy", "quotes").sort_index()
    closes = pd.DataFrame({"close": data.grid + pd.Timedelta("5min")})
    known = ticker.assign(stamp=ticker.index).reset_index(drop=True)
    asof = pd.merge_asof(closes, known, left_on="close", right_on="stamp", direction="backward")
    fresh = (asof["stamp"] > data.grid - LIMIT * pd.Timedelta("5min")).to_numpy()
    mid = pd.Series(((asof["bid_price"] + asof["ask_price"]) / 2).where(fresh).to_numpy(), index=data.grid)
    _same(Midpoint().bitflyer().five_min().compute(data), mid)


def test_lean_quotes_give_the_spread(lean_store: MarketStore) -> None:
    start = pd.Timestamp("2017-09-03 00:00", tz="UTC")
    data = MarketData(lean_store, start, start + pd.Timedelta("1D"), ONE_MIN)
    quotes = lean_store.quotes(
        "coinbase", "btc_usd", start, start + pd.Timedelta("1D") + pd.Timedelta("1min")
    )
    expected = _on_grid(quotes["ask_price"] - quotes["bid_price"], data.grid)
    _same(Spread().coinbase().compute(data), expected)
    close = data.bars("coinbase", "btc_usd")["close"]
    _same(SimpleReturns().coinbase().lookforward(5).compute(data), close.shift(-5) / close - 1)
