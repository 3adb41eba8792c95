"""The Ray Tune trainable: one trial trains one model on one unit's PreparedSet.

The PreparedSet (or, for a walk-forward unit, the FoldedSet) comes from Ray's object store
(``ray.get`` of the unit's ObjectRef, put once by the driver; its numpy arrays are read in place, not
copied per trial). A trial trains one model per fold (one for a plain TimeSplit), the folds in lock
step: each epoch trains every fold's model one epoch, then reports the mean over the folds of each
metric Keras logged (``loss``, ``val_loss``, ...) to Tune, so ASHA decides on the mean validation metric
over the folds. Every epoch each fold also scores its validation rows net of costs (``val_net_sharpe``,
``val_net_return``, ``val_turnover``, ... : ``atlas_ray.backtest.NET_METRICS`` with the unit's
``costs`` and ``position`` rule, the trial's ``position_threshold`` where it has one), from one
prediction of those rows in the epoch's callback (``_gather.fold_net_figures``), so ASHA can rank on
them; they are averaged over the folds like Keras' metrics. (That prediction is one more forward pass
over the validation rows besides Keras' own validation: dropping Keras' and deriving ``val_loss``,
``val_auc`` from it would change their values, regularisation and streaming AUC, so it was not done.)
At ASHA's rung epochs and at ``max_t`` the trial first evaluates itself and writes its ResultsObject
(see ``_gather``): the scheduler may stop it there, and nothing runs after a stop. Only the rung epochs
below ``max_t`` are checkpointed (every fold's model and the curves so far; Tune keeps
the latest only): a trial is stopped or continued only at a rung, so a checkpoint between rungs would
serve a restart alone, and at ``max_t`` the settled ResultsObject is the trial's state. A restored
trial trains again from its last rung (each epoch is seeded by its number, so to the same weights).

Each report also carries where the trial's time went so far (``TIME_KEYS``, cumulative seconds:
setting up (data, build or restore), training, evaluating and writing results, checkpointing), for
``benchmarks/bench_search.py``.

Seeds: the model is built after ``keras.utils.set_random_seed(seed)``; each fold's ``fit`` starts from
``keras.utils.set_random_seed(epoch_seed(seed, fold, first_epoch))``, and each epoch visits the rows in
an order drawn from ``epoch_seed(seed, fold, epoch)`` alone (``_epochs``: the training input, one
``tf.data`` pipeline on one thread). So a trial restored from a checkpoint trains its next epoch on the
same order as an uninterrupted one (layers' own seed generators, dropout's, travel in the checkpointed
models), and a spec run twice on the CPU trains the same models.

A NaN or infinite training loss stops training (``TerminateOnNaN``) and fails the trial with
``NaNLossError``; any exception writes the trial's result as FAILED with the error, then re-raises so
that Tune retries it (``max_failures``).

Restored from a checkpoint (a retry, or ``--resume`` after the driver died) the trial loads the models
and curves and goes on from the next epoch. Every attempt that trains appends its node and the epoch it
went on from to the trial's attempt log (``_attempts``), which each ResultsObject it writes carries.
A trial whose result is already settled COMPLETED or STOPPED (it finished, or was stopped, before the
driver's experiment state recorded it) only reports its last epoch again and trains nothing: its result
is never written twice.

A model of the zoo's ``lightgbm`` family (``ModelFamily.LIGHTGBM``) is trained by
``_trainable_trees.train_trees`` instead (boosting rounds as ASHA's resource, ``rounds_per_step`` per
step); identity, failure handling, the ResultsObject and the attempt log are the same.

Threads: a trial sets OMP and TensorFlow's intra-op threads to its CPUs (and one inter-op thread), so
concurrent trials do not oversubscribe the cores.

Devices (``_devices``): before TensorFlow's runtime starts, the trial sets up the devices of the
resources Tune reserved for it (a GPU share's memory limit, TPU chips, or the CPU with the reason why),
builds (or restores) its models under the plan's ``tf.distribute`` strategy and fits them with the
global batch (its ``batch_size`` per replica x the replicas). Every ResultsObject it writes records
them (``devices``), and every report to Tune carries ``device_kind`` and ``device_fallback``.
"""

from __future__ import annotations

