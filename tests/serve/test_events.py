"""Parsing and checking of live market events: every kind of defect refused with its reason, and a fuzzer
(hypothesis) that hands ``parse_event`` any JSON: it takes it or refuses it with a reason, never raises."""

from __future__ import annotations

import math
import time
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atlas_ray.featurestore import Resolution
from atlas_ray.serve import REASONS, EventError, parse_event
from atlas_ray.serve._events import FUTURE_SLACK_NS, parse_mark

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
    vwap = event.rows["vwap"][0]
    assert isinstance(vwap, float) and math.isnan(vwap) and event.rows["trades"] == (-1.0,)


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
    # crossed, as the store holds such quotes (Bitstamp's rebuilt 2015 book crosses): taken, not refused
    crossed = parse_event({**quote, "bid_price": 11.0}, Resolution.ONE_MIN)
    assert crossed.rows["bid_price"] == (11.0,) and crossed.rows["ask_price"] == (10.5,)
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


# ------------------------------------------------------------------------------- hostile events
@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"ts": "9999-12-31"}, "bad_time"),
        ({"ts": "9999-12-31T00:00:00Z"}, "bad_time"),
        ({"ts": "2200-01-01T00:00:00Z"}, "bad_time"),  # in the ns clock's range, but far in the future
        ({"ts": "1969-12-31T23:59:00Z"}, "bad_time"),
        ({"ts": None, "ts_ns": 2**70}, "bad_time"),
        ({"ts": None, "ts_ms": -(2**70)}, "bad_time"),
        ({"ts": None, "ts_ms": 1.5e12}, "bad_time"),
        ({"ts": ["2023-03-01"]}, "bad_time"),
        ({"close": 10**400}, "not_a_number"),
        ({"close": "1e400"}, "not_a_number"),
        ({"close": [1.0]}, "not_a_number"),
        ({"close": {"value": 1.0}}, "not_a_number"),
        ({"kind": ["bars"]}, "malformed"),
        ({"kind": {"bars": 1}}, "malformed"),
        ({"pair": ["btc", "usd"]}, "malformed"),
        ({"resolution": ["1m"]}, "malformed"),
        ({"vwap": -3.0}, "bad_value"),
        ({"trades": 2.5}, "bad_value"),
        ({"trades": -7}, "bad_value"),
        ({"exchange": "\ud800"}, "malformed"),  # a lone surrogate: no UTF-8 answer could carry it
        ({"exchange": "Coinbase"}, "malformed"),
        ({"exchange": "x" * 65}, "malformed"),
        ({"exchange": 7}, "malformed"),
        ({"pair": "btc/usd"}, "malformed"),
    ],
)
def test_hostile_values_are_refused_with_a_reason(change: dict[str, object], reason: str) -> None:
    with pytest.raises(EventError) as caught:
        parse_event({**BAR, **change}, Resolution.ONE_MIN)
    assert caught.value.reason == reason, caught.value
    assert len(str(caught.value)) < 400


def test_a_through_mark_is_checked_as_a_time() -> None:
    assert parse_mark("2023-03-01T00:01:00Z") == parse_event(BAR, Resolution.ONE_MIN).stamp
    assert parse_mark(1_677_628_860_000_000_000) == parse_event(BAR, Resolution.ONE_MIN).stamp
    for bad in ("9999-12-31", "soon", 2**80, -1, 1.5, None, [1], True):
        with pytest.raises(EventError) as caught:
            parse_mark(bad)
        assert caught.value.reason == "bad_time"


_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.text(st.characters(codec=None, categories=["Cs", "Cc", "Lu", "Ll"]), max_size=8)
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
_texts = st.text(st.characters(codec=None, exclude_categories=()), max_size=12) | st.text(
    st.characters(codec=None, categories=["Cs", "Cc", "Ll", "Nd"]), max_size=8
)
_times = (
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(9999, 12, 31)).map(
        lambda d: d.isoformat()
    )
    | st.text(max_size=30)
    | _json
)


@st.composite
def _events(draw: st.DrawFn) -> object:
    """Events of every kind with up to three fields dropped or replaced by any JSON value or text, or any
    JSON value at all."""
    kind = draw(st.sampled_from(["bars", "quotes", "trades", "book", "candles"]))
    good: dict[str, object] = {
        "bars": {**BAR, "vwap": 23151.0, "trades": 12},
        "quotes": {
            "exchange": "kraken",
            "kind": "quotes",
            "ts": "2023-03-01T00:00:30Z",
            "bid_price": 10.0,
            "bid_size": 1.0,
            "ask_price": 10.5,
            "ask_size": 2.0,
        },
        "trades": {
            "exchange": "bitflyer",
            "kind": "trades",
            "ts": "2018-01-21T00:00:01Z",
            "price": 1e6,
            "size": 0.1,
            "side": "buy",
            "trade_id": "42",
        },
        "book": {
            "exchange": "bitstamp",
            "kind": "book",
            "ts": "2015-05-01T00:01:00Z",
            "bids": [[236.0, 1.0]],
            "asks": [[236.5, 0.5]],
        },
        "candles": {"kind": "candles"},
    }[kind]  # type: ignore[assignment]
    event = dict(good)  # type: ignore[call-overload]
    fields = sorted({*event, "ts_ms", "ts_ns", "pair", "resolution", "vwap", "trades"})
    for name in draw(st.lists(st.sampled_from(fields), max_size=3, unique=True)):  # near a good event
        action = draw(st.sampled_from(["drop", "any", "time", "number", "text"]))
        if action == "drop":
            event.pop(name, None)
        elif action == "any":
            event[name] = draw(_json)
        elif action == "time":
            event[name] = draw(_times)
        elif action == "number":
            event[name] = draw(st.integers() | st.floats() | st.integers(min_value=-(2**70), max_value=2**70))
        elif action == "text":  # any code point, lone surrogates and control characters included
            event[name] = draw(_texts)
    return draw(st.just(event) | st.just(event) | _json)


@pytest.mark.slow  # fuzzing (~5-16 s): not in scripts/test.sh --quick
@settings(max_examples=1500, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(_events())
def test_fuzzed_events_are_taken_or_refused_with_a_reason_never_raised(item: object) -> None:
    try:
        event = parse_event(item, Resolution.ONE_MIN)
    except EventError as error:
        assert error.reason in REASONS
        assert len(str(error)) < 600
        str(error).encode("utf-8")  # an HTTP answer can carry it
        return
    "/".join(event.key).encode("utf-8")
    event.trade_id.encode("utf-8")
    assert 0 <= event.stamp <= time.time_ns() + FUTURE_SLACK_NS
    for column, values in event.rows.items():
        for value in values:
            if isinstance(value, float) and column not in ("vwap",):
                assert math.isfinite(value), (column, value)
