"""Where and how a trial ran: its attempt log, ``EXPERIMENT/trials/<trial_id>/.attempts.json``.

A trial runs once, and again each time Ray Tune retries it (its node went away, or it raised and
``max_failures`` allows another try) or ``--resume`` continues it. Each run is an *attempt*; as it
starts to train it appends one entry to the log::

    {"attempt": 2,                      # 1-based
     "node_id": "<Ray node id, hex>",   # the node the trial's worker ran on
     "node_ip": "10.0.0.7",
     "restored_from_epoch": 4,          # the epoch of the checkpoint it went on from; 0: from scratch
     "started": "<ISO UTC>"}

The log is kept beside the ResultsObject (storage every node shares), not in Tune's checkpoint, so an
attempt lost before its first checkpoint is still counted. Every ResultsObject the trial writes
carries the log so far as ``attempts`` (``result.json``). The file is hidden (a leading ``.``), so the
checksum manifest and the SSH harvest leave it out: ``result.json`` holds the same entries.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow.fs as pafs

from atlas_ray import _atomic, _storage

__all__ = ["ATTEMPTS_FILE", "read_attempts", "record_attempt"]

ATTEMPTS_FILE = ".attempts.json"


def read_attempts(directory: str) -> list[dict[str, Any]]:
    """The attempt log of the trial in ``directory`` (empty when it has none)."""
    fs, base = _storage.filesystem(directory)
    path = f"{base}/{ATTEMPTS_FILE}"
    if fs.get_file_info(path).type != pafs.FileType.File:
        return []
    with fs.open_input_stream(path) as stream:
        entries = json.loads(stream.read().decode())
    return [dict(entry) for entry in entries]


def record_attempt(directory: str, *, restored_from_epoch: int) -> list[dict[str, Any]]:
    """Append this process's attempt (its Ray node, the checkpoint epoch it went on from) to the log
    of the trial in ``directory``; returns the whole log."""
    entries = read_attempts(directory)
    entries.append(_entry(len(entries) + 1, restored_from_epoch))
    _write(directory, entries)
    return entries


def _entry(attempt: int, restored_from_epoch: int) -> dict[str, Any]:
    import ray

    return {
        "attempt": attempt,
        "node_id": ray.get_runtime_context().get_node_id(),
        "node_ip": ray.util.get_node_ip_address(),
        "restored_from_epoch": int(restored_from_epoch),
        "started": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }


def _write(directory: str, entries: Sequence[Mapping[str, Any]]) -> None:
    """Write the log atomically (``atlas_ray._atomic``)."""
    fs, base = _storage.filesystem(directory)
    text = json.dumps([dict(entry) for entry in entries], indent=2)
    _atomic.write_text(fs, f"{base}/{ATTEMPTS_FILE}", text)
