"""``ResultsObject``: everything one trial produced, and its on-disk format (parquet and JSON, no pickle).

This module is the only code that reads or writes ``result.json``: ``write_result`` (the trial's
evaluation), ``settle_result`` (the driver gives a trial its final status), ``read_result`` and
``read_status``. Paths come from ``_layout``.

Experiment directory (a local path or any pyarrow filesystem URI)::

    EXPERIMENT/
      experiment.json                 name, spec, metric, mode, created, finished, trial ids
      trials/<trial_id>/
        result.json                   identity, status, error, task, classes, features, label,
                                      metrics per split, epochs, scaling, categories, window,
                                      featureset definition, model file name; and (additive)
                                      folds (walk-forward: per fold {fold, train, validation,
                                      train_span, validation_span, train_rows,
                                      validation_rows}), finalized (null, or the test
                                      openings that evaluated this trial: [{opening, at}]),
                                      attempts (where and how each run of the trial went: [{attempt,
                                      node_id, node_ip, restored_from_epoch, started}], see
                                      ``_attempts``), devices (what the trial trained on:
                                      {kind, names, replicas, global_batch_size, asked,
                                      fallback, memory_limit_mb, memory_growth, ray_gpu_ids,
                                      ray_tpu_ids, node_ip, node_id}, see ``_devices``; null
                                      before it set them up), sources (where each series the
                                      featureset read came from, decided once by the source rule:
                                      {format, resolution, days, series: [{exchange, pair, kind,
                                      read}]}, see ``atlas_ray.featurestore``'s source rule; absent in
                                      results written before it was recorded: then, and only
                                      then, readers decide from the store as before), backtest
                                      (the cost model and position rule its net figures used:
                                      {costs: {fee_bps, spread_bps, minimum_bps}, position:
                                      {threshold, dead_band}}, see ``atlas_ray.backtest``; null in
                                      results written before: readers then use the default costs)
        predictions.parquet           timestamp (UTC), split, reality, prediction,
                                      prob_<class> per class (classifiers), label_value;
                                      classifiers: reality / prediction are class names
                                      (prediction = the most probable class); regressors:
                                      float values; label_value is the continuous label;
                                      walk-forward trials add ``fold`` (1-based, int)
        curves.parquet                one row per epoch: epoch (1-based), loss, val_loss and the
                                      other per-epoch metrics (validation ones prefixed ``val_``)
        model.keras                   the trained Keras model (absent for failed trials); a
                                      LightGBM trial's is model.txt, LightGBM's text model
                                      (``model_file`` names which); its curves also carry
                                      ``rounds`` (boosting rounds so far; an epoch is a step of
                                      ``rounds_per_step`` rounds)

Splits (``metrics[split]`` and the predictions' ``split`` column). During the search a trial is
evaluated on ``train`` and ``validation`` only: the test part is sealed. A TimeSplit trial holds
``train`` and ``validation`` rows. A walk-forward trial (``WalkForward``) holds the last fold's
``train`` rows and ``oos`` rows: every fold's validation predictions joined in time order (each fold's
model on its own validation block), which is what statistics and backtests use; its
``metrics["train"]`` / ``metrics["validation"]`` are means over the folds (what ASHA decided on) and
``metrics["oos"]`` the metrics of the joined rows (each fold's ``reality`` classes come from its own
categorisation, fitted on its own training window; ``label_value`` is the same label in every fold).

``test`` metrics and rows appear only once ``python -m atlas_ray.search finalize`` opened the test set
for the trial (``finalized`` says when).

Metric names (``metrics[split][name]``). Classifiers: ``loss``, ``accuracy``, ``auc`` (macro
one-vs-rest), and per class ``precision[<c>]``, ``npv[<c>]``, ``tpr[<c>]``, ``tnr[<c>]``,
``lr_plus[<c>]``, ``lr_minus[<c>]``. Regressors: ``loss``, ``mse``, ``mae``, ``sign_accuracy``,
``persistence_mse``, ``zero_mse``. Both, on every split: the net-of-cost figures
``atlas_ray.backtest.NET_METRICS`` (``net_return``, ``gross_return``, ``net_sharpe``, ``gross_sharpe``,
``net_sharpe_annual``, ``turnover``, ``cost``, ``max_drawdown``, ``hit_rate``, ``trades``; the search
writes them, absent in results written before). A metric that cannot be computed is NaN, never absent.
"""

from __future__ import annotations

import enum
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from atlas_ray import _atomic, _storage
from atlas_ray.experiment._layout import CURVES_FILE, PREDICTIONS_FILE, RESULT_FILE
from atlas_ray.featurestore import Task

