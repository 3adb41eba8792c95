"""Ingest reports kept beside the data, and listed by ``show``.

Each ingest writes its full report as JSON to
``ROOT/exchange=<exchange>/pair=<pair>/_reports/<UTC time>_<file>.json``: the one-line summary, every
count by reason (refusals and fixes), the first defects of each reason with their line, field and value,
and the settings of the row checks, and what of the market was taken from the file (``market_from_file``).
The partition store ignores the folder (it lists only ``kind=``).
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow.fs as pafs

from atlas_ray import _atomic, _storage
from atlas_ray.featurestore._store._validate_rows import RowChecks

if TYPE_CHECKING:
    from atlas_ray.featurestore._store._ingest import IngestReport

__all__ = ["KeptReport", "keep_report", "kept_reports", "report_stamps"]

_FOLDER = "_reports"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class KeptReport:
    """One kept report as ``show`` lists it."""

    exchange: str
    pair: str
    path: str
    summary: str


def _filesystem(root: str) -> tuple[pafs.FileSystem, str]:
    return _storage.filesystem(root)


def _content(report: IngestReport, checks: RowChecks) -> dict[str, object]:
    return {
        "summary": str(report),
        "file": report.file,
        "format": report.format,
        "exchange": report.exchange,
        "pair": report.pair,
        "market_from_file": report.market_note,
        "kinds": list(report.kinds),
        "rows_read": report.rows_read,
        "rows_written": report.rows_written,
        "written": dict(report.written),
        "rejected": dict(report.rejected),
        "fixed": dict(report.fixed),
        "examples": {r: [d.as_dict() for d in found] for r, found in report.examples.items()},
        "gaps": report.gaps,
        "gap_ranges": [str(g) for g in report.gap_ranges],
        "start": None if report.start is None else report.start.isoformat(),
        "end": None if report.end is None else report.end.isoformat(),
        "checks": {
            "max_jump": checks.max_jump,
            "median_window": checks.median_window,
            "earliest": pd.Timestamp(checks.earliest).isoformat(),
            "future_slack": str(checks.future_slack),
            "volume_tolerance": checks.volume_tolerance,
        },
        "ingested_at": pd.Timestamp.now(tz="UTC").isoformat(),
    }


def report_stamps(count: int) -> list[str]:
    """``count`` report name stamps (UTC time to the microsecond), rising in the order asked: reports
    written side by side then still list in the order of their files."""
    stamps: list[str] = []
    while len(stamps) < count:
        stamp = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%S%f")
        if not stamps or stamp > stamps[-1]:
            stamps.append(stamp)
    return stamps


def keep_report(root: str, report: IngestReport, checks: RowChecks, stamp: str | None = None) -> IngestReport:
    """Write ``report`` beside the data of its exchange / pair; returns it with ``report_path`` set.
    ``stamp``: the time in its name (``report_stamps``; default now)."""
    fs, base = _filesystem(root)
    folder = f"{base}/exchange={report.exchange}/pair={report.pair}/{_FOLDER}"
    stamp = stamp if stamp is not None else pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%S%f")
    path = f"{folder}/{stamp}_{_SAFE.sub('_', report.file)}.json"
    _atomic.write_text(fs, path, json.dumps(_content(report, checks), indent=1))
    return dataclasses.replace(report, report_path=path)


def _listing(fs: pafs.FileSystem, folder: str) -> list[pafs.FileInfo]:
    try:
        return sorted(fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True)), key=lambda i: i.path)
    except FileNotFoundError:
        return []


def kept_reports(root: str) -> list[KeptReport]:
    """Every kept report of a store, oldest first per exchange / pair."""
    fs, base = _filesystem(root)
    found = []
    for exchange in _listing(fs, base):
        if not exchange.base_name.startswith("exchange="):
            continue
        for pair in _listing(fs, exchange.path):
            if not pair.base_name.startswith("pair="):
                continue
            for info in _listing(fs, f"{pair.path}/{_FOLDER}"):
                if info.type != pafs.FileType.File or not info.path.endswith(".json"):
                    continue
                with fs.open_input_stream(info.path) as handle:
                    summary = str(json.loads(handle.read().decode()).get("summary", ""))
                found.append(
                    KeptReport(
                        exchange.base_name.removeprefix("exchange="),
                        pair.base_name.removeprefix("pair="),
                        info.path,
                        summary,
                    )
                )
    return found
