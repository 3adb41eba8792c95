"""``MarketStore``: the market-data store callers use.

The dependency runs one way: ``PartitionStore`` (``_partitions``) reads and writes partitions and
knows nothing of formats or bars; ingest (``_ingest``) and the bars rule (``_bars``) use it; this
module only puts them together, so that ``store.bars(exchange, pair, resolution, start, end)`` and
``store.ingest(path, exchange=, pair=)`` work on one object. Layout, atomic writes and duplicate
handling are ``_partitions``'s; see there.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from atlas_ray.featurestore._schema import Resolution
from atlas_ray.featurestore._store._bars import read_bars
from atlas_ray.featurestore._store._ingest import IngestReport, ingest_files
from atlas_ray.featurestore._store._partitions import (
    DEFAULT_STORE,
    PartitionInfo,
    PartitionStore,
    dedupe_keys,
    default_root,
)
from atlas_ray.featurestore._store._validate_rows import RowChecks

__all__ = ["DEFAULT_STORE", "MarketStore", "PartitionInfo", "dedupe_keys", "default_root"]


class MarketStore(PartitionStore):
    """A ``PartitionStore`` with ingest and the bars rule as methods."""

    def ingest(
        self,
        path: str | os.PathLike[str],
        *,
        exchange: str | None = None,
        pair: str | None = None,
        format: str | None = None,
        checks: RowChecks | None = None,
        strict: bool = False,
    ) -> IngestReport:
        """Ingest one market-data file (format detected from the content when ``format`` is None).

        Returns an ``IngestReport``; a broken file raises ``IngestError`` and leaves the store as it was,
        as does a file whose own market columns name another market; ``exchange`` / ``pair`` None take
        the file's own (``atlas_ray.featurestore._store._file_market``).
        ``checks`` sets the row checks (``RowChecks``); ``strict=True`` refuses the file on its first
        defect. See ``atlas_ray.featurestore._store._ingest`` for the rules and ``_formats`` for the formats.
        """
        return ingest_files(
            self, [Path(path)], exchange=exchange, pair=pair, format=format, checks=checks, strict=strict
        )[0]

    def ingest_many(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        exchange: str | None = None,
        pair: str | None = None,
        format: str | None = None,
        checks: RowChecks | None = None,
        strict: bool = False,
    ) -> list[IngestReport]:
        """Ingest several files: all are parsed first (one broken file refuses the call), then each is
        written atomically in turn."""
        return ingest_files(
            self,
            [Path(p) for p in paths],
            exchange=exchange,
            pair=pair,
            format=format,
            checks=checks,
            strict=strict,
        )

    def bars(
        self,
        exchange: str,
        pair: str,
        resolution: Resolution | str,
        start: pd.Timestamp | str | None = None,
        end: pd.Timestamp | str | None = None,
    ) -> pd.DataFrame:
        """Bars indexed by open time (UTC) with ``BAR_COLUMNS``, ``start <= open < end``.

        Stored bars at ``resolution`` if any; else aggregated from stored finer bars; else built from
        stored trades (see ``atlas_ray.featurestore._store._bars``). Raises ``MissingDataError`` otherwise.
        """
        return read_bars(self, exchange, pair, resolution, start, end)
