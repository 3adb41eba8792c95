"""What every format reader shares: the parsed ``Source``, file opening and vectorised field conversion.

Row numbers in errors are 1-based *line numbers in the file* for text formats (the header is line 1,
so the first data row of a CSV with a header is line 2) and 1-based row positions for parquet. A value
that is present but cannot be read (``'abc'`` in a price, ``'2023-13-45'`` in a time) refuses the whole
file with an ``IngestError`` naming the file, the row and the field; see
``atlas_ray.featurestore._store._ingest`` for which problems only reject rows.
"""

from __future__ import annotations

import bz2
import contextlib
import contextvars
import io
import lzma
import re
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from isal import isal_zlib

from atlas_ray.errors import IngestError

__all__ = [
    "Order",
    "Source",
    "file_error",
    "numbers",
    "open_bytes",
    "row_error",
    "timestamps_from_epoch",
    "timestamps_from_strings",
]

Order = Literal["ascending", "descending", "unordered"]
"""How a file orders its rows: oldest first, newest first, or no order that counts (API batches)."""


@dataclass(frozen=True)
class Source:
    """One file parsed into canonical rows, before validation.

    ``frame`` has a ``timestamp`` column (``datetime64[ns, UTC]``), the columns of ``kind`` (or, for
    order events, ``id``, ``price``, ``size``, ``action``, ``side``) and ``line`` (the row's 1-based
    line number in the file), in file order. ``unparseable`` counts rows dropped because their time was
    missing. ``price_columns`` are checked for NaN / non-positive values; ``key`` names the columns that
    make two rows duplicates; ``interval`` is the nominal spacing used to count gaps (None: no gaps).
    """

    format: str
    kind: str
    frame: pd.DataFrame
    rows_read: int
    order: Order
    price_columns: tuple[str, ...]
    key: tuple[str, ...] = ("timestamp",)
    interval: pd.Timedelta | None = None
    unparseable: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)
    conflicts: bool = True
    companions: tuple[Source, ...] = ()
    """Rows of other kinds the same file holds (an event log's trades), validated on their own."""
    """Whether rows with the same key but other values are conflicts (refused). False where several
    rows a key are real and the last one wins (LEAN quote ticks: many book updates a millisecond)."""
    market_columns: dict[str, str] = field(default_factory=dict)
    """The file's own market columns as it writes them (``{"exchange": "domain", "pair":
    "product_code"}``); their labels are the frame's ``market_exchange`` / ``market_pair``
    (``_market_columns``). Empty: the file names no market."""


def file_error(name: str, message: str) -> IngestError:
    """``ingest: <file>: <message>``."""
    return IngestError(f"ingest: {name}: {message}")


def row_error(name: str, line: int, column: str, message: str) -> IngestError:
    """``ingest: <file> row <n> field '<column>': <message>``."""
    return IngestError(f"ingest: {name} row {line} field {column!r}: {message}")


_ISAL_ERROR = cast("type[Exception]", isal_zlib.error)
"""What ``isal`` raises for corrupt deflate data (its stubs type it as an instance)."""

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"BZh", "bz2"),
    (b"PK\x03\x04", "zip"),
)


def compression_of(head: bytes) -> str | None:
    """The compression named by a file's first bytes (gzip, xz, bz2, zip) or None."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def open_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed (gzip, xz, bz2, or the single member of a zip).

    A truncated or corrupt archive refuses the file.
    """
    name = path.name
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise file_error(name, f"cannot be read ({error.strerror or error})") from None
    kind = compression_of(raw[:8])
    try:
        if kind == "gzip":
            return _gunzip(raw)
        if kind == "xz":
            return lzma.decompress(raw)
        if kind == "bz2":
            return bz2.decompress(raw)
        if kind == "zip":
            with zipfile.ZipFile(io.BytesIO(raw)) as archive:
                members = [m for m in archive.namelist() if not m.endswith("/")]
                if len(members) != 1:
                    raise file_error(name, f"the zip holds {len(members)} files, but must hold exactly 1")
                return archive.read(members[0])
    except (EOFError, OSError, lzma.LZMAError, zlib.error, _ISAL_ERROR, zipfile.BadZipFile) as error:
        raise file_error(name, f"the {kind} data is truncated or corrupt ({error})") from None
    return raw


