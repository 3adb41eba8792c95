"""Feeds: where a live model's market events come from.

* ``replay:START/END``: every series the model reads, from the market store over ``[START, END)``, in
  time order: each push holds what is known at a bar's close (the bar itself; quotes, book snapshots
  and trades stamped up to the close) and declares the bar complete (``through``), so each bar is
  decided exactly once, as the build decided it. History before START (what the features' look-back
  needs) goes first as a ``warm`` push that predicts nothing. At ``--speed 1`` bars come in real time,
  at ``--speed 60`` a minute bar a second, at ``--speed 0`` as fast as the model takes them.
* ``store:`` (or ``store:START``): follows the store as new bars are ingested, polling every
  ``--poll`` seconds (``store_pushes``); it starts after the newest prediction already in redis for this
  name (so a restarted server neither misses nor repeats a bar), else at START, else at the newest
  closed bar stored. A bar the store does not hold at the model's resolution (built from finer bars or
  trades) is handed over once it is *closed* (``featurestore.closed_before``: its last
  finer bar, or a later one, is stored; or, with ``grace``, the wall clock is ``grace`` past its end),
  never while it forms, so each bar comes once and equals the bar an offline build reads.
* ``gds:``: bars built from the trades read from the Gryphon Data Service (``follow_bars``), closed by
  the same rule; ``bar_events`` makes their events, as it does for the store feeds.
* ``http``: no feed of its own; bars arrive as JSON on ``POST /NAME/bars`` (see ``_deployment``).

Every feed turns a bar into an event with ``bar_events``: every bar column (open, high, low, close,
volume, vwap, trades), vwap and trades left out where unknown (NaN, -1), which ``parse_event`` reads back
as NaN and -1: the event is the stored bar, field for field.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np
import pandas as pd

from atlas_ray.errors import AtlasError, MissingDataError
from atlas_ray.featurestore import (
    MarketSource,
    Resolution,
    SourcedMarket,
    as_resolution,
    bars_source,
    closed_before,
)
from atlas_ray.serve._live_market import SeriesKey

if TYPE_CHECKING:
    from atlas_ray.featurestore import MarketStore

__all__ = [
    "Feed",
    "Push",
    "bar_events",
    "bars_read",
    "closed_through",
    "gds_pushes",
    "gds_unservable",
    "history_events",
    "parse_feed",
    "replay_ticks",
    "series_events",
    "store_pushes",
]

Push = dict[str, object]


@dataclass(frozen=True)
class Feed:
    """A parsed ``--feed``: ``kind`` is ``replay``, ``store`` or ``http``."""

    kind: str
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    url: str = ""


def parse_feed(text: str) -> Feed:
    """``replay:START/END``, ``store:[START]`` or ``http``; anything else is refused naming the forms."""
    forms = "replay:START/END (ISO dates or times), store: or store:START, gds:mysql://..., or http"
    kind, _, rest = text.partition(":")
    if kind == "http" and not rest:
        return Feed("http")
    if kind == "replay":
        start, sep, end = rest.partition("/")
        if not sep or not start or not end:
            raise AtlasError(f"The value of `--feed` is {text!r}, but must be one of: {forms}.")
        lo, hi = _time(start, text), _time(end, text)
        if hi <= lo:
            raise AtlasError(f"The replay range of `--feed {text}` is empty: END must come after START.")
        return Feed("replay", lo, hi)
    if kind == "store":
        return Feed("store", _time(rest, text) if rest else None)
    if kind == "gds" and rest:
        return Feed("gds", url=rest)
    raise AtlasError(f"The value of `--feed` is {text!r}, but must be one of: {forms}.")


def _time(text: str, feed: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError):
        raise AtlasError(f"{text!r} in `--feed {feed}` is not an ISO date or time.") from None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


# ------------------------------------------------------------------------------- events from a store
def bar_events(
    frame: pd.DataFrame, exchange: str, pair: str, resolution: Resolution | str
) -> list[tuple[int, dict[str, object]]]:
    """``(open time ns, event)`` for every bar of ``frame`` (bars indexed by open time, the store's bar
    columns): every column, vwap and trades left out where unknown (NaN, -1: ``parse_event`` reads them
    back so)."""
    bars_at = as_resolution(resolution)
    stamps = pd.DatetimeIndex(frame.index).asi8
    columns = {c: frame[c].to_numpy(dtype="float64") for c in frame.columns}
    out: list[tuple[int, dict[str, object]]] = []
    for i, stamp in enumerate(stamps):
        event: dict[str, object] = {
            "exchange": exchange,
            "pair": pair,
            "kind": "bars",
            "resolution": bars_at.short,
            "ts_ns": int(stamp),
        }
        for column, values in columns.items():
            value = float(values[i])
            if column in ("vwap", "trades") and (math.isnan(value) or value < 0):
                continue
            event[column] = value
        out.append((int(stamp), event))
    return out


def series_events(
    source: MarketSource,
    key: SeriesKey,
    resolution: Resolution,
    lo: pd.Timestamp,
    hi: pd.Timestamp | None,
) -> list[tuple[int, dict[str, object]]]:
    """``(tick, event)`` for every row of one series in ``[lo, hi)`` (``hi`` None: to the newest row):
    ``tick`` is the open time of the bar at whose close the row is known."""
    exchange, pair, kind = key
    step = int(resolution.offset.value)
    out: list[tuple[int, dict[str, object]]] = []
    base = {"exchange": exchange, "pair": pair}
    if kind.startswith("bars_"):
        bars_at = as_resolution(kind)
        return bar_events(source.bars(exchange, pair, bars_at, lo, hi), exchange, pair, bars_at)
    if kind == "book":
        frame = source.book(exchange, pair, lo, hi)
        stamps = pd.DatetimeIndex(frame.index).asi8
        sides = frame["side"].astype(str).to_numpy()
        levels = frame["level"].to_numpy(dtype="int64")
        prices = frame["price"].to_numpy(dtype="float64")
        sizes = frame["size"].to_numpy(dtype="float64")
        bounds = np.flatnonzero(np.diff(stamps)) + 1
        for a, b in zip([0, *bounds.tolist()], [*bounds.tolist(), len(stamps)], strict=True):
            if a == b:
                continue
            book: dict[str, list[list[float]]] = {"bids": [], "asks": []}
            for j in sorted(range(a, b), key=lambda j: (sides[j], levels[j])):
                book["bids" if sides[j] == "bid" else "asks"].append([float(prices[j]), float(sizes[j])])
            first_stamp = int(stamps[a])
            out.append((_known_at(first_stamp, step), {**base, "kind": "book", "ts_ns": first_stamp, **book}))
        return out
    frame = source.read(exchange, pair, kind, lo, hi)
    stamps = pd.DatetimeIndex(frame.index).asi8
    records = frame.to_dict("records")
    for stamp, record in zip(stamps, records, strict=True):
        event: dict[str, object] = {
            **base,
            "kind": kind,
            "ts_ns": int(stamp),
            **{str(k): _plain(v) for k, v in record.items()},
        }
        tick = (int(stamp) // step) * step if kind == "trades" else _known_at(int(stamp), step)
        out.append((tick, event))
    return out


def _known_at(stamp: int, step: int) -> int:
    """The bar ``t`` whose close ``t + step`` is the first at or after ``stamp``: a quote stamped in
    ``(t, t + step]`` is known at the close of bar ``t``."""
    return -((-stamp) // step) * step - step


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    return value


def history_events(
    source: MarketSource,
    series: Sequence[SeriesKey],
    resolution: Resolution,
    lo: pd.Timestamp,
    hi: pd.Timestamp,
) -> list[dict[str, object]]:
    """Every event of ``series`` from ``lo`` known at the close of the bar before ``hi``, in time order
    (for a warm push that declares that bar complete): bars and trades before ``hi``, quotes and book
    snapshots stamped up to ``hi`` itself (one stamped at ``hi`` is known at that close; ``replay_ticks``
    from ``hi`` starts after it)."""
    ticks = [
        item
        for key in series
        for item in series_events(source, key, resolution, lo, hi + pd.Timedelta(1, "ns"))
        if item[0] < hi.value
    ]
    ticks.sort(key=lambda item: item[0])
    return [event for _, event in ticks]


def replay_ticks(
    source: MarketSource,
    series: Sequence[SeriesKey],
    resolution: Resolution,
    lo: pd.Timestamp,
    hi: pd.Timestamp,
) -> Iterator[tuple[int, list[dict[str, object]]]]:
    """``(t, events)`` for every bar ``t`` of ``[lo, hi)`` on the grid, in order: what becomes known at
    the close of bar ``t`` (possibly nothing, in a gap)."""
    step = int(resolution.offset.value)
    # quotes known at the close of the last bar are stamped up to ``hi``: read 1 ns past it
    items = [
        item
        for key in series
        for item in series_events(source, key, resolution, lo, hi + pd.Timedelta(1, "ns"))
        if lo.value <= item[0] < hi.value
    ]
    items.sort(key=lambda item: item[0])
    position = 0
    for t in range(int(lo.value), int(hi.value), step):
        events: list[dict[str, object]] = []
        while position < len(items) and items[position][0] == t:
            events.append(items[position][1])
            position += 1
        yield t, events


# ------------------------------------------------------------------------ following a growing store
def closed_through(
    store: MarketStore | SourcedMarket,
    key: SeriesKey,
    resolution: Resolution,
    *,
    now: pd.Timestamp | None = None,
    grace: pd.Timedelta | None = None,
) -> pd.Timestamp | None:
    """For a bar series: the open time before which every bar of ``key`` is closed in ``store`` now
    (``closed_before`` on the newest row of the kind its bars are built from, ``bars_read``). For any
    other series: the
    newest row's time plus 1 ns (every row stored is final). None when nothing is stored."""
    exchange, pair, kind = key
    stored = cast("MarketStore", store.store) if isinstance(store, SourcedMarket) else store
    if not kind.startswith("bars_"):
        newest = _newest(stored, exchange, pair, kind)
        return None if newest is None else newest + pd.Timedelta(1, "ns")
    try:
        source = bars_read(store, exchange, pair, as_resolution(kind))
    except MissingDataError:
        return None  # nothing stored yet: nothing to hand over, whatever the clock says
    newest = _newest(stored, exchange, pair, source)
    if newest is None:
        return None
    return closed_before(newest, source, as_resolution(kind), now=now, grace=grace)


