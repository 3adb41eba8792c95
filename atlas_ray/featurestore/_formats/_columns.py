"""Column names across the variants of a format: a ``Field`` is one canonical name and the names vendors
use for it over the years (each reader declares its format's fields in its ``HEADER``, ``_header``).

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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
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


def closest_format(
    header: Sequence[str], formats: Mapping[str, Sequence[Field]]
) -> tuple[str, list[Field]] | None:
    """The format of ``formats`` (name -> its fields, the first wins a tie) whose required fields
    ``header`` comes closest to holding, and the fields it lacks; None when no format shares a single
    field with it."""
    best: tuple[int, int, str, list[Field]] | None = None
    for format_name, fields in formats.items():
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
