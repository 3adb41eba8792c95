"""How far a GDS table has been read: the watermark, kept in the store, robust to late commits.

The decision (and why). GDS tables have an autoincrement id (``trade_id``, ``orderbook_id``), but ids
are handed out when a row is *inserted*, not when it is *committed*: a reader can see id 105 while id 103
is still in an open transaction, and a plain "max id read" watermark would skip 103 for ever. So the
watermark is the highest id read, ``high``, plus the ``holes`` below it: id ranges not seen yet. Each read
asks for ``id > high`` *or* an id in a hole, so a late commit is picked up by the next read; a row is
read once, because ids already read are never asked for again. A hole is usually no late commit at all
but an id that will never exist (a rolled-back insert, a deleted row, ids skipped by the server), so a
hole is given up once ``settle`` seconds (default 60) have passed since an id above it was first seen:
a GDS insert is a one-row transaction committed at once, far faster than that. At most ``MAX_HOLES``
hole ranges are kept; beyond that the lowest are given up at once (an old database with many deleted
rows would otherwise make every query long).

The watermark moves only after the rows read were written to the store, so a crash between the two
re-reads those rows on the next run, and the store's keys drop them (nothing is written twice). The
reader writes a page and moves its watermark while holding the writer locks of the page's series
(``PartitionStore.writing``), and the watermark file is changed under a lock of its own
(``StateFile.update``: read again, this reader's entry set, written back), so two readers of one
database with other ``--exchange`` selections never put back each other's old watermark.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow.fs as pafs

from atlas_ray import _atomic, _locks, _storage
from atlas_ray.errors import IngestError

__all__ = ["MAX_HOLES", "SETTLE_SECONDS", "StateFile", "Watermark"]

MAX_HOLES = 1000
SETTLE_SECONDS = 60.0


@dataclass(frozen=True)
class Watermark:
    """Ids read from one table: every id ``<= high`` except those in ``holes`` (inclusive ranges).

    ``marks`` remember when each ``high`` was first reached (wall-clock seconds), to know when a hole
    below it has settled.
    """

    high: int = 0
    holes: tuple[tuple[int, int], ...] = ()
    marks: tuple[tuple[int, float], ...] = ()

    def where(self, column: str) -> tuple[str, list[int]]:
        """The SQL condition (and its parameters) selecting the ids not read yet."""
        parts = [f"{column} > %s"]
        params = [self.high]
        for low, high in self.holes:
            parts.append(f"{column} BETWEEN %s AND %s")
            params.extend((low, high))
        return "(" + " OR ".join(parts) + ")", params

    def advance(
        self, seen: Sequence[int] | np.ndarray, now: float, settle: float = SETTLE_SECONDS
    ) -> Watermark:
        """The watermark after reading the ids ``seen``: every unread id asked for up to their
        maximum (holes filled, new holes found above the old ``high``), then settled holes given up."""
        ids = np.unique(np.asarray(seen, dtype="int64"))
        if len(ids) == 0:
            return self.settle(now, settle)
        top = int(ids[-1])
        holes = [gap for low, high in self.holes for gap in _minus((low, high), ids)]
        marks = self.marks
        if top > self.high:
            holes.extend(_minus((self.high + 1, top), ids))
            marks = (*marks, (top, now))
        return replace(self, high=max(self.high, top), holes=tuple(holes), marks=marks).settle(now, settle)

    def settle(self, now: float, settle: float = SETTLE_SECONDS) -> Watermark:
        """Give up holes below an id first seen ``settle`` seconds ago or more (and all but the
        ``MAX_HOLES`` highest hole ranges)."""
        settled = max((mark for mark, since in self.marks if now - since >= settle), default=None)
        holes = list(self.holes)
        marks = self.marks
        if settled is not None:
            holes = [(max(low, settled + 1), high) for low, high in holes if high > settled]
            marks = tuple((mark, since) for mark, since in marks if mark > settled)
        if len(holes) > MAX_HOLES:
            holes = holes[-MAX_HOLES:]
        # Only marks at or above the lowest hole can settle one (a later hole lies above ``high``).
        lowest = holes[0][0] if holes else self.high + 1
        marks = tuple((mark, since) for mark, since in marks if mark >= lowest)
        return replace(self, holes=tuple(holes), marks=marks)

    def to_json(self) -> dict[str, Any]:
        return {
            "high": self.high,
            "holes": [list(h) for h in self.holes],
            "marks": [list(m) for m in self.marks],
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> Watermark:
        try:
            return cls(
                high=int(data["high"]),
                holes=tuple((int(low), int(high)) for low, high in data.get("holes", [])),
                marks=tuple((int(mark), float(since)) for mark, since in data.get("marks", [])),
            )
        except (KeyError, TypeError, ValueError):
            raise IngestError(
                f"gds: the watermark {where} is damaged ({str(data)[:80]}); "
                "delete it to read the tables again"
            ) from None


def _minus(span: tuple[int, int], ids: np.ndarray) -> Iterable[tuple[int, int]]:
    """The sub-ranges of the inclusive ``span`` holding none of the sorted ``ids``."""
    low, high = span
    if low > high:
        return []
    inside = ids[(ids >= low) & (ids <= high)]
    if len(inside) == 0:
        return [(low, high)]
    out = []
    starts = np.concatenate(([low], inside + 1))
    stops = np.concatenate((inside - 1, [high]))
    for start, stop in zip(starts.tolist(), stops.tolist(), strict=True):
        if start <= stop:
            out.append((start, stop))
    return out


class StateFile:
    """The watermarks of one GDS database, a small JSON file under the store root
    (``ROOT/_gds/<HOST>_<PORT>_<DB>.json``), replaced atomically (``atlas_ray._atomic``).

    Watermarks are kept per table and per exchange selection (``*`` for all), so reading one exchange
    first and all of them later misses nothing.
    """

    def __init__(self, root: str, key: str, source: str) -> None:
        self._fs, base = _storage.filesystem(root)
        self._dir = f"{base.rstrip('/')}/_gds"
        self.path = f"{self._dir}/{key}.json"
        self._source = source

    def load(self) -> dict[str, dict[str, Watermark]]:
        if self._fs.get_file_info(self.path).type != pafs.FileType.File:
            return {}
        with self._fs.open_input_stream(self.path) as handle:
            raw = handle.read()
        try:
            data = json.loads(raw)
            tables = data["tables"]
            return {
                table: {
                    selection: Watermark.from_json(mark, f"{self.path} {table}/{selection}")
                    for selection, mark in marks.items()
                }
                for table, marks in tables.items()
            }
        except (ValueError, KeyError, TypeError, AttributeError):
            raise IngestError(
                f"gds: the watermark file {self.path} is damaged; delete it to read the tables again"
            ) from None

    def update(self, table: str, selection: str, mark: Watermark) -> dict[str, dict[str, Watermark]]:
        """Set the watermark of ``table`` / ``selection`` alone, under the file's writer lock: the file is
        read again first, so another reader's entries written meanwhile are kept. Returns every
        watermark as written."""
        with _locks.hold(self._fs, [self.path], what=f"the GDS watermark {self.path}"):
            tables = self.load()
            tables.setdefault(table, {})[selection] = mark
            self.save(tables)
        return tables

    def save(self, tables: dict[str, dict[str, Watermark]]) -> None:
        data = {
            "version": 1,
            "source": self._source,
            "tables": {t: {s: m.to_json() for s, m in marks.items()} for t, marks in tables.items()},
        }
        _atomic.write_text(self._fs, self.path, json.dumps(data, indent=1))
