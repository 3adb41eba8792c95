"""Read an experiment directory (a local path or any pyarrow filesystem URI) for the report.

Reads ``EXPERIMENT/experiment.json`` (``atlas_ray.experiment``'s record) and every
``EXPERIMENT/trials/<trial_id>/result.json`` with ``atlas_ray.experiment.read_result``. A
half-finished experiment is read as far as it exists: a missing ``experiment.json``, a trial
directory without ``result.json`` (still running, or crashed before it wrote one), a trial listed in
``experiment.json`` with no directory, a failed trial without
predictions and an unfinished experiment are each recorded as one line in ``Experiment.missing``, and
the report shows them. An experiment brought home by the SSH harvest also names each trial its
``harvest.json`` lists as not harvested yet, and why.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyarrow.fs as pafs

from atlas_ray import _storage
from atlas_ray import experiment as contract
from atlas_ray.errors import AtlasError
from atlas_ray.experiment import (
    EXPERIMENT_FILE,
    RESULT_FILE,
    TRIALS_DIR,
    ResultsObject,
    TrialStatus,
    read_experiment_document,
    read_result,
    trial_directory,
)

__all__ = ["Experiment", "ExperimentNotFoundError", "asha_settings", "load_experiment_for_report"]

HARVEST_FILE = "harvest.json"  # written by the search's SSH harvest


class ExperimentNotFoundError(AtlasError):
    """The experiment path does not exist or is not a directory."""


@dataclass(frozen=True, eq=False)
class Experiment:
    """An experiment as far as it exists: its ``experiment.json`` (``None`` when missing), the trials
    that could be read, and one line per thing that is missing."""

    name: str
    uri: str
    meta: Mapping[str, Any] | None
    results: tuple[ResultsObject, ...]
    missing: tuple[str, ...]
    record: contract.Experiment | None = None
    """``meta`` read as the experiment record (None when missing or incomplete)."""

    @property
    def rungs(self) -> tuple[int, ...]:
        """The scheduler's rung epochs as it decided them (``atlas_ray.experiment.Experiment.rungs``);
        ``()`` when the record is missing."""
        return self.record.rungs if self.record is not None else ()

    @property
    def metric(self) -> str | None:
        value = (self.meta or {}).get("metric")
        return str(value) if value else None

    @property
    def mode(self) -> str | None:
        value = (self.meta or {}).get("mode")
        return str(value) if value else None


def asha_settings(meta: Mapping[str, Any] | None) -> tuple[int | None, int | None, int | None]:
    """``(max_t, grace_period, reduction_factor)`` from ``experiment.json``'s ``scheduler`` (where the
    search writes them); ``None`` for each one not recorded."""
    scheduler = (meta or {}).get("scheduler") or {}
    found = [scheduler.get(key) for key in ("max_t", "grace_period", "reduction_factor")]
    max_t, grace, factor = (int(value) if value is not None else None for value in found)
    return max_t, grace, factor


def _filesystem(uri: str) -> tuple[pafs.FileSystem, str, str]:
    """``(filesystem, path inside it, uri to hand to read_result)``."""
    root = _storage.resolve(uri)
    try:
        fs, path = _storage.filesystem(root)
    except _storage.StorageError as error:
        raise ExperimentNotFoundError(f"experiment {uri!r} cannot be opened: {error.reason}") from error
    return fs, path, _storage.join(root)


def _not_harvested(fs: pafs.FileSystem, path: str) -> list[str]:
    """One line per trial that the SSH harvest's record lists as not brought home yet (none when the
    experiment was not harvested)."""
    if fs.get_file_info(path).type != pafs.FileType.File:
        return []
    try:
        with fs.open_input_stream(path) as stream:
            missing = json.loads(stream.read().decode()).get("missing")
    except (ValueError, UnicodeDecodeError, AttributeError) as error:
        return [f"{HARVEST_FILE} cannot be read ({error}); harvest again"]
    if not isinstance(missing, dict):
        return []
    return [f"trial {trial}: not harvested yet ({why})" for trial, why in missing.items()]


def load_experiment_for_report(uri: str, *, threads: int = 8) -> Experiment:
    """Read the experiment at ``uri`` as far as it exists (see the module docstring).

    Raises ``ExperimentNotFoundError`` when ``uri`` is not an existing directory.
    """
    fs, base, root = _filesystem(uri)
    info = fs.get_file_info(base)
    if info.type != pafs.FileType.Directory:
        what = "does not exist" if info.type == pafs.FileType.NotFound else "is not a directory"
        raise ExperimentNotFoundError(f"experiment {uri!r} {what}; give the experiment directory")
    missing: list[str] = []
    meta: dict[str, Any] | None = None
    try:
        meta = read_experiment_document(root)
        if meta is None:
            missing.append(f"{EXPERIMENT_FILE} is missing (the search did not finish writing it)")
    except (ValueError, UnicodeDecodeError) as error:
        missing.append(f"{EXPERIMENT_FILE} is not valid JSON ({error}); read the trials without it")
    record = _record(meta, root)
    name = str((meta or {}).get("name") or os.path.basename(base) or base)
    if meta is not None and not meta.get("finished"):
        missing.append(f"the experiment has not finished (status {meta.get('status', 'unknown')!r})")

    trials_path = f"{base}/{TRIALS_DIR}"
    present: list[str] = []
    if fs.get_file_info(trials_path).type == pafs.FileType.Directory:
        entries = fs.get_file_info(pafs.FileSelector(trials_path))
        present = sorted(os.path.basename(e.path) for e in entries if e.type == pafs.FileType.Directory)
    else:
        missing.append(f"{TRIALS_DIR}/ is missing: no trial has written anything")
    readable = [t for t in present if fs.get_file_info(f"{trials_path}/{t}/{RESULT_FILE}").type
                == pafs.FileType.File]
    for trial in present:
        if trial not in readable:
            missing.append(f"trial {trial}: no {RESULT_FILE} (still running or crashed before writing it)")
    for trial in record.trial_ids if record is not None else ():
        if trial and trial not in present:
            missing.append(f"trial {trial}: listed in {EXPERIMENT_FILE} but has no directory")
    missing.extend(_not_harvested(fs, f"{base}/{HARVEST_FILE}"))

    def read(trial: str) -> ResultsObject | str:
        try:
            return read_result(trial_directory(root, trial))
        except (OSError, ValueError, KeyError, TypeError) as error:
            return f"trial {trial}: {RESULT_FILE} cannot be read ({' '.join(str(error).split())})"

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        loaded = list(pool.map(read, readable))
    results: list[ResultsObject] = []
    for item in loaded:
        if isinstance(item, str):
            missing.append(item)
            continue
        results.append(item)
        if item.status is TrialStatus.FAILED:
            reason = item.error or "no error recorded"
            if item.predictions.empty:
                missing.append(f"trial {item.trial_id} failed without predictions: {reason}")
            else:
                missing.append(f"trial {item.trial_id} failed: {reason}")
        elif item.status is TrialStatus.RUNNING:
            missing.append(f"trial {item.trial_id} was still running when its results were written")
        elif item.predictions.empty:
            missing.append(f"trial {item.trial_id}: no predictions.parquet")
    if not results:
        missing.append("no trial has results yet")
    return Experiment(
        name=name, uri=uri, meta=meta, results=tuple(results), missing=tuple(missing), record=record
    )


def _record(meta: Mapping[str, Any] | None, root: str) -> contract.Experiment | None:
    """``meta`` as the experiment record, None when it is missing or lacks one of its keys."""
    if meta is None:
        return None
    try:
        return contract.experiment_from_document(meta, root)
    except (KeyError, TypeError, AttributeError):
        return None
