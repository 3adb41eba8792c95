"""The stored rows just before and just after a file's time span: the price check's context.

A price is refused as ``price_outlier`` when it lies more than ``max_jump`` times off the centred
rolling median of ``median_window`` rows (``_validate_rows.price_outliers``). Within a file the window
holds the file's own rows; at a file's edges it also holds the store's rows next to the file (up to
half a window on each side, never rows inside the file's span), as if the file's rows were already in
the store. So a file that starts or ends with a jump against what the store holds next to it is
checked the same way as a jump within the file: a short file (a GDS page, a file of a few trades) at
ten times the stored price is refused, where its own rows alone would agree with each other. Stored
rows are context only; they are never refused or rewritten. Only stored rows within a day of the file's
edges count (for bars, within half a window of bars if that is longer): prices months apart may
rightly differ by more than ``max_jump``.

A whole file at another level than the store (a file in other units, or of another market, longer
than half a window) is what a rolling median follows rather than refuses; ``edge_jump`` compares the
median of the file's first (last) rows with the median of the stored rows just before (after) them,
and a jump of more than ``max_jump`` between them refuses the file as a whole (``IngestError``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from atlas_ray.featurestore._schema import COLUMNS
from atlas_ray.featurestore._store._validate_rows import reference_price

if TYPE_CHECKING:
    from atlas_ray.featurestore._store._partitions import PartitionStore

__all__ = ["EdgeJump", "Neighbours", "edge_jump", "stored_neighbours"]

_PRICES = ("open", "high", "low", "close", "price", "bid_price", "ask_price")
_DAY = pd.Timedelta(days=1)
_NANOSECOND = pd.Timedelta(1, "ns")


@dataclass(frozen=True)
class Neighbours:
    """Stored rows (price columns, oldest first) just ``before`` and just ``after`` a file's span."""

    before: pd.DataFrame
    after: pd.DataFrame

    @property
    def empty(self) -> bool:
        return self.before.empty and self.after.empty


NONE = Neighbours(pd.DataFrame(), pd.DataFrame())


def stored_neighbours(
    store: PartitionStore,
    exchange: str,
    pair: str,
    kind: str,
    first: pd.Timestamp,
    last: pd.Timestamp,
    rows: int,
    within: pd.Timedelta = _DAY,
) -> Neighbours:
    """Up to ``rows`` stored rows of the series before ``first`` and after ``last``, no further than
    ``within`` from them (rows months away say nothing about a jump: prices move by more than
    ``max_jump`` over months); ``NONE`` for kinds without a price to check or an absent series."""
    if rows < 1 or kind not in COLUMNS or kind == "book" or not store.has(exchange, pair, kind):
        return NONE
    columns = [c for c in _PRICES if c in COLUMNS[kind]]
    if not columns:
        return NONE
    before = store.read(exchange, pair, kind, first - within, first, columns=columns).tail(rows)
    after = store.read(exchange, pair, kind, last + _NANOSECOND, last + within + _NANOSECOND, columns).head(
        rows
    )
    return Neighbours(before.reset_index(drop=True), after.reset_index(drop=True))


@dataclass(frozen=True)
class EdgeJump:
    """A file whose first (``side`` "before") or last (``side`` "after") rows lie at another price
    level than the stored rows next to them: their medians, and how many rows each came from."""

    side: str
    file_median: float
    stored_median: float
    file_rows: int
    stored_rows: int

    @property
    def ratio(self) -> float:
        return max(self.file_median, self.stored_median) / min(self.file_median, self.stored_median)

    def describe(self, max_jump: float) -> str:
        edge, where = ("first", "just before") if self.side == "before" else ("last", "just after")
        return (
            f"the file's {edge} {self.file_rows} prices (median {self.file_median:.10g}) are "
            f"{self.ratio:.3g}x off the {self.stored_rows} stored rows {where} them "
            f"(median {self.stored_median:.10g}), more than max_jump {max_jump:g}: a file in other units "
            "or of another market is refused as a whole"
        )


def edge_jump(prices: pd.DataFrame, neighbours: Neighbours, max_jump: float, rows: int) -> EdgeJump | None:
    """The first edge of ``prices`` (the file's kept rows, oldest first) whose median reference price
    (``reference_price``: close, quote mid, trade price) over up to ``rows`` rows is more than
    ``max_jump`` times off the median of the stored ``neighbours`` on that side; None when neither is.

    The rolling median refuses a short run of rows that jumps against the store; this catches a whole
    file at another level (longer than half a window), which a rolling median follows."""
    mine = reference_price(prices)
    if mine is None or len(mine) == 0:
        return None
    for side, stored, edge in (
        ("before", neighbours.before, mine[:rows]),
        ("after", neighbours.after, mine[-rows:]),
    ):
        theirs = reference_price(stored) if len(stored) else None
        if theirs is None or len(theirs) == 0:
            continue
        file_median, stored_median = float(np.nanmedian(edge)), float(np.nanmedian(theirs))
        if not (file_median > 0 and stored_median > 0):
            continue
        found = EdgeJump(side, file_median, stored_median, len(edge), len(theirs))
        if found.ratio > max_jump:
            return found
    return None
