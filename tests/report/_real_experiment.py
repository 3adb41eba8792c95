"""Real experiments for the report's tests and benchmark, written in the ResultsObject format.

Real scikit-learn models trained on the real Coinbase BTC-USD 1-minute bars of March 2023
(../shared/data/minute_bars_2023-03/coinbase_btcusd.parquet): log-return features, the next minute's
log return as the label (3 classes by train percentiles, a binary variant by the train median, and the
continuous value for regression). Every trial predicts on train / validation / test and is written
with ``atlas_ray.experiment.write_result`` into ``EXPERIMENT/trials/<trial_id>`` beside an
``experiment.json``.

Epoch-trained trials (``SGDClassifier`` with log loss, ``SGDRegressor``) record one curve row per
epoch (``partial_fit``) and are stopped by the asynchronous successive-halving rule (ASHA with
``grace_period=2, reduction_factor=2, max_t=8``: at each rung a trial whose validation loss is not in
the best half of those that reached the rung so far stops), so the ASHA picture has real stops.

This stands in for a small real atlas_ray search until one exists; the lead will switch the report's
fixture to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression, Ridge, SGDClassifier, SGDRegressor
from sklearn.metrics import log_loss, roc_auc_score

from atlas_ray.experiment import (
    Experiment,
    ResultsObject,
    TrialIdentity,
    TrialStatus,
    asha_rungs,
    write_experiment,
    write_result,
)
from atlas_ray.featurestore import Task

GRACE_PERIOD = 2
REDUCTION_FACTOR = 2
MAX_T = 8
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class _Data:
    X: dict[str, np.ndarray]
    label: dict[str, np.ndarray]
    index: dict[str, pd.DatetimeIndex]
    features: tuple[str, ...]


def load_bars(data_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(data_dir / "minute_bars_2023-03" / "coinbase_btcusd.parquet")


def make_data(bars: pd.DataFrame, lags: int) -> _Data:
    """Features: the last ``lags`` log returns, 10-minute volatility and log volume (z-scaled on
    train); label: the next minute's log return. Rows whose next bar is not one minute later, or
    whose lags span a gap, are dropped. Split by time: 1-14 March train, 15-17 validation, 18-21 test."""
    close = bars["close"].astype("float64")
    times = bars.index
    ret = np.log(close).diff()
    step = pd.Series(times, index=times).diff() == pd.Timedelta(minutes=1)
    ret = ret.where(step)
    frame = pd.DataFrame(index=times)
    names = []
    for k in range(lags):
        frame[f"r_lag{k}"] = ret.shift(k)
        names.append(f"r_lag{k}")
    frame["vol10"] = ret.rolling(10).std()
    frame["log_volume"] = np.log1p(bars["volume"].astype("float64"))
    names += ["vol10", "log_volume"]
    frame["label"] = ret.shift(-1)
    frame = frame.dropna()
    day = frame.index.day
    parts = {"train": day <= 14, "validation": (day >= 15) & (day <= 17), "test": day >= 18}
    train = frame.loc[parts["train"], names]
    mean, std = train.mean(), train.std()
    X = {s: ((frame.loc[m, names] - mean) / std).to_numpy("float64") for s, m in parts.items()}
    label = {s: frame.loc[m, "label"].to_numpy("float64") for s, m in parts.items()}
    index = {s: pd.DatetimeIndex(frame.index[m]) for s, m in parts.items()}
    return _Data(X, label, index, tuple(names))


def _categorise(data: _Data, task: Task) -> tuple[tuple[str, ...], dict[str, np.ndarray], list[float]]:
    train = data.label["train"]
    if task is Task.MULTICLASS:
        bounds = [float(np.percentile(train, 100 / 3)), float(np.percentile(train, 200 / 3))]
        classes: tuple[str, ...] = ("down", "flat", "up")
    else:
        bounds = [float(np.median(train))]
        classes = ("down", "up")
    y = {s: np.searchsorted(bounds, v, side="right").astype("int64") for s, v in data.label.items()}
    return classes, y, bounds


def _class_predictions(
    model: Any, data: _Data, classes: tuple[str, ...], y: dict[str, np.ndarray]
) -> pd.DataFrame:
    frames = []
    for split in SPLITS:
        proba = model.predict_proba(data.X[split])
        full = np.zeros((proba.shape[0], len(classes)))
        full[:, np.asarray(model.classes_, dtype="int64")] = proba
        pred = full.argmax(axis=1)
        frame = pd.DataFrame(
            {
                "timestamp": data.index[split],
                "split": split,
                "reality": np.asarray(classes, dtype=object)[y[split]],
                "prediction": np.asarray(classes, dtype=object)[pred],
            }
        )
        for c, name in enumerate(classes):
            frame[f"prob_{name}"] = full[:, c]
        frame["label_value"] = data.label[split]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _class_metrics(model: Any, data: _Data, classes: tuple[str, ...], y: dict[str, np.ndarray]) -> dict:
    metrics: dict[str, dict[str, float]] = {}
    labels = list(range(len(classes)))
    for split in SPLITS:
        proba = np.zeros((len(y[split]), len(classes)))
        proba[:, np.asarray(model.classes_, dtype="int64")] = model.predict_proba(data.X[split])
        pred = proba.argmax(axis=1)
        values = {
            "loss": float(log_loss(y[split], np.clip(proba, 1e-12, 1), labels=labels)),
            "accuracy": float((pred == y[split]).mean()),
        }
        try:
            if len(classes) == 2:
                values["auc"] = float(roc_auc_score(y[split], proba[:, 1]))
            else:
                values["auc"] = float(roc_auc_score(y[split], proba, multi_class="ovr", labels=labels))
        except ValueError:
            values["auc"] = math.nan
        metrics[split] = values
    return metrics


def _regression_predictions(model: Any, data: _Data) -> tuple[pd.DataFrame, dict]:
    frames, metrics = [], {}
    for split in SPLITS:
        pred = model.predict(data.X[split])
        real = data.label[split]
        frames.append(
            pd.DataFrame(
                {
                    "timestamp": data.index[split],
                    "split": split,
                    "reality": real,
                    "prediction": pred,
                    "label_value": real,
                }
            )
        )
        mse = float(np.mean((pred - real) ** 2))
        metrics[split] = {
            "loss": mse,
            "mse": mse,
            "mae": float(np.mean(np.abs(pred - real))),
            "sign_accuracy": float(np.mean(np.sign(pred) == np.sign(real))),
            "persistence_mse": float(np.mean((real[1:] - real[:-1]) ** 2)),
            "zero_mse": float(np.mean(real**2)),
        }
    return pd.concat(frames, ignore_index=True), metrics


class _Asha:
    """The asynchronous successive-halving stopping rule (rungs at grace * rf^k, min mode)."""

    def __init__(self) -> None:
        self.rungs: dict[int, list[float]] = {}

    def keep(self, epoch: int, value: float) -> bool:
        rung = GRACE_PERIOD
        while rung < MAX_T:
            if epoch == rung:
                seen = self.rungs.setdefault(rung, [])
                seen.append(value)
                cutoff = float(np.quantile(seen, 1 / REDUCTION_FACTOR)) if len(seen) > 1 else math.inf
                return value <= cutoff
            rung *= REDUCTION_FACTOR
        return True


def _epoch_classifier(
    alpha: float, data: _Data, classes: tuple[str, ...], y: dict[str, np.ndarray], asha: _Asha, seed: int
) -> tuple[Any, pd.DataFrame, TrialStatus]:
    model = SGDClassifier(loss="log_loss", alpha=alpha, random_state=seed, learning_rate="optimal")
    labels = np.arange(len(classes))
    rows = []
    status = TrialStatus.COMPLETED
    rng = np.random.default_rng(seed)
    for epoch in range(1, MAX_T + 1):
        order = rng.permutation(len(y["train"]))
        model.partial_fit(data.X["train"][order], y["train"][order], classes=labels)
        row: dict[str, float] = {"epoch": epoch}
        for split, prefix in (("train", ""), ("validation", "val_")):
            proba = model.predict_proba(data.X[split])
            pred = proba.argmax(axis=1)
            truth = y[split]
            row[f"{prefix}loss"] = float(log_loss(truth, np.clip(proba, 1e-12, 1), labels=labels))
            row[f"{prefix}accuracy"] = float((pred == truth).mean())
            predicted_up = pred == labels[-1]
            actual_up = truth == labels[-1]
            row[f"{prefix}precision"] = float(actual_up[predicted_up].mean()) if predicted_up.any() else 0.0
            row[f"{prefix}recall"] = float(predicted_up[actual_up].mean())
            row[f"{prefix}auc"] = float(roc_auc_score(actual_up, proba[:, -1]))
        rows.append(row)
        if not asha.keep(epoch, row["val_loss"]):
            status = TrialStatus.STOPPED
            break
    return model, pd.DataFrame(rows), status


def _identity(experiment: str, unit: str, model: str, trial: str, hp: dict, seed: int) -> TrialIdentity:
    return TrialIdentity(
        experiment=experiment, spec=f"{experiment}_spec", unit=unit, model=model, trial_id=trial,
        hyperparameters=hp, seed=seed,
    )


def _result(
    identity: TrialIdentity, status: TrialStatus, task: Task, classes: tuple[str, ...], data: _Data,
    metrics: dict, predictions: pd.DataFrame, curves: pd.DataFrame, epochs: int,
    categories: dict | None, error: str | None = None,
) -> ResultsObject:
    return ResultsObject(
        identity=identity, status=status, task=task, classes=classes, features=data.features,
        label="next_log_return", metrics=metrics, predictions=predictions, curves=curves, epochs=epochs,
        error=error, scaling={"method": "zscore"}, categories=categories, window=None,
        featureset={"name": identity.unit}, model_file=None,
    )


def build_experiment(root: Path, name: str, bars: pd.DataFrame, lags: int, seed: int = 0) -> Path:
    """Train the experiment's trials and write them under ``root/name``; return the directory."""
    directory = root / name
    data = make_data(bars, lags)
    trials: list[ResultsObject] = []
    counter = iter(range(1000))

    def trial_id(tag: str) -> str:
        return f"{tag}_{next(counter):05d}"

    # three classes: epoch-trained logistic regressions (SGD) under ASHA, closed-form ones, a dummy.
    classes, y, bounds = _categorise(data, Task.MULTICLASS)
    categories = {"boundaries": bounds, "classes": list(classes)}
    asha = _Asha()
    for alpha in (1e-3, 1e-2, 1e-4, 3e-2, 1e-1, 1e-5):
        model, curves, status = _epoch_classifier(alpha, data, classes, y, asha, seed)
        trials.append(_result(
            _identity(name, "three_class", "sgd_logistic", trial_id("sgd"), {"alpha": alpha}, seed),
            status, Task.MULTICLASS, classes, data, _class_metrics(model, data, classes, y),
            _class_predictions(model, data, classes, y), curves, len(curves), categories,
        ))
    for C in (0.001, 0.1, 10.0):
        model = LogisticRegression(C=C, max_iter=300).fit(data.X["train"], y["train"])
        curves = pd.DataFrame([{"epoch": 1, **{
            ("val_" if s == "validation" else "") + "loss": v["loss"]
            for s, v in _class_metrics(model, data, classes, y).items() if s != "test"}}])
        trials.append(_result(
            _identity(name, "three_class", "logistic", trial_id("logit"), {"C": C}, seed),
            TrialStatus.COMPLETED, Task.MULTICLASS, classes, data, _class_metrics(model, data, classes, y),
            _class_predictions(model, data, classes, y), curves, 1, categories,
        ))
    dummy = DummyClassifier(strategy="most_frequent").fit(data.X["train"], y["train"])
    trials.append(_result(
        _identity(name, "three_class", "majority", trial_id("dummy"), {"strategy": "most_frequent"}, seed),
        TrialStatus.COMPLETED, Task.MULTICLASS, classes, data, _class_metrics(dummy, data, classes, y),
        _class_predictions(dummy, data, classes, y), pd.DataFrame(), 1, categories,
    ))
    # a real failure: scikit-learn rejects C <= 0.
    try:
        LogisticRegression(C=-1.0).fit(data.X["train"], y["train"])
        raise RuntimeError("LogisticRegression(C=-1) unexpectedly trained")
    except ValueError as error:
        trials.append(_result(
            _identity(name, "three_class", "logistic", trial_id("logit"), {"C": -1.0}, seed),
            TrialStatus.FAILED, Task.MULTICLASS, classes, data, {}, pd.DataFrame(), pd.DataFrame(), 0,
            categories, error=" ".join(str(error).split()),
        ))

    # binary: logistic regression on the sign of the next return (train median).
    bclasses, by, bbounds = _categorise(data, Task.BINARY)
    for C in (0.01, 1.0):
        model = LogisticRegression(C=C, max_iter=300).fit(data.X["train"], by["train"])
        trials.append(_result(
            _identity(name, "binary", "logistic", trial_id("binlogit"), {"C": C}, seed),
            TrialStatus.COMPLETED, Task.BINARY, bclasses, data, _class_metrics(model, data, bclasses, by),
            _class_predictions(model, data, bclasses, by), pd.DataFrame(), 1,
            {"boundaries": bbounds, "classes": list(bclasses)},
        ))

    # regression: ridge in closed form, and SGD by epochs with curves.
    scale = float(np.std(data.label["train"]))
    for alpha in (1.0, 1000.0):
        model = Ridge(alpha=alpha).fit(data.X["train"], data.label["train"])
        predictions, metrics = _regression_predictions(model, data)
        trials.append(_result(
            _identity(name, "regression", "ridge", trial_id("ridge"), {"alpha": alpha}, seed),
            TrialStatus.COMPLETED, Task.REGRESSION, (), data, metrics, predictions, pd.DataFrame(), 1, None,
        ))
    sgd = SGDRegressor(alpha=1e-3, random_state=seed, eta0=1e-3)
    rows = []
    for epoch in range(1, 5):
        sgd.partial_fit(data.X["train"], data.label["train"] / scale)
        rows.append({
            "epoch": epoch,
            "loss": float(np.mean((sgd.predict(data.X["train"]) * scale - data.label["train"]) ** 2)),
            "val_loss": float(np.mean((sgd.predict(data.X["validation"]) * scale
                                       - data.label["validation"]) ** 2)),
        })

    class _Scaled:
        def predict(self, X: np.ndarray) -> np.ndarray:
            return np.asarray(sgd.predict(X)) * scale

    predictions, metrics = _regression_predictions(_Scaled(), data)
    trials.append(_result(
        _identity(name, "regression", "sgd_linear", trial_id("sgdreg"), {"alpha": 1e-3}, seed),
        TrialStatus.COMPLETED, Task.REGRESSION, (), data, metrics, predictions, pd.DataFrame(rows), 4, None,
    ))

    for trial in trials:
        write_result(trial, str(directory / "trials" / trial.trial_id))
    # the record as the search writes it (atlas_ray.experiment): the ASHA settings and rungs under
    # ``scheduler``, the trial ids under ``trial_ids``
    record = Experiment(
        name=name,
        spec=f"{name}_spec",
        metric="val_loss",
        mode="min",
        created="2024-06-01T00:00:00+00:00",
        finished="2024-06-01T00:05:00+00:00",
        status="finished",
        trial_ids=tuple(t.trial_id for t in trials),
        scheduler={
            "scheduler": "asha",
            "max_t": MAX_T,
            "grace_period": GRACE_PERIOD,
            "reduction_factor": REDUCTION_FACTOR,
            "metric": "val_loss",
            "mode": "min",
            "milestones": list(asha_rungs(MAX_T, GRACE_PERIOD, REDUCTION_FACTOR)),
        },
    )
    write_experiment(record, str(directory))
    return directory
