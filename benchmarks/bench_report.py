"""Benchmark: ``python -m atlas_ray.report`` over an experiment of 500 ResultsObjects.

The 500 trials are copies of real trials (real scikit-learn models trained on the real Coinbase
1-minute bars of March 2023, ``tests/report/_real_experiment.py``) with perturbed predictions: class
probabilities multiplied by log-normal noise and renormalised (the predicted class is their argmax),
regression predictions with added gaussian noise, learning curves scaled by noise, hyperparameters
jittered. The report command runs in a subprocess over them (default ``--top 5``); its wall time and
peak memory (the child's maximum resident set) are measured.

Targets (issue 4): under 60 s, under 4 GiB. ratio = wall time / 60 s (lower is better; below 1 meets
the target). The last line printed is one JSON object.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from atlas_ray.featurestore._prepared import Task  # noqa: E402
from atlas_ray.report import load_experiment_for_report  # noqa: E402
from atlas_ray.search._results import ResultsObject, write_result  # noqa: E402
from tests.report._real_experiment import build_experiment, load_bars  # noqa: E402

TRIALS = 500
TARGET_S = 60.0
TARGET_GIB = 4.0


def perturbed(result: ResultsObject, index: int, rng: np.random.Generator) -> ResultsObject:
    """A copy of a real trial with perturbed predictions and a new trial id."""
    frame = result.predictions.copy()
    if not frame.empty:
        if result.task is Task.REGRESSION:
            scale = float(frame["prediction"].std()) or 1e-6
            frame["prediction"] = frame["prediction"] + rng.normal(0, scale * rng.uniform(0.2, 2), len(frame))
        else:
            columns = [f"prob_{c}" for c in result.classes]
            noise = rng.lognormal(0, rng.uniform(0.05, 0.6), (len(frame), len(columns)))
            probs = frame[columns].to_numpy() * noise
            probs /= probs.sum(axis=1, keepdims=True)
            frame[columns] = probs
            frame["prediction"] = np.asarray(result.classes, dtype=object)[probs.argmax(axis=1)]
    curves = result.curves.copy()
    for column in curves.columns:
        if column != "epoch":
            curves[column] = curves[column] * rng.lognormal(0, 0.02, len(curves))
    hp = {k: (v * float(rng.lognormal(0, 0.5)) if isinstance(v, float) else v)
          for k, v in result.identity.hyperparameters.items()}
    identity = replace(result.identity, experiment="bench500", spec="bench500_spec",
                       trial_id=f"{result.trial_id.split('_')[0]}_{index:05d}", hyperparameters=hp)
    return replace(result, identity=identity, predictions=frame, curves=curves, directory="")


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench_report-"))
    try:
        t0 = time.perf_counter()
        bars = load_bars(ROOT.parent / "shared" / "data")
        source = build_experiment(work / "source", "source", bars, lags=5)
        real = load_experiment_for_report(str(source)).results
        rng = np.random.default_rng(7)
        target = work / "bench500"
        ids = []
        for i in range(TRIALS):
            trial = perturbed(real[i % len(real)], i, rng)
            write_result(trial, str(target / "trials" / trial.trial_id))
            ids.append(trial.trial_id)
        meta = json.loads((source / "experiment.json").read_text())
        meta.update(name="bench500", spec="bench500_spec", trials=ids)
        (target / "experiment.json").write_text(json.dumps(meta))
        print(f"setup: {TRIALS} ResultsObjects written in {time.perf_counter() - t0:.1f} s: copies of "
              f"{len(real)} real trials (real scikit-learn models on the real Coinbase minute bars) with "
              "perturbed predictions")

        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "atlas_ray.report", str(target), "--out",
                               str(work / "report")], capture_output=True, text=True, env=env, cwd=ROOT)
        wall = time.perf_counter() - start
        peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 2**30
        if done.returncode != 0:
            print(done.stdout, done.stderr)
            raise SystemExit(f"the report command failed with status {done.returncode}")
        last = done.stdout.strip().splitlines()[-1]
        pngs = len(list((work / "report").glob("*.png")))
        size = (work / "report" / "index.html").stat().st_size / 2**20
        print(f"report over {TRIALS} trials: {last}")
        print(f"wall time {wall:.1f} s (target < {TARGET_S:.0f} s); peak memory {peak_gib:.2f} GiB "
              f"(target < {TARGET_GIB:.0f} GiB); {pngs} PNGs, index.html {size:.1f} MiB")
        ratio = wall / TARGET_S
        print(f"ratio = wall time / {TARGET_S:.0f} s = {ratio:.2f} (lower is better; < 1 meets the target)")
        print(json.dumps({"trials": TRIALS, "wall_s": round(wall, 2), "peak_gib": round(peak_gib, 3),
                          "figures": pngs, "ratio": round(ratio, 3),
                          "target": f"wall < {TARGET_S:.0f} s and memory < {TARGET_GIB:.0f} GiB"}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
