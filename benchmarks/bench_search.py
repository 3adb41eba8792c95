"""Search overhead: 32 small DNN trials on one featureset, atlas_ray's wall time against the ideal.

The ideal is each trial's pure ``model.fit`` time (the same hyperparameters, seeds, data and epochs),
measured in a plain loop in one process with one TensorFlow thread, summed and divided by the CPUs.
atlas_ray's wall time is ``run(spec)`` on a local Ray cluster of the same CPUs that is already up
(as on a cluster; Ray's own start-up is printed apart), the featureset read from its cache. ASHA's
grace period is the budget here, so every trial trains every epoch in both.

Where the rest goes is printed: time inside trials beyond ``fit`` (per-epoch checkpoints and reports,
the end-of-trial evaluation and ResultsObject) and time outside trials (actor start-up with the
TensorFlow import, scheduling, the object-store read, gathering).

Target on this machine: ratio <= 1.3. Last line: one JSON object.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CPUS = 2
TRIALS = 32
EPOCHS = 4
TARGET = 1.3


def spec_for(featureset: object) -> object:
    from ray import tune

    from atlas_ray.featurestore import TimeSplit
    from atlas_ray.search import ASHA, ModelSpec, Resources, WorkSpec, WorkUnit

    space = {
        "hidden_units": [6],
        "activation": "relu",
        "dropout": 0.0,
        "batch_norm": False,
        "l1": 0.0,
        "l2": 0.0,
        "learning_rate": tune.loguniform(1e-3, 1e-2),
        "batch_size": 256,
    }
    return WorkSpec(
        "bench_search",
        units=[
            WorkUnit(
                "direction",
                featureset=featureset,
                start="2023-03-01",
                end="2023-03-11",
                split=TimeSplit(0.7, 0.15, 0.15),
                models=[ModelSpec("dnn", "dnn", space, num_samples=TRIALS)],
            )
        ],
        scheduler=ASHA(max_t=EPOCHS, grace_period=EPOCHS, reduction_factor=2),
        resources=Resources(cpu=1),
        seed=1,
    )


def featureset() -> object:
    from atlas_ray.featurestore import (
        FeatureLabelSet,
        InterExchangeSpread,
        LogReturns,
        Midpoint,
        Percentiles,
        Volume,
    )

    features = [
        *(LogReturns().coinbase().one_min().lookback(n) for n in (1, 5, 15, 60)),
        *(LogReturns().kraken().one_min().lookback(n) for n in (1, 5, 15, 60)),
        Volume().coinbase().one_min(),
        InterExchangeSpread(Midpoint().coinbase().one_min(), Midpoint().kraken().one_min()),
    ]
    return FeatureLabelSet(
        features, [LogReturns().coinbase().one_min().lookforward(1)], categories=Percentiles((33.3, 66.7))
    )


def trial_seconds(experiment: Path) -> float:
    """Sum over trials of Tune's ``time_total_s`` (the trial's own time, start to last report)."""
    total = 0.0
    for path in experiment.glob("*/result.json"):
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        if lines:
            total += float(json.loads(lines[-1])["time_total_s"])
    return total


def plain_fit_seconds(spec: object, store: object, results: list) -> float:  # type: ignore[type-arg]
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras

    from atlas_ray.search._zoo import get_model

    unit = spec.units[0]  # type: ignore[attr-defined]
    prepared = unit.featureset.prepare(unit.featureset.build(unit.start, unit.end, store), unit.split)
    total = 0.0
    for result in results:
        hp = dict(result.identity.hyperparameters)
        keras.backend.clear_session()
        keras.utils.set_random_seed(result.identity.seed)
        model = get_model("dnn").build(
            {**hp, "seed": result.identity.seed},
            input_shape=tuple(prepared.train.X.shape[1:]),
            task=prepared.task,
            n_classes=prepared.n_classes,
            train_X=prepared.train.X,
        )
        start = time.perf_counter()
        model.fit(
            prepared.train.X,
            prepared.train.y,
            validation_data=(prepared.validation.X, prepared.validation.y),
            batch_size=int(hp["batch_size"]),
            epochs=EPOCHS,
            shuffle=True,
            verbose=0,
        )
        total += time.perf_counter() - start
    return total


def main() -> None:
    import ray

    from atlas_ray.search import load_results, run
    from benchmarks._search_common import minute_store, start_ray

    with tempfile.TemporaryDirectory() as temp:
        store = minute_store(Path(temp) / "store")
        spec = spec_for(featureset())
        began = time.perf_counter()
        start_ray(CPUS)
        ray_start = time.perf_counter() - began
        unit = spec.units[0]  # type: ignore[attr-defined]
        rows = len(unit.featureset.build(unit.start, unit.end, store))  # fills the featureset cache
        with open(os.devnull, "w") as devnull:
            began = time.perf_counter()
            experiment = run(spec, storage=str(Path(temp) / "experiments"), store=store, out=devnull)
            wall = time.perf_counter() - began
        inside = trial_seconds(Path(experiment))
        results = load_results(experiment)
        ray.shutdown()
        fit = plain_fit_seconds(spec, store, results)
    ideal = fit / CPUS
    ratio = wall / ideal
    in_trial = inside - fit
    outside = wall * CPUS - inside
    print(f"featureset: {rows} rows; {len(results)} trials x {EPOCHS} epochs on {CPUS} CPUs")
    print(f"ray start-up (not counted): {ray_start:.1f} s")
    print(f"atlas_ray wall time: {wall:.1f} s")
    print(f"ideal (sum of plain fit times {fit:.1f} s / {CPUS} CPUs): {ideal:.1f} s")
    print(f"overhead ratio: {ratio:.2f} (target <= {TARGET})")
    print(
        f"where the rest goes (CPU-seconds): inside trials beyond fit {in_trial:.1f} s "
        f"(checkpoints, reports, final evaluation and ResultsObject); outside trials {outside:.1f} s "
        "(actor start-up and TensorFlow import, scheduling, object-store read, gathering, idle tail)"
    )
    print(
        json.dumps(
            {
                "trials": len(results),
                "epochs": EPOCHS,
                "cpus": CPUS,
                "wall_s": round(wall, 2),
                "fit_sum_s": round(fit, 2),
                "ideal_s": round(ideal, 2),
                "in_trial_overhead_cpu_s": round(in_trial, 2),
                "outside_trials_cpu_s": round(outside, 2),
                "ray_start_s": round(ray_start, 2),
                "ratio": round(ratio, 3),
                "target": TARGET,
            }
        )
    )


if __name__ == "__main__":
    main()
