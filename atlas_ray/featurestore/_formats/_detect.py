"""Telling a market-data file's format from its content (never from its name alone)."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zipfile
from pathlib import Path

import pyarrow.parquet as pq

from atlas_ray.featurestore._formats._columns import header_names
from atlas_ray.featurestore._formats._common import compression_of, file_error

__all__ = ["detect_format", "peek"]

_PEEK_BYTES = 1 << 16


def peek(path: Path, size: int = _PEEK_BYTES) -> tuple[bytes, str]:
    """The first ``size`` decompressed bytes of a file and the name of what they came from.

    For a zip the name is its single member's; otherwise the file's own name. Unreadable or corrupt
    files refuse here, naming the file.
    """
    name = path.name
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
    except OSError as error:
        raise file_error(name, f"cannot be read ({error.strerror or error})") from None
    kind = compression_of(head)
    try:
        if kind == "gzip":
            with gzip.open(path, "rb") as stream:
                return stream.read(size), name
        if kind == "xz":
            with lzma.open(path, "rb") as stream:
                return stream.read(size), name
        if kind == "bz2":
            with bz2.open(path, "rb") as stream:
                return stream.read(size), name
        if kind == "zip":
            with zipfile.ZipFile(path) as archive:
                members = [m for m in archive.namelist() if not m.endswith("/")]
                if len(members) != 1:
                    raise file_error(name, f"the zip holds {len(members)} files, but must hold exactly 1")
                with archive.open(members[0]) as stream:
                    return stream.read(size), members[0]
        with path.open("rb") as handle:
            return handle.read(size), name
    except (EOFError, OSError, lzma.LZMAError, zipfile.BadZipFile) as error:
        raise file_error(name, f"the {kind} data is truncated or corrupt ({error})") from None


def _first_lines(head: bytes, count: int) -> list[str]:
    text = head.decode("utf-8", "replace")
    lines = [line.strip().lstrip("\ufeff") for line in io.StringIO(text)]
    return [line for line in lines if line][:count]


def detect_format(path: Path) -> str:
    """The format name of ``path`` read from its content; refuses with a clear line when unknown."""
    from atlas_ray.featurestore._formats._bitflyer_executions import looks_like_bitflyer_executions
    from atlas_ray.featurestore._formats._bitflyer_ticker import looks_like_bitflyer_ticker
    from atlas_ray.featurestore._formats._bitstamp_orders import looks_like_bitstamp_orders
    from atlas_ray.featurestore._formats._cdd import looks_like_cdd
    from atlas_ray.featurestore._formats._event_log import looks_like_event_log
    from atlas_ray.featurestore._formats._lean import lean_kind_of
    from atlas_ray.featurestore._formats._minute_bars import (
        looks_like_headerless_klines,
        looks_like_minute_bars,
    )

    name = path.name
    head, member = peek(path)
    if not head:
        raise file_error(name, "the file is empty")
    if head[:4] == b"PAR1":
        try:
            columns = list(pq.read_schema(path).names)
        except Exception as error:
            raise file_error(name, f"is not a readable parquet file ({error})") from None
        if looks_like_minute_bars(columns):
            return "minute_bars"
        raise file_error(name, _no_format(",".join(columns)))
    lines = _first_lines(head, 3)
    if not lines:
        raise file_error(name, "the file is empty")
    first = lines[0]
    if looks_like_event_log(first):
        return "event_log"
    header = header_names(first)
    if looks_like_bitflyer_executions(header):
        return "bitflyer_executions"
    if looks_like_bitflyer_ticker(header):
        return "bitflyer_ticker"
    if looks_like_bitstamp_orders(header):
        return "bitstamp_orders"
    if looks_like_cdd(lines):
        return "cdd"
    if looks_like_minute_bars(header) or looks_like_headerless_klines(first):
        return "minute_bars"
    lean = lean_kind_of(first, member)
    if lean is not None:
        return lean
    raise file_error(name, _no_format(first))


def _no_format(first: str) -> str:
    """The refusal of a file no format accepts: the columns it has and the closest format."""
    from atlas_ray.featurestore._formats import (
        _bitflyer_executions,
        _bitflyer_ticker,
        _bitstamp_orders,
        _cdd,
        _minute_bars,
    )
    from atlas_ray.featurestore._formats._columns import closest_format, describe_missing, header_names

    headers = (_bitflyer_executions, _bitflyer_ticker, _bitstamp_orders, _minute_bars, _cdd)
    known = (
        "pass format= one of minute_bars, cdd, bitflyer_executions, bitflyer_ticker, lean_trade, "
        "lean_quote, lean_tick_trade, lean_tick_quote, bitstamp_orders, event_log"
    )
    delimiter = ";" if first.count(";") > first.count(",") else ","
    columns = header_names(first, delimiter)
    closest = closest_format(columns, {h.HEADER.format: h.HEADER.fields for h in headers})
    shown = ", ".join(columns) if len(", ".join(columns)) <= 200 else first[:197] + "..."
    if closest is None:
        return f"the format cannot be told from the content: the columns ({shown}) match no format; {known}"
    format_name, missing = closest
    return (
        f"the format cannot be told from the content: the columns ({shown}) match no format; the closest "
        f"is {format_name}, which also needs {describe_missing(missing)}; {known}"
    )
