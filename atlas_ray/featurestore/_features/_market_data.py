"""``MarketData``: the window of market data features compute on, aligned to one bar grid.

``MarketData(store, start, end, resolution, fill_limit=5, sources=None)`` (``store``: any
``MarketSource``, the ``MarketStore`` or the serving side's ``LiveMarket``; ``sources``: the decided
``Sources`` of the featureset, see ``_sources``). Every read goes through ``SourcedMarket``: with
``sources`` each series comes from its recorded source (a build, a trial's later builds); without,
each series is decided by the same rule over the whole store when first asked:

* ``grid``: the bar open times ``start <= t < end`` at ``resolution`` (UTC).
* ``bars(exchange, pair)``: the store's bars on the grid. A missing bar is filled causally for up to
  ``fill_limit`` consecutive bars (open = high = low = close = the previous close, volume 0, vwap NaN,
  trades 0); a longer gap stays NaN from its ``fill_limit + 1``-th bar on. ``fill_limit`` bars before
  ``start`` are read too, so a fill at the window's first rows equals what a longer window gives.
* ``quotes(exchange, pair)``: for row ``t`` the last top of book stamped ``<= t + resolution`` (known at
  the close of bar ``t``), if stamped ``> t - fill_limit * resolution`` (at most ``fill_limit`` bars
  stale), else NaN. Stored quotes, or level 0 of the order-book snapshots, as decided.
* ``book(exchange, pair)``: for row ``t`` the last order-book snapshot by the same rule, as arrays
  (``OrderBooks``).
* ``check(features)``: ``MissingDataError`` naming the feature and the missing series before any
  computation; ``FeatureError`` if a feature's resolution is not the window's.

Each series is read from the store once and kept (one read per exchange / pair / kind). A value on
row ``t`` depends only on data stamped in ``(t - (fill_limit + 1) * resolution, t + resolution]``:
never on anything after the close of bar ``t``, and never on where the window starts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from atlas_ray.errors import FeatureError, MissingDataError
from atlas_ray.featurestore._features._feature import DataRequirement, Feature
from atlas_ray.featurestore._features._sources import SourcedMarket, Sources
from atlas_ray.featurestore._schema import BAR_COLUMNS, Resolution
from atlas_ray.featurestore._store._source import MarketSource

__all__ = ["MarketData", "OrderBooks"]

QUOTE_COLUMNS = ("bid_price", "bid_size", "ask_price", "ask_size")
_BAR_INDEX = pd.Index(list(BAR_COLUMNS), dtype=object)


@dataclass(frozen=True, eq=False)
class OrderBooks:
    """Order-book snapshots and, for each grid row, which snapshot applies.

    ``bid_price`` / ``bid_size`` / ``ask_price`` / ``ask_size``: ``(snapshots, levels)`` float64, level 0
    best, NaN beyond a side's depth. ``row``: for each grid row, the snapshot index or -1 (none, or
    too stale).
    """

    timestamps: pd.DatetimeIndex
    bid_price: np.ndarray
    bid_size: np.ndarray
    ask_price: np.ndarray
    ask_size: np.ndarray
    row: np.ndarray

    def on_grid(self, per_snapshot: np.ndarray) -> np.ndarray:
        """Values computed per snapshot, placed on the grid (NaN where no snapshot applies)."""
        values = np.asarray(per_snapshot, dtype=np.float64)
        out = np.full(self.row.shape[0], np.nan)
        has = self.row >= 0
        out[has] = values[self.row[has]]
        return out

    def level(self, side: str, level: int) -> tuple[np.ndarray, np.ndarray]:
        """Price and size at ``level`` of ``side`` on the grid (NaN where the book is shallower)."""
        prices, sizes = (self.bid_price, self.bid_size) if side == "bid" else (self.ask_price, self.ask_size)
        if level >= prices.shape[1]:
            nan = np.full(self.row.shape[0], np.nan)
            return nan, nan.copy()
        return self.on_grid(prices[:, level]), self.on_grid(sizes[:, level])


class MarketData:
    """The market data of one window at one resolution (see the module docstring)."""

    def __init__(
        self,
        store: MarketSource,
        start: pd.Timestamp | str,
        end: pd.Timestamp | str,
        resolution: Resolution,
        *,
        fill_limit: int = 5,
        sources: Sources | None = None,
    ) -> None:
        if isinstance(fill_limit, bool) or not isinstance(fill_limit, int) or fill_limit < 0:
            raise ValueError(f"The value of `fill_limit` is {fill_limit!r}, but must be `fill_limit >= 0`.")
        if not isinstance(resolution, Resolution):
            raise ValueError(f"The value of `resolution` is {resolution!r}, but must be a Resolution.")
        lo, hi = _utc(start), _utc(end)
        for label, stamp in (("start", lo), ("end", hi)):
            if stamp != stamp.floor(resolution.freq):
                raise ValueError(
                    f"The value of `{label}` is {stamp.isoformat()}, but must fall on a "
                    f"{resolution.freq} bar boundary."
                )
        if hi < lo:
            raise ValueError(f"The range [{lo.isoformat()}, {hi.isoformat()}) must satisfy `start <= end`.")
        if isinstance(store, SourcedMarket) and store.resolution == resolution and sources is None:
            self.store = store
        else:
            self.store = SourcedMarket(store, resolution, sources)
        self.start = lo
        self.end = hi
        self.resolution = resolution
        self.fill_limit = fill_limit
        self.grid = pd.date_range(lo, hi, freq=resolution.freq, inclusive="left", name="timestamp")
        self._bars: dict[tuple[str, str], pd.DataFrame] = {}
        self._stored: dict[tuple[str, str], np.ndarray] = {}
        self._quotes: dict[tuple[str, str], pd.DataFrame] = {}
        self._books: dict[tuple[str, str], OrderBooks] = {}
        self._raw_books: dict[tuple[str, str], pd.DataFrame] = {}
        self._available: dict[tuple[str, str, str], bool] = {}

    def __repr__(self) -> str:
        return (
            f"MarketData({self.store!r}, {self.start.isoformat()}, {self.end.isoformat()}, "
            f"{self.resolution.value}, fill_limit={self.fill_limit})"
        )

    # ---------------------------------------------------------------------------- availability
    @property
    def sources(self) -> Sources | None:
        """The recorded decision this window reads by (None: decided from the store when asked)."""
        return self.store.sources

    def has(self, exchange: str, pair: str, kind: str) -> bool:
        """Whether ``kind`` ("bars", "quotes", "book") of the series has a source (``_sources``): the
        recorded one, else decided over the whole store, so the answer never depends on the window."""
        key = (exchange, pair, kind)
        if key not in self._available:
            self._available[key] = self.store.provides(exchange, pair, kind) is not None
        return self._available[key]

    def satisfies(self, requirement: DataRequirement) -> DataRequirement | None:
        """The requirement itself if the store holds it, else its fallback if held, else None."""
        option: DataRequirement | None = requirement
        while option is not None:
            if self.has(option.exchange, option.pair, option.kind):
                return option
            option = option.fallback
        return None

    def check(self, features: Iterable[Feature]) -> None:
        """Refuse, before any computation, a feature whose data the store lacks or whose resolution is
        not this window's; the error names the feature and the series."""
        for feature in features:
            if feature.resolution != self.resolution:
                raise FeatureError(
                    f"{feature.name} is at resolution {feature.resolution.value}, but the market data is "
                    f"at {self.resolution.value}; every feature of a set must share one resolution."
                )
            for requirement in feature.requirements():
                if self.satisfies(requirement) is None:
                    raise MissingDataError(self._missing_message(feature, requirement))

    def _missing_message(self, feature: Feature, requirement: DataRequirement) -> str:
        wanted: list[DataRequirement] = []
        option: DataRequirement | None = requirement
        while option is not None:
            wanted.append(option)
            option = option.fallback
        needs = " or ".join(r.describe() for r in wanted)
        held = ", ".join(self.store.store.kinds(requirement.exchange, requirement.pair)) or "nothing"
        return (
            f"{feature.name} needs {needs}, but the store at {self.store.root} holds none "
            f"(for {requirement.exchange} {requirement.pair} it holds: {held})."
        )

    # ------------------------------------------------------------------------------------- bars
    def bars(self, exchange: str, pair: str) -> pd.DataFrame:
        """Bars on the grid (open, high, low, close, volume, vwap, trades as float64), filled causally
        for up to ``fill_limit`` bars."""
        key = (exchange, pair)
        if key not in self._bars:
            self._bars[key] = self._load_bars(exchange, pair)
        return self._bars[key]

    def release(self) -> None:
        """Drop the loaded series (bars, quotes, books); ``stored_bars`` keeps its record. Later calls
        read them again."""
        self._bars.clear()
        self._quotes.clear()
        self._books.clear()
        self._raw_books.clear()

    def stored_bars(self, exchange: str, pair: str) -> np.ndarray | None:
        """Which rows of ``grid`` the store held a bar for (with a close), before any fill; None until
        ``bars(exchange, pair)`` has been loaded."""
        return self._stored.get((exchange, pair))

    def _load_bars(self, exchange: str, pair: str) -> pd.DataFrame:
        step = self.resolution.offset
        lead = self.fill_limit * step
        raw = self.store.bars(exchange, pair, self.resolution, self.start - lead, self.end)
        origin, step_ns = (self.start - lead).value, step.value
        count = int((self.end.value - origin) // step_ns)
        extended = (
            self.grid
            if self.fill_limit == 0
            else pd.DatetimeIndex(
                np.arange(count, dtype="int64") * step_ns + origin, tz="UTC", name="timestamp"
            )
        )
        # Place each stored bar on the extended grid (the first of duplicates wins; off-grid rows drop),
        # in numpy: this runs once per market per window, and on every bar when serving live.
        stamps = pd.DatetimeIndex(raw.index).as_unit("ns").asi8
        first = np.ones(len(stamps), dtype=bool)
        if len(stamps) > 1 and not bool(np.all(stamps[1:] > stamps[:-1])):
            _, first_of = np.unique(stamps, return_index=True)
            first = np.zeros(len(stamps), dtype=bool)
            first[first_of] = True
        offset = stamps[first] - origin
        position = np.where((offset % step_ns == 0) & (offset >= 0), offset // step_ns, -1)
        position[position >= count] = -1
        on_grid = position >= 0
        target = position[on_grid]
        # One row of ``block`` per column, so every column the features read is contiguous.
        block = np.full((len(BAR_COLUMNS), len(extended)), np.nan)
        rows = None if bool(first.all()) and bool(on_grid.all()) else np.flatnonzero(first)[on_grid]
        for j, column in enumerate(BAR_COLUMNS):
            values = raw[column].to_numpy(dtype=np.float64)
            block[j, target] = values if rows is None else values[rows]
        at = {c: j for j, c in enumerate(BAR_COLUMNS)}
        close = block[at["close"]]
        present = ~np.isnan(close)
        self._stored[(exchange, pair)] = present[self.fill_limit :]
        if not bool(present.all()):
            last = np.maximum.accumulate(np.where(present, np.arange(len(close)), -1))
            filled = ~present & (last >= 0) & (np.arange(len(close)) - last <= self.fill_limit)
            if filled.any():
                previous = close[last[filled]]
                for column in ("open", "high", "low", "close"):
                    block[at[column], filled] = previous
                block[at["volume"], filled] = 0.0
                block[at["trades"], filled] = 0.0
                block[at["vwap"], filled] = np.nan
        keep = slice(self.fill_limit, None)
        return pd.DataFrame(block[:, keep].T, index=extended[keep], columns=_BAR_INDEX, copy=False)

    # ----------------------------------------------------------------------------------- quotes
    def quotes(self, exchange: str, pair: str) -> pd.DataFrame:
        """Top of book on the grid: the last one stamped ``<= t + resolution``, at most ``fill_limit``
        bars stale (else NaN)."""
        key = (exchange, pair)
        if key not in self._quotes:
            self._quotes[key] = self._load_quotes(exchange, pair)
        return self._quotes[key]

    def _read_range(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        step = self.resolution.offset
        return self.start - self.fill_limit * step, self.end + pd.Timedelta(1, "ns")

    def _load_quotes(self, exchange: str, pair: str) -> pd.DataFrame:
        source = self.store.provides(exchange, pair, "quotes")
        read = source.read if source is not None else None
        if read == "quotes":
            lo, hi = self._read_range()
            raw = self.store.quotes(exchange, pair, lo, hi)
            stamps = pd.DatetimeIndex(raw.index)
            values = {c: raw[c].to_numpy(dtype=np.float64) for c in QUOTE_COLUMNS}
            rows = self._rows_for(stamps)
            out = {}
            for column, array in values.items():
                column_values = np.full(len(self.grid), np.nan)
                column_values[rows >= 0] = array[rows[rows >= 0]]
                out[column] = column_values
            return pd.DataFrame(out, index=self.grid)
        if read == "book":
            books = self.book(exchange, pair)
            bid_price, bid_size = books.level("bid", 0)
            ask_price, ask_size = books.level("ask", 0)
            return pd.DataFrame(
                {"bid_price": bid_price, "bid_size": bid_size, "ask_price": ask_price, "ask_size": ask_size},
                index=self.grid,
            )
        # neither: let the store say what is missing
        self.store.quotes(exchange, pair)
        raise MissingDataError(f"no quotes for {exchange}/{pair}")  # pragma: no cover

    def _rows_for(self, stamps: pd.DatetimeIndex) -> np.ndarray:
        """For each grid row, the index of the last stamp ``<= t + resolution`` that is
        ``> t - fill_limit * resolution``, or -1."""
        times = stamps.asi8 if len(stamps) else np.array([], dtype=np.int64)
        if len(times) > 1 and not bool(np.all(times[1:] >= times[:-1])):
            order = np.argsort(times, kind="stable")
            times = times[order]
        else:
            order = None
        step = self.resolution.offset.value
        grid = self.grid.asi8
        position = np.searchsorted(times, grid + step, side="right") - 1
        valid = position >= 0
        fresh = np.zeros(len(grid), dtype=bool)
        fresh[valid] = times[position[valid]] > grid[valid] - self.fill_limit * step
        rows = np.where(valid & fresh, position, -1)
        if order is not None:
            rows = np.where(rows >= 0, order[np.maximum(rows, 0)], -1)
        return rows

    # ------------------------------------------------------------------------------------- book
    def book(self, exchange: str, pair: str) -> OrderBooks:
        """Order-book snapshots and the one that applies to each grid row."""
        key = (exchange, pair)
        if key not in self._books:
            self._books[key] = self._load_book(exchange, pair)
        return self._books[key]

    def _load_book(self, exchange: str, pair: str) -> OrderBooks:
        lo, hi = self._read_range()
        raw = self.store.book(exchange, pair, lo, hi)
        stamps = pd.DatetimeIndex(raw.index)
        snapshots = stamps.unique().sort_values()
        which = snapshots.get_indexer(stamps)
        side = raw["side"].astype(str).to_numpy()
        level = raw["level"].to_numpy(dtype="int64")
        price = raw["price"].to_numpy(dtype=np.float64)
        size = raw["size"].to_numpy(dtype=np.float64)
        arrays = []
        for name in ("bid", "ask"):
            mine = side == name
            depth = int(level[mine].max()) + 1 if mine.any() else 0
            prices = np.full((len(snapshots), depth), np.nan)
            sizes = np.full((len(snapshots), depth), np.nan)
            prices[which[mine], level[mine]] = price[mine]
            sizes[which[mine], level[mine]] = size[mine]
            arrays.extend([prices, sizes])
        return OrderBooks(snapshots, arrays[0], arrays[1], arrays[2], arrays[3], self._rows_for(snapshots))


def _utc(value: pd.Timestamp | str) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.as_unit("ns")
