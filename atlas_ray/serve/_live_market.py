"""``LiveMarket``: the last stretch of market data a live model needs, in memory.

It is a ``MarketSource`` (see ``atlas_ray.featurestore._source``): ``MarketData`` reads it exactly as it
reads the parquet store, so a live feature is computed by the code that built the training frame.

Series are declared up front (exchange, pair, kind in the store's kinds and columns): ``has`` answers
from the declaration, never from what happened to arrive, so which data a feature reads (stored quotes
or bars, say) is decided once, as it was when the training set was built. Rows are appended in time
order (the engine checks order before appending) and everything older than ``keep`` before the newest
row is let go.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from atlas_ray.errors import MissingDataError
from atlas_ray.featurestore._bars import read_bars
from atlas_ray.featurestore._schema import COLUMNS, Resolution

__all__ = ["LiveMarket", "SeriesKey"]

SeriesKey = tuple[str, str, str]
"""``(exchange, pair, kind)``."""

_TEXT_COLUMNS = frozenset({"side", "trade_id"})


@dataclass
class _Series:
    kind: str
    stamps: list[int] = field(default_factory=list)
    values: dict[str, list[object]] = field(default_factory=dict)
    frame: pd.DataFrame | None = None  # the rows as a frame, rebuilt after an append

    def __post_init__(self) -> None:
        self.values = {c: [] for c in COLUMNS[self.kind]}

    def as_frame(self) -> pd.DataFrame:
        if self.frame is None:
            index = pd.DatetimeIndex(np.asarray(self.stamps, dtype="int64"), tz="UTC", name="timestamp")
            data = {
                c: np.asarray(
                    v, dtype=object if c in _TEXT_COLUMNS else "float64" if c != "level" else "int64"
                )
                for c, v in self.values.items()
            }
            self.frame = pd.DataFrame(data, index=index, copy=False)
        return self.frame


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
        stamps = self._series[key].stamps
        return stamps[-1] if stamps else None

    def append(self, key: SeriesKey, stamp: int, row: Mapping[str, object]) -> None:
        """One row at ``stamp`` (ns, UTC, not older than the series' newest row)."""
        series = self._series[key]
        series.stamps.append(stamp)
        for column, values in series.values.items():
            values.append(row[column])
        series.frame = None

    def append_many(
        self, key: SeriesKey, stamps: Sequence[int], rows: Mapping[str, Sequence[object]]
    ) -> None:
        """Several rows of one series at once (a book snapshot's levels)."""
        series = self._series[key]
        series.stamps.extend(stamps)
        for column, values in series.values.items():
            values.extend(rows[column])
        series.frame = None

    def trim(self, now: int) -> None:
        """Let go of rows older than ``now - keep``."""
        horizon = now - int(self.keep.value)
        for series in self._series.values():
            if series.stamps and series.stamps[0] < horizon:
                cut = int(np.searchsorted(np.asarray(series.stamps, dtype="int64"), horizon, side="left"))
                del series.stamps[:cut]
                for values in series.values.values():
                    del values[:cut]
                series.frame = None

    def rows(self, key: SeriesKey) -> int:
        return len(self._series[key].stamps)

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
        frame = series.as_frame()
        stamps = pd.DatetimeIndex(frame.index).asi8
        lo = 0 if start is None else int(np.searchsorted(stamps, _ns(start), side="left"))
        hi = len(stamps) if end is None else int(np.searchsorted(stamps, _ns(end), side="left"))
        return frame.iloc[lo:hi][[c for c in wanted if c in frame.columns]]

    def bars(
        self,
        exchange: str,
        pair: str,
        resolution: Resolution | str,
        start: pd.Timestamp | str | None = None,
        end: pd.Timestamp | str | None = None,
    ) -> pd.DataFrame:
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
