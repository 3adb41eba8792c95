"""Market events as a feed hands them to a live model (JSON), and why one is refused.

One event is one row of one series::

    {"exchange": "coinbase", "pair": "btc_usd", "kind": "bars", "ts": "2023-03-01T00:00:00Z",
     "open": 23150.1, "high": 23160.0, "low": 23140.2, "close": 23155.0, "volume": 12.5}

* ``exchange`` (required), ``pair`` (default: the exchange's default pair, as for features),
  ``kind``: ``bars`` (default), ``quotes``, ``trades`` or ``book``.
* ``ts``: ISO 8601 (a naive time is UTC), or ``ts_ms`` / ``ts_ns``: integer milli- / nanoseconds since
  the epoch (UTC).
  A bar is stamped with its *open* time and must lie on its resolution's grid; quotes, trades and book
  snapshots with the time they were observed.
* bars: ``open high low close volume`` (``vwap``, ``trades`` optional: absent means unknown, as the
  store's NaN and -1); ``resolution`` defaults to the model's (``1m``, ``5m``, ``10m``, ``1h``). A live
  model takes bars at its own resolution: a coarse bar is sent once, closed and whole, as the store
  and GDS feeds send it (a finer bar sent to a coarser model is refused as ``unknown_series``).
  quotes: ``bid_price bid_size ask_price ask_size``. trades: ``price size`` (``side``, ``trade_id``
  optional). book: ``bids`` and ``asks``, lists of ``[price, size]``, best first.

``parse_event`` refuses a malformed event with a ``EventError`` whose ``reason`` is one of
``REASONS``; order (``out_of_order``, ``duplicate``) is judged by the engine, which knows each series'
newest row. It refuses, never raises anything else, whatever the decoded JSON holds: a time outside
``[1970-01-01, now + 1 day]`` (``ts`` 9999-12-31 included; a bar stamped far in the future would make
the engine lay a grid of bars up to it) is ``bad_time``; a number too large for a float is
``not_a_number``; a field of the wrong JSON type, or an exchange or pair that is not a name as the
store keeps them, is ``malformed``. Every message shows a refused value through ``repr``, cut short, so
it is plain printable text. ``trades`` (a bar's trade count) is
a whole number >= 0 (-1: unknown), ``vwap`` a finite number > 0.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from atlas_ray.featurestore import Resolution, as_resolution, bars_kind, default_pair

__all__ = ["FUTURE_SLACK_NS", "REASONS", "MarketEvent", "EventError", "parse_event", "parse_mark"]

REASONS = (
    "malformed",  # not a JSON object, or an unknown kind
    "missing_field",  # a required field is absent or null
    "not_a_number",  # a numeric field is not a finite number (NaN, inf, text)
    "bad_value",  # a number breaks its rule: price <= 0, size < 0, low > high, ...
    "bad_time",  # the time cannot be read, or a bar is not on its resolution's grid
    "out_of_order",  # older than the newest row already taken for its series
    "duplicate",  # the same time (or trade id) as a row already taken for its series
    "unknown_series",  # a series the live model does not read
)

FUTURE_SLACK_NS = 86_400 * 1_000_000_000
"""How far past the wall clock an event may be stamped (1 day): a clock a little ahead is fine, a
bar stamped years ahead is ``bad_time``."""

_MAX_STAMP = pd.Timestamp.max.value  # the ns clock's end (2262-04-11)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")  # exchange and pair names, as the store keeps them
_RULE = "(lower-case letters, digits, '_' or '-', at most 64)"

_FIELDS: dict[str, tuple[str, ...]] = {
    "bars": ("open", "high", "low", "close", "volume"),
    "quotes": ("bid_price", "bid_size", "ask_price", "ask_size"),
    "trades": ("price", "size"),
    "book": (),
}


class EventError(Exception):
    """An event that cannot be taken; ``reason`` is one of ``REASONS``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class MarketEvent:
    """One parsed event: its series ``(exchange, pair, kind)`` in the store's kinds, its time (ns since
    the epoch, UTC) and its row(s) in the store's columns (a book snapshot has one row per level)."""

    exchange: str
    pair: str
    kind: str
    stamp: int
    rows: Mapping[str, tuple[object, ...]]
    trade_id: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.exchange, self.pair, self.kind)

    @property
    def time(self) -> pd.Timestamp:
        return pd.Timestamp(self.stamp, tz="UTC")