def bars_read(store: MarketSource, exchange: str, pair: str, resolution: Resolution) -> str:
    """The stored kind a bar series at ``resolution`` is read from: for a ``SourcedMarket`` (a store
    seen through a trial's recorded sources) the recorded one, whatever else the store holds now (bars
    stored at ``resolution`` later for the same period are not read where training resampled finer
    ones); for a plain store its bars rule (``bars_source``). ``MissingDataError`` when there is none."""
    if isinstance(store, SourcedMarket):
        found = store.provides(exchange, pair, "bars")
        if found is None:
            raise MissingDataError(f"the recorded sources hold no bars for {exchange}/{pair}")
        return found.read
    return bars_source(store, exchange, pair, resolution)


def _newest(store: MarketStore, exchange: str, pair: str, kind: str) -> pd.Timestamp | None:
    try:
        return store.time_range(exchange, pair, kind)[1]
    except (KeyError, MissingDataError, FileNotFoundError):
        return None


def store_pushes(
    store: MarketStore | SourcedMarket,
    series: Sequence[SeriesKey],
    resolution: Resolution,
    start: pd.Timestamp,
    *,
    poll: float,
    stop: threading.Event,
    grace: pd.Timedelta | None = None,
) -> Iterator[list[dict[str, object]]]:
    """The ``store:`` feed: every ``poll`` seconds until ``stop`` is set, the events that became final
    since the last look, in time order (possibly none): per bar series the bars from ``start`` (then from
    where the last look ended) that are closed (``closed_through``), per other series the rows stored
    since. Each bar comes once, whole: a coarse bar still forming in the store waits for the next look."""
    if poll <= 0:
        raise ValueError(f"The value of `poll` is {poll}, but must be `poll > 0`.")
    following = dict.fromkeys(series, start)
    while not stop.is_set():
        now = pd.Timestamp.now(tz="UTC") if grace is not None else None
        ticks: list[tuple[int, dict[str, object]]] = []
        for key in series:
            closed = closed_through(store, key, resolution, now=now, grace=grace)
            if closed is None or closed <= following[key]:
                continue
            rows = series_events(store, key, resolution, following[key], closed)
            following[key] = closed
            ticks.extend(rows)
        ticks.sort(key=lambda item: item[0])
        yield [event for _, event in ticks]
        stop.wait(poll)


