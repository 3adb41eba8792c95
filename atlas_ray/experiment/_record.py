"""The experiment record, ``experiment.json``: its type (``Experiment``), writing and reading it, the
scheduler's rungs, and reading an experiment's results back (``load_results``).

``experiment.json`` (written atomically at the start of a run and again when it ends)::

    {"format": 1, "name": ..., "spec": <spec path>, "metric": ..., "mode": "min" | "max",
     "created": <ISO UTC>, "finished": <ISO UTC> | null, "status": "running" | "finished",
     "trial_ids": [...], "units": {unit: [model, ...]},
     "scheduler": {"scheduler": "asha", "max_t", "grace_period", "reduction_factor", "metric", "mode",
                   "milestones": [the rung epochs, ascending, as the scheduler decided them]},
     "searcher": "random" | "optuna",
     "provenance": {spec source and hash, seed, git commit, library versions, store state}
                   (see ``_provenance``),
     "test_openings": [{"opening": n, "at": <ISO UTC>, "trials": [trial ids], "top": K,
                        "metric": ..., "mode": ..., "trials_tried": <trials with results then>}]}

``scheduler.milestones`` are read from the Ray Tune scheduler the search built, when the search starts
(``atlas_ray.search``), so the report draws the rungs the scheduler used. A record without them (written
before they were recorded) gets them from ``asha_rungs``, the function ``ASHA.milestones`` is built on
(Ray's ``_Bracket`` rule, checked against the real scheduler in the tests).

``test_openings`` records every time ``python -m atlas_ray.search finalize`` opened the sealed test
set (see ``_finalize``); it is empty until then, and a second opening is recorded as such.

While a run is going (or after it was interrupted) ``trial_ids`` lists what is known so far and
``load_results`` reads every ``trials/<id>/result.json`` present; a finished experiment reads exactly
its ``trial_ids``. Everything goes through pyarrow filesystems: a local path or a storage URI.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow.fs as pafs

from atlas_ray import _atomic, _storage
from atlas_ray.errors import AtlasError
from atlas_ray.experiment._direction import Mode
from atlas_ray.experiment._layout import EXPERIMENT_FILE, trial_directory, trial_ids_on_disk
from atlas_ray.experiment._results import JSONValue, ResultsObject, read_result

__all__ = [
    "Experiment",
    "asha_rungs",
    "experiment_from_document",
    "load_experiment",
    "load_results",
    "now",
    "read_experiment_document",
    "write_experiment",
]


def asha_rungs(max_t: int, grace_period: int, reduction_factor: int) -> tuple[int, ...]:
    """The rung epochs of asynchronous successive halving, ascending, exactly as Ray Tune's
    ``_Bracket`` computes them for bracket 0 (``int(log(max_t / grace) / log(rf) + 1)`` rungs at
    ``grace * rf**k``): for ``max_t=18, grace_period=2, reduction_factor=3``, ``(2, 6, 18)``."""
    count = int(np.log(max_t / grace_period) / np.log(reduction_factor) + 1)
    return tuple(int(grace_period * reduction_factor**k) for k in range(count))


@dataclass(frozen=True)
class Experiment:
    """What ``experiment.json`` holds; ``directory`` is where it was read from."""

    name: str
    spec: str
    metric: str
    mode: str
    created: str
    finished: str | None = None
    status: str = "running"
    trial_ids: tuple[str, ...] = ()
    units: Mapping[str, Sequence[str]] = field(default_factory=dict)
    scheduler: Mapping[str, Any] = field(default_factory=dict)
    directory: str = ""
    provenance: Mapping[str, Any] = field(default_factory=dict)
    test_openings: tuple[Mapping[str, Any], ...] = ()
    searcher: str = "random"

    def finish(self, trial_ids: Sequence[str]) -> Experiment:
        return replace(self, finished=now(), status="finished", trial_ids=tuple(trial_ids))

    @property
    def direction(self) -> Mode:
        """The direction of the scheduler's metric (its ``mode``)."""
        return Mode(self.mode)

    def asha_settings(self) -> tuple[int | None, int | None, int | None]:
        """``(max_t, grace_period, reduction_factor)`` of the scheduler; None for each not recorded."""
        found = [self.scheduler.get(key) for key in ("max_t", "grace_period", "reduction_factor")]
        max_t, grace, factor = (int(value) if value is not None else None for value in found)
        return max_t, grace, factor

    @property
    def rungs(self) -> tuple[int, ...]:
        """The scheduler's rung epochs, ascending, as it decided them (``scheduler.milestones``); for a
        record without them, ``asha_rungs`` of its settings; ``()`` when no ASHA setting is recorded."""
        recorded = self.scheduler.get("milestones")
        if isinstance(recorded, list) and recorded:
            return tuple(sorted(int(m) for m in recorded))
        max_t, grace, factor = self.asha_settings()
        if max_t is None or grace is None or factor is None:
            return ()
        return asha_rungs(max_t, grace, factor)


