"""atlas_ray against the tools a user would pick instead, on the same search, in one run on this machine.

The search: june's featureset (specs/june.py: 3-class direction of Coinbase's next minute from 14
Coinbase / Kraken features, the week of 2023-03-01) and its DNN space (hidden layers [3], [6], [3, 3]
or [6, 6], learning rate log-uniform in [1e-3, 3e-2], l1 in {0, 1e-5}, l2 in {0, 1e-4}), 16 epochs at
most per trial, batches of 256 rows, the zoo's ``dnn`` builder for every tool (the same Keras
models). One train / validation split (``TimeSplit(0.7, 0.15, 0.15)``) for every tool: june's
walk-forward folds are atlas_ray's own, the peers have no equivalent. June's logistic model is left out.

The tools:

* atlas_ray, ASHA (max_t 16, grace 1, reduction 4) over 20 trials on a local Ray cluster of 2 CPUs
  (started before timing), once with ``searcher="random"`` and once with ``searcher="optuna"``
  (TPE through Ray Tune's OptunaSearch);
* keras-tuner's own ``Hyperband`` (max_epochs 16, factor 4, one iteration), one process;
* Optuna: TPE sampler with its ``HyperbandPruner`` (min 1, max 16 epochs, reduction 4), 20 trials,
  ``n_jobs=2``, pruning checked after every epoch.

For each: wall time, epochs trained, the best validation loss reached, and the time it took to reach
within 0.5% of the best loss any of them found (from each epoch's end, timed from the tool's start).
Each peer runs in a process of its own, as a user's script would, timed from that process's launch:
it pays its interpreter start, imports (TensorFlow's among them) and the load of the same prepared
arrays, as atlas_ray's trial actors pay their TensorFlow import. (Until 2026-12-04 the peers ran
inside this process, where TensorFlow was already imported before their clocks started.)
ratio = atlas_ray's (random searcher) time to that loss / the fastest peer's (keras-tuner, Optuna).
Target: ratio <= 1.0 (atlas_ray gets there first). Needs Optuna (the ``bench`` extra). Last line: one
JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MAX_T = 16
TRIALS = 20
CPUS = 2
BATCH = 256
WITHIN = 0.005
TARGET = 1.0
HIDDEN = ([3], [6], [3, 3], [6, 6])


@dataclasses.dataclass
class Outcome:
    """One tool's run: wall time, epochs, and every epoch's (seconds since start, validation loss)."""

    name: str
    wall: float = 0.0
    epochs: int = 0
    timeline: list[tuple[float, float]] = dataclasses.field(default_factory=list)

    @property
    def best(self) -> float:
        return min((loss for _, loss in self.timeline if math.isfinite(loss)), default=math.nan)

    def time_to(self, threshold: float) -> float:
        reached = [at for at, loss in self.timeline if loss <= threshold]
        return min(reached) if reached else math.inf


def june_spec(searcher: str) -> Any:
    from ray import tune

    from atlas_ray.featurestore import TimeSplit
    from atlas_ray.search import ASHA, Mode, ModelSpec, Resources, WorkSpec, WorkUnit
    from specs.june import DIRECTION

    space = {
        "hidden_units": tune.grid_search([list(h) for h in HIDDEN]),
        "activation": "relu",
        "dropout": 0.0,
        "batch_norm": False,
        "learning_rate": tune.loguniform(1e-3, 3e-2),
        "batch_size": BATCH,
        "l1": tune.choice([0.0, 1e-5]),
        "l2": tune.choice([0.0, 1e-4]),
    }
    if searcher == "optuna":  # TPE searches the layers too (a grid would fix them per trial)
        space["hidden_units"] = tune.choice([list(h) for h in HIDDEN])
    samples = TRIALS // len(HIDDEN) if searcher == "random" else TRIALS
    return WorkSpec(
        name=f"peers_{searcher}",
        units=[
            WorkUnit(
                "btc_direction",
                featureset=DIRECTION,
                start="2023-03-01",
                end="2023-03-08",
                split=TimeSplit(0.7, 0.15, 0.15),
                models=[ModelSpec("dnn", "dnn", space, num_samples=samples)],
            )
        ],
        scheduler=ASHA(max_t=MAX_T, grace_period=1, reduction_factor=4, metric="val_loss", mode=Mode.MIN),
        resources=Resources(cpu=1),
        seed=2017,
        searcher=searcher,
    )


def run_atlas(searcher: str, store: Any, storage: Path) -> Outcome:
    from atlas_ray.search import load_results, run

    spec = june_spec(searcher)
    began = time.time()
    experiment = run(spec, storage=str(storage), store=store, out=io.StringIO())
    outcome = Outcome(f"atlas_ray ({searcher})", wall=time.time() - began)
    outcome.epochs = sum(r.epochs for r in load_results(experiment))
    for path in Path(experiment).glob("*/result.json"):
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                outcome.timeline.append((float(row["timestamp"]) - began, float(row["val_loss"])))
    return outcome


def build_dnn(prepared: Any, config: dict[str, Any], seed: int) -> Any:
    import keras

    from atlas_ray.search._zoo import get_model

    keras.utils.set_random_seed(seed)
    return get_model("dnn").build(
        {"activation": "relu", "dropout": 0.0, "batch_norm": False, "batch_size": BATCH, **config},
        input_shape=tuple(prepared.train.X.shape[1:]),
        task=prepared.task,
        n_classes=prepared.n_classes,
        train_X=prepared.train.X,
    )


def recorder(outcome: Outcome, began: float, lock: threading.Lock) -> Any:
    import keras

    class Record(keras.callbacks.Callback):  # type: ignore[misc]
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            with lock:
                outcome.epochs += 1
                outcome.timeline.append((time.time() - began, float((logs or {})["val_loss"])))

    return Record()


def run_keras_tuner(prepared: Any, directory: Path, began: float) -> Outcome:
    import keras_tuner

    outcome, lock = Outcome("keras-tuner Hyperband"), threading.Lock()

    class June(keras_tuner.HyperModel):  # type: ignore[misc]
        def build(self, hp: Any) -> Any:
            config = {
                "hidden_units": list(HIDDEN[hp.Choice("hidden", list(range(len(HIDDEN))))]),
                "learning_rate": hp.Float("learning_rate", 1e-3, 3e-2, sampling="log"),
                "l1": hp.Choice("l1", [0.0, 1e-5]),
                "l2": hp.Choice("l2", [0.0, 1e-4]),
            }
            return build_dnn(prepared, config, seed=2017)

    class Hyperband(keras_tuner.Hyperband):  # type: ignore[misc]
        # keras-tuner 1.4 imports tensorboard before every trial on the TensorFlow backend, for
        # TensorBoard callbacks only; there are none here and tensorboard is not installed.
        def _configure_tensorboard_dir(self, callbacks: Any, trial: Any, execution: int = 0) -> None:
            return None

    tuner = Hyperband(
        June(),
        objective="val_loss",
        max_epochs=MAX_T,
        factor=4,
        hyperband_iterations=1,
        seed=2017,
        directory=str(directory),
        project_name="june",
        overwrite=True,
    )
    tuner.search(
        prepared.train.X,
        prepared.train.y,
        validation_data=(prepared.validation.X, prepared.validation.y),
        batch_size=BATCH,
        shuffle=True,
        verbose=0,
        callbacks=[recorder(outcome, began, lock)],
    )
    outcome.wall = time.time() - began
    return outcome


def run_optuna(prepared: Any, began: float) -> Outcome:
    import keras
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    outcome, lock = Outcome("Optuna TPE + Hyperband pruner (2 jobs)"), threading.Lock()

    def objective(trial: optuna.Trial) -> float:
        config = {
            "hidden_units": list(HIDDEN[trial.suggest_categorical("hidden", list(range(len(HIDDEN))))]),
            "learning_rate": trial.suggest_float("learning_rate", 1e-3, 3e-2, log=True),
            "l1": trial.suggest_categorical("l1", [0.0, 1e-5]),
            "l2": trial.suggest_categorical("l2", [0.0, 1e-4]),
        }
        model = build_dnn(prepared, config, seed=2017 + trial.number)

        class Prune(keras.callbacks.Callback):  # type: ignore[misc]
            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                trial.report(float((logs or {})["val_loss"]), epoch + 1)
                if trial.should_prune():
                    self.model.stop_training = True
                    self.pruned = True

        prune = Prune()
        history = model.fit(
            prepared.train.X,
            prepared.train.y,
            validation_data=(prepared.validation.X, prepared.validation.y),
            batch_size=BATCH,
            epochs=MAX_T,
            shuffle=True,
            verbose=0,
            callbacks=[recorder(outcome, began, lock), prune],
        )
        if getattr(prune, "pruned", False):
            raise optuna.TrialPruned()
        return float(min(history.history["val_loss"]))

    study = optuna.create_study(
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=2017),
        pruner=optuna.pruners.HyperbandPruner(min_resource=1, max_resource=MAX_T, reduction_factor=4),
    )
    study.optimize(objective, n_trials=TRIALS, n_jobs=CPUS)
    outcome.wall = time.time() - began
    return outcome


def run_peer(peer: str, data: Path, temp: Path) -> Outcome:
    """One peer in a process of its own, as a user's script runs: its clock starts when the process is
    launched, so the peer pays its own interpreter start, imports (TensorFlow's included) and data
    load, as atlas_ray's trial actors pay their TensorFlow import."""
    out = temp / f"{peer}.json"
    began = time.time()
    arguments = {"--peer": peer, "--data": str(data), "--began": repr(began), "--out": str(out)}
    command = [sys.executable, __file__, *(part for pair in arguments.items() for part in pair)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stdout[-3000:] + done.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"the {peer} peer failed (exit {done.returncode})")
    raw = json.loads(out.read_text())
    raw["timeline"] = [(float(at), float(loss)) for at, loss in raw["timeline"]]
    return Outcome(**raw)


def peer_main(peer: str, data: Path, began: float, out: Path) -> None:
    """The ``--peer`` process: load the prepared arrays, run one peer, write its Outcome as JSON."""
    import tensorflow as tf

    from atlas_ray.featurestore import Task

    tf.config.threading.set_intra_op_parallelism_threads(1)
    arrays = np.load(data)
    prepared = SimpleNamespace(
        train=SimpleNamespace(X=arrays["train_X"], y=arrays["train_y"]),
        validation=SimpleNamespace(X=arrays["validation_X"], y=arrays["validation_y"]),
        task=Task(str(arrays["task"])),
        n_classes=int(arrays["n_classes"]),
    )
    if peer == "keras_tuner":
        outcome = run_keras_tuner(prepared, out.parent / "keras_tuner", began)
    else:
        outcome = run_optuna(prepared, began)
    out.write_text(json.dumps(dataclasses.asdict(outcome)))


def main() -> None:
    import ray

    from atlas_ray.featurestore import TimeSplit
    from benchmarks._search_common import minute_store, start_ray
    from specs.june import DIRECTION

    with tempfile.TemporaryDirectory() as temp:
        store = minute_store(Path(temp) / "store")
        frame = DIRECTION.build_local("2023-03-01", "2023-03-08", store)
        prepared = DIRECTION.prepare(frame, TimeSplit(0.7, 0.15, 0.15), seed=2017)
        print(
            f"june featureset: {len(frame)} rows x {prepared.n_features} features; train "
            f"{prepared.train.X.shape[0]}, validation {prepared.validation.X.shape[0]} rows; "
            f"DNN space, at most {MAX_T} epochs per trial"
        )
        start_ray(CPUS)
        try:
            outcomes = [
                run_atlas("random", store, Path(temp) / "random"),
                run_atlas("optuna", store, Path(temp) / "optuna"),
            ]
        finally:
            ray.shutdown()
        data = Path(temp) / "prepared.npz"
        np.savez(
            data,
            train_X=prepared.train.X,
            train_y=prepared.train.y,
            validation_X=prepared.validation.X,
            validation_y=prepared.validation.y,
            task=np.array(prepared.task.value),
            n_classes=np.array(prepared.n_classes),
        )
        outcomes.append(run_peer("keras_tuner", data, Path(temp)))
        outcomes.append(run_peer("optuna", data, Path(temp)))

    best = min(o.best for o in outcomes)
    threshold = best * (1 + WITHIN)
    for o in outcomes:
        print(
            f"{o.name}: wall {o.wall:.1f} s, {o.epochs} epochs, best validation loss {o.best:.5f}, "
            f"within {WITHIN:.1%} of the best ({threshold:.5f}) after {o.time_to(threshold):.1f} s"
        )
    atlas = outcomes[0].time_to(threshold)
    fastest_peer = min(o.time_to(threshold) for o in outcomes[2:])
    never = 0.0 if math.isfinite(atlas) else math.inf  # no peer got there
    ratio = atlas / fastest_peer if math.isfinite(fastest_peer) else never
    print(f"ratio = atlas_ray's time to it / the fastest peer's = {ratio:.2f} (target <= {TARGET})")

    def figures(o: Outcome) -> dict[str, Any]:
        reach = o.time_to(threshold)
        return {
            "wall_s": round(o.wall, 2),
            "epochs": o.epochs,
            "best_val_loss": round(o.best, 6),
            "time_to_within_s": round(reach, 2) if math.isfinite(reach) else None,
        }

    keys = ("atlas_ray_random", "atlas_ray_optuna", "keras_tuner_hyperband", "optuna_tpe_hyperband")
    print(
        json.dumps(
            {
                **{key: figures(o) for key, o in zip(keys, outcomes, strict=True)},
                "best_val_loss": round(best, 6),
                "within": WITHIN,
                "ratio": round(ratio, 3) if math.isfinite(ratio) else None,
                "target": TARGET,
            }
        )
    )


if __name__ == "__main__":
    if "--peer" in sys.argv:
        options = argparse.ArgumentParser()
        options.add_argument("--peer", choices=("keras_tuner", "optuna"), required=True)
        options.add_argument("--data", type=Path, required=True)
        options.add_argument("--began", type=float, required=True)
        options.add_argument("--out", type=Path, required=True)
        args = options.parse_args()
        peer_main(args.peer, args.data, args.began, args.out)
    else:
        main()
