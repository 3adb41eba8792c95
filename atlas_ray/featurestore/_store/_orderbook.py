"""Rebuilding order-book snapshots from limit-order events, and top-of-book quotes from the book.

Replay rules (``book_snapshots``):

* The book starts empty at the file's first event: orders resting before the file began are unknown
  until an event names them, so the first snapshots are thinner than the real book.
* ``created``: the order rests at its price with its volume (re-creating a known id replaces it).
  ``changed``: the order's remaining volume becomes the event's volume (and its price the event's
  price); an order not seen before is added. ``deleted``: the order leaves the book for good: events
  for an id after its deletion are ignored (the feed sometimes delivers a ``changed`` after the
  ``deleted`` of the same order, which must not bring it back); deleting an unknown order does nothing.
* Volumes are summed per price level in integer satoshi (exact), then reported in BTC.
* A snapshot is taken at every minute boundary ``T`` with ``first event < T <= last event``: the book
  after all events with ``timestamp < T``, the best ``depth`` (50) levels per side (bids from the
  highest price down, asks from the lowest up), level 0 = best. A crossed book (stale orders whose
  deletion the feed missed) is kept as it is.

``quotes_from_book`` takes each snapshot's level 0 on both sides as the quote at ``T``; a snapshot with
an empty side gives no quote.
"""

from __future__ import annotations

import heapq

import numpy as np
import pandas as pd

from atlas_ray.featurestore._formats._bitstamp_orders import SATOSHI

__all__ = ["BOOK_DEPTH", "book_snapshots", "quotes_from_book", "snapshot_times"]

BOOK_DEPTH = 50


def snapshot_times(times: pd.DatetimeIndex, interval: pd.Timedelta) -> pd.DatetimeIndex:
    """Boundaries ``T`` on the ``interval`` grid with ``first < T <= last`` of ``times``."""
    if len(times) == 0:
        return pd.DatetimeIndex([], tz="UTC")
    first, last = times.min(), times.max()
    start = first.floor(interval) + interval
    stop = last.floor(interval)
    if stop < start:
        return pd.DatetimeIndex([], tz="UTC")
    return pd.date_range(start, stop, freq=interval).as_unit("ns")


def book_snapshots(
    events: pd.DataFrame,
    depth: int = BOOK_DEPTH,
    interval: pd.Timedelta | None = None,
) -> pd.DataFrame:
    """Replay ``events`` (timestamp, id, price, size in BTC, action, side; sorted by time) into
    long-form snapshots: timestamp, side, level, price, size. See the module docstring."""
    if depth < 1:
        raise ValueError(f"The value of `depth` is {depth}, but must be `depth >= 1`.")
    step = interval if interval is not None else pd.Timedelta(minutes=1)
    times = pd.DatetimeIndex(events["timestamp"])
    boundaries = snapshot_times(times, step)
    cuts = np.searchsorted(times.as_unit("ns").asi8, boundaries.as_unit("ns").asi8, side="left").tolist()

    ids = events["id"].astype(str).tolist()
    prices = events["price"].to_numpy(dtype="float64").tolist()
    sizes = np.round(events["size"].to_numpy(dtype="float64") / SATOSHI).astype("int64").tolist()
    actions = events["action"].tolist()
    sides = events["side"].tolist()

    orders: dict[str, tuple[str, float, int]] = {}
    levels: dict[str, dict[float, int]] = {"bid": {}, "ask": {}}
    rows_time: list[int] = []
    rows_side: list[str] = []
    rows_level: list[int] = []
    rows_price: list[float] = []
    rows_size: list[int] = []

    gone: set[str] = set()
    position = 0
    for boundary, cut in zip(boundaries.as_unit("ns").asi8.tolist(), cuts, strict=True):
        while position < cut:
            _apply(position, ids, actions, sides, prices, sizes, orders, levels, gone)
            position += 1
        for side, best in (("bid", heapq.nlargest), ("ask", heapq.nsmallest)):
            top = best(depth, levels[side].items(), key=lambda item: item[0])
            for level, (price, size) in enumerate(top):
                rows_time.append(boundary)
                rows_side.append(side)
                rows_level.append(level)
                rows_price.append(price)
                rows_size.append(size)
    return pd.DataFrame(
        {
            "timestamp": pd.to_datetime(np.asarray(rows_time, dtype="int64"), unit="ns", utc=True),
            "side": pd.Series(rows_side, dtype="str"),
            "level": np.asarray(rows_level, dtype="int64"),
            "price": np.asarray(rows_price, dtype="float64"),
            "size": np.asarray(rows_size, dtype="float64") * SATOSHI,
        }
    )


def _apply(
    position: int,
    ids: list[str],
    actions: list[str],
    sides: list[str],
    prices: list[float],
    sizes: list[int],
    orders: dict[str, tuple[str, float, int]],
    levels: dict[str, dict[float, int]],
    gone: set[str],
) -> None:
    """Apply one event to the live orders and the per-level totals (satoshi)."""
    order_id = ids[position]
    if order_id in gone:
        return
    known = orders.pop(order_id, None)
    if known is not None:
        side, price, size = known
        left = levels[side][price] - size
        if left:
            levels[side][price] = left
        else:
            del levels[side][price]
    if actions[position] == "deleted":
        gone.add(order_id)
        return
    side, price, size = sides[position], prices[position], sizes[position]
    if size > 0:
        orders[order_id] = (side, price, size)
        levels[side][price] = levels[side].get(price, 0) + size


def quotes_from_book(book: pd.DataFrame) -> pd.DataFrame:
    """Top of book per snapshot: timestamp, bid_price, bid_size, ask_price, ask_size (both sides only)."""
    best = book.loc[book["level"] == 0]
    bids = best.loc[best["side"] == "bid"].set_index("timestamp")[["price", "size"]]
    asks = best.loc[best["side"] == "ask"].set_index("timestamp")[["price", "size"]]
    quotes = bids.join(asks, how="inner", lsuffix="_bid", rsuffix="_ask")
    out = pd.DataFrame(
        {
            "timestamp": quotes.index,
            "bid_price": quotes["price_bid"].to_numpy(),
            "bid_size": quotes["size_bid"].to_numpy(),
            "ask_price": quotes["price_ask"].to_numpy(),
            "ask_size": quotes["size_ask"].to_numpy(),
        }
    )
    return out.sort_values("timestamp", kind="stable").reset_index(drop=True)