def _plain(document: Mapping[str, JSONValue]) -> Mapping[str, Any]:
    """The document as ``json.loads`` typed it (its values read without checks below)."""
    return document


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_experiment(experiment: Experiment, directory: str) -> None:
    """Write ``experiment.json`` into ``directory`` atomically (``atlas_ray._atomic``)."""
    fs, base = _storage.filesystem(directory)
    fs.create_dir(base, recursive=True)
    document = {
        "format": 1,
        "name": experiment.name,
        "spec": experiment.spec,
        "metric": experiment.metric,
        "mode": experiment.mode,
        "created": experiment.created,
        "finished": experiment.finished,
        "status": experiment.status,
        "trial_ids": list(experiment.trial_ids),
        "units": {unit: list(models) for unit, models in experiment.units.items()},
        "scheduler": dict(experiment.scheduler),
        "searcher": experiment.searcher,
        "provenance": dict(experiment.provenance),
        "test_openings": [dict(opening) for opening in experiment.test_openings],
    }
    _atomic.write_text(fs, f"{base}/{EXPERIMENT_FILE}", json.dumps(document, indent=2, sort_keys=True))


def read_experiment_document(directory: str) -> dict[str, JSONValue] | None:
    """The raw ``experiment.json`` of ``directory`` as a dict, None when there is none (raises
    ``ValueError`` when it is not JSON)."""
    fs, base = _storage.filesystem(str(directory))
    path = f"{base}/{EXPERIMENT_FILE}"
    if fs.get_file_info(path).type != pafs.FileType.File:
        return None
    with fs.open_input_stream(path) as stream:
        document: dict[str, JSONValue] = json.loads(stream.read().decode())
    return document


def load_experiment(directory: str) -> Experiment:
    """Read ``experiment.json`` of the experiment at ``directory`` (a path or storage URI)."""
    document = read_experiment_document(str(directory))
    if document is None:
        raise AtlasError(
            f"The directory {directory} holds no {EXPERIMENT_FILE}: it is not an atlas_ray experiment."
        )
    return experiment_from_document(document, str(directory))


def experiment_from_document(document: Mapping[str, JSONValue], directory: str = "") -> Experiment:
    """The ``Experiment`` an ``experiment.json`` document describes (``KeyError`` when it lacks one of
    name, spec, metric, mode and created)."""
    plain = _plain(document)
    return Experiment(
        name=plain["name"],
        spec=plain["spec"],
        metric=plain["metric"],
        mode=plain["mode"],
        created=plain["created"],
        finished=plain.get("finished"),
        status=plain.get("status", "running"),
        trial_ids=tuple(plain.get("trial_ids", ())),
        units={unit: tuple(models) for unit, models in plain.get("units", {}).items()},
        scheduler=plain.get("scheduler") or {},
        directory=str(directory),
        provenance=plain.get("provenance") or {},
        test_openings=tuple(plain.get("test_openings") or ()),
        searcher=plain.get("searcher", "random"),
    )


def load_results(directory: str) -> list[ResultsObject]:
    """Every trial's ResultsObject of the experiment at ``directory`` (a path or storage URI)."""
    directory = str(directory)
    experiment = load_experiment(directory)
    ids = list(experiment.trial_ids) if experiment.status == "finished" else trial_ids_on_disk(directory)
    return [read_result(trial_directory(directory, trial_id)) for trial_id in ids]
