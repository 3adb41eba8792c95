"""One trial of the zoo's ``lightgbm`` family: LightGBM boosters grown under ASHA, rounds as the resource.

``_trainable.train_trial`` hands a trial here when its model's family is ``ModelFamily.LIGHTGBM``;
everything else about the trial (identity, failure handling, the ResultsObject, the attempt log, the
time keys) is the Keras trial's.

**Rounds and Tune steps.** One scheduler serves the Keras and the LightGBM models of a spec, so a
Tune training iteration means one thing for ASHA: a *step*. A Keras step is an epoch; a LightGBM step
is ``rounds_per_step`` boosting rounds (a hyperparameter, default 25, see ``_models/lightgbm.py``), so
ASHA's ``max_t`` steps are ``max_t x rounds_per_step`` rounds, and its rungs (``grace_period x
reduction_factor^k`` steps) are rounds ``x rounds_per_step``. A trial ASHA stops at a rung has grown
only that rung's rounds. LightGBM's own early stopping is never used.

**Folds in lock step**, as the Keras trial: each step grows every fold's booster ``rounds_per_step``
rounds, then reports the mean over the folds of each fold's logs. A step is one
``lightgbm.train(params, dataset, num_boost_round=rounds_per_step, init_model=<the booster so far>,
keep_training_booster=False)``: a continuation of the booster as LightGBM's text model holds it
(``keep_training_booster=False`` hands back the booster reloaded from its own model string), so the
state between two steps is exactly what a checkpoint holds, and a trial restored from a checkpoint
grows the same trees as one never interrupted (tested by comparing model strings).

**Seeds.** ``seed`` and ``data_random_seed`` (the bins) are the trial's seed for the whole trial;
each step's ``bagging_seed``, ``feature_fraction_seed`` and ``extra_seed`` are
``epoch_seed(seed, fold, step)`` (as a Keras epoch's row order), so the continued boosters do not
repeat the previous step's bags, and a restored step draws what the uninterrupted one drew.
``deterministic=True`` with ``force_row_wise``; ``num_threads`` is the trial's CPUs.

**Per-step logs** are named as Keras names them, so ASHA, the progress line and the curves read
both families alike: ``loss`` and ``val_loss`` (the data loss: cross-entropy for classifiers, mse for
regressors, ``_gather.split_loss``, as Keras computes its loss without the penalty terms), and
``accuracy`` / ``auc`` (classifiers) or ``mae`` (regressors) with their ``val_`` forms. The train logs
are the boosters' figures at the step's end (Keras' train ``loss`` is the running mean over the
epoch's batches). The outputs come from raw scores kept per fold and advanced by the new trees only
(no second prediction pass over the whole model); ``validation_logs(fold, output, backtest)`` makes the
validation ones, the net-of-cost figures (``val_net_sharpe``, ... with the unit's cost model and the
trial's position rule, as the Keras trial reports them) included, so ASHA can rank both families on
``val_net_sharpe``. Each curves row also carries ``rounds``, the rounds grown so far.

**Checkpoints, results.** At the rungs below ``max_t``: every fold's booster as LightGBM text
(``fold_<k>.txt``, ``Booster.model_to_string``; no pickle) and the curves so far. At the rungs and at
``max_t`` the trial evaluates itself and writes its ResultsObject (``_gather.evaluate_trial``), the last
fold's booster as ``model.txt`` (``atlas_ray.experiment.save_model``). The devices record says CPU
(with the reason where the trial asked for a GPU or TPU: LightGBM here trains on CPUs).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from atlas_ray.backtest import Costs, PositionRule
from atlas_ray.experiment import TrialIdentity
from atlas_ray.featurestore import FoldedSet, PreparedSet, Task
from atlas_ray.search._asha import ASHA
from atlas_ray.search._attempts import record_attempt
from atlas_ray.search._devices import DevicePlan, Devices, Hardware, resources_from_bundle
from atlas_ray.search._gather import evaluate_trial, fold_sets, split_loss, split_net_figures
from atlas_ray.search._spec import Resources
from atlas_ray.search._trainable import (
    CURVES_STATE,
    NaNLossError,
    TrialContext,
    _mean_logs,
    _report_settled,
    device_report,
    epoch_seed,
    report_step,
)
from atlas_ray.search._zoo import as_zoo_model

__all__ = [
    "TreeFolds",
    "flat_rows",
    "output_of",
    "read_state",
    "save_state",
    "step_parameters",
    "train_trees",
    "training_logs",
    "trees_devices",
    "validation_logs",
]


def step_parameters(
    base: Mapping[str, Any], *, seed: int, fold: int, step: int, threads: int
) -> dict[str, Any]:
    """The LightGBM parameters of ``step`` (1-based) of ``fold`` (0-based): ``base`` (the zoo's build)
    with the step's seeds and the trial's threads."""
    drawn = epoch_seed(seed, fold, step)
    return {
        **base,
        "bagging_seed": drawn,
        "feature_fraction_seed": drawn,
        "extra_seed": drawn,
        "num_threads": max(1, int(threads)),
    }


def flat_rows(X: np.ndarray) -> np.ndarray:
    """``X`` with each row flattened (a window's lags side by side), as the boosters read it."""
    return np.asarray(X).reshape(len(X), -1)


def output_of(task: Task, raw: np.ndarray) -> np.ndarray:
    """Raw scores as ``predict_proba`` gives outputs: ``[1 - p, p]`` (binary, ``p = sigmoid``), the
    softmax (multi-class), values (regression)."""
    if task is Task.REGRESSION:
        return raw
    if task is Task.BINARY:
        p = 1.0 / (1.0 + np.exp(-raw))
        return np.column_stack([1.0 - p, p])
    shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _split_logs(fold: PreparedSet, y: np.ndarray, output: np.ndarray) -> dict[str, float]:
    from atlas_ray import metrics

    loss = split_loss(fold.task, y, output)
    if fold.task is Task.REGRESSION:
        return {"loss": loss, "mae": float(np.mean(np.abs(output - y))) if len(y) else float("nan")}
    values = metrics.classifier_metrics(y, output, fold.classes, loss=loss)
    return {name: float(values[name]) for name in ("loss", "accuracy", "auc")}


def validation_logs(
    fold: PreparedSet, output: np.ndarray, backtest: tuple[Costs, PositionRule] | None = None
) -> dict[str, float]:
    """The per-step validation logs of one fold from the model's output on its validation rows (as
    ``predict_proba`` gives it): ``val_loss`` and ``val_accuracy`` / ``val_auc`` (classifiers) or
    ``val_mae`` (regressors), named and computed as the Keras trial logs them, and the net-of-cost
    figures ``val_net_sharpe``, ... (``atlas_ray.backtest.NET_METRICS``) with the unit's cost model and
    the trial's position rule (``backtest``; default ``atlas_ray.backtest``'s), as the Keras trial adds
    them each epoch."""
    costs, rule = backtest if backtest is not None else (Costs(), PositionRule())
    logs = {f"val_{name}": value for name, value in _split_logs(fold, fold.validation.y, output).items()}
    net = split_net_figures(fold, fold.validation, output, costs, rule)
    return logs | {f"val_{name}": value for name, value in net.items()}


def training_logs(fold: PreparedSet, output: np.ndarray) -> dict[str, float]:
    """The per-step training logs of one fold (``loss``, ``accuracy`` / ``auc`` or ``mae``) from the
    model's output on its training rows."""
    return _split_logs(fold, fold.train.y, output)


class TreeFolds:
    """Every fold's booster, grown ``rounds_per_step`` rounds a step (see the module docstring).

    ``models``: each fold's booster as LightGBM text to go on from (a checkpoint), or None to start.
    The raw scores of the training and validation rows are kept per fold and advanced by each step's
    new trees only.
    """

    def __init__(
        self,
        folds: Sequence[PreparedSet],
        params: Mapping[str, Any],
        *,
        seed: int,
        threads: int,
        rounds_per_step: int,
        models: Sequence[str] | None = None,
        backtest: tuple[Costs, PositionRule] | None = None,
    ) -> None:
        import lightgbm

        self.backtest = backtest if backtest is not None else (Costs(), PositionRule())
        self.folds = tuple(folds)
        self.params = dict(params)
        self.seed = seed
        self.threads = threads
        self.rounds_per_step = rounds_per_step
        self.datasets = [
            lightgbm.Dataset(
                flat_rows(fold.train.X),
                label=np.asarray(fold.train.y),
                params=step_parameters(self.params, seed=seed, fold=k, step=1, threads=threads),
                free_raw_data=False,  # each step's continuation sets the init scores on the same bins
            )
            for k, fold in enumerate(self.folds)
        ]
        self.boosters: list[Any] = (
            [lightgbm.Booster(model_str=text) for text in models] if models else [None] * len(self.folds)
        )
        self._raw: list[tuple[np.ndarray, np.ndarray] | None] = [
            (self._raw_scores(booster, fold.train.X, 0), self._raw_scores(booster, fold.validation.X, 0))
            if booster is not None
            else None
            for booster, fold in zip(self.boosters, self.folds, strict=True)
        ]

    def rounds(self) -> list[int]:
        """The rounds every fold's booster holds."""
        return [0 if b is None else int(b.current_iteration()) for b in self.boosters]

    def model_strings(self) -> list[str]:
        """Every fold's booster in LightGBM's text model format."""
        return [str(b.model_to_string()) for b in self.boosters]

    def step(self, step: int) -> list[dict[str, float]]:
        """Grow every fold's booster by ``step`` (1-based) and return each fold's logs."""
        import lightgbm

        logs = []
        for k, fold in enumerate(self.folds):
            before = self.rounds()[k]
            params = step_parameters(self.params, seed=self.seed, fold=k, step=step, threads=self.threads)
            booster = lightgbm.train(
                params,
                self.datasets[k],
                num_boost_round=self.rounds_per_step,
                init_model=self.boosters[k],
                keep_training_booster=False,
            )
            self.boosters[k] = booster
            added = (
                self._raw_scores(booster, fold.train.X, before),
                self._raw_scores(booster, fold.validation.X, before),
            )
            kept = self._raw[k]
            self._raw[k] = added if kept is None else (kept[0] + added[0], kept[1] + added[1])
            train_raw, validation_raw = self._raw[k]  # type: ignore[misc]
            row = {
                **training_logs(fold, output_of(fold.task, train_raw)),
                **validation_logs(fold, output_of(fold.task, validation_raw), self.backtest),
            }
            if not math.isfinite(row["loss"]):
                raise NaNLossError(f"the training loss is {row['loss']} at step {step}, but must be finite")
            logs.append(row)
        return logs

    def _raw_scores(self, booster: Any, X: np.ndarray, first: int) -> np.ndarray:
        """The raw scores of the trees from round ``first`` on (zeros where there are none)."""
        width = int(self.params.get("num_class", 1))
        shape = (len(X), width) if width > 1 else (len(X),)
        added = int(booster.current_iteration()) - first
        if added <= 0 or len(X) == 0:  # (num_iteration=0 would mean every tree)
            return np.zeros(shape, dtype=np.float64)
        raw = booster.predict(flat_rows(X), start_iteration=first, num_iteration=added, raw_score=True)
        return np.asarray(raw, dtype=np.float64).reshape(shape)


def trees_devices(cut: tuple[Resources, str] | None = None) -> Devices:
    """What a LightGBM trial trains on: the CPU (its threads are the trial's CPUs); where the trial
    asked for a GPU or TPU chips, the record says it trained on the CPU and why."""
    import ray
    from ray import tune

    asked = resources_from_bundle(tune.get_context().get_trial_resources().required_resources)
    fallback = None
    if cut is not None:
        asked, fallback = cut
    elif asked.gpu or asked.tpu:
        what = f"tpu={asked.tpu}" if asked.tpu else f"gpu={asked.gpu:g}"
        fallback = f"asked for {what}; LightGBM trains on CPU"
    hardware = Hardware(
        node_ip=ray.util.get_node_ip_address(), node_id=ray.get_runtime_context().get_node_id()
    )
    plan = DevicePlan(
        kind="cpu",
        devices=("cpu",),
        replicas=1,
        global_batch_size=0,
        asked=asked,
        fallback=fallback,
        hardware=hardware,
    )
    return Devices(plan)


def train_trees(
    context: TrialContext,
    prepared: PreparedSet | FoldedSet,
    hp: dict[str, Any],
    seed: int,
    key: str,
    identity: TrialIdentity,
    directory: str,
    curves: list[dict[str, float]],
    spent: dict[str, float],
    devices: Devices,
) -> None:
    """One attempt of a LightGBM trial (as ``_trainable._train`` for a Keras one): a settled trial only
    reports again; the boosters are restored from the checkpoint or started; a trial with every step
    done reports its last; else the attempt is logged and the steps are grown."""
    from ray import tune

    began = time.perf_counter()
    asha = context.scheduler
    if _report_settled(directory):
        return
    folds = fold_sets(prepared)
    zoo_model = as_zoo_model(context.models[key], name=identity.model)
    resolved = zoo_model.resolve({**hp, "seed": seed})
    first = folds[0]
    params = zoo_model.build(
        resolved,
        input_shape=tuple(first.train.X.shape[1:]),
        task=first.task,
        n_classes=first.n_classes,
        train_X=first.train.X,
    )
    models = _restore(curves)
    trees = TreeFolds(
        folds,
        params,
        seed=seed,
        threads=int(context.cpus[key]),
        rounds_per_step=int(resolved["rounds_per_step"]),
        models=models,
        backtest=context.backtest(identity.unit, hp),
    )
    if len(curves) >= asha.max_t:
        tune.report(dict(curves[-1]))
        return
    attempts = record_attempt(directory, restored_from_epoch=len(curves))
    spent["time_setup_s"] += time.perf_counter() - began
    _grow(asha, trees, prepared, identity, directory, curves, spent, devices, attempts)


def _restore(curves: list[dict[str, float]]) -> list[str] | None:
    """Every fold's booster text from Tune's checkpoint (the curves so far into ``curves``), or None."""
    from ray import tune

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as state:
        models, saved = read_state(state)
    curves.extend(saved)
    return models


def read_state(state: str) -> tuple[list[str], list[dict[str, float]]]:
    """What ``save_state`` wrote into the folder ``state``: every fold's booster text and the curves."""
    with open(os.path.join(state, CURVES_STATE)) as stream:
        curves = [dict(row) for row in json.load(stream)]
    count = len([name for name in os.listdir(state) if name.startswith("fold_") and name.endswith(".txt")])
    models = []
    for k in range(count):
        with open(os.path.join(state, _fold_file(k))) as stream:
            models.append(stream.read())
    return models, curves


def _grow(
    asha: ASHA,
    trees: TreeFolds,
    prepared: PreparedSet | FoldedSet,
    identity: TrialIdentity,
    directory: str,
    curves: list[dict[str, float]],
    spent: dict[str, float],
    devices: Devices,
    attempts: list[dict[str, Any]],
) -> None:
    """Grow the remaining steps, reporting each to Tune; at a rung or ``max_t`` evaluate and write the
    ResultsObject first, and below ``max_t`` checkpoint with the report."""

    rungs = set(asha.checkpoints())
    reported = device_report(devices.plan)
    for step in range(len(curves) + 1, asha.max_t + 1):
        began = time.perf_counter()
        logs = trees.step(step)
        rounds = trees.rounds()
        row = {"epoch": step, "rounds": float(np.mean(rounds)), **_mean_logs(logs)}
        curves.append(row)
        spent["time_fit_s"] += time.perf_counter() - began
        report_step(
            asha,
            step,
            row,
            rungs=rungs,
            spent=spent,
            reported=reported,
            evaluate=lambda status: evaluate_trial(
                trees.boosters if isinstance(prepared, FoldedSet) else trees.boosters[0],
                prepared,
                identity=identity,
                status=status,
                curves=curves,
                directory=directory,
                attempts=attempts,
                devices=devices.plan.record(),
                costs=trees.backtest[0],
                rule=trees.backtest[1],
            ),
            save_state=lambda state: save_state(trees, curves, state),
        )


def save_state(trees: TreeFolds, curves: Sequence[Mapping[str, float]], state: str) -> None:
    """A rung's checkpoint: every fold's booster as LightGBM text and the curves so far, into ``state``."""
    for k, text in enumerate(trees.model_strings()):
        with open(os.path.join(state, _fold_file(k)), "w") as stream:
            stream.write(text)
    with open(os.path.join(state, CURVES_STATE), "w") as stream:
        json.dump([dict(row) for row in curves], stream)


def _fold_file(fold: int) -> str:
    return f"fold_{fold}.txt"
