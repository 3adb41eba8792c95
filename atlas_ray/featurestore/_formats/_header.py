"""The one header read every CSV format reader shares: open the file, refuse it when empty, read the
header line, match the fields the format declares (``Header``) by name, refuse missing columns, and
read the matched columns under their canonical names.

A reader declares its format's header once::

    HEADER = Header(format="bitflyer_ticker", fields=(Field("timestamp", ("time",)), ...),
                    needs="a bitFlyer ticker needs")

and reads with ``read_header_csv(path, name, HEADER, types)`` (or, for a table it read itself,
``match_header``). A missing column refuses the file naming the file, the fields it lacks (with their
other names), what the format needs and the columns it has::

    ingest: t.csv: lacks the columns best_bid (or bid, bid_price); a bitFlyer ticker needs timestamp,
    best_bid, ... (it has timestamp, bid_size, ...)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from atlas_ray.featurestore._formats._columns import Field, describe_missing, header_names, match_fields
from atlas_ray.featurestore._formats._common import file_error, open_bytes, read_csv_table

__all__ = ["Header", "match_header", "open_nonempty", "read_header_csv", "rename_to_fields"]


@dataclass(frozen=True)
class Header:
    """A format's header as its reader declares it.

    ``fields`` are matched by name (``_columns.match_fields``: any order, extra columns read); ``needs``
    starts the list of needed columns in the missing-columns error (``"bitFlyer executions need"``);
    ``listed`` are the columns that list names (the required fields when empty).
    """

    format: str
    fields: tuple[Field, ...]
    needs: str
    listed: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.fields:
            raise ValueError(
                f"the header of {self.format!r} declares no fields, but must declare at least one"
            )

    @property
    def required(self) -> tuple[str, ...]:
        """The canonical names of the fields a file must have."""
        return tuple(f.name for f in self.fields if f.required)

    def accepts(self, header: Sequence[str]) -> bool:
        """Whether ``header`` has a column for every required field (format detection)."""
        return not match_fields(header, self.fields)[1]


def open_nonempty(path: Path, name: str) -> bytes:
    """The file's decompressed bytes; an empty (or all-whitespace) file refuses."""
    data = open_bytes(path)
    if not data or data.isspace():  # (no copy of the data, unlike ``strip``)
        raise file_error(name, "the file is empty")
    return data


def match_header(header: Sequence[str], declared: Header, name: str) -> dict[str, str]:
    """Each declared field's column in ``header`` (canonical name -> name as written); a required field
    with no column refuses the file."""
    found, missing = match_fields(header, declared.fields)
    if missing:
        needed = declared.listed or declared.required
        raise file_error(
            name,
            f"lacks the columns {describe_missing(missing)}; {declared.needs} "
            f"{', '.join(needed)} (it has {', '.join(header)})",
        )
    return found


def rename_to_fields(table: pa.Table, found: Mapping[str, str]) -> pa.Table:
    """``table``'s columns (as written) under their canonical field names."""
    canonical = {written: field for field, written in found.items()}
    return table.rename_columns([canonical[c] for c in table.column_names])


def read_header_csv(
    path: Path, name: str, declared: Header, types: Mapping[str, pa.DataType]
) -> tuple[pa.Table, dict[str, str]]:
    """A CSV file's declared columns under their canonical names, and each field's column as written.

    ``types`` maps canonical names to the type they are read as (others are inferred); a file that is
    empty, lacks a required column or holds no rows refuses."""
    data = open_nonempty(path, name)
    end = data.find(b"\n")
    header = header_names(data[: end if end >= 0 else len(data)].decode("utf-8", "replace").strip())
    found = match_header(header, declared, name)
    written_types = {found[field]: kind for field, kind in types.items() if field in found}
    table = read_csv_table(data, name=name, types=written_types, include=list(found.values()))
    table = rename_to_fields(table, found)
    if table.num_rows == 0:
        raise file_error(name, "the file holds no rows")
    return table, found
