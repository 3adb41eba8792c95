"""Which trial goes live, checked before anything starts: ``ServedTrial``.

``find_trial(experiment, trial=ID)`` or ``find_trial(experiment, best=True, metric=NAME)`` reads the
trial's ResultsObject and checks that it can be served: it finished without error, its ``model.keras``
is there and whole (a zip holding Keras' ``config.json``; a LightGBM trial's ``model.txt``: LightGBM's
text model, starting with its ``tree`` line), and its featureset definition, scaling and
categories are readable, and so are its recorded sources (``result.json``'s ``sources``: where each
series the featureset read came from, see ``featurestore.decide``; the live feeds supply
exactly those). Every refusal is an ``AtlasError`` naming the experiment, the trial and the
file, so the command line says it in one line and exits 2 before Ray starts.

``--best`` picks the trial with the best score (``atlas_ray.experiment.trial_score``: the validation
figure of ``metric`` at the last epoch the trial reported, the weights its ``model.keras`` holds;
default the experiment's own metric, e.g. ``val_loss``: the ``loss`` of the ``validation`` split);
never a test figure. Whether the metric is minimised is ``atlas_ray.experiment.is_minimised``.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from typing import Any

import pyarrow.fs as pafs

from atlas_ray import _storage
from atlas_ray.errors import AtlasError, FeatureError
from atlas_ray.experiment import (
    EXPERIMENT_FILE,
    MODEL_FILE,
    RESULT_FILE,
    TREES_MODEL_FILE,
    ResultsObject,
    TrialStatus,
    best_trials,
    direction,
    has_experiment,
    load_experiment,
    read_result,
    score_name,
    trial_directory,
    trial_ids_on_disk,
)
from atlas_ray.featurestore import FeatureLabelSet, Sources, Task

__all__ = ["ServedTrial", "find_trial", "metric_direction"]


@dataclass(frozen=True, eq=False)
class ServedTrial:
    """A trial checked for serving: its ResultsObject and its featureset rebuilt from the definition."""

    experiment: str
    """The experiment directory (path or URI) as given."""
    experiment_name: str
    result: ResultsObject
    featureset: FeatureLabelSet
    sources: Sources | None = None
    """The recorded decision of where each series comes from; None for a trial written before
    decisions were recorded (its feeds decide from the store, as they did then)."""

    @property
    def trial_id(self) -> str:
        return self.result.trial_id

    @property
    def task(self) -> Task:
        return self.result.task

    @property
    def model_path(self) -> str:
        path = self.result.model_path
        assert path is not None  # checked by find_trial
        return path


def metric_direction(metric: str) -> tuple[str, str, str]:
    """``(split, name, mode)`` of a metric as the search names it: ``val_loss`` is the validation
    split's ``loss``, minimised; ``accuracy`` is the validation ``accuracy``, maximised."""
    if metric.startswith(("test_", "train_")):
        raise AtlasError(
            f"The value of `--metric` is {metric!r}, but the best trial is chosen on validation figures "
            "only (a name such as val_loss or accuracy)."
        )
    return "validation", score_name(metric), direction(metric).value


def find_trial(
    experiment: str, *, trial: str | None = None, best: bool = False, metric: str | None = None
) -> ServedTrial:
    """The trial to serve (see the module docstring)."""
    if (trial is None) == (not best):
        raise AtlasError("Choose the model with exactly one of --trial ID or --best.")
    experiment = _storage.resolve(str(experiment))  # the Serve replica's working directory is not ours
    fs, _ = _storage.filesystem(experiment)
    if not has_experiment(experiment):
        raise AtlasError(
            f"The experiment {experiment} does not exist or is not an atlas_ray experiment "
            f"(no {EXPERIMENT_FILE} there)."
        )
    header = load_experiment(str(experiment))
    on_disk = trial_ids_on_disk(str(experiment))
    if best:
        trial = _best_trial(str(experiment), on_disk, metric or header.metric)
    assert trial is not None
    if trial not in on_disk:
        shown = ", ".join(on_disk[:8]) + (", ..." if len(on_disk) > 8 else "")
        raise AtlasError(
            f"The experiment {experiment} has no trial {trial!r} "
            f"(it holds {len(on_disk)} trial(s): {shown or 'none'})."
        )
    directory = trial_directory(experiment, trial)
    result = _read(directory)
    _check_servable(result, directory, fs)
    try:
        featureset = FeatureLabelSet.from_definition(dict(result.featureset))
    except FeatureError as error:
        raise AtlasError(f"{directory}/{RESULT_FILE}: the featureset cannot be rebuilt: {error}") from None
    _check_scaling(result, directory, featureset)
    sources = _recorded_sources(result, directory, featureset)
    return ServedTrial(str(experiment), header.name, result, featureset, sources)


