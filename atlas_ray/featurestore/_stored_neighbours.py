"""The stored rows just before and just after a file's time span: the price check's context.

A price is refused as ``price_outlier`` when it lies more than ``max_jump`` times off the centred
rolling median of ``median_window`` rows (``_validate_rows.price_outliers``). Within a file the window
holds the file's own rows; at a file's edges it also holds the store's rows next to the file (up to
half a window on each side, never rows inside the file's span), as if the file's rows were already in
the store. So a file that starts or ends with a jump against what the store holds next to it is
checked the same way as a jump within the file: a short file (a GDS page, a file of a few trades) at
ten times the stored price is refused, where its own rows alone would agree with each other. Stored
rows are context only; they are never refused or rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from atlas_ray.featurestore._schema import COLUMNS

if TYPE_CHECKING:
    from atlas_ray.featurestore._partitions import PartitionStore

__all__ = ["Neighbours", "stored_neighbours"]

_PRICES = ("open", "high", "low", "close", "price", "bid_price", "ask_price")
_DAY = pd.Timedelta(days=1)


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
) -> Neighbours:
    """Up to ``rows`` stored rows of the series before ``first`` and after ``last`` (read from at most
    the two stored days on each side); ``NONE`` for kinds without a price to check or an absent series."""
    if rows < 1 or kind not in COLUMNS or kind == "book" or not store.has(exchange, pair, kind):
        return NONE
    columns = [c for c in _PRICES if c in COLUMNS[kind]]
    if not columns:
        return NONE
    dates = store.dates(exchange, pair, kind)
    first_day, last_day = str(first.date()), str(last.date())
    earlier = [d for d in dates if d <= first_day][-2:]
    later = [d for d in dates if d >= last_day][:2]
    before = after = pd.DataFrame()
    # The nearest stored day first; the one beyond it only when the nearest holds too few rows.
    for start in reversed(earlier):
        before = store.read(exchange, pair, kind, start, first, columns=columns).tail(rows)
        if len(before) >= rows:
            break
    for day in later:
        end = pd.Timestamp(day, tz="UTC") + _DAY
        after = store.read(exchange, pair, kind, last + pd.Timedelta(1, "ns"), end, columns=columns).head(
            rows
        )
        if len(after) >= rows:
            break
    return Neighbours(before.reset_index(drop=True), after.reset_index(drop=True))
