"""``LiveMarket``: the last stretch of market data a live model needs, in memory.

It is a ``MarketSource`` (see ``featurestore._store._source``): ``MarketData`` reads it exactly as it
reads the parquet store, so a live feature is computed by the code that built the training frame.

Series are declared up front (exchange, pair, kind in the store's kinds and columns): ``has`` answers
from the declaration, never from what happened to arrive, so which data a feature reads (stored quotes
or bars, say) is decided once, as it was when the training set was built. Rows are appended in time
order (the engine checks order before appending) and everything older than ``keep`` before the newest
row is let go.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from atlas_ray.errors import MissingDataError
from atlas_ray.featurestore import BAR_COLUMNS, COLUMNS, Resolution, as_resolution, bars_kind, read_bars

__all__ = ["LiveMarket", "SeriesKey"]

SeriesKey = tuple[str, str, str]
"""``(exchange, pair, kind)``."""

_TEXT_COLUMNS = frozenset({"side", "trade_id"})


class _Series:
    """One series' rows in growable numpy arrays (amortised appends, slices without copies)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.columns = pd.Index(list(COLUMNS[kind]), dtype=object)
        self.size = 0
        self.stamps = np.zeros(16, dtype="int64")
        self.values = {c: np.zeros(16, dtype=_dtype(c)) for c in COLUMNS[kind]}

    def _reserve(self, extra: int) -> None:
        need = self.size + extra
        if need <= len(self.stamps):
            return
        capacity = max(need, 2 * len(self.stamps))
        self.stamps = np.concatenate(
            [self.stamps[: self.size], np.zeros(capacity - self.size, dtype="int64")]
        )
        for column, values in self.values.items():
            grown = np.zeros(capacity, dtype=_dtype(column))
            grown[: self.size] = values[: self.size]
            self.values[column] = grown

    def append(self, stamps: Sequence[int], rows: Mapping[str, Sequence[object]]) -> None:
        n = len(stamps)
        self._reserve(n)
        self.stamps[self.size : self.size + n] = stamps
        for column, values in self.values.items():
            values[self.size : self.size + n] = rows[column]
        self.size += n

    def drop_before(self, cut: int) -> None:
        keep = self.size - cut
        self.stamps[:keep] = self.stamps[cut : self.size]
        for values in self.values.values():
            values[:keep] = values[cut : self.size]
        self.size = keep

    def frame(self, lo: int, hi: int, columns: Sequence[str]) -> pd.DataFrame:
        index = pd.DatetimeIndex(self.stamps[lo:hi].copy(), tz="UTC", name="timestamp")
        wanted = [c for c in columns if c in self.values]
        names = pd.Index(wanted, dtype=object)
        if all(self.values[c].dtype == np.float64 for c in wanted):  # one block: bars and quotes
            block = np.column_stack([self.values[c][lo:hi] for c in wanted]) if wanted else None
            return pd.DataFrame(block, index=index, columns=names, copy=False)
        return pd.DataFrame({c: self.values[c][lo:hi].copy() for c in wanted}, index=index, columns=names)


def _dtype(column: str) -> Any:
    return object if column in _TEXT_COLUMNS else "int64" if column == "level" else "float64"