_GDS_CURRENCY = re.compile(r"^[a-z0-9]{1,3}$")


def gds_unservable(series: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """The series a ``gds:`` feed can never supply: GDS names a trade's pair by its volume and price
    currencies (``btc_usd`` = BTC traded in USD), each a code of at most 3 characters (``VARCHAR(3)``
    in Gryphon's ``trade`` table), so a pair that is not two such codes (``btc_usdt``, ``eth_btc_usd``)
    never comes: a trial reading one would wait for bars forever."""
    out = []
    for key in series:
        parts = key[1].split("_")
        if len(parts) != 2 or not all(_GDS_CURRENCY.match(part) for part in parts):
            out.append(key)
    return out


def gds_pushes(
    store: MarketStore,
    series: list[tuple[str, str, str]],
    url: str,
    resolution: Resolution,
    history: pd.Timedelta,
    *,
    poll: float,
    stop: threading.Event,
    resume_after: int | None = None,
    grace: pd.Timedelta | None = None,
    lag: int | None = None,
) -> Iterator[Push]:
    """The ``gds:`` feed's pushes (Ray-free): a warm push of the history the features need, then the
    closed bars of every round of ``follow_bars`` (each bar once, with every bar column: ``bar_events``).

    ``lag`` (the model's ``fill_limit``): a market whose newest bar is more than ``lag`` bars behind the
    newest bar handed over for any market is quiet (an exchange with no trade since): its bars up to
    that point are handed over in the same push (read from the store, the bar its last trades formed),
    before the engine decides those bars as a gap without them; ``follow_bars`` giving such a bar again
    when its market trades again is dropped. Without it, the last bar before a silence of more than
    ``fill_limit`` bars would be missing live and present offline.

    With ``resume_after`` (the newest prediction in redis) the warm push ends at that bar and the bars
    after it come next, whether their trades were read in this run or before a crash (a bar open at the
    crash comes once it closes). Without it the warm push ends before the first bar closed."""
    from atlas_ray.featurestore import follow_bars

    step = resolution.offset
    markets = sorted({(e, p) for e, p, _ in series})
    after = None
    warmed = False
    if resume_after is not None:
        last = pd.Timestamp(resume_after, tz="UTC")
        after = dict.fromkeys(markets, last)
        warm = history_events(store, series, resolution, last + step - history, last + step)
        yield {"events": warm, "through": resume_after, "warm": True}
        warmed = True
    handed: dict[tuple[str, str], int] = {}  # the newest bar handed over, per market
    if resume_after is not None:
        handed = dict.fromkeys(markets, resume_after)
    for bars in follow_bars(
        store, url, resolution=resolution, interval=poll, stop=stop, after=after, grace=grace
    ):
        ticks: list[tuple[int, dict[str, object]]] = []
        for (exchange, pair), frame in bars.items():
            if (exchange, pair) in markets and not frame.empty:
                if (exchange, pair) in handed:  # a bar handed over early (``lag``) comes once
                    frame = frame[pd.DatetimeIndex(frame.index).asi8 > handed[(exchange, pair)]]
                if frame.empty:
                    continue
                ticks.extend(bar_events(frame, exchange, pair, resolution))
                handed[(exchange, pair)] = int(pd.DatetimeIndex(frame.index).asi8[-1])
        if lag is not None and ticks:
            ticks.extend(_quiet_bars(store, handed, resolution, lag))
        if not ticks:
            continue
        ticks.sort(key=lambda item: item[0])
        if not warmed:
            first = pd.Timestamp(ticks[0][0], tz="UTC")
            warm = history_events(store, series, resolution, first - history, first)
            yield {"events": warm, "through": (first - step).value, "warm": True}
            warmed = True
        yield {"events": [event for _, event in ticks]}


def _quiet_bars(
    store: MarketStore, handed: dict[tuple[str, str], int], resolution: Resolution, lag: int
) -> list[tuple[int, dict[str, object]]]:
    """The bars of markets more than ``lag`` bars behind the newest bar handed over, up to that point
    (as the store holds them), marked handed (see ``gds_pushes``)."""
    step = int(resolution.offset.value)
    cut = max(handed.values()) - lag * step
    out: list[tuple[int, dict[str, object]]] = []
    for (exchange, pair), last in handed.items():
        if last >= cut:
            continue
        lo, hi = pd.Timestamp(last + step, tz="UTC"), pd.Timestamp(cut + step, tz="UTC")
        frame = store.bars(exchange, pair, resolution, lo, hi)
        if not frame.empty:
            out.extend(bar_events(frame, exchange, pair, resolution))
            handed[(exchange, pair)] = int(pd.DatetimeIndex(frame.index).asi8[-1])
    return out


def paced(
    ticks: Iterator[tuple[int, list[dict[str, object]]]],
    speed: float,
    *,
    chunk: int = 64,
    stopped: Callable[[], bool] = lambda: False,
) -> Iterator[tuple[Push, float]]:
    """Pushes from ``ticks`` at ``speed`` (market seconds per wall second; 0 = as fast as possible, in
    pushes of up to ``chunk`` bars), each with the wall time it was due."""
    started: float | None = None
    first: int | None = None
    if speed <= 0:
        group: list[dict[str, object]] = []
        last = None
        count = 0
        for t, events in ticks:
            if stopped():
                return
            group.extend(events)
            last, count = t, count + 1
            if count == chunk:
                yield {"events": group, "through": last}, time.perf_counter()
                group, count = [], 0
        if count:
            yield {"events": group, "through": last}, time.perf_counter()
        return
    for t, events in ticks:
        if stopped():
            return
        if started is None or first is None:
            started, first = time.perf_counter(), t
        due = started + (t - first) / 1e9 / speed
        wait = due - time.perf_counter()
        while wait > 0 and not stopped():
            time.sleep(min(wait, 0.5))
            wait = due - time.perf_counter()
        yield {"events": events, "through": t}, time.perf_counter()
