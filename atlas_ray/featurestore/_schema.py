"""The market-data vocabulary shared by the store, the ingest formats and the features.

Conventions (decided once, used everywhere):

* Every timestamp is ``datetime64[ns, UTC]``.
* A bar is labelled by its *open* time: the bar at ``t`` covers ``[t, t + resolution)``; its close is
  known at ``t + resolution``. A feature row at ``t`` may use bars up to and including ``t``.
* Kinds and their canonical columns (the store writes exactly these, in this order, plus
  ``timestamp``):

  - ``trades``: price, size (base currency), side ("buy" / "sell" / "" unknown), trade_id ("" unknown)
  - ``bars_<res>`` (``bars_1m``, ``bars_5m``, ``bars_10m``, ``bars_1h``; also ``bars_1s`` and
    ``bars_1d``, which files at those resolutions are stored as): open, high, low, close,
    volume (base), vwap (NaN unknown), trades (-1 unknown)
  - ``quotes`` (top of book snapshots): bid_price, bid_size, ask_price, ask_size
  - ``book`` (order-book snapshots, long format, one row per level): side ("bid" / "ask"),
    level (0 = best), price, size
"""

from __future__ import annotations

import enum

import pandas as pd

__all__ = ["COLUMNS", "Kind", "Resolution", "bars_kind"]


class Resolution(enum.Enum):
    """A bar resolution; the value is the fluent method's name."""

    ONE_MIN = "one_min"
    FIVE_MIN = "five_min"
    TEN_MIN = "ten_min"
    HOUR = "hour"
    SECOND = "second"
    DAY = "day"

    @property
    def seconds(self) -> int:
        return _SECONDS[self]

    @property
    def freq(self) -> str:
        """The pandas frequency string (``"1min"``, ``"5min"``, ``"10min"``, ``"1h"``)."""
        return _FREQ[self]

    @property
    def short(self) -> str:
        """The short label used in partition names (``"1m"``, ``"5m"``, ``"10m"``, ``"1h"``)."""
        return _SHORT[self]

    @property
    def offset(self) -> pd.Timedelta:
        return pd.Timedelta(seconds=self.seconds)

    @classmethod
    def from_short(cls, short: str) -> Resolution:
        for resolution, label in _SHORT.items():
            if label == short:
                return resolution
        known = ", ".join(_SHORT.values())
        raise ValueError(f"The resolution {short!r} is unknown; it must be one of {known}.")


_SECONDS = {
    Resolution.ONE_MIN: 60,
    Resolution.FIVE_MIN: 300,
    Resolution.TEN_MIN: 600,
    Resolution.HOUR: 3600,
    Resolution.SECOND: 1,
    Resolution.DAY: 86400,
}
_FREQ = {
    Resolution.ONE_MIN: "1min",
    Resolution.FIVE_MIN: "5min",
    Resolution.TEN_MIN: "10min",
    Resolution.HOUR: "1h",
    Resolution.SECOND: "1s",
    Resolution.DAY: "1D",
}
_SHORT = {
    Resolution.ONE_MIN: "1m",
    Resolution.FIVE_MIN: "5m",
    Resolution.TEN_MIN: "10m",
    Resolution.HOUR: "1h",
    Resolution.SECOND: "1s",
    Resolution.DAY: "1d",
}


class Kind(enum.Enum):
    """What a partition of the store holds (bars are ``bars_kind(resolution)``)."""

    TRADES = "trades"
    QUOTES = "quotes"
    BOOK = "book"


def bars_kind(resolution: Resolution) -> str:
    """The store's kind name for bars at ``resolution``: ``"bars_1m"`` and so on."""
    return f"bars_{resolution.short}"


BAR_COLUMNS = ("open", "high", "low", "close", "volume", "vwap", "trades")

COLUMNS: dict[str, tuple[str, ...]] = {
    Kind.TRADES.value: ("price", "size", "side", "trade_id"),
    Kind.QUOTES.value: ("bid_price", "bid_size", "ask_price", "ask_size"),
    Kind.BOOK.value: ("side", "level", "price", "size"),
    **{bars_kind(resolution): BAR_COLUMNS for resolution in Resolution},
}
