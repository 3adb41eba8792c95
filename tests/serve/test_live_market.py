"""The live market against the store: bars built from trades, quotes and order-book snapshots fed as live
events give the same features as the store gives the build, on real bitFlyer trades and ticker rows and
on the real Bitstamp order book."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from atlas_ray.featurestore import (
    VWAP,
    Ask,
    BidStrength,
    LogReturns,
    MarketData,
    MarketStore,
    Midpoint,
    Resolution,
    Spread,
    Volume,
)
from atlas_ray.serve import LiveMarket
from atlas_ray.serve._events import parse_event
from atlas_ray.serve._feeds import history_events


def _live(
    store: MarketStore, series: list[tuple[str, str, str]], lo: pd.Timestamp, hi: pd.Timestamp
) -> LiveMarket:
    market = LiveMarket(series, keep=pd.Timedelta("1D"))
    for item in history_events(store, series, Resolution.ONE_MIN, lo, hi + pd.Timedelta(1, "ns")):
        event = parse_event(item, Resolution.ONE_MIN)
        rows = event.rows
        count = len(next(iter(rows.values())))
        market.append_many(event.key, [event.stamp] * count, rows)
    return market


def _compare(
    store: MarketStore, market: LiveMarket, features: list, lo: pd.Timestamp, hi: pd.Timestamp
) -> int:  # type: ignore[type-arg]
    stored = MarketData(store, lo, hi, Resolution.ONE_MIN)
    live = MarketData(market, lo, hi, Resolution.ONE_MIN)
    compared = 0
    for feature in features:
        expected = feature.compute(stored).to_numpy()
        got = feature.compute(live).to_numpy()
        np.testing.assert_array_equal(got, expected, err_msg=feature.name)
        compared += int(np.isfinite(expected).sum())
    return compared


def test_bars_from_live_trades_and_quotes_equal_the_store(bitflyer_store: MarketStore) -> None:
    lo, hi = pd.Timestamp("2018-01-21T03:00Z"), pd.Timestamp("2018-01-21T05:00Z")
    series = [("bitflyer", "btc_jpy", "trades"), ("bitflyer", "btc_jpy", "quotes")]
    market = _live(bitflyer_store, series, lo - pd.Timedelta("30min"), hi)
    features = [
        LogReturns().bitflyer().one_min().lookback(5),
        Volume().bitflyer().one_min(),
        VWAP().bitflyer().one_min(),
        Midpoint().bitflyer().one_min(),
        Spread().bitflyer().one_min(),
    ]
    assert _compare(bitflyer_store, market, features, lo, hi) > 400


def test_live_book_snapshots_equal_the_store(book_store: MarketStore) -> None:
    lo, hi = pd.Timestamp("2015-05-01T01:00Z"), pd.Timestamp("2015-05-01T02:00Z")
    series = [("bitstamp", "btc_usd", "book")]
    market = _live(book_store, series, lo - pd.Timedelta("20min"), hi)
    features = [
        BidStrength().bitstamp().one_min().slippage(0.5),
        Ask().bitstamp().one_min().depth(2),
        Spread().bitstamp().one_min(),
    ]
    assert _compare(book_store, market, features, lo, hi) > 150


@pytest.mark.parametrize(
    ("held", "expected"),
    [
        ({"bars_1m"}, "bars_1m"),
        ({"trades"}, "trades"),
        ({"bars_1m", "trades"}, "bars_1m"),
    ],
)
def test_the_live_series_follows_what_the_store_built_from(held: set[str], expected: str) -> None:
    from atlas_ray.serve._engine import _resolve

    class Held:
        def has(self, exchange: str, pair: str, kind: str) -> bool:
            return kind in held

        def kinds(self, exchange: str, pair: str) -> list[str]:
            return sorted(held)

    (requirement,) = LogReturns().bitflyer().one_min().requirements()
    assert _resolve(requirement, Held(), Resolution.ONE_MIN) == ("bitflyer", "btc_jpy", expected)  # type: ignore[arg-type]