def _recorded_sources(
    result: ResultsObject, directory: str, featureset: FeatureLabelSet
) -> Sources | None:
    if result.sources is None:
        return None
    try:
        sources = Sources.from_json(dict(result.sources))
    except (TypeError, ValueError) as error:
        raise AtlasError(f"{directory}/{RESULT_FILE}: the recorded sources cannot be read: {error}") from None
    if sources.resolution != featureset.resolution:
        raise AtlasError(
            f"{directory}/{RESULT_FILE}: the recorded sources are at {sources.resolution.value}, but the "
            f"featureset is at {featureset.resolution.value}."
        )
    return sources


def _read(directory: str) -> ResultsObject:
    try:
        return read_result(directory)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise AtlasError(
            f"{directory}/{RESULT_FILE} cannot be read as a ResultsObject ({type(error).__name__}: {error})."
        ) from None


def _check_servable(result: ResultsObject, directory: str, fs: pafs.FileSystem) -> None:
    if result.status is TrialStatus.FAILED:
        raise AtlasError(f"The trial {result.trial_id} failed ({result.error}); it has no model to serve.")
    if not result.model_file:
        raise AtlasError(f"{directory}/{RESULT_FILE} names no model file; the trial has no model to serve.")
    _, model = _storage.filesystem(_storage.join(directory, result.model_file))
    info = fs.get_file_info(model)
    if info.type != pafs.FileType.File or not info.size:
        raise AtlasError(
            f"The model directory {directory} is incomplete: {result.model_file} is missing or empty."
        )
    if result.model_file == TREES_MODEL_FILE:
        with fs.open_input_stream(model) as stream:
            head = stream.read(64)
        if not head.startswith(b"tree\n"):
            raise AtlasError(
                f"The model file {directory}/{result.model_file} is damaged: it is not a LightGBM text "
                "model (its first line is not `tree`)."
            )
        return
    try:
        with fs.open_input_file(model) as handle, zipfile.ZipFile(handle) as archive:
            json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        raise AtlasError(
            f"The model file {directory}/{result.model_file} is damaged: it is not a Keras "
            f"{MODEL_FILE} archive with a config.json."
        ) from None


def _check_scaling(result: ResultsObject, directory: str, featureset: FeatureLabelSet) -> None:
    scaling: Any = result.scaling
    names = set(featureset.feature_names)
    if (
        not isinstance(scaling, dict)
        or set(scaling.get("mean", {})) != names
        or set(scaling.get("std", {})) != names
    ):
        raise AtlasError(
            f"{directory}/{RESULT_FILE}: the scaling does not cover the featureset's features "
            f"{sorted(names)}; the trial cannot be served."
        )
    if result.task is not Task.REGRESSION and not result.classes:
        raise AtlasError(f"{directory}/{RESULT_FILE}: a classifier without classes cannot be served.")


def _best_trial(experiment: str, trial_ids: list[str], metric: str) -> str:
    """The trial with the best score for ``metric`` among those with a model (``best_trials``)."""
    metric_direction(metric)  # refuses a test or train figure
    results = []
    for trial_id in trial_ids:
        try:
            results.append(read_result(trial_directory(experiment, trial_id)))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    ranked = best_trials(results, metric, with_model=True)
    if not ranked:
        raise AtlasError(
            f"The experiment {experiment} has no trial with a model and a finite validation "
            f"{score_name(metric)!r} (from --metric {metric}) to choose from."
        )
    return ranked[0].trial_id
