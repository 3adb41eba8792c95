"""Benchmark: ``python -m atlas_ray.report`` over an experiment of 500 ResultsObjects.

The 500 trials are copies of real trials (real scikit-learn models trained on the real Coinbase
1-minute bars of March 2023, ``tests/report/_real_experiment.py``) with perturbed predictions: class
probabilities multiplied by log-normal noise and renormalised (the predicted class is their argmax),
regression predictions with added gaussian noise, learning curves scaled by noise, hyperparameters
jittered. The report command runs in a subprocess over them (default ``--top 5``); its wall time and
peak memory are measured.

Peak memory is the whole process tree's: a thread samples, every 50 ms, the report process and every
process it started (its worker processes), and sums their proportional set size (PSS: pages shared
between processes, such as a forked worker's copy-on-write pages, are split among them, so nothing is
counted twice); the figure is the highest sum seen, or the largest single process's peak (``ru_maxrss`` of the
children, what this benchmark reported before issue 12) when a short peak fell between two samples.
The resident set summed the same way (which counts shared pages once per process, an upper bound) is
printed beside it.

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
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from atlas_ray.experiment import ResultsObject, write_result  # noqa: E402
from atlas_ray.featurestore import Task  # noqa: E402
from atlas_ray.report import load_experiment_for_report  # noqa: E402
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


class TreeMemory:
    """The peak, over time, of the PSS (and of the RSS) summed over ``root`` and its descendants."""

    def __init__(self, root: int, every: float = 0.05) -> None:
        self.root = psutil.Process(root)
        self.every = every
        self.peak_pss = 0
        self.peak_rss = 0
        self.peak_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def sample(self) -> None:
        try:
            processes = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        pss = rss = 0
        for process in processes:
            try:
                info = process.memory_full_info()
            except psutil.Error:
                continue
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
        self.peak_pss = max(self.peak_pss, pss)
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_processes = max(self.peak_processes, len(processes))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


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
        child = subprocess.Popen([sys.executable, "-m", "atlas_ray.report", str(target), "--out",
                                  str(work / "report")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, env=env, cwd=ROOT)
        memory = TreeMemory(child.pid)
        stdout, stderr = child.communicate()
        memory.stop()
        wall = time.perf_counter() - start
        single_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 2**30
        pss_gib = memory.peak_pss / 2**30
        peak_gib = max(pss_gib, single_gib)  # a 50 ms sampler can miss a short peak that ru_maxrss saw
        rss_gib = memory.peak_rss / 2**30
        if child.returncode != 0:
            print(stdout, stderr)
            raise SystemExit(f"the report command failed with status {child.returncode}")
        last = stdout.strip().splitlines()[-1]
        pngs = len(list((work / "report").glob("*.png")))
        size = (work / "report" / "index.html").stat().st_size / 2**20
        print(f"report over {TRIALS} trials: {last}")
        print(f"wall time {wall:.1f} s (target < {TARGET_S:.0f} s); peak memory {peak_gib:.2f} GiB "
              f"(target < {TARGET_GIB:.0f} GiB), the larger of the PSS summed over the report's process "
              f"tree ({pss_gib:.2f} GiB, up to {memory.peak_processes} processes) and the largest single "
              f"process ({single_gib:.2f} GiB); RSS summed over the tree {rss_gib:.2f} GiB (counts shared "
              f"pages once per process); {pngs} PNGs, index.html {size:.1f} MiB")
        ratio = wall / TARGET_S
        print(f"ratio = wall time / {TARGET_S:.0f} s = {ratio:.2f} (lower is better; < 1 meets the target)")
        print(json.dumps({"trials": TRIALS, "wall_s": round(wall, 2), "peak_gib": round(peak_gib, 3),
                          "peak_pss_sum_gib": round(pss_gib, 3), "peak_rss_sum_gib": round(rss_gib, 3),
                          "largest_process_gib": round(single_gib, 3),
                          "processes": memory.peak_processes,
                          "figures": pngs, "ratio": round(ratio, 3),
                          "target": f"wall < {TARGET_S:.0f} s and memory < {TARGET_GIB:.0f} GiB"}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
