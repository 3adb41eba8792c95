"""Raw exchange event logs (format ``event_log``) -> order events for the book rebuild, and trades.

One event a line, any compression (gzip, xz, bz2, zip): a timestamp, the event's name and its JSON
body, separated by a tab, a comma or spaces::

    2015-05-01T00:00:01.234Z	order_created	{"id": 61, "price": 235.5, "amount": 1.2, "order_type": 0}

This is how a recorder of Bitstamp's websocket (``live_orders`` / ``live_trades`` channels) writes
what it receives. The timestamp is ISO 8601 (any offset notation ``_common`` reads) or epoch seconds /
ms / us / ns (unit read from the magnitude); it is when the event was seen, and is the event's time.

* ``order_created`` / ``order_changed`` / ``order_deleted`` (also ``created`` / ``changed`` /
  ``deleted``): body ``id``, ``price``, ``amount`` (the order's remaining volume in the base currency;
  also ``size`` / ``volume``), and the side as ``order_type`` (0 = bid, 1 = ask) or ``side`` /
  ``direction`` (bid / ask / buy / sell). They become the same order events as the processed CSV
  (``bitstamp_orders``) and the book is rebuilt from them (``_orderbook``).
* ``trade``: body ``id``, ``price``, ``amount``, and ``type`` (0 = buy, 1 = sell) or ``side`` ->
  ``trades``.
* Other events (subscription acknowledgements, heartbeats) are not market data and are skipped. A
  line whose body is not JSON, or lacks a field the event needs, is rejected as unparseable.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from atlas_ray.featurestore._formats._common import (
    Source,
    file_error,
    timestamps_from_epoch,
    timestamps_from_strings,
)
from atlas_ray.featurestore._formats._header import open_nonempty

__all__ = ["FORMAT", "looks_like_event_log", "read_event_log"]

FORMAT = "event_log"
_LINE = re.compile(
    r"^\s*(?P<time>[^\s,]+(?: [0-9:.]+(?:[+-]\d\d:?\d\d|Z)?)?)[\t ,]+"
    r"(?P<event>[A-Za-z_:.]+)[\t ,]+(?P<body>\{.*\})\s*$"
)
_ORDER_EVENTS = {
    "order_created": "created",
    "order_changed": "changed",
    "order_deleted": "deleted",
    "created": "created",
    "changed": "changed",
    "deleted": "deleted",
}
_BID = {"0": "bid", "bid": "bid", "buy": "bid", "1": "ask", "ask": "ask", "sell": "ask"}
_BUY = {"0": "buy", "buy": "buy", "bid": "buy", "1": "sell", "sell": "sell", "ask": "sell"}


def looks_like_event_log(first_line: str) -> bool:
    """A line of ``timestamp, event name, JSON object``."""
    return bool(_LINE.match(first_line))


def _first(body: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        if name in body and body[name] is not None:
            return body[name]
    raise KeyError(names[0])


def read_event_log(path: Path, name: str) -> Source:
    """Parse an event log into order events (with a ``trades`` companion when it holds trades)."""
    data = open_nonempty(path, name)
    orders: dict[str, list[Any]] = {k: [] for k in ("time", "id", "price", "size", "action", "side", "line")}
    trades: dict[str, list[Any]] = {k: [] for k in ("time", "price", "size", "side", "trade_id", "line")}
    unparseable = 0
    rows = 0
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        rows += 1
        try:
            match = _LINE.match(raw.decode("utf-8"))
            if match is None:
                raise ValueError("not an event line")
            event = match.group("event").lower()
            body = json.loads(match.group("body"))
            if event in _ORDER_EVENTS:
                side = _BID[str(_first(body, ("order_type", "side", "direction"))).lower()]
                orders["id"].append(str(_first(body, ("id", "order_id"))))
                orders["price"].append(float(_first(body, ("price",))))
                orders["size"].append(float(_first(body, ("amount", "size", "volume"))))
                orders["action"].append(_ORDER_EVENTS[event])
                orders["side"].append(side)
                orders["time"].append(match.group("time"))
                orders["line"].append(number)
            elif event == "trade":
                side = _BUY.get(str(body.get("type", body.get("side", ""))).lower(), "")
                trades["trade_id"].append(str(body.get("id", "")))
                trades["price"].append(float(_first(body, ("price",))))
                trades["size"].append(float(_first(body, ("amount", "size", "volume"))))
                trades["side"].append(side)
                trades["time"].append(match.group("time"))
                trades["line"].append(number)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            unparseable += 1
    if not orders["id"] and not trades["price"]:
        raise file_error(
            name, f"holds no order or trade events ({rows} lines, {unparseable} of them unreadable)"
        )
    order_frame = pd.DataFrame(
        {
            "timestamp": _times(orders["time"], name, orders["line"]),
            "id": np.asarray(orders["id"], dtype=object),
            "price": np.asarray(orders["price"], dtype="float64"),
            "size": np.asarray(orders["size"], dtype="float64"),
            "action": np.asarray(orders["action"], dtype=object),
            "side": np.asarray(orders["side"], dtype=object),
            "line": np.asarray(orders["line"], dtype="int64"),
        }
    )
    companions: tuple[Source, ...] = ()
    if trades["price"]:
        trade_frame = pd.DataFrame(
            {
                "timestamp": _times(trades["time"], name, trades["line"]),
                "price": np.asarray(trades["price"], dtype="float64"),
                "size": np.asarray(trades["size"], dtype="float64"),
                "side": np.asarray(trades["side"], dtype=object),
                "trade_id": np.asarray(trades["trade_id"], dtype=object),
                "line": np.asarray(trades["line"], dtype="int64"),
            }
        )
        companions = (
            Source(
                format=FORMAT,
                kind="trades",
                frame=trade_frame,
                rows_read=len(trade_frame),
                order="unordered",
                price_columns=("price",),
                key=("trade_id",),
            ),
        )
    return Source(
        format=FORMAT,
        kind="order_events",
        frame=order_frame,
        rows_read=rows,
        order="ascending",
        price_columns=("price",),
        key=("timestamp", "id", "price", "size", "action", "side"),
        interval=pd.Timedelta(minutes=1),
        unparseable=unparseable,
        companions=companions,
    )


def _times(values: list[str], name: str, lines: list[int]) -> pd.DatetimeIndex:
    numbers = np.asarray(lines, dtype="int64")
    if not values:
        return pd.DatetimeIndex([], tz="UTC").as_unit("ns")
    if all(re.fullmatch(r"\d+(\.\d*)?", v) for v in values[:100]):
        try:
            epoch = np.asarray([float(v) for v in values], dtype="float64")
        except ValueError:
            epoch = None
        if epoch is not None:
            return timestamps_from_epoch(epoch, name=name, column="timestamp", lines=numbers)
    return timestamps_from_strings(
        pa.array(values, pa.string()), name=name, column="timestamp", lines=numbers
    )
