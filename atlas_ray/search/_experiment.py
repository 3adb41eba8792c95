"""The experiment directory's index, ``experiment.json``, and reading an experiment back.

``experiment.json`` (written atomically at the start of a run and again when it ends)::

    {"format": 1, "name": ..., "spec": <spec path>, "metric": ..., "mode": "min" | "max",
     "created": <ISO UTC>, "finished": <ISO UTC> | null, "status": "running" | "finished",
     "trial_ids": [...], "units": {unit: [model, ...]}, "scheduler": {ASHA settings and milestones},
     "searcher": "random" | "optuna",
     "provenance": {spec source and hash, seed, git commit, library versions, store state}
                   (see ``_provenance``),
     "test_openings": [{"opening": n, "at": <ISO UTC>, "trials": [trial ids], "top": K,
                        "metric": ..., "mode": ..., "trials_tried": <trials with results then>}]}

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

import pyarrow.fs as pafs

from atlas_ray import _atomic, _storage
from atlas_ray.errors import AtlasError
from atlas_ray.search._results import RESULT_FILE, ResultsObject, _fs, read_result

__all__ = ["EXPERIMENT_FILE", "Experiment", "load_experiment", "load_results", "write_experiment"]

EXPERIMENT_FILE = "experiment.json"


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


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_experiment(experiment: Experiment, directory: str) -> None:
    """Write ``experiment.json`` into ``directory`` atomically (``atlas_ray._atomic``)."""
    fs, base = _fs(directory)
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


def has_experiment(directory: str) -> bool:
    fs, base = _fs(directory)
    return bool(fs.get_file_info(f"{base}/{EXPERIMENT_FILE}").type == pafs.FileType.File)


def load_experiment(directory: str) -> Experiment:
    """Read ``experiment.json`` of the experiment at ``directory`` (a path or storage URI)."""
    fs, base = _fs(str(directory))
    path = f"{base}/{EXPERIMENT_FILE}"
    if fs.get_file_info(path).type != pafs.FileType.File:
        raise AtlasError(
            f"The directory {directory} holds no {EXPERIMENT_FILE}: it is not an atlas_ray experiment."
        )
    with fs.open_input_stream(path) as stream:
        document = json.loads(stream.read().decode())
    return Experiment(
        name=document["name"],
        spec=document["spec"],
        metric=document["metric"],
        mode=document["mode"],
        created=document["created"],
        finished=document.get("finished"),
        status=document.get("status", "running"),
        trial_ids=tuple(document.get("trial_ids", ())),
        units={unit: tuple(models) for unit, models in document.get("units", {}).items()},
        scheduler=document.get("scheduler", {}),
        directory=str(directory),
        provenance=document.get("provenance") or {},
        test_openings=tuple(document.get("test_openings") or ()),
        searcher=document.get("searcher", "random"),
    )


def trial_ids_on_disk(directory: str) -> list[str]:
    """Ids of the trials under ``directory/trials`` that hold a ``result.json``, sorted."""
    fs, base = _fs(str(directory))
    selector = pafs.FileSelector(f"{base}/trials", allow_not_found=True)
    ids = []
    for info in fs.get_file_info(selector):
        if info.type == pafs.FileType.Directory:
            result = fs.get_file_info(f"{info.path}/{RESULT_FILE}")
            if result.type == pafs.FileType.File:
                ids.append(info.base_name)
    return sorted(ids)


def load_results(directory: str) -> list[ResultsObject]:
    """Every trial's ResultsObject of the experiment at ``directory`` (a path or storage URI)."""
    directory = str(directory)
    experiment = load_experiment(directory)
    ids = list(experiment.trial_ids) if experiment.status == "finished" else trial_ids_on_disk(directory)
    return [read_result(_storage.join(directory, "trials", trial_id)) for trial_id in ids]
