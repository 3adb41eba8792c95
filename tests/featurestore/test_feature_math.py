"""The feature maths (``_feature_math``) on the real files, loaded with pandas directly (no store, no
Ray), against independent pandas computations; and the start-independence that makes a partitioned
build equal a single-process one bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atlas_ray.featurestore._features import _feature_math as fm

WINDOW = ("2023-03-04 12:00", "2023-03-05 00:00")  # holds Coinbase's 4h38m gap and short ones


@pytest.fixture(scope="module")
def coinbase(data_dir: Path) -> pd.DataFrame:
    """Coinbase 1m bars reindexed onto the full minute grid of ``WINDOW`` (missing bars are NaN)."""
    raw = pd.read_parquet(data_dir / "minute_bars_2023-03" / "coinbase_btcusd.parquet")
    grid = pd.date_range(*WINDOW, freq="1min", inclusive="left", tz="UTC")
    frame = raw[["open", "high", "low", "close", "volume"]].astype("float64").reindex(grid)
    assert frame["close"].isna().sum() > 200  # the window really holds the gap
    return frame


@pytest.fixture(scope="module")
def binance(data_dir: Path) -> pd.DataFrame:
    raw = pd.read_parquet(data_dir / "minute_bars_2023-03" / "binance_btcusdt.parquet")
    return raw.loc[WINDOW[0] : WINDOW[1]].iloc[:-1]


def _same(actual: np.ndarray, expected: pd.Series | np.ndarray, rtol: float = 1e-10) -> None:
    expected = np.asarray(expected, dtype="float64")
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_allclose(
        actual[~np.isnan(actual)], expected[~np.isnan(expected)], rtol=rtol, atol=1e-12
    )
    assert (~np.isnan(expected)).sum() > 100  # never a vacuous comparison


@pytest.mark.parametrize("n", [1, 5, 30])
def test_log_returns_lookback_is_the_rolling_sum_of_one_bar_returns(coinbase: pd.DataFrame, n: int) -> None:
    close = coinbase["close"]
    one_bar = np.log(close / close.shift(1))
    _same(fm.log_returns(close.to_numpy(), lookback=n), one_bar.rolling(n).sum(), rtol=1e-8)


@pytest.mark.parametrize("n", [1, 3])
def test_log_returns_lookforward_is_the_sum_of_the_next_returns(coinbase: pd.DataFrame, n: int) -> None:
    close = coinbase["close"]
    one_bar = np.log(close / close.shift(1))
    expected = one_bar.rolling(n).sum().shift(-n)
    _same(fm.log_returns(close.to_numpy(), lookforward=n), expected, rtol=1e-8)


def test_simple_returns_and_difference(coinbase: pd.DataFrame) -> None:
    close = coinbase["close"]
    gap_free = close.notna().rolling(5).sum().eq(5)  # every close of the 4-bar window known
    expected_back = (close / close.shift(4) - 1).where(gap_free)
    _same(fm.simple_returns(close.to_numpy(), lookback=4), expected_back)
    expected_fwd = (close.shift(-2) / close - 1).where(close.notna().rolling(3).sum().shift(-2).eq(3))
    _same(fm.simple_returns(close.to_numpy(), lookforward=2), expected_fwd)
    mid = (coinbase["high"] + coinbase["low"]) / 2
    _same(fm.difference(mid.to_numpy(), lookback=3), mid.diff(3).where(mid.notna().rolling(4).sum().eq(4)))


@pytest.mark.parametrize("window", [2, 15, 60])
def test_volatility_is_the_rolling_std_of_log_returns(coinbase: pd.DataFrame, window: int) -> None:
    close = coinbase["close"]
    expected = np.log(close / close.shift(1)).rolling(window).std(ddof=1)
    _same(fm.volatility(close.to_numpy(), window), expected, rtol=1e-7)


def test_window_sum(coinbase: pd.DataFrame) -> None:
    volume = coinbase["volume"]
    _same(fm.window_sum(volume.to_numpy(), 7), volume.rolling(7).sum(), rtol=1e-9)


@pytest.mark.parametrize(
    ("function", "halo"),
    [
        (lambda c: fm.log_returns(c, lookback=7), 7),
        (lambda c: fm.simple_returns(c, lookback=3), 3),
        (lambda c: fm.volatility(c, 60), 60),
        (lambda c: fm.window_sum(c, 11), 10),
    ],
)
def test_values_do_not_depend_on_where_the_array_starts(coinbase: pd.DataFrame, function, halo: int) -> None:  # type: ignore[no-untyped-def]
    close = coinbase["close"].to_numpy()
    full = function(close)
    for offset in (1, 17, 250):
        part = function(close[offset:])
        # bit-for-bit equal wherever the part holds the row's whole halo
        np.testing.assert_array_equal(part[halo:], full[offset + halo :])


def test_vwap_uses_the_source_vwap_and_falls_back_to_the_typical_price(binance: pd.DataFrame) -> None:
    volume = binance["volume"].astype("float64")
    source = binance["quote_volume"].astype("float64") / volume
    source.iloc[::7] = np.nan  # a source without VWAP for some bars
    high, low, close = (binance[c].astype("float64") for c in ("high", "low", "close"))
    expected = source.where(source.notna(), (high + low + close) / 3).where(volume > 0)
    actual = fm.vwap(source.to_numpy(), volume.to_numpy(), high.to_numpy(), low.to_numpy(), close.to_numpy())
    _same(actual, expected)
    assert np.all(actual[volume.to_numpy() > 0] >= low.to_numpy()[volume.to_numpy() > 0] - 1e-9)


def test_fair_value_is_the_weighted_mean(coinbase: pd.DataFrame, data_dir: Path) -> None:
    kraken = pd.read_parquet(data_dir / "minute_bars_2023-03" / "kraken_btcusd.parquet").reindex(
        coinbase.index
    )
    prices = [coinbase["close"].to_numpy(), kraken["close"].to_numpy(dtype="float64")]
    weights = [coinbase["volume"].to_numpy(), kraken["volume"].to_numpy(dtype="float64")]
    frame = pd.DataFrame({"p0": prices[0], "p1": prices[1], "w0": weights[0], "w1": weights[1]})
    expected = (frame.p0 * frame.w0 + frame.p1 * frame.w1) / (frame.w0 + frame.w1)
    expected[~((frame.w0 + frame.w1) > 0)] = np.nan
    _same(fm.fair_value(prices, weights), expected)


def _integrated_crossing(bids: pd.DataFrame, asks: pd.DataFrame) -> tuple[float, float]:
    """Independent crossing: integrate (bid(q) - ask(q))^+ over the cumulative quantity q."""
    bid_edges = bids["size"].cumsum().to_numpy()
    ask_edges = asks["size"].cumsum().to_numpy()
    edges = np.unique(np.concatenate(([0.0], bid_edges, ask_edges)))
    edges = edges[edges <= min(bid_edges[-1], ask_edges[-1])]
    middles = (edges[1:] + edges[:-1]) / 2
    bid_at = bids["price"].to_numpy()[np.searchsorted(bid_edges, middles)]
    ask_at = asks["price"].to_numpy()[np.searchsorted(ask_edges, middles)]
    lengths = np.diff(edges)
    crossed = bid_at > ask_at
    return float(np.sum((bid_at - ask_at)[crossed] * lengths[crossed])), float(
        np.sum(ask_at[crossed] * lengths[crossed])
    )


def test_crossing_matches_an_integral_over_real_books(book_store) -> None:  # type: ignore[no-untyped-def]
    book = book_store.book("bitstamp", "btc_usd")
    stamps = book.index.unique().sort_values()
    checked = crossed = 0
    for early, late in zip(stamps[:-40:7], stamps[40::7], strict=False):
        # the book of ``late`` against the book of ``early``: prices moved, so some cross
        a, b = book.loc[late], book.loc[early]
        bids = a[a.side == "bid"].sort_values("level")
        asks = b[b.side == "ask"].sort_values("level")
        depth = max(len(bids), len(asks))

        def padded(frame: pd.DataFrame, column: str, depth: int = depth) -> np.ndarray:
            out = np.full((1, depth), np.nan)
            out[0, : len(frame)] = frame[column].to_numpy()
            return out

        revenue, volume = fm.crossing(
            padded(bids, "price"), padded(bids, "size"), padded(asks, "price"), padded(asks, "size")
        )
        expected = _integrated_crossing(bids, asks)
        np.testing.assert_allclose([revenue[0], volume[0]], expected, rtol=1e-9, atol=1e-9)
        checked += 1
        crossed += expected[0] > 0
    assert checked > 20 and crossed > 3


def test_book_strength_on_a_real_book(book_store) -> None:  # type: ignore[no-untyped-def]
    book = book_store.book("bitstamp", "btc_usd")
    snapshot = book.loc[book.index.unique()[100]]
    for side, sign in (("bid", -1), ("ask", 1)):
        levels = snapshot[snapshot.side == side].sort_values("level")
        best = levels["price"].iloc[0]
        within = levels[(levels["price"] - best) * sign <= 0.005 * best]
        prices = levels["price"].to_numpy()[None, :]
        sizes = levels["size"].to_numpy()[None, :]
        base = fm.book_strength(prices, sizes, 0.005, side)
        quote = fm.book_strength(prices, sizes, 0.005, side, quote_currency=True)
        assert len(within) >= 2
        np.testing.assert_allclose(base[0], within["size"].sum(), rtol=1e-12)
        np.testing.assert_allclose(quote[0], (within["size"] * within["price"]).sum(), rtol=1e-12)