import json
import math
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from atlas_ray.backtest import Costs, PositionRule
from atlas_ray.experiment import TrialIdentity, TrialStatus, jsonable, read_result, trial_directory
from atlas_ray.featurestore import FoldedSet, PreparedSet
from atlas_ray.search._asha import ASHA
from atlas_ray.search._attempts import read_attempts, record_attempt
from atlas_ray.search._devices import DevicePlan, Devices, resources_from_bundle, setup_devices
from atlas_ray.search._epochs import fit_inputs, tensorflow_backend
from atlas_ray.search._gather import (
    evaluate_trial,
    failed_result,
    fold_net_figures,
    fold_sets,
    load_model,
    read_status,
    settle_trial,
    unit_info,
)
from atlas_ray.search._spec import Resources
from atlas_ray.search._zoo import ModelFamily, as_zoo_model

__all__ = [
    "NaNLossError",
    "TrialContext",
    "device_report",
    "epoch_seed",
    "train_trial",
    "trial_devices",
    "variant_key",
]

CURVES_STATE = "curves.json"
DEFAULT_BATCH_SIZE = 256
TIME_KEYS = ("time_setup_s", "time_fit_s", "time_evaluate_s", "time_checkpoint_s")


class NaNLossError(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass(frozen=True)
class TrialContext:
    """What every trial shares, passed once through ``tune.with_parameters``.

    ``datasets``: unit name -> ObjectRef of its PreparedSet; ``models`` and ``cpus``: ``"unit/model"``
    -> the ModelSpec's ``model`` and the CPUs a trial of it holds; ``cuts``: ``"unit/model"`` -> what
    its trials asked for and why they were given only CPUs (``_devices.fit_to_cluster``);
    ``backtests``: unit name -> its cost model and position rule (absent: the defaults).
    """

    experiment: str
    spec_name: str
    spec_path: str
    datasets: Mapping[str, Any]
    models: Mapping[str, Any]
    cpus: Mapping[str, float]
    scheduler: ASHA
    cuts: Mapping[str, tuple[Resources, str]] = field(default_factory=dict)
    backtests: Mapping[str, tuple[Costs, PositionRule]] = field(default_factory=dict)

    def backtest(self, unit: str, hp: Mapping[str, Any]) -> tuple[Costs, PositionRule]:
        """The unit's cost model and its position rule with the trial's ``position_threshold``."""
        costs, rule = self.backtests.get(unit, (Costs(), PositionRule()))
        return costs, rule.for_trial(hp)


def variant_key(unit: str, model: str) -> str:
    return f"{unit}/{model}"


def epoch_seed(seed: int, fold: int, epoch: int) -> int:
    """The random seed of ``epoch`` (1-based) of ``fold`` (0-based) of a trial seeded ``seed``."""
    return (int(seed) * 1_000_003 + fold * 10_007 + epoch) % 2**31


def configure_threads(cpus: float) -> None:
    """Limit OMP and TensorFlow to the trial's CPUs (TensorFlow only before its runtime starts)."""
    threads = max(1, int(cpus))
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if not tensorflow_backend():
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # the runtime already started in this (reused) worker
        pass


def train_trial(config: Mapping[str, Any], context: TrialContext) -> None:
    """Train one trial (the function Tune runs); see the module docstring."""
    import ray
    from ray import tune

    began = time.perf_counter()
    # Reused actors wait for the previous trial's thread to end (it ends at its next report); Ray's
    # default of 2 s is too short on a busy machine and fails the next trial, so allow 60 s.
    os.environ["TUNE_FUNCTION_THREAD_TIMEOUT_S"] = "60"
    variant = config["variant"]
    unit, model_name = str(variant["unit"]), str(variant["model"])
    seed, hp = int(variant["seed"]), dict(variant["hp"])
    key = variant_key(unit, model_name)
    configure_threads(context.cpus[key])
    trial_id = tune.get_context().get_trial_id()
    directory = trial_directory(context.experiment, trial_id)
    prepared: PreparedSet | FoldedSet = ray.get(context.datasets[unit])
    identity = TrialIdentity(
        experiment=context.spec_name,
        spec=context.spec_path,
        unit=unit,
        model=model_name,
        trial_id=trial_id,
        hyperparameters={str(name): jsonable(value) for name, value in hp.items()},
        seed=seed,
    )
    curves: list[dict[str, float]] = []
    spent = dict.fromkeys(TIME_KEYS, 0.0)
    spent["time_setup_s"] = time.perf_counter() - began
    devices: Devices | None = None
    try:
        if is_trees(context.models[key]):  # LightGBM boosters: their own module, the same contract
            from atlas_ray.search._trainable_trees import train_trees, trees_devices

            devices = trees_devices(context.cuts.get(key))
            train_trees(context, prepared, hp, seed, key, identity, directory, curves, spent, devices)
        else:
            devices = trial_devices(hp, context.cuts.get(key))
            _train(context, prepared, hp, seed, key, identity, directory, curves, spent, devices)
    except Exception as error:
        message = f"{type(error).__name__}: {' '.join(str(error).split())}"
        settle_trial(
            directory,
            status=TrialStatus.FAILED,
            error=message,
            fallback=failed_result(
                unit_info(prepared),
                identity=identity,
                error=message,
                curves=curves,
                attempts=read_attempts(directory),
                devices=devices.plan.record() if devices is not None else None,
            ),
        )
        raise


def is_trees(model: Any) -> bool:
    """Whether a ModelSpec's ``model`` trains as LightGBM boosters (``_trainable_trees``)."""
    return as_zoo_model(model).family is ModelFamily.LIGHTGBM


def trial_devices(hp: Mapping[str, Any], cut: tuple[Resources, str] | None = None) -> Devices:
    """The devices this trial trains on (``_devices``), from the resources Tune reserved for it; its
    ``batch_size`` (default ``DEFAULT_BATCH_SIZE``) is per replica. ``cut``: what it asked for and why
    the driver gave it only CPUs (the record says so)."""
    from ray import tune

    reserved = tune.get_context().get_trial_resources().required_resources
    batch_size = int(hp.get("batch_size", DEFAULT_BATCH_SIZE))
    devices = setup_devices(resources_from_bundle(reserved), batch_size=batch_size)
    if cut is None:
        return devices
    asked, reason = cut
    return Devices(replace(devices.plan, asked=asked, fallback=reason), devices.strategy)


def device_report(plan: DevicePlan) -> dict[str, str]:
    """What each report to Tune says of the devices: the progress display prints a fallback once."""
    return {"device_kind": plan.kind, "device_fallback": plan.fallback or ""}


def _train(
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
    """One attempt of a trial, step by step: a trial already settled only reports again; the models
    are restored from the checkpoint or built; a trial with every epoch done reports its last; else the
    attempt is logged and the epochs are trained (``_train_epochs``)."""
    from ray import tune

    began = time.perf_counter()
    asha = context.scheduler
    if _report_settled(directory):
        return
    folds = fold_sets(prepared)
    models = _restore_or_build(context, folds, hp, seed, key, identity, curves, devices)
    if len(curves) >= asha.max_t:
        tune.report(dict(curves[-1]))
        return
    attempts = record_attempt(directory, restored_from_epoch=len(curves))
    spent["time_setup_s"] += time.perf_counter() - began
    backtest = context.backtest(identity.unit, hp)
    _train_epochs(asha, models, prepared, identity, directory, curves, spent, devices, attempts, backtest)


def _report_settled(directory: str) -> bool:
    """A trial settled COMPLETED or STOPPED finished before the driver could record it (the driver
    died): it trains nothing and reports its last epoch again. Returns whether it was."""
    from ray import tune

    settled = read_status(directory)
    if settled is None or settled[0] not in (TrialStatus.COMPLETED, TrialStatus.STOPPED):
        return False
    last = read_result(directory).curves.iloc[-1].to_dict()
    tune.report({name: float(value) for name, value in last.items()})
    return True


def _restore_or_build(
    context: TrialContext,
    folds: tuple[PreparedSet, ...],
    hp: dict[str, Any],
    seed: int,
    key: str,
    identity: TrialIdentity,
    curves: list[dict[str, float]],
    devices: Devices,
) -> list[Any]:
    """Every fold's model: restored with the curves so far from Tune's checkpoint, else built from the
    seed under the devices' strategy."""
    import keras
    from ray import tune

    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as state, devices.scope():
            models = [load_model(os.path.join(state, _fold_file(k))) for k in range(len(folds))]
            with open(os.path.join(state, CURVES_STATE)) as stream:
                curves.extend(json.load(stream))
        return models
    # Keras' global state reset without its gc.collect(): 0.3 s per trial in a TensorFlow worker,
    # and the previous trial's model is freed by reference counting anyway.
    keras.backend.clear_session(free_memory=False)
    builder = as_zoo_model(context.models[key], name=identity.model)
    models = []
    for fold in folds:
        keras.utils.set_random_seed(seed)
        with devices.scope():  # built (and so trained) data-parallel where the plan has replicas
            models.append(
                builder.build(
                    {**hp, "seed": seed},
                    input_shape=tuple(fold.train.X.shape[1:]),
                    task=fold.task,
                    n_classes=fold.n_classes,
                    train_X=fold.train.X,
                )
            )
    return models


def _train_epochs(
    asha: ASHA,
    models: list[Any],
    prepared: PreparedSet | FoldedSet,
    identity: TrialIdentity,
    directory: str,
    curves: list[dict[str, float]],
    spent: dict[str, float],
    devices: Devices,
    attempts: list[dict[str, Any]],
    backtest: tuple[Costs, PositionRule],
) -> None:
    """Train the remaining epochs in lock step over the folds, reporting each to Tune; at a rung or
    ``max_t`` evaluate and write the ResultsObject first, and below ``max_t`` checkpoint with the
    report."""

    rungs = set(asha.checkpoints())
    lockstep = LockStep(
        models,
        fold_sets(prepared),
        first_epoch=len(curves) + 1,
        max_t=asha.max_t,
        seed=identity.seed,
        batch_size=devices.plan.global_batch_size,
        replicas=devices.plan.replicas,
        backtest=backtest,
    )
    reported = device_report(devices.plan)
    try:
        for epoch in range(len(curves) + 1, asha.max_t + 1):
            began = time.perf_counter()
            row = {"epoch": epoch, **_mean_logs(lockstep.next_epoch(epoch))}
            curves.append(row)
            spent["time_fit_s"] += time.perf_counter() - began
            report_step(
                asha,
                epoch,
                row,
                rungs=rungs,
                spent=spent,
                reported=reported,
                evaluate=lambda status: evaluate_trial(
                    models if isinstance(prepared, FoldedSet) else models[0],
                    prepared,
                    identity=identity,
                    status=status,
                    curves=curves,
                    directory=directory,
                    attempts=attempts,
                    devices=devices.plan.record(),
                    costs=backtest[0],
                    rule=backtest[1],
                ),
                save_state=lambda state: _save_state(models, curves, state),
            )
    finally:
        lockstep.close()


def report_step(
    asha: ASHA,
    step: int,
    row: Mapping[str, float],
    *,
    rungs: set[int],
    spent: dict[str, float],
    reported: Mapping[str, str],
    evaluate: Callable[[TrialStatus], object],
    save_state: Callable[[str], None],
) -> None:
    """Report one finished epoch (or LightGBM step) to Tune, as both model families do: between rungs
    the row alone; at a rung or ``max_t`` first ``evaluate(status)`` (the ResultsObject, COMPLETED at
    ``max_t``); below ``max_t`` with a checkpoint that ``save_state(folder)`` fills. ``spent`` gains
    the evaluation and checkpoint times."""
    from ray import tune

    if step not in rungs:
        tune.report({**row, **spent, **reported})
        return
    began = time.perf_counter()
    evaluate(TrialStatus.COMPLETED if step >= asha.max_t else TrialStatus.RUNNING)
    spent["time_evaluate_s"] += time.perf_counter() - began
    if step >= asha.max_t:  # settled COMPLETED: its ResultsObject is all a restart needs
        tune.report({**row, **spent, **reported})
        return
    checkpoint_began = time.perf_counter()
    with tempfile.TemporaryDirectory() as state:
        save_state(state)
        spent["time_checkpoint_s"] += time.perf_counter() - checkpoint_began
        tune.report({**row, **spent, **reported}, checkpoint=tune.Checkpoint.from_directory(state))


def _save_state(models: list[Any], curves: list[dict[str, float]], state: str) -> None:
    """A rung's checkpoint: every fold's model and the curves so far, into the folder ``state``."""
    for k, model in enumerate(models):
        model.save(os.path.join(state, _fold_file(k)))
    with open(os.path.join(state, CURVES_STATE), "w") as stream:
        json.dump(curves, stream)


def _fold_file(fold: int) -> str:
    return f"fold_{fold}.keras"


class LockStep:
    """Every fold's model trained by one ``fit`` call each, in its own thread, paused after each epoch
    until the trial has read every fold's logs (``next_epoch``), evaluated and checkpointed.

    One ``fit`` per fold (not one per epoch: a ``fit`` call costs about as much as a small model's
    epoch), fed by ``_epochs.fit_inputs`` (each epoch's row order from its own seed). Each fold's ``fit``
    starts after ``keras.utils.set_random_seed(epoch_seed(seed, fold, first_epoch))`` and only once the
    previous fold's has begun training, so every fold's random draws depend on the seed alone, never
    on thread timing. While the trial handles an epoch every fold waits at its epoch's end, so the
    models are not being trained while they are read. At each epoch's end the fold's callback predicts
    its validation rows once and adds their net-of-cost figures (``val_net_sharpe``, ...) to the logs.
    """

    def __init__(
        self,
        models: list[Any],
        folds: tuple[PreparedSet, ...],
        *,
        first_epoch: int,
        max_t: int,
        seed: int,
        batch_size: int,
        replicas: int = 1,
        backtest: tuple[Costs, PositionRule] | None = None,
    ) -> None:
        self.models = models
        self.backtest = backtest if backtest is not None else (Costs(), PositionRule())
        self.folds = folds
        self.first_epoch = first_epoch
        self.max_t = max_t
        self.seed = seed
        self.batch_size = batch_size
        self.replicas = replicas
        self.threads: list[threading.Thread] = []
        self.logs: list[queue.Queue[tuple[str, Any]]] = [queue.Queue() for _ in folds]
        self.resume = [threading.Semaphore(0) for _ in folds]
        self.closed = False

    def _start(self) -> None:
        import keras

        for k, (model, fold) in enumerate(zip(self.models, self.folds, strict=True)):
            started = threading.Event()
            keras.utils.set_random_seed(epoch_seed(self.seed, k, self.first_epoch))
            thread = threading.Thread(
                target=self._fit, args=(k, model, fold, started), name=f"fold-{k}", daemon=True
            )
            thread.start()
            self.threads.append(thread)
            started.wait()

    def _fit(self, k: int, model: Any, fold: PreparedSet, started: threading.Event) -> None:
        import keras

        lockstep = self

        class Pause(keras.callbacks.Callback):  # type: ignore[misc]
            def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
                started.set()

            def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
                found = {n: float(v) for n, v in (logs or {}).items()}
                costs, rule = lockstep.backtest
                net = fold_net_figures(self.model, fold, costs, rule)
                lockstep.logs[k].put(("epoch", found | {f"val_{n}": v for n, v in net.items()}))
                lockstep.resume[k].acquire()
                if lockstep.closed:
                    self.model.stop_training = True

        try:
            inputs = fit_inputs(
                (fold.train.X, fold.train.y),
                (fold.validation.X, fold.validation.y),
                batch_size=even_batch(len(fold.train.y), self.batch_size, self.replicas) or self.batch_size,
                first_epoch=self.first_epoch,
                last_epoch=self.max_t,
                seed_of=lambda epoch: epoch_seed(self.seed, k, epoch),
                replicas=self.replicas,
                validation_batch_size=even_batch(len(fold.validation.y), self.batch_size, self.replicas),
            )
            model.fit(
                **inputs,
                epochs=self.max_t,
                initial_epoch=self.first_epoch - 1,
                verbose=0,
                callbacks=[keras.callbacks.TerminateOnNaN(), Pause()],
            )
            self.logs[k].put(("done", None))
        except BaseException as error:  # handed to the trial's thread, which raises it
            self.logs[k].put(("error", error))
        finally:
            started.set()

    def next_epoch(self, epoch: int) -> list[dict[str, float]]:
        """Every fold's logs of ``epoch`` (1-based), the folds then paused at its end."""
        if not self.threads:
            self._start()
        else:
            for semaphore in self.resume:
                semaphore.release()
        found = []
        for k in range(len(self.folds)):
            kind, value = self.logs[k].get()
            if kind == "error":
                raise value
            logs = value if kind == "epoch" else {}
            loss = float(logs.get("loss", float("nan")))
            if not math.isfinite(loss):
                raise NaNLossError(f"the training loss is {loss} at epoch {epoch}, but must be finite")
            found.append(logs)
        return found

    def close(self) -> None:
        """Let every paused fold stop, and wait for its thread."""
        self.closed = True
        for semaphore in self.resume:
            semaphore.release()
        for thread in self.threads:
            thread.join(timeout=60)


def even_batch(rows: int, batch_size: int, replicas: int) -> int | None:
    """The batch of a data-parallel fit over ``rows``: a multiple of ``replicas`` no larger than the rows
    (``batch_size`` itself when there are as many rows; None, Keras' default, on one replica). Keras 3's
    TensorFlow trainer builds a distributed model from the mean over replicas of the first batch, which
    fails when that batch does not split evenly; the validation loss is a mean over rows, whatever the
    batches."""
    if replicas <= 1:
        return None
    return replicas * max(1, min(batch_size, rows) // replicas)


def _mean_logs(logs: list[dict[str, float]]) -> dict[str, float]:
    """Each logged metric's mean over the folds."""
    names = [name for name in logs[0] if all(name in row for row in logs)]
    return {name: float(sum(row[name] for row in logs) / len(logs)) for name in names}