class LiveMarket:
    """In-memory ``MarketSource`` over declared series, trimmed to ``keep`` of history."""

    def __init__(self, series: Iterable[SeriesKey], keep: pd.Timedelta) -> None:
        self._series: dict[SeriesKey, _Series] = {}
        for exchange, pair, kind in series:
            if kind not in COLUMNS:
                raise ValueError(f"The kind {kind!r} is unknown; it must be one of {sorted(COLUMNS)}.")
            self._series[(exchange, pair, kind)] = _Series(kind)
        self.keep = keep

    @property
    def root(self) -> str:
        return "the live feed"

    @property
    def series(self) -> tuple[SeriesKey, ...]:
        return tuple(self._series)

    def declare(self, key: SeriesKey) -> None:
        """Add a series (a model swapped in may read one more)."""
        if key not in self._series:
            self._series[key] = _Series(key[2])

    # ------------------------------------------------------------------ writing
    def last_time(self, key: SeriesKey) -> int | None:
        """The newest row's time (ns since the epoch, UTC), or None."""
        series = self._series[key]
        return int(series.stamps[series.size - 1]) if series.size else None

    def first_time(self, key: SeriesKey) -> int | None:
        """The oldest row held (ns since the epoch, UTC), or None."""
        series = self._series[key]
        return int(series.stamps[0]) if series.size else None

    def append(self, key: SeriesKey, stamp: int, row: Mapping[str, object]) -> None:
        """One row at ``stamp`` (ns, UTC, not older than the series' newest row)."""
        self._series[key].append([stamp], {c: [v] for c, v in row.items()})

    def append_many(
        self, key: SeriesKey, stamps: Sequence[int], rows: Mapping[str, Sequence[object]]
    ) -> None:
        """Several rows of one series at once (a book snapshot's levels)."""
        self._series[key].append(stamps, rows)

    def trim(self, now: int) -> None:
        """Let go of rows older than ``now - keep``."""
        horizon = now - int(self.keep.value)
        for series in self._series.values():
            if series.size and series.stamps[0] < horizon:
                cut = int(np.searchsorted(series.stamps[: series.size], horizon, side="left"))
                series.drop_before(cut)

    def rows(self, key: SeriesKey) -> int:
        return self._series[key].size

    # ------------------------------------------------------------ MarketSource
    def has(self, exchange: str, pair: str, kind: str) -> bool:
        return (exchange, pair, kind) in self._series

    def kinds(self, exchange: str, pair: str) -> list[str]:
        return sorted(k for e, p, k in self._series if (e, p) == (exchange, pair))

    def read(
        self,
        exchange: str,
        pair: str,
        kind: str,
        start: pd.Timestamp | str | None = None,
        end: pd.Timestamp | str | None = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        wanted = list(columns) if columns is not None else list(COLUMNS.get(kind, ()))
        series = self._series.get((exchange, pair, kind))
        if series is None:
            empty = pd.DataFrame({c: pd.Series(dtype="float64") for c in wanted})
            empty.index = pd.DatetimeIndex([], tz="UTC", name="timestamp")
            return empty
        stamps = series.stamps[: series.size]
        lo = 0 if start is None else int(np.searchsorted(stamps, _ns(start), side="left"))
        hi = series.size if end is None else int(np.searchsorted(stamps, _ns(end), side="left"))
        return series.frame(lo, hi, wanted)

    def bars(
        self,
        exchange: str,
        pair: str,
        resolution: Resolution | str,
        start: pd.Timestamp | str | None = None,
        end: pd.Timestamp | str | None = None,
    ) -> pd.DataFrame:
        kind = bars_kind(as_resolution(resolution))
        if self.has(exchange, pair, kind):  # stored at the resolution: read_bars' first rule, without a copy
            return self.read(exchange, pair, kind, start, end, columns=BAR_COLUMNS)
        return read_bars(self, exchange, pair, resolution, start, end)

    def quotes(
        self,
        exchange: str,
        pair: str,
        start: pd.Timestamp | str | None = None,
        end: pd.Timestamp | str | None = None,
    ) -> pd.DataFrame:
        return self._require(exchange, pair, "quotes").read(exchange, pair, "quotes", start, end)

    def book(
        self,
        exchange: str,
        pair: str,
        start: pd.Timestamp | str | None = None,
        end: pd.Timestamp | str | None = None,
    ) -> pd.DataFrame:
        return self._require(exchange, pair, "book").read(exchange, pair, "book", start, end)

    def _require(self, exchange: str, pair: str, kind: str) -> LiveMarket:
        if not self.has(exchange, pair, kind):
            raise MissingDataError(f"no {kind} for {exchange}/{pair} in the live feed")
        return self


def _ns(value: pd.Timestamp | str) -> int:
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.as_unit("ns").value)
