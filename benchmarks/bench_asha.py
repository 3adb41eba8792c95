"""ASHA against the full budget: the june search (specs/june.py) run twice on the real minute bars.

Once with the spec's ASHA (rungs at 1, 4 and 16 epochs, reduction factor 4) and once with the same
trials (the same hyperparameters, drawn from the spec's seed, and the same model seeds) trained to
the full budget (``grace_period = max_t``: nothing stopped). For each: the best validation loss and
the total epochs trained. Ratio = ASHA's best / the full-budget best (validation loss: lower is
better). Target: ASHA within 1% of the full-budget best (ratio <= 1.01) with at most a third of the
epochs. Last line: one JSON object.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_RATIO = 1.01
TARGET_EPOCH_SHARE = 1 / 3


def best_and_epochs(experiment: str) -> tuple[float, int, int]:
    from atlas_ray.search import TrialStatus, load_results

    results = load_results(experiment)
    losses = [r.metric("loss", "validation") for r in results if r.status is not TrialStatus.FAILED]
    best = min((v for v in losses if not math.isnan(v)), default=math.nan)
    return best, sum(r.epochs for r in results), len(results)


def main() -> None:
    import ray

    from atlas_ray.search import ASHA, load_spec, run
    from benchmarks._search_common import minute_store, start_ray

    spec = load_spec(ROOT / "specs" / "june.py")
    asha = spec.scheduler
    full = dataclasses.replace(
        spec,
        name="june_full_budget",
        scheduler=ASHA(max_t=asha.max_t, grace_period=asha.max_t, metric=asha.metric, mode=asha.mode),
    )
    with tempfile.TemporaryDirectory() as temp:
        store = minute_store(Path(temp) / "store")
        start_ray(2)
        storage = str(Path(temp) / "experiments")
        with open(os.devnull, "w") as devnull:
            began = time.perf_counter()
            asha_experiment = run(spec, storage=storage, store=store, out=devnull)
            asha_wall = time.perf_counter() - began
            began = time.perf_counter()
            full_experiment = run(full, storage=storage, store=store, out=devnull)
            full_wall = time.perf_counter() - began
        ray.shutdown()
        asha_best, asha_epochs, trials = best_and_epochs(asha_experiment)
        full_best, full_epochs, _ = best_and_epochs(full_experiment)
    ratio = asha_best / full_best
    share = asha_epochs / full_epochs
    print(f"june: {trials} trials, max_t {asha.max_t} epochs, rungs {list(asha.milestones())}")
    print(f"ASHA:        best validation loss {asha_best:.5f}, {asha_epochs} epochs, {asha_wall:.1f} s")
    print(f"full budget: best validation loss {full_best:.5f}, {full_epochs} epochs, {full_wall:.1f} s")
    print(f"ratio (ASHA best / full best): {ratio:.4f} (target <= {TARGET_RATIO})")
    print(f"epoch share: {share:.3f} (target <= {TARGET_EPOCH_SHARE:.3f})")
    print(
        json.dumps(
            {
                "trials": trials,
                "asha_best_val_loss": round(asha_best, 6),
                "full_best_val_loss": round(full_best, 6),
                "asha_epochs": asha_epochs,
                "full_epochs": full_epochs,
                "epoch_share": round(share, 4),
                "asha_wall_s": round(asha_wall, 1),
                "full_wall_s": round(full_wall, 1),
                "ratio": round(ratio, 5),
                "target": TARGET_RATIO,
                "target_epoch_share": round(TARGET_EPOCH_SHARE, 4),
            }
        )
    )


if __name__ == "__main__":
    main()