def parse_event(item: object, default_resolution: Resolution) -> MarketEvent:
    """The event ``item`` (a decoded JSON object) checked and in the store's columns."""
    if not isinstance(item, Mapping):
        raise EventError("malformed", f"an event must be a JSON object, not {_short(item)}")
    kind = item.get("kind", "bars")
    if not isinstance(kind, str) or kind not in _FIELDS:
        raise EventError("malformed", f"kind is {_short(kind)}, but must be one of {sorted(_FIELDS)}")
    exchange = item.get("exchange")
    if exchange is None or exchange == "":
        raise EventError("missing_field", "the field `exchange` is missing")
    if not isinstance(exchange, str) or not _NAME.match(exchange):
        raise EventError(
            "malformed", f"exchange is {_short(exchange)}, but must be a name as the store keeps it {_RULE}"
        )
    pair = item.get("pair") or default_pair(exchange)
    if not isinstance(pair, str) or not _NAME.match(pair):
        raise EventError("malformed", f"pair is {_short(pair)}, but must be a name like 'btc_usd' {_RULE}")
    stamp = _stamp(item)
    numbers = {name: _number(item, name) for name in _FIELDS[kind]}
    if kind == "bars":
        return _bar(item, exchange, pair, stamp, numbers, default_resolution)
    if kind == "quotes":
        for side in ("bid", "ask"):
            _positive(numbers, f"{side}_price")
            _not_negative(numbers, f"{side}_size")
        # a crossed quote (bid above ask) is taken: real books cross for a moment, the store keeps such
        # rows and the offline build computes from them, so the live market must hold them too
        return MarketEvent(exchange, pair, "quotes", stamp, {k: (v,) for k, v in numbers.items()})
    if kind == "trades":
        _positive(numbers, "price")
        _positive(numbers, "size")
        side = item.get("side") or ""
        if side not in ("", "buy", "sell"):
            raise EventError("bad_value", f"side is {_short(side)}, but must be 'buy', 'sell' or absent")
        raw_id = item.get("trade_id")
        if raw_id is not None and (isinstance(raw_id, bool) or not isinstance(raw_id, str | int)):
            raise EventError("malformed", f"trade_id is {_short(raw_id)}, but must be a text or a number")
        trade_id = str(raw_id or "")
        if len(trade_id) > 256 or not trade_id.isprintable():
            raise EventError(
                "malformed", f"trade_id is {_short(raw_id)}, but must be printable text of <= 256"
            )
        rows = {
            "price": (numbers["price"],),
            "size": (numbers["size"],),
            "side": (side,),
            "trade_id": (trade_id,),
        }
        return MarketEvent(exchange, pair, "trades", stamp, rows, trade_id=trade_id)
    return _book(item, exchange, pair, stamp)


def parse_mark(value: object, name: str = "through") -> int:
    """A time given as an ISO 8601 text or integer nanoseconds since the epoch (a push's ``through``),
    checked as an event's ``ts`` is; ``EventError`` (``bad_time``) otherwise."""
    if isinstance(value, str):
        return _iso_stamp(value, name)
    if isinstance(value, int) and not isinstance(value, bool):
        return _in_range(value, name, value)
    raise EventError("bad_time", f"{name} is {_short(value)}, but must be an ISO 8601 time or ns since 1970")


def _stamp(item: Mapping[str, Any]) -> int:
    if item.get("ts") is not None:
        raw = item["ts"]
        if not isinstance(raw, str):
            raise EventError("bad_time", f"ts is {_short(raw)}, but must be an ISO 8601 time (or use ts_ms)")
        return _iso_stamp(raw, "ts")
    for name, scale in (("ts_ms", 1_000_000), ("ts_ns", 1)):
        raw = item.get(name)
        if raw is not None:
            if isinstance(raw, bool) or not isinstance(raw, int):
                raise EventError(
                    "bad_time", f"{name} is {_short(raw)}, but must be a whole number since 1970"
                )
            return _in_range(raw * scale, name, raw)
    raise EventError("missing_field", "the field `ts` (or `ts_ms`, `ts_ns`) is missing")


def _iso_stamp(raw: str, name: str) -> int:
    try:
        stamp = pd.Timestamp(raw)
        if stamp is pd.NaT:
            raise EventError("bad_time", f"{name} {_short(raw)} is not a time")
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        value = int(stamp.as_unit("ns").value)
    except (ValueError, TypeError, OverflowError):  # pandas' OutOfBoundsDatetime is a ValueError
        raise EventError(
            "bad_time", f"{name} {_short(raw)} is not an ISO 8601 time between 1970 and tomorrow"
        ) from None
    return _in_range(value, name, raw)


def _in_range(stamp: int, name: str, raw: object) -> int:
    """``stamp`` (ns) if it lies in ``[1970-01-01, now + FUTURE_SLACK_NS]``; ``bad_time`` otherwise."""
    if not 0 <= stamp <= min(_MAX_STAMP, time.time_ns() + FUTURE_SLACK_NS):
        raise EventError(
            "bad_time", f"{name} {_short(raw)} is not between 1970-01-01 and a day past the wall clock"
        )
    return stamp


