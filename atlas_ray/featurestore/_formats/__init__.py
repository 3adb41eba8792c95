"""Source formats: one module per format, each turning a file into a canonical ``Source``.

``read_source(path, format=None)`` detects the format from the content when ``format`` is None.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from atlas_ray.errors import IngestError
from atlas_ray.featurestore._formats._bitflyer_executions import read_bitflyer_executions
from atlas_ray.featurestore._formats._bitflyer_ticker import read_bitflyer_ticker
from atlas_ray.featurestore._formats._bitstamp_orders import read_bitstamp_orders
from atlas_ray.featurestore._formats._cdd import read_cdd
from atlas_ray.featurestore._formats._common import Source
from atlas_ray.featurestore._formats._detect import detect_format
from atlas_ray.featurestore._formats._event_log import read_event_log
from atlas_ray.featurestore._formats._lean import (
    read_lean_quote,
    read_lean_tick_quote,
    read_lean_tick_trade,
    read_lean_trade,
)
from atlas_ray.featurestore._formats._minute_bars import read_minute_bars

__all__ = ["FORMATS", "Source", "detect_format", "read_source"]

FORMATS: dict[str, Callable[[Path, str], Source]] = {
    "minute_bars": read_minute_bars,
    "cdd": read_cdd,
    "bitflyer_executions": read_bitflyer_executions,
    "bitflyer_ticker": read_bitflyer_ticker,
    "lean_trade": read_lean_trade,
    "lean_quote": read_lean_quote,
    "lean_tick_trade": read_lean_tick_trade,
    "lean_tick_quote": read_lean_tick_quote,
    "bitstamp_orders": read_bitstamp_orders,
    "event_log": read_event_log,
}


def read_source(path: Path, format: str | None = None) -> Source:
    """Parse ``path`` in ``format`` (detected from the content when None)."""
    name = path.name
    if format is None:
        format = detect_format(path)
    reader = FORMATS.get(format)
    if reader is None:
        known = ", ".join(FORMATS)
        raise IngestError(f"ingest: {name}: the format {format!r} is unknown; it must be one of {known}")
    return reader(path, name)
