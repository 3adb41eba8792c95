"""``MarketSource``: what features read market data from.

``MarketData`` and the bars rule (``read_bars``) only ever call these methods, so the partitioned
``MarketStore`` (research) and the serving side's in-memory ``LiveMarket`` (the last bars a live model
needs) are interchangeable, and a live prediction runs the very code that built its training frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import pandas as pd

from atlas_ray.featurestore._schema import Resolution

__all__ = ["MarketSource"]


@runtime_checkable
class MarketSource(Protocol):
    """A read-only source of market data in the store's kinds and columns (see ``_schema``)."""

    @property
    def root(self) -> str:
        """Where the data lives, for messages."""
        ...

    def has(self, exchange: str, pair: str, kind: str) -> bool:
        """Whether the source holds ``kind`` for the series at all."""
        ...

    def kinds(self, exchange: str, pair: str) -> list[str]:
        """The kinds the source holds for a series."""
        ...

    def read(
        self,
        exchange: str,
        pair: str,
        kind: str,
        start: pd.Timestamp | str | None = None,
        end: pd.Timestamp | str | None = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Rows with ``start <= timestamp < end`` indexed by timestamp (UTC), in time order."""
        ...

    def bars(
        self,
        exchange: str,
        pair: str,
        resolution: Resolution | str,
        start: pd.Timestamp | str | None = None,
        end: pd.Timestamp | str | None = None,
    ) -> pd.DataFrame:
        """Bars by the store's bars rule (``atlas_ray.featurestore._store._bars.read_bars``)."""
        ...

    def quotes(
        self,
        exchange: str,
        pair: str,
        start: pd.Timestamp | str | None = None,
        end: pd.Timestamp | str | None = None,
    ) -> pd.DataFrame:
        """Top-of-book rows indexed by observation time."""
        ...

    def book(
        self,
        exchange: str,
        pair: str,
        start: pd.Timestamp | str | None = None,
        end: pd.Timestamp | str | None = None,
    ) -> pd.DataFrame:
        """Order-book snapshots in long form indexed by snapshot time."""
        ...
