"""From a trained (or failed) trial to its ResultsObject.

Where the final evaluation runs (decided here): inside the trial. At every ASHA rung epoch and at
``max_t`` (``ASHA.checkpoints()``) the trial evaluates its current model(s) on train and validation,
never on test (the test part stays sealed until ``finalize``, see ``_finalize``), and writes its whole
ResultsObject (metrics, predictions, curves, ``model.keras``) *before* it reports that epoch to Tune,
so when ASHA stops it after that report its results are already on storage. The status written there
is RUNNING below ``max_t`` and COMPLETED at ``max_t``. Between rungs nothing is written (a full
evaluation every epoch costs more than the epoch itself for small models).

Walk-forward units (a ``FoldedSet``) train one model per fold: ``metrics["train"]`` and
``metrics["validation"]`` are the means over the folds of each fold's metrics (what ASHA decided on),
``metrics["oos"]`` the metrics of the folds' validation predictions joined in time order, ``folds``
each fold's own metrics and spans; the predictions hold the last fold's train rows and the joined
out-of-sample rows (split ``"oos"``, with a ``fold`` column); ``model.keras``, ``scaling`` and
``categories`` are the last fold's.

Net of costs: every split's metrics also hold the net-of-cost backtest figures
(``atlas_ray.backtest.NET_METRICS``: ``net_sharpe``, ``net_return``, ``turnover``, ``cost``, ...) with the
unit's cost model and the trial's position rule (``split_net_figures``); per fold, their mean over the
folds, and on the joined out-of-sample rows (one backtest over them in time order: the book is not
closed between folds there, so it pays fewer entries and exits than the folds' sum).

The driver then settles the status as trials end (a Tune callback, so an interrupted experiment keeps
every finished trial): a trial that ended before ``max_t`` without error is STOPPED; an errored one is
FAILED with its error (a result written by the trial itself keeps its metrics and curves; a trial that
failed before any rung gets a result with its identity, error and curves only). Settling rewrites
``result.json`` only, atomically (``atlas_ray.experiment.settle_result``), and leaves a trial already
settled untouched (idempotent on resume). ``result.json`` itself, the model file and the prediction
function are ``atlas_ray.experiment``'s.
Every write (evaluation or settling) ends by rewriting the trial's checksum manifest (``_manifest``),
which the SSH harvest verifies copied files against.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from atlas_ray.backtest import Costs, PositionRule, bars_per_year, net_figures
from atlas_ray.experiment import (
    FINAL_STATUSES,
    ResultsObject,
    TrialIdentity,
    TrialStatus,
    jsonable,
    predict_proba,
    read_status,
    save_model,
    settle_result,
    write_result,
)
from atlas_ray.featurestore import FoldedSet, PreparedSet, SplitPart, Task
from atlas_ray.search._attempts import read_attempts
from atlas_ray.search._manifest import write_manifest

__all__ = [
    "FINAL_STATUSES",
    "load_model",
    "UnitInfo",
    "evaluate_trial",
    "failed_result",
    "fold_net_figures",
    "fold_sets",
    "predict_proba",
    "read_status",
    "settle_trial",
]

UnitInfo = Mapping[str, Any]
"""What the driver keeps of a PreparedSet to write a result without the data: ``unit_info(prepared)``."""


def fold_sets(prepared: PreparedSet | FoldedSet) -> tuple[PreparedSet, ...]:
    """The PreparedSets a trial trains on: every fold of a FoldedSet, or the one PreparedSet."""
    return prepared.folds if isinstance(prepared, FoldedSet) else (prepared,)


def unit_info(prepared: PreparedSet | FoldedSet) -> dict[str, Any]:
    """The JSON-able description of a PreparedSet (a FoldedSet's last fold) that a failed trial's
    result carries."""
    prepared = fold_sets(prepared)[-1]
    return {
        "task": prepared.task.value,
        "classes": list(prepared.classes),
        "features": list(prepared.feature_names),
        "label": prepared.label_name,
        "scaling": jsonable(prepared.scaling),
        "categories": jsonable(prepared.categories) if prepared.categories is not None else None,
        "window": prepared.window,
        "featureset": jsonable(prepared.featureset),
        "sources": jsonable(prepared.sources) if prepared.sources is not None else None,
    }


def split_loss(task: Task, y: np.ndarray, output: np.ndarray) -> float:
    """The data loss (no regularisation) on one split: cross-entropy for classifiers, MSE otherwise."""
    if len(y) == 0:
        return float("nan")
    if task is Task.REGRESSION:
        return float(np.mean((output - y) ** 2))
    picked = np.clip(output[np.arange(len(y)), y.astype(np.int64)], 1e-7, 1.0)
    return float(-np.mean(np.log(picked)))


def split_metrics(
    prepared: PreparedSet,
    part: SplitPart,
    output: np.ndarray,
    costs: Costs | None = None,
    rule: PositionRule | None = None,
) -> dict[str, float]:
    """Summary metrics of one split with ``atlas_ray.metrics`` (a regressor's persistence baseline is
    placed by the label's horizon and bar and the rows' times, ``metrics.persistence_forecast``), and
    its net-of-cost figures (``split_net_figures``; ``costs`` and ``rule`` default to
    ``atlas_ray.backtest``'s defaults)."""
    from atlas_ray import metrics

    loss = split_loss(prepared.task, part.y, output)
    if prepared.task is Task.REGRESSION:
        values = metrics.regressor_metrics(
            part.y,
            output,
            label_value=part.label_value,
            horizon=metrics.label_horizon(prepared.label_name),
            index=part.index,
            bar=metrics.label_bar(prepared.label_name),
            loss=loss,
        )
    else:
        values = metrics.classifier_metrics(part.y, output, prepared.classes, loss=loss)
    net = split_net_figures(prepared, part, output, costs or Costs(), rule or PositionRule())
    return {name: float(value) for name, value in values.items()} | net


def split_net_figures(
    prepared: PreparedSet, part: SplitPart, output: np.ndarray, costs: Costs, rule: PositionRule
) -> dict[str, float]:
    """The net-of-cost figures (``atlas_ray.backtest.net_figures``) of ``output`` on ``part``'s rows,
    positions held for the label's horizon, annualised by the label's bar resolution."""
    from atlas_ray.metrics import label_horizon

    return net_figures(
        prepared.task,
        part.label_value,
        output,
        costs,
        rule,
        horizon=label_horizon(prepared.label_name),
        bars_per_year=bars_per_year(prepared.label_name),
    )


def fold_net_figures(model: Any, fold: PreparedSet, costs: Costs, rule: PositionRule) -> dict[str, float]:
    """The net-of-cost figures of ``model`` on ``fold``'s validation rows: one prediction of them
    (what a trial adds to every epoch's logs as ``val_<figure>``)."""
    output = predict_proba(model, fold.validation.X, fold.task)
    return split_net_figures(fold, fold.validation, output, costs, rule)


def split_predictions(prepared: PreparedSet, split: str, part: SplitPart, output: np.ndarray) -> pd.DataFrame:
    """One split's prediction series. Classifiers: ``reality`` and ``prediction`` are class names,
    ``prob_<class>`` the probabilities; regressors: values. ``label_value`` is the continuous label."""
    frame = pd.DataFrame({"timestamp": pd.DatetimeIndex(part.index).tz_convert("UTC")})
    frame["split"] = split
    if prepared.task is Task.REGRESSION:
        frame["reality"] = np.asarray(part.y, dtype=np.float64)
        frame["prediction"] = output.astype(np.float64)
    else:
        names = np.asarray(prepared.classes, dtype=object)
        frame["reality"] = names[np.asarray(part.y, dtype=np.int64)].astype(str)
        frame["prediction"] = names[np.argmax(output, axis=1)].astype(str) if len(output) else []
        for k, name in enumerate(prepared.classes):
            frame[f"prob_{name}"] = output[:, k] if len(output) else []
    frame["label_value"] = np.asarray(part.label_value, dtype=np.float64)
    return frame


def curves_frame(rows: Sequence[Mapping[str, float]]) -> pd.DataFrame:
    """Per-epoch rows (``epoch`` 1-based first) as the ``curves.parquet`` frame."""
    frame = pd.DataFrame([dict(row) for row in rows])
    if frame.empty:
        return pd.DataFrame({"epoch": pd.Series(dtype="int64")})
    columns = ["epoch", *sorted(c for c in frame.columns if c != "epoch")]
    frame = frame[columns]
    frame["epoch"] = frame["epoch"].astype("int64")
    return frame


#: The parts a trial evaluates during the search: never the test part, which stays sealed.
SEARCH_SPLITS = ("train", "validation")


def evaluate_trial(
    models: Any,
    prepared: PreparedSet | FoldedSet,
    *,
    identity: TrialIdentity,
    status: TrialStatus,
    curves: Sequence[Mapping[str, float]],
    directory: str,
    attempts: Sequence[Mapping[str, Any]] = (),
    devices: Mapping[str, Any] | None = None,
    costs: Costs | None = None,
    rule: PositionRule | None = None,
) -> ResultsObject:
    """Evaluate the model (one per fold: a sequence for a FoldedSet) on train and validation, save
    the (last fold's) model (``model.keras``, or a LightGBM booster's ``model.txt``) and write the
    ResultsObject (with the trial's attempt log, ``_attempts``, and the devices it trained on,
    ``_devices``). The test part is never evaluated here. ``costs`` and ``rule``: the unit's cost model
    and the trial's position rule (default ``atlas_ray.backtest``'s)."""
    costs, rule = costs or Costs(), rule or PositionRule()
    folds = fold_sets(prepared)
    models = list(models) if isinstance(models, list | tuple) else [models]
    if len(models) != len(folds):
        raise ValueError(f"{len(models)} model(s) for {len(folds)} fold(s): one model per fold is needed")
    per_fold: tuple[dict[str, Any], ...] = ()
    if isinstance(prepared, FoldedSet):
        metrics, predictions, per_fold = _evaluate_folds(models, prepared, costs, rule)
    else:
        metrics, frames = {}, []
        for split in SEARCH_SPLITS:
            part = getattr(prepared, split)
            output = predict_proba(models[0], part.X, prepared.task)
            metrics[split] = split_metrics(prepared, part, output, costs, rule)
            frames.append(split_predictions(prepared, split, part, output))
        predictions = pd.concat(frames, ignore_index=True)
    model = models[-1]
    prepared = folds[-1]
    model_file = save_model(model, directory)
    info = unit_info(prepared)
    result = ResultsObject(
        identity=identity,
        status=status,
        task=prepared.task,
        classes=tuple(prepared.classes),
        features=tuple(prepared.feature_names),
        label=prepared.label_name,
        metrics=metrics,
        predictions=predictions,
        curves=curves_frame(curves),
        epochs=len(curves),
        scaling=info["scaling"],
        categories=info["categories"],
        window=prepared.window,
        featureset=info["featureset"],
        sources=info.get("sources"),
        model_file=model_file,
        folds=per_fold,
        attempts=tuple(attempts),
        devices=dict(devices) if devices is not None else None,
        backtest={"costs": costs.as_dict(), "position": rule.as_dict()},
    )
    write_result(result, directory)
    write_manifest(directory)
    return result


def _evaluate_folds(
    models: Sequence[Any], folded: FoldedSet, costs: Costs, rule: PositionRule
) -> tuple[dict[str, dict[str, float]], pd.DataFrame, tuple[dict[str, Any], ...]]:
    """Per-fold metrics, their means, the joined out-of-sample metrics and the prediction rows."""
    per_fold: list[dict[str, Any]] = []
    oos_frames, outputs, parts = [], [], []
    train_frame = pd.DataFrame()
    for k, (model, fold) in enumerate(zip(models, folded.folds, strict=True), start=1):
        entry: dict[str, Any] = {"fold": k}
        for split in SEARCH_SPLITS:
            part = getattr(fold, split)
            output = predict_proba(model, part.X, fold.task)
            entry[split] = split_metrics(fold, part, output, costs, rule)
            entry[f"{split}_span"] = _span(part)
            entry[f"{split}_rows"] = len(part)
            if split == "validation":
                frame = split_predictions(fold, "oos", part, output)
                frame["fold"] = k
                oos_frames.append(frame)
                outputs.append(output)
                parts.append(part)
            elif k == len(folded.folds):
                train_frame = split_predictions(fold, "train", part, output)
                train_frame["fold"] = k
        per_fold.append(entry)
    metrics = {split: _mean_metrics([entry[split] for entry in per_fold]) for split in SEARCH_SPLITS}
    joined = SplitPart(
        X=np.zeros((0,)),
        y=np.concatenate([p.y for p in parts]),
        index=pd.DatetimeIndex(np.concatenate([p.index.asi8 for p in parts]), tz="UTC"),
        label_value=np.concatenate([p.label_value for p in parts]),
    )
    metrics["oos"] = split_metrics(folded.last, joined, np.concatenate(outputs, axis=0), costs, rule)
    predictions = pd.concat([train_frame, *oos_frames], ignore_index=True)
    return metrics, predictions, tuple(per_fold)


def _mean_metrics(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Each metric's mean over the folds (NaN when a fold's value is NaN or the metric is missing)."""
    names = list(rows[0]) if rows else []
    return {name: float(np.mean([row.get(name, float("nan")) for row in rows])) for name in names}


def _span(part: SplitPart) -> list[str | None]:
    if len(part) == 0:
        return [None, None]
    return [part.index[0].isoformat(), part.index[-1].isoformat()]


def failed_result(
    info: UnitInfo,
    *,
    identity: TrialIdentity,
    error: str,
    curves: Sequence[Mapping[str, float]] = (),
    attempts: Sequence[Mapping[str, Any]] = (),
    devices: Mapping[str, Any] | None = None,
) -> ResultsObject:
    """The result of a trial that failed before any evaluation: identity, error, curves, attempts and
    devices (None when it failed before setting them up)."""
    return ResultsObject(
        identity=identity,
        status=TrialStatus.FAILED,
        error=error,
        task=Task(info["task"]),
        classes=tuple(info["classes"]),
        features=tuple(info["features"]),
        label=str(info["label"]),
        metrics={},
        predictions=pd.DataFrame(),
        curves=curves_frame(curves),
        epochs=len(curves),
        scaling=info["scaling"],
        categories=info["categories"],
        window=info["window"],
        featureset=info["featureset"],
        sources=info.get("sources"),
        model_file=None,
        attempts=tuple(attempts),
        devices=dict(devices) if devices is not None else None,
    )


def settle_trial(
    directory: str,
    *,
    status: TrialStatus,
    error: str | None = None,
    fallback: ResultsObject | None = None,
) -> bool:
    """Give the trial in ``directory`` its final ``status`` (and ``error``); returns whether anything
    was written. A trial already settled is left as it is. Without a result, ``fallback`` is written.
    The result's ``attempts`` are brought up to date with the trial's attempt log (``_attempts``): an
    attempt that failed before writing a result is in it."""
    if read_status(directory) is None:
        if fallback is None:
            return False
        attempts = read_attempts(directory)
        write_result(replace(fallback, attempts=tuple(attempts)) if attempts else fallback, directory)
        write_manifest(directory)
        return True
    if not settle_result(directory, status=status, attempts=read_attempts(directory), error=error):
        return False
    write_manifest(directory)
    return True


def load_model(result_or_path: ResultsObject | str) -> Any:
    """The trained model of a trial (``atlas_ray.experiment.load_model``: a ``keras.Model``, with the
    zoo's custom layers and metrics registered first, or a LightGBM booster)."""
    from atlas_ray import experiment

    path = result_or_path.model_path if isinstance(result_or_path, ResultsObject) else result_or_path
    if path is not None and path.endswith(experiment.TREES_MODEL_FILE):
        return experiment.load_model(path)
    import atlas_ray.search._models._common  # noqa: F401  (registers the zoo's custom objects)

    return experiment.load_model(result_or_path)
