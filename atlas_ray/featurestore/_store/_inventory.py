"""What a store holds: per exchange / pair / kind, the time range, rows, coverage and gaps.

Coverage is measured on a grid: bars on their resolution, every other kind (trades, quotes, book
snapshots) on one-minute buckets. ``expected`` is the number of grid steps from the first to the last
stored one, ``present`` how many hold at least one row, ``coverage`` = present / expected, and a gap is
a run of empty steps (for trades: minutes without a trade).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from atlas_ray.featurestore._schema import Resolution

if TYPE_CHECKING:
    from atlas_ray.featurestore._store._partitions import PartitionStore as MarketStore

__all__ = ["SeriesSummary", "format_inventory", "inventory"]


@dataclass(frozen=True)
class SeriesSummary:
    """One stored series as ``show`` lists it."""

    exchange: str
    pair: str
    kind: str
    start: pd.Timestamp
    end: pd.Timestamp
    rows: int
    step: pd.Timedelta
    expected: int
    present: int
    gaps: int
    missing: int
    largest_gap: tuple[pd.Timestamp, pd.Timestamp] | None

    @property
    def coverage(self) -> float:
        """Percent of grid steps between the first and last that hold data."""
        return 100.0 * self.present / self.expected if self.expected else 100.0


def _step_of(kind: str) -> pd.Timedelta:
    if kind.startswith("bars_"):
        return Resolution.from_short(kind.removeprefix("bars_")).offset
    return pd.Timedelta(minutes=1)


def summarise(store: MarketStore, exchange: str, pair: str, kind: str) -> SeriesSummary | None:
    """The summary of one series, or None when it holds no rows."""
    times = store.timestamps(exchange, pair, kind)
    if len(times) == 0:
        return None
    step = _step_of(kind)
    step_ns = int(step.value)
    buckets = np.unique(times.as_unit("ns").asi8 // step_ns)
    expected = int(buckets[-1] - buckets[0] + 1)
    holes = np.diff(buckets) - 1
    where = np.flatnonzero(holes > 0)
    largest = None
    if where.size:
        widest = int(where[np.argmax(holes[where])])
        first = pd.Timestamp((int(buckets[widest]) + 1) * step_ns, tz="UTC")
        last = pd.Timestamp((int(buckets[widest + 1]) - 1) * step_ns, tz="UTC")
        largest = (first, last)
    return SeriesSummary(
        exchange=exchange,
        pair=pair,
        kind=kind,
        start=times[0],
        end=times[-1],
        rows=len(times),
        step=step,
        expected=expected,
        present=len(buckets),
        gaps=int(where.size),
        missing=int(holes[where].sum()) if where.size else 0,
        largest_gap=largest,
    )


def inventory(store: MarketStore) -> list[SeriesSummary]:
    """Every series in the store, sorted by exchange, pair and kind."""
    found = []
    for exchange in store.exchanges():
        for pair in store.pairs(exchange):
            for kind in store.kinds(exchange, pair):
                summary = summarise(store, exchange, pair, kind)
                if summary is not None:
                    found.append(summary)
    return found


def _step_text(step: pd.Timedelta) -> str:
    seconds = int(step.total_seconds())
    if seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def format_inventory(store: MarketStore, summaries: list[SeriesSummary]) -> str:
    """A readable table, one line per series, plus a header naming the store."""
    if not summaries:
        return f"store {store.root}: empty"
    lines = [f"store {store.root}: {len(summaries)} series"]
    header = (
        "exchange",
        "pair",
        "kind",
        "first (UTC)",
        "last (UTC)",
        "rows",
        "coverage",
        "gaps",
        "largest gap",
    )
    rows = []
    for s in summaries:
        largest = (
            f"{s.largest_gap[0]:%Y-%m-%d %H:%M}..{s.largest_gap[1]:%Y-%m-%d %H:%M}" if s.largest_gap else "-"
        )
        rows.append(
            (
                s.exchange,
                s.pair,
                s.kind,
                f"{s.start:%Y-%m-%d %H:%M}",
                f"{s.end:%Y-%m-%d %H:%M}",
                str(s.rows),
                f"{s.coverage:.1f}% of {s.expected} {_step_text(s.step)}",
                f"{s.gaps} ({s.missing} missing)",
                largest,
            )
        )
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        lines.append(
            "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return "\n".join(lines)
