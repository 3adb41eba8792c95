"""Parsing and checking of live market events: every kind of defect refused with its reason."""

from __future__ import annotations

import math

import pytest

from atlas_ray.featurestore import Resolution
from atlas_ray.serve import REASONS, EventError, parse_event

BAR = {
    "exchange": "coinbase",
    "kind": "bars",
    "ts": "2023-03-01T00:01:00Z",
    "open": 23150.0,
    "high": 23160.0,
    "low": 23140.0,
    "close": 23155.0,
    "volume": 1.5,
}


def test_a_good_bar_is_read_into_the_store_columns() -> None:
    event = parse_event(BAR, Resolution.ONE_MIN)
    assert event.key == ("coinbase", "btc_usd", "bars_1m")
    assert event.time.isoformat() == "2023-03-01T00:01:00+00:00"
    assert event.rows["close"] == (23155.0,)
    assert math.isnan(float(event.rows["vwap"][0])) and event.rows["trades"] == (-1.0,)


def test_times_in_every_notation_agree() -> None:
    iso = parse_event(BAR, Resolution.ONE_MIN).stamp
    ms = parse_event({**BAR, "ts": None, "ts_ms": iso // 1_000_000}, Resolution.ONE_MIN).stamp
    ns = parse_event({**BAR, "ts": None, "ts_ns": iso}, Resolution.ONE_MIN).stamp
    offset = parse_event({**BAR, "ts": "2023-03-01T09:01:00+09:00"}, Resolution.ONE_MIN).stamp
    assert iso == ms == ns == offset


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"close": None}, "missing_field"),
        ({"exchange": None}, "missing_field"),
        ({"ts": None}, "missing_field"),
        ({"close": float("nan")}, "not_a_number"),
        ({"close": "NaN"}, "not_a_number"),
        ({"volume": "lots"}, "not_a_number"),
        ({"high": float("inf")}, "not_a_number"),
        ({"close": -1.0, "low": -2.0, "open": -1.0}, "bad_value"),
        ({"volume": -0.5}, "bad_value"),
        ({"low": 23170.0}, "bad_value"),
        ({"ts": "2023-03-01T00:01:30Z"}, "bad_time"),
        ({"ts": "yesterday"}, "bad_time"),
        ({"kind": "candles"}, "malformed"),
        ({"resolution": "7m"}, "malformed"),
    ],
)
def test_each_defect_is_refused_with_its_reason(change: dict[str, object], reason: str) -> None:
    with pytest.raises(EventError) as caught:
        parse_event({**BAR, **change}, Resolution.ONE_MIN)
    assert caught.value.reason == reason
    assert caught.value.reason in REASONS


def test_quotes_trades_and_books() -> None:
    quote = {
        "exchange": "kraken",
        "kind": "quotes",
        "ts": "2023-03-01T00:00:30Z",
        "bid_price": 10.0,
        "bid_size": 1.0,
        "ask_price": 10.5,
        "ask_size": 2.0,
    }
    assert parse_event(quote, Resolution.ONE_MIN).key == ("kraken", "btc_usd", "quotes")
    with pytest.raises(EventError, match="above ask_price"):
        parse_event({**quote, "bid_price": 11.0}, Resolution.ONE_MIN)
    trade = {
        "exchange": "bitflyer",
        "kind": "trades",
        "ts": "2018-01-21T00:00:01Z",
        "price": 1e6,
        "size": 0.1,
        "side": "buy",
        "trade_id": "42",
    }
    assert parse_event(trade, Resolution.ONE_MIN).trade_id == "42"
    with pytest.raises(EventError) as caught:
        parse_event({**trade, "side": "long"}, Resolution.ONE_MIN)
    assert caught.value.reason == "bad_value"
    book = {
        "exchange": "bitstamp",
        "kind": "book",
        "ts": "2015-05-01T00:01:00Z",
        "bids": [[236.0, 1.0], [235.5, 2.0]],
        "asks": [[236.5, 0.5]],
    }
    event = parse_event(book, Resolution.ONE_MIN)
    assert event.rows["side"] == ("bid", "bid", "ask") and event.rows["level"] == (0, 1, 0)
    with pytest.raises(EventError) as caught:
        parse_event({**book, "asks": [[236.5]]}, Resolution.ONE_MIN)
    assert caught.value.reason == "malformed"


def test_a_non_object_is_malformed() -> None:
    with pytest.raises(EventError) as caught:
        parse_event([1, 2], Resolution.ONE_MIN)
    assert caught.value.reason == "malformed"