__all__ = [
    "FINAL_STATUSES",
    "ResultsObject",
    "TrialIdentity",
    "TrialStatus",
    "jsonable",
    "read_result",
    "read_status",
    "settle_result",
    "write_result",
]

JSONValue = Mapping[str, "JSONValue"] | Sequence["JSONValue"] | str | int | float | bool | None
"""A plain JSON value, as ``json.loads`` gives it (nested mappings and lists of the scalars)."""


class TrialStatus(enum.Enum):
    """How a trial ended."""

    COMPLETED = "completed"  # trained to the full budget (max_t)
    STOPPED = "stopped"  # stopped early by the scheduler (ASHA)
    FAILED = "failed"  # raised, or its loss went NaN; ``error`` says why
    RUNNING = "running"  # the experiment was interrupted; what exists so far


#: The statuses a trial keeps once the driver settled it (``settle_result`` leaves them as they are).
FINAL_STATUSES = (TrialStatus.COMPLETED, TrialStatus.STOPPED, TrialStatus.FAILED)


@dataclass(frozen=True)
class TrialIdentity:
    """Who a trial is: its experiment, spec, work unit, model, hyperparameters and seed."""

    experiment: str
    spec: str
    unit: str
    model: str
    trial_id: str
    hyperparameters: Mapping[str, Any]
    seed: int


@dataclass(frozen=True, eq=False)
class ResultsObject:
    """One trial's results. ``directory`` is where it was read from (empty before it is written)."""

    identity: TrialIdentity
    status: TrialStatus
    task: Task
    classes: tuple[str, ...]
    features: tuple[str, ...]
    label: str
    metrics: Mapping[str, Mapping[str, float]]
    predictions: pd.DataFrame
    curves: pd.DataFrame
    epochs: int
    error: str | None = None
    scaling: Mapping[str, Any] = field(default_factory=dict)
    categories: Mapping[str, Any] | None = None
    window: int | None = None
    featureset: Mapping[str, Any] = field(default_factory=dict)
    model_file: str | None = None
    directory: str = ""
    folds: tuple[Mapping[str, Any], ...] = ()
    finalized: tuple[Mapping[str, Any], ...] | None = None
    attempts: tuple[Mapping[str, Any], ...] = ()
    devices: Mapping[str, Any] | None = None
    sources: Mapping[str, Any] | None = None
    """The decided sources of the trial's featureset (``Sources.to_json``), None when not recorded."""
    backtest: Mapping[str, Any] | None = None
    """The cost model and position rule of its net figures (``{"costs": {...}, "position": {...}}``),
    None when not recorded."""

    @property
    def trial_id(self) -> str:
        return self.identity.trial_id

    def metric(self, name: str, split: str = "validation") -> float:
        """``metrics[split][name]``, NaN when absent."""
        return float(self.metrics.get(split, {}).get(name, float("nan")))

    @property
    def model_path(self) -> str | None:
        if self.model_file is None or not self.directory:
            return None
        return _storage.join(self.directory, self.model_file)


def write_result(result: ResultsObject, directory: str) -> None:
    """Write ``result`` into ``directory`` (created); each file atomically (``atlas_ray._atomic``),
    ``result.json`` last, so a reader never sees a half-written trial."""
    fs, base = _storage.filesystem(directory)
    fs.create_dir(base, recursive=True)
    predictions, curves = _to_table(result.predictions), _to_table(result.curves)
    _atomic.write_with(fs, f"{base}/{PREDICTIONS_FILE}", lambda out: pq.write_table(predictions, out))
    _atomic.write_with(fs, f"{base}/{CURVES_FILE}", lambda out: pq.write_table(curves, out))
    document = {
        "format": 1,
        "identity": {
            "experiment": result.identity.experiment,
            "spec": result.identity.spec,
            "unit": result.identity.unit,
            "model": result.identity.model,
            "trial_id": result.identity.trial_id,
            "hyperparameters": dict(result.identity.hyperparameters),
            "seed": result.identity.seed,
        },
        "status": result.status.value,
        "error": result.error,
        "task": result.task.value,
        "classes": list(result.classes),
        "features": list(result.features),
        "label": result.label,
        "metrics": {split: dict(values) for split, values in result.metrics.items()},
        "epochs": result.epochs,
        "scaling": dict(result.scaling),
        "categories": dict(result.categories) if result.categories is not None else None,
        "window": result.window,
        "featureset": dict(result.featureset),
        "model_file": result.model_file,
        "folds": [dict(fold) for fold in result.folds],
        "finalized": [dict(item) for item in result.finalized] if result.finalized is not None else None,
        "attempts": [dict(item) for item in result.attempts],
        "devices": dict(result.devices) if result.devices is not None else None,
        "sources": dict(result.sources) if result.sources is not None else None,
        "backtest": dict(result.backtest) if result.backtest is not None else None,
    }
    text = json.dumps(document, indent=2, sort_keys=True, allow_nan=True, default=_json_default)
    _atomic.write_text(fs, f"{base}/{RESULT_FILE}", text)


