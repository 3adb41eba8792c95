"""Column names across the variants of a format: one canonical name per field and the names vendors
use for it over the years.

A header name is compared after ``normal_name`` (trimmed, quotes and a byte-order mark removed, lower
case, runs of spaces, ``-`` and ``.`` made ``_``), so ``"Exec Date"``, ``exec-date`` and ``EXEC_DATE``
are one name. A format's fields are matched by name, never by position: extra columns and any column
order are read. ``closest_format`` names, for a header no format accepts, the format it comes closest
to and the fields it lacks (for the error message).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "FORMAT_FIELDS",
    "MARKET_FIELDS",
    "Field",
    "closest_format",
    "describe_missing",
    "header_names",
    "match_fields",
    "normal_name",
]

_SEPARATORS = re.compile(r"[\s\-.]+")


def normal_name(name: str) -> str:
    """A header name compared across variants: ``" Exec-Date "`` -> ``"exec_date"``."""
    text = str(name).strip().lstrip("\ufeff").strip().strip('"').strip("'").strip().lower()
    return _SEPARATORS.sub("_", text)


@dataclass(frozen=True)
class Field:
    """One field of a format: its canonical name, the other names it goes by, whether it is needed."""

    name: str
    aliases: tuple[str, ...] = ()
    required: bool = True

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


def match_fields(header: Iterable[str], fields: Sequence[Field]) -> tuple[dict[str, str], list[Field]]:
    """``(found, missing)``: each field's column in ``header`` (canonical name -> header name as it is
    written), and the required fields with no column. A column serves one field only; the first name
    of a field's list that is present wins."""
    written = list(header)
    by_normal: dict[str, str] = {}
    for column in written:
        by_normal.setdefault(normal_name(column), column)
    found: dict[str, str] = {}
    used: set[str] = set()
    for spec in fields:
        for candidate in spec.names:
            present = by_normal.get(normal_name(candidate))
            if present is not None and present not in used:
                found[spec.name] = present
                used.add(present)
                break
    missing = [spec for spec in fields if spec.required and spec.name not in found]
    return found, missing


def describe_missing(missing: Sequence[Field]) -> str:
    """``id (or exec_id, execution_id), side`` for an error message."""
    parts = []
    for spec in missing:
        others = f" (or {', '.join(spec.aliases)})" if spec.aliases else ""
        parts.append(f"{spec.name}{others}")
    return ", ".join(parts)


def header_names(line: str, delimiter: str = ",") -> list[str]:
    """The column names of a CSV header line (quoted names read as CSV does)."""
    row = next(csv.reader(io.StringIO(line), delimiter=delimiter), [])
    return [name.strip().lstrip("\ufeff") for name in row]


MARKET_FIELDS = (
    Field("exchange", ("domain", "venue", "exchange_name"), required=False),
    Field("pair", ("product_code", "symbol", "instrument", "product_id", "ticker", "market"), required=False),
)
"""Where a file names its own market (optional in every format that may carry them; see
``_market_columns``)."""

_TIME = ("open_time", "start", "time", "date", "datetime", "t", "open_timestamp", "ts")

FORMAT_FIELDS: dict[str, tuple[Field, ...]] = {
    "bitflyer_executions": (
        Field("id", ("exec_id", "execution_id", "executionid", "trade_id", "tid")),
        Field(
            "exec_date",
            ("execution_date", "executed_at", "exec_time", "exec_timestamp", "execution_time"),
        ),
        Field("side", ("taker_side", "exec_side")),
        Field("price", ("exec_price", "execution_price")),
        Field("size", ("amount", "qty", "quantity", "exec_size")),
        *MARKET_FIELDS,
    ),
    "bitflyer_ticker": (
        Field("timestamp", ("ticker_time", "time")),
        Field("best_bid", ("bid", "bid_price")),
        Field("best_bid_size", ("bid_size", "bid_qty")),
        Field("best_ask", ("ask", "ask_price")),
        Field("best_ask_size", ("ask_size", "ask_qty")),
        *MARKET_FIELDS,
    ),
    "bitstamp_orders": (
        Field("id", ("order_id", "oid")),
        Field("timestamp", ("local_timestamp", "received_at", "seen_at")),
        Field("exchange.timestamp", ("exchange_timestamp", "exchange_time"), required=False),
        Field("price", ("order_price",)),
        Field("volume", ("volume_satoshi", "amount_satoshi", "size_satoshi")),
        Field("action", ("event", "event_type")),
        Field("direction", ("side", "order_side")),
    ),
    "minute_bars": (
        Field("timestamp", _TIME),
        Field("open", ("o", "open_price")),
        Field("high", ("h", "high_price")),
        Field("low", ("l", "low_price")),
        Field("close", ("c", "close_price")),
        Field("volume", ("v", "vol", "base_volume", "volume_base")),
        Field(
            "quote_volume",
            ("quote_asset_volume", "volume_quote", "quote_vol", "quotevolume"),
            required=False,
        ),
        Field("trades", ("number_of_trades", "num_trades", "trade_count", "tradecount", "count"), False),
        Field("vwap", ("vw", "average_price"), required=False),
        *MARKET_FIELDS,
    ),
    "cdd": (
        Field("date", ("unix", "unix_timestamp")),
        Field("symbol", ("pair", "ticker")),
        Field("open"),
        Field("high"),
        Field("low"),
        Field("close"),
    ),
}


def closest_format(header: Sequence[str]) -> tuple[str, list[Field]] | None:
    """The header-based format whose required fields ``header`` comes closest to holding, and the
    fields it lacks; None when no format shares a single field with it."""
    best: tuple[int, int, str, list[Field]] | None = None
    for format_name, fields in FORMAT_FIELDS.items():
        _, missing = match_fields(header, fields)
        matched = len([f for f in fields if f.required]) - len(missing)
        if matched == 0:
            continue
        score = (len(missing), -matched)
        if best is None or score < best[:2]:
            best = (score[0], score[1], format_name, missing)
    if best is None:
        return None
    return best[2], best[3]