def _as_arrow(values: pd.Series | pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return values
    return pa.array(values, from_pandas=True)


def numbers(
    values: pd.Series | pa.Array | pa.ChunkedArray,
    *,
    name: str,
    column: str,
    lines: np.ndarray,
) -> np.ndarray:
    """``values`` as float64; missing or empty values become NaN, anything else unreadable refuses.

    ``"nan"`` reads as NaN (a bad price is rejected later, not refused here).
    """
    array = _as_arrow(values)
    if pa.types.is_floating(array.type) or pa.types.is_integer(array.type):
        return np.asarray(array.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype="float64")
    if pa.types.is_null(array.type):
        return np.full(len(array), np.nan)
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        raise file_error(name, f"the field {column!r} has the type {array.type}, but must hold numbers")
    text = pc.utf8_trim_whitespace(array)
    text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    try:
        out = pc.cast(text, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        parsed = pd.to_numeric(pd.Series(text.to_pylist(), dtype="object"), errors="coerce")
        present = ~pd.isna(pd.Series(text.to_pylist(), dtype="object"))
        bad = np.flatnonzero((present & parsed.isna()).to_numpy())
        if bad.size:
            position = int(bad[0])
            value = text[position].as_py()
            raise row_error(name, int(lines[position]), column, f"{value!r} is not a number") from None
        out = pa.array(parsed.to_numpy(dtype="float64"))
    return np.asarray(out.to_numpy(zero_copy_only=False), dtype="float64")


def _gunzip(raw: bytes) -> bytes:
    """Decompress every gzip member (each member's CRC is checked); a cut-off stream raises EOFError.

    ISA-L's inflate (``isal``) reads the same gzip as zlib about three times faster (measured on the
    bitFlyer executions: 0.13 s against 0.42 s for 16 MB); it releases the GIL, so files decompress in
    parallel threads."""
    parts = []
    while raw:
        stream = isal_zlib.decompressobj(wbits=31)
        parts.append(stream.decompress(raw))
        if not stream.eof:
            raise EOFError("compressed data ended before the end-of-stream marker")
        raw = stream.unused_data.lstrip(b"\x00")
    return b"".join(parts)


_EPOCH_UNITS: tuple[tuple[float, str], ...] = ((1e17, "ns"), (1e14, "us"), (1e11, "ms"), (0.0, "s"))


def timestamps_from_epoch(
    values: np.ndarray,
    *,
    name: str,
    column: str,
    lines: np.ndarray,
    unit: str | None = None,
) -> pd.DatetimeIndex:
    """Epoch numbers as UTC times; the unit (s, ms, us, ns) is read from the magnitude when not given.

    NaN stays NaT (the caller rejects such rows as unparseable).
    """
    numeric = np.asarray(values, dtype="float64")
    finite = numeric[np.isfinite(numeric)]
    if unit is None:
        top = float(np.abs(finite).max()) if finite.size else 0.0
        unit = next(u for bound, u in _EPOCH_UNITS if top >= bound)
    scale = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}[unit]
    nanos = np.full(numeric.shape, np.iinfo("int64").min, dtype="int64")
    ok = np.isfinite(numeric)
    nanos[ok] = np.round(numeric[ok] * scale).astype("int64")
    negative = np.flatnonzero(ok & (numeric < 0))
    if negative.size:
        position = int(negative[0])
        raise row_error(name, int(lines[position]), column, f"{values[position]!r} is not a time after 1970")
    return pd.DatetimeIndex(nanos.view("datetime64[ns]")).tz_localize("UTC")


_OFFSET = r"(?P<zone>(?:[Zz]|[+-]\d\d:?\d\d)?)$"


def timestamps_from_strings(
    values: pd.Series | pa.Array | pa.ChunkedArray,
    *,
    name: str,
    column: str,
    lines: np.ndarray,
    formats: Sequence[str] = (),
) -> pd.DatetimeIndex:
    """Time strings as UTC times: ISO 8601 with or without an offset, or one of ``formats`` (strptime).

    Every non-empty value must carry the same UTC offset (or none: naive times are taken as UTC); a file
    mixing offsets, or naive with aware times, refuses with the first row that differs. Empty values
    become NaT (rejected as unparseable by the caller).
    """
    array = _as_arrow(values)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_timestamp(array.type):
        series = pd.Series(array.to_pandas())
        return _utc_index(series)
    if not formats and pa.types.is_string(array.type):
        fast = _one_zone_fast(array)
        if fast is not None:
            return fast
    text = pc.utf8_trim_whitespace(array.cast(pa.string()))
    text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    if formats:
        return _strptime(text, name=name, column=column, lines=lines, formats=formats)
    distinct = _zones_fast(text)
    zone_array: pa.Array | None = None
    if distinct is None:
        text = _normalise_zones(text)
        zone_array = pc.struct_field(pc.extract_regex(text, _OFFSET), [0])
        distinct = {_same_zone(z) for z in pc.unique(pc.drop_null(zone_array)).to_pylist()}
    first = next(iter(distinct)) if len(distinct) == 1 else ""
    if len(distinct) > 1:
        if zone_array is None:
            zone_array = pc.struct_field(pc.extract_regex(text, _OFFSET), [0])
        zones = [_same_zone(z) if z is not None else None for z in zone_array.to_pylist()]
        present = [i for i, z in enumerate(zones) if z is not None]
        first = str(zones[present[0]])
        differs = [i for i in present if zones[i] != first]
        if differs:
            position = differs[0]
            raise row_error(
                name,
                int(lines[position]),
                column,
                f"{text[position].as_py()!r} has the UTC offset {_show_zone(str(zones[position]))}, "
                f"but earlier rows have {_show_zone(first)} (mixed time zones)",
            )
    target = pa.timestamp("ns", tz="UTC") if first else pa.timestamp("ns")
    try:
        parsed = text.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        try:
            # ``... +09:00`` passes the quick offset check but needs the space taken out.
            text = _normalise_zones(text)
            parsed = text.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            _raise_first_bad_time(text, name=name, column=column, lines=lines)
            raise
    series = pd.Series(parsed.to_pandas())
    return _utc_index(series)


_FULL_OFFSET = re.compile(r"^[+-]\d\d:\d\d$")
_CLOCK = r"(\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?)"


def _normalise_zones(text: pa.Array) -> pa.Array:
    """Other time zone notations as ``+HH:MM``: ``... +09:00`` (a space before the offset), ``+09``,
    ``+0900``, ``UTC`` / ``GMT`` suffixes (``Z`` is read as it is)."""
    text = pc.replace_substring_regex(text, _CLOCK + r"\s+([+-]\d\d(?::?\d\d)?)$", r"\1\2")
    text = pc.replace_substring_regex(text, _CLOCK + r"\s*(?:UTC|GMT|utc|gmt)$", r"\1+00:00")
    text = pc.replace_substring_regex(text, _CLOCK + r"([+-]\d\d)$", r"\1\2:00")
    text = pc.replace_substring_regex(text, _CLOCK + r"([+-]\d\d)(\d\d)$", r"\1\2:\3")
    return text


def _one_zone_fast(array: pa.Array) -> pd.DatetimeIndex | None:
    """The times when every present value is a clean ISO 8601 time ending in one ``+HH:MM`` offset
    (the common case: one pass for the offsets, one cast, no copies); None sends the caller down the
    general path (whitespace, empty values, other or mixed notations, a bad value to name)."""
    zones = _zones_fast(array)
    if zones is None or len(zones) != 1:
        return None
    try:
        parsed = array.cast(pa.timestamp("ns", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return pd.DatetimeIndex(parsed.to_pandas()).as_unit("ns")


def _zones_fast(text: pa.Array) -> set[str] | None:
    """The distinct ``+HH:MM`` suffixes when every value ends in one (one cheap pass), else None."""
    present = pc.drop_null(text)
    if len(present) == 0:
        return set()
    # The last 6 bytes, not code points (no UTF-8 decoding: 6x cheaper); an ASCII ``+HH:MM`` is the
    # same either way, and anything else fails the match either way.
    tails = pc.unique(pc.binary_slice(present.cast(pa.binary()), start=-6)).to_pylist()
    suffixes = [tail.decode("utf-8", "replace") for tail in tails]
    if all(_FULL_OFFSET.match(z) for z in suffixes):
        return set(suffixes)
    return None


def _same_zone(zone: str) -> str:
    """One spelling per offset: ``Z`` and ``+0000`` are ``+00:00``."""
    if zone in ("Z", "z"):
        return "+00:00"
    if len(zone) == 5:
        return f"{zone[:3]}:{zone[3:]}"
    return zone


def _show_zone(zone: str) -> str:
    return "none" if zone == "" else zone


def _raise_first_bad_time(text: pa.Array, *, name: str, column: str, lines: np.ndarray) -> None:
    values = pd.Series(text.to_pylist(), dtype="object")
    parsed = pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")
    bad = np.flatnonzero((values.notna() & parsed.isna()).to_numpy())
    position = int(bad[0]) if bad.size else 0
    raise row_error(name, int(lines[position]), column, f"{values.iloc[position]!r} is not a time")


def _strptime(
    text: pa.Array, *, name: str, column: str, lines: np.ndarray, formats: Sequence[str]
) -> pd.DatetimeIndex:
    values = pd.Series(text.to_pylist(), dtype="object")
    result = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    for fmt in formats:
        todo = result.isna() & values.notna()
        if not todo.any():
            break
        result[todo] = pd.to_datetime(values[todo], format=fmt, errors="coerce")
    bad = np.flatnonzero((values.notna() & result.isna()).to_numpy())
    if bad.size:
        position = int(bad[0])
        raise row_error(
            name,
            int(lines[position]),
            column,
            f"{values.iloc[position]!r} is not a time (expected the form {' or '.join(formats)})",
        )
    return _utc_index(result)


def _utc_index(series: pd.Series) -> pd.DatetimeIndex:
    index = pd.DatetimeIndex(series)
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    return index.as_unit("ns")


_SERIAL = contextvars.ContextVar("atlas_ray_serial_csv", default=False)


@contextlib.contextmanager
def parsing_in_this_thread() -> Iterator[None]:
    """CSV files read inside the block are parsed in the calling thread, not on Arrow's CPU pool.

    For callers that parse several files side by side in threads of their own (``ingest_files``): each
    file then takes one thread from start to end (decompressed, parsed, checked), which saves Arrow's
    hand-over of blocks between threads (about a fifth of the parse's CPU) and keeps every core busy
    with a whole file rather than one file split over cores that the other files also want."""
    token = _SERIAL.set(True)
    try:
        yield
    finally:
        _SERIAL.reset(token)


def read_csv_table(
    data: bytes,
    *,
    name: str,
    delimiter: str = ",",
    column_names: Sequence[str] | None = None,
    skip_rows: int = 0,
    types: dict[str, pa.DataType] | None = None,
    include: Sequence[str] | None = None,
) -> pa.Table:
    """Parse CSV bytes with pyarrow (multi-threaded). ``column_names`` given: the file has no header.

    A typed column whose conversion fails is re-read as text so that ``numbers`` can name the row; a
    ragged row refuses the file with pyarrow's message (which names the row).
    """
    import pyarrow.csv as pcsv

    read = pcsv.ReadOptions(
        column_names=list(column_names) if column_names is not None else None,
        skip_rows=skip_rows,
        block_size=1 << 22,
        use_threads=not _SERIAL.get(),
    )
    parse = pcsv.ParseOptions(delimiter=delimiter)
    convert = pcsv.ConvertOptions(
        column_types=types or {},
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
        include_columns=list(include) if include is not None else None,
    )
    try:
        return pcsv.read_csv(
            io.BytesIO(data), read_options=read, parse_options=parse, convert_options=convert
        )
    except pa.ArrowInvalid as error:
        message = str(error)
        if types and "conversion error" in message:
            text_types = {column: pa.string() for column in types}
            convert = pcsv.ConvertOptions(
                column_types=text_types,
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
                include_columns=list(include) if include is not None else None,
            )
            try:
                return pcsv.read_csv(
                    io.BytesIO(data), read_options=read, parse_options=parse, convert_options=convert
                )
            except pa.ArrowInvalid as again:
                message = str(again)
        if "Empty CSV file" in message:
            raise file_error(name, "the file is empty") from None
        raise file_error(name, f"is not a readable CSV file ({message.splitlines()[0]})") from None


def header_lines(count: int, first_line: int) -> np.ndarray:
    """Line numbers ``first_line, first_line + 1, ...`` for ``count`` rows."""
    return np.arange(first_line, first_line + count, dtype="int64")


def times_from_column(
    values: pa.ChunkedArray | pa.Array, *, name: str, column: str, lines: np.ndarray
) -> pd.DatetimeIndex:
    """A time column of any type as UTC times: timestamps, epoch numbers (also as text), or time text."""
    array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if pa.types.is_timestamp(array.type):
        return timestamps_from_strings(array, name=name, column=column, lines=lines)
    if pa.types.is_integer(array.type) or pa.types.is_floating(array.type):
        numeric = np.asarray(array.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype="float64")
        return timestamps_from_epoch(numeric, name=name, column=column, lines=lines)
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        text = pc.utf8_trim_whitespace(array.cast(pa.string()))
        if pc.all(pc.match_substring_regex(pc.drop_null(text), r"^\d+(\.\d*)?$")).as_py() in (True, None):
            numeric = numbers(text, name=name, column=column, lines=lines)
            return timestamps_from_epoch(numeric, name=name, column=column, lines=lines)
        return timestamps_from_strings(text, name=name, column=column, lines=lines)
    raise file_error(name, f"the time field {column!r} has the type {array.type}, which is no time")