def read_result(directory: str) -> ResultsObject:
    """Read the trial written by ``write_result`` in ``directory``."""
    fs, base = _storage.filesystem(directory)
    with fs.open_input_stream(f"{base}/{RESULT_FILE}") as stream:
        document = json.loads(stream.read().decode())
    identity = document["identity"]
    return ResultsObject(
        identity=TrialIdentity(
            experiment=identity["experiment"],
            spec=identity["spec"],
            unit=identity["unit"],
            model=identity["model"],
            trial_id=identity["trial_id"],
            hyperparameters=identity["hyperparameters"],
            seed=int(identity["seed"]),
        ),
        status=TrialStatus(document["status"]),
        error=document.get("error"),
        task=Task(document["task"]),
        classes=tuple(document["classes"]),
        features=tuple(document["features"]),
        label=document["label"],
        metrics={
            split: {k: float("nan") if v is None else float(v) for k, v in values.items()}
            for split, values in document["metrics"].items()
        },
        predictions=_read_frame(fs, f"{base}/{PREDICTIONS_FILE}"),
        curves=_read_frame(fs, f"{base}/{CURVES_FILE}"),
        epochs=int(document["epochs"]),
        scaling=document.get("scaling") or {},
        categories=document.get("categories"),
        window=document.get("window"),
        featureset=document.get("featureset") or {},
        model_file=document.get("model_file"),
        directory=directory,
        folds=tuple(document.get("folds") or ()),
        finalized=tuple(document["finalized"]) if document.get("finalized") else None,
        attempts=tuple(document.get("attempts") or ()),
        devices=document.get("devices"),
        sources=document.get("sources"),
        backtest=document.get("backtest"),
    )


def _to_table(frame: pd.DataFrame) -> Any:
    import pyarrow as pa

    return pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)


def _read_frame(fs: pafs.FileSystem, path: str) -> pd.DataFrame:
    if fs.get_file_info(path).type != pafs.FileType.File:
        return pd.DataFrame()
    with fs.open_input_file(path) as handle:
        data = handle.read()
    return pq.read_table(io.BytesIO(data)).to_pandas()


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def read_status(directory: str) -> tuple[TrialStatus, int] | None:
    """The status and epochs written in ``directory/result.json``, or None when there is none."""
    document = _read_document(directory)
    if document is None:
        return None
    return TrialStatus(document["status"]), int(document["epochs"])


def settle_result(
    directory: str,
    *,
    status: TrialStatus,
    attempts: Sequence[Mapping[str, JSONValue]] = (),
    error: str | None = None,
) -> bool:
    """Give the trial's ``result.json`` in ``directory`` its final ``status`` (and ``error``, and the
    ``attempts`` log when one is given), rewriting ``result.json`` only, atomically; returns whether
    anything was written. No result, or a result already settled (``FINAL_STATUSES``): nothing."""
    document = _read_document(directory)
    if document is None or TrialStatus(document["status"]) in FINAL_STATUSES:
        return False
    document["status"] = status.value
    document["attempts"] = [dict(item) for item in attempts] or document.get("attempts") or []
    if error is not None:
        document["error"] = error
    fs, base = _storage.filesystem(directory)
    text = json.dumps(document, indent=2, sort_keys=True, allow_nan=True)
    _atomic.write_text(fs, f"{base}/{RESULT_FILE}", text)
    return True


def _read_document(directory: str) -> dict[str, Any] | None:
    fs, base = _storage.filesystem(directory)
    path = f"{base}/{RESULT_FILE}"
    if fs.get_file_info(path).type != pafs.FileType.File:
        return None
    with fs.open_input_stream(path) as stream:
        document: dict[str, Any] = json.loads(stream.read().decode())
    return document


def jsonable(value: object) -> JSONValue:
    """``value`` with numpy scalars and arrays, enums and tuples made plain JSON values (mappings' keys
    strings), as ``result.json`` stores them; anything else is a ``TypeError``."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")  # as write_result would say