def _short(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters (a hostile body may hold anything)."""
    if isinstance(value, str | int | float | bool) or value is None:
        text = repr(value) if not isinstance(value, int) or value.bit_length() < 256 else "a huge number"
    else:
        text = f"a {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _number(item: Mapping[str, Any], name: str) -> float:
    raw = item.get(name)
    if raw is None:
        raise EventError("missing_field", f"the field `{name}` is missing")
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise EventError("not_a_number", f"{name} is {_short(raw)}, not a number")
    try:
        value = float(raw)
    except (TypeError, ValueError, OverflowError):
        raise EventError("not_a_number", f"{name} is {_short(raw)}, not a finite number") from None
    if not math.isfinite(value):
        raise EventError("not_a_number", f"{name} is {_short(raw)}, but must be a finite number")
    return value


def _positive(numbers: Mapping[str, float], name: str) -> None:
    if numbers[name] <= 0:
        raise EventError("bad_value", f"{name} is {numbers[name]}, but must be > 0")


def _not_negative(numbers: Mapping[str, float], name: str) -> None:
    if numbers[name] < 0:
        raise EventError("bad_value", f"{name} is {numbers[name]}, but must be >= 0")


def _bar(
    item: Mapping[str, Any],
    exchange: str,
    pair: str,
    stamp: int,
    numbers: dict[str, float],
    default_resolution: Resolution,
) -> MarketEvent:
    given = item.get("resolution")
    if given is not None and not isinstance(given, str):
        raise EventError("malformed", f"resolution is {_short(given)}, but must be a text like '1m'")
    try:
        resolution = as_resolution(given or default_resolution)
    except ValueError:
        raise EventError(
            "malformed", f"resolution is {_short(given)}, but must be one of 1m, 5m, 10m, 1h, 1s, 1d"
        ) from None
    for name in ("open", "high", "low", "close"):
        _positive(numbers, name)
    _not_negative(numbers, "volume")
    high, low = numbers["high"], numbers["low"]
    if low > high or not (low <= numbers["open"] <= high and low <= numbers["close"] <= high):
        raise EventError(
            "bad_value",
            f"open {numbers['open']}, high {high}, low {low}, close {numbers['close']} contradict each other",
        )
    if stamp % (resolution.seconds * 1_000_000_000):
        raise EventError(
            "bad_time",
            f"the bar at {pd.Timestamp(stamp, tz='UTC').isoformat()} is not on the {resolution.freq} grid "
            "(a bar is stamped with its open time)",
        )
    vwap = _optional(item, "vwap", math.nan)
    if not math.isnan(vwap) and vwap <= 0:
        raise EventError("bad_value", f"vwap is {vwap}, but must be > 0 (or absent: unknown)")
    trades = _optional(item, "trades", -1.0)
    if trades != -1.0 and not (trades >= 0 and trades == int(trades) and trades < 2**53):
        raise EventError("bad_value", f"trades is {trades}, but must be a whole number >= 0 (-1: unknown)")
    rows = {**{k: (v,) for k, v in numbers.items()}, "vwap": (vwap,), "trades": (trades,)}
    return MarketEvent(exchange, pair, bars_kind(resolution), stamp, rows)


def _optional(item: Mapping[str, Any], name: str, default: float) -> float:
    if item.get(name) is None:
        return default
    return _number(item, name)


def _book(item: Mapping[str, Any], exchange: str, pair: str, stamp: int) -> MarketEvent:
    rows: dict[str, list[object]] = {"side": [], "level": [], "price": [], "size": []}
    for side in ("bids", "asks"):
        levels = item.get(side)
        if levels is None:
            raise EventError("missing_field", f"the field `{side}` is missing")
        if not isinstance(levels, list):
            raise EventError("malformed", f"{side} must be a list of [price, size]")
        for level, entry in enumerate(levels):
            if not isinstance(entry, list | tuple) or len(entry) != 2:
                raise EventError(
                    "malformed", f"{side}[{level}] is {_short(entry)}, but must be [price, size]"
                )
            price = _number({"price": entry[0]}, "price")
            size = _number({"size": entry[1]}, "size")
            if price <= 0 or size < 0:
                raise EventError(
                    "bad_value", f"{side}[{level}] is [{price}, {size}]: price must be > 0, size >= 0"
                )
            rows["side"].append(side[:-1])
            rows["level"].append(level)
            rows["price"].append(price)
            rows["size"].append(size)
    return MarketEvent(exchange, pair, "book", stamp, {k: tuple(v) for k, v in rows.items()})
