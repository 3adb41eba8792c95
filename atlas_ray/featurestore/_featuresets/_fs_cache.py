"""The built-featureset cache: ``ROOT/_featuresets/<key>.parquet`` inside the market store.

A search with hundreds of trials asks for the same featureset again and again; it is built once and
read back afterwards. The key is the SHA-256 of a JSON document holding

* the featureset's ``definition()`` (feature and label names and parameters),
* the UTC range ``[start, end)``,
* the feature code's version (``feature_code_version``: the SHA-256 of the source of every module
  that computes feature values), so a fix to a feature never reuses a frame the old code built,
* the data version: path, size and modification time of every store partition of the exchanges and
  pairs the features read whose date lies within the range widened by the featureset's halo (plus a
  day each side), so that ingesting new data into the range (which rewrites a partition) gives a new
  key and a rebuild,
* the decided sources (``_sources.Sources.key``: per series the stored kind it is read from, bars'
  resolution resampled from included): what the frame's values depend on beyond the partitions, so
  a build by another decision (a recorded one, a pinned ``from_bars()``) never reuses this frame.

The file is written atomically (a temporary file beside it, then a move), so a reader never sees half
a file; a cache file that cannot be read is treated as absent and rebuilt.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from atlas_ray import _atomic, _storage
from atlas_ray.featurestore._store._store import MarketStore

__all__ = [
    "CACHE_DIR",
    "cache_key",
    "cache_path",
    "data_version",
    "feature_code_version",
    "read_cached",
    "write_cached",
]

CACHE_DIR = "_featuresets"
#: The modules whose code decides a built frame's values (the feature library and the build), as paths
#: inside ``atlas_ray/featurestore``.
FEATURE_CODE_MODULES = (
    "_store/_bars.py",
    "_featuresets/_build.py",
    "_features/_feature.py",
    "_features/_feature_library.py",
    "_features/_feature_math.py",
    "_features/_feature_names.py",
    "_features/_market_data.py",
    "_store/_orderbook.py",
    "_schema.py",
    "_features/_sources.py",
)


@functools.cache
def feature_code_version() -> str:
    """SHA-256 (hex) of the source of ``FEATURE_CODE_MODULES``, in that order."""
    digest = hashlib.sha256()
    folder = Path(__file__).resolve().parent.parent  # atlas_ray/featurestore
    for name in FEATURE_CODE_MODULES:
        digest.update(name.encode())
        digest.update((folder / name).read_bytes())
    return digest.hexdigest()


def _filesystem(store: MarketStore) -> tuple[pafs.FileSystem, str]:
    return _storage.filesystem(store.root)


def data_version(
    store: MarketStore,
    start: pd.Timestamp,
    end: pd.Timestamp,
    *,
    markets: set[tuple[str, str]] | None = None,
) -> list[list[Any]]:
    """``[path, size, mtime_ns]`` of every partition dated within ``[start - 1 day, end + 1 day]``.

    ``markets``: only the partitions of these ``(exchange, pair)`` (all when ``None``).
    """
    lo = (start - pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    hi = (end + pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    paths = [
        p.path
        for p in store.partitions()
        if lo <= p.date <= hi and (markets is None or (p.exchange, p.pair) in markets)
    ]
    if not paths:
        return []
    fs, _ = _filesystem(store)
    infos = fs.get_file_info(paths)
    out: list[list[Any]] = []
    for info in infos:
        mtime = info.mtime_ns if info.mtime_ns is not None else -1
        out.append([info.path, int(info.size or -1), int(mtime)])
    return out


def cache_key(
    definition: dict[str, Any],
    start: pd.Timestamp,
    end: pd.Timestamp,
    version: list[list[Any]],
    sources: str = "",
) -> str:
    """SHA-256 (hex) of the definition, the range, the data version, the decided sources (their
    ``Sources.key()``) and the feature code's version."""
    document = {
        "code": feature_code_version(),
        "definition": definition,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "data": version,
        "sources": sources,
        "format": 2,
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cache_path(store: MarketStore, key: str) -> str:
    """Where the featureset with ``key`` is cached (a path on the store's filesystem)."""
    _, base = _filesystem(store)
    return f"{base}/{CACHE_DIR}/{key}.parquet"


def read_cached(store: MarketStore, key: str) -> pa.Table | None:
    """The cached table, or ``None`` when absent or unreadable."""
    fs, _ = _filesystem(store)
    path = cache_path(store, key)
    if fs.get_file_info(path).type != pafs.FileType.File:
        return None
    try:
        return _atomic.read_parquet(fs, path)
    except (OSError, pa.ArrowException):
        return None


def write_cached(store: MarketStore, key: str, table: pa.Table) -> str:
    """Write ``table`` to the cache atomically; returns the path."""
    fs, _ = _filesystem(store)
    path = cache_path(store, key)
    _atomic.write_with(fs, path, lambda out: pq.write_table(table, out))
    return path
