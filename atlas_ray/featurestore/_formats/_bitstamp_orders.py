"""Bitstamp-style limit-order events (format ``bitstamp_orders``) -> order events for the book rebuild.

The CSV (here xz-compressed) has the header ``id,timestamp,exchange.timestamp,price,volume,action,
direction``: ``timestamp`` is when the event was seen (epoch ms, UTC) and is the event's time;
``exchange.timestamp`` (the order's own time at the exchange) is not used. ``volume`` is in satoshi
(1e-8 BTC) and is the order's remaining volume after the event; ``action`` is created / changed /
deleted, ``direction`` bid / ask. Rows are expected oldest first. The events become book snapshots and
quotes in ``atlas_ray.featurestore._store._orderbook``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from atlas_ray.featurestore._formats._columns import Field
from atlas_ray.featurestore._formats._common import (
    Source,
    header_lines,
    numbers,
    row_error,
    timestamps_from_epoch,
)
from atlas_ray.featurestore._formats._header import Header, read_header_csv

__all__ = ["FORMAT", "HEADER", "SATOSHI", "looks_like_bitstamp_orders", "read_bitstamp_orders"]

FORMAT = "bitstamp_orders"
SATOSHI = 1e-8
_ACTIONS = ("created", "changed", "deleted")
_SIDES = ("bid", "ask")
HEADER = Header(
    format=FORMAT,
    fields=(
        Field("id", ("order_id", "oid")),
        Field("timestamp", ("local_timestamp", "received_at", "seen_at")),
        Field("exchange.timestamp", ("exchange_timestamp", "exchange_time"), required=False),
        Field("price", ("order_price",)),
        Field("volume", ("volume_satoshi", "amount_satoshi", "size_satoshi")),
        Field("action", ("event", "event_type")),
        Field("direction", ("side", "order_side")),
    ),
    needs="order events need",
    listed=("id", "timestamp", "exchange.timestamp", "price", "volume", "action", "direction"),
)


def looks_like_bitstamp_orders(header: list[str]) -> bool:
    return HEADER.accepts(header)


def read_bitstamp_orders(path: Path, name: str) -> Source:
    """Parse order events: time (UTC), id, price, size (BTC), action, side, line."""
    types = dict.fromkeys(("price", "volume", "timestamp"), pa.float64())
    table, _ = read_header_csv(path, name, HEADER, types)
    lines = header_lines(table.num_rows, 2)
    stamps = numbers(table.column("timestamp"), name=name, column="timestamp", lines=lines)
    times = timestamps_from_epoch(stamps, name=name, column="timestamp", lines=lines, unit="ms")
    price = numbers(table.column("price"), name=name, column="price", lines=lines)
    volume = numbers(table.column("volume"), name=name, column="volume", lines=lines)
    action = _choice(table.column("action"), _ACTIONS, name=name, column="action", lines=lines)
    side = _choice(table.column("direction"), _SIDES, name=name, column="direction", lines=lines)
    ids = pc.cast(table.column("id"), pa.string()).to_numpy(zero_copy_only=False)
    frame = pd.DataFrame(
        {
            "timestamp": times,
            "id": ids,
            "price": price,
            "size": volume * SATOSHI,
            "action": action,
            "side": side,
            "line": lines,
        }
    )
    return Source(
        format=FORMAT,
        kind="order_events",
        frame=frame,
        rows_read=table.num_rows,
        order="ascending",
        price_columns=("price",),
        key=("timestamp", "id", "price", "size", "action", "side"),
        interval=pd.Timedelta(minutes=1),
    )


def _choice(
    values: pa.ChunkedArray, allowed: tuple[str, ...], *, name: str, column: str, lines: np.ndarray
) -> np.ndarray:
    text = pc.utf8_lower(pc.utf8_trim_whitespace(pc.cast(values, pa.string())))
    ok = pc.is_in(text, value_set=pa.array(allowed))
    bad = np.flatnonzero(~np.asarray(ok.to_numpy(zero_copy_only=False), dtype=bool))
    if bad.size:
        position = int(bad[0])
        value = text[position].as_py()
        raise row_error(name, int(lines[position]), column, f"{value!r} is not one of {', '.join(allowed)}")
    return np.asarray(text.to_numpy(zero_copy_only=False), dtype=object)
