"""June's DNNs against LightGBM's gradient-boosted trees, side by side on june's featureset (issue 26).

The unit is june's own (``specs/june.py``: the featureset, the week of March 2023, the walk-forward
folds and the sealed test block, ASHA with ``max_t=16``, grace 1, reduction 4 on ``val_loss``, the
seed), imported rather than copied. Two model families share the one scheduler:

* ``dnn``: june's DNN space (hidden layers [3], [6], [3, 3], [6, 6] as a grid, learning rate and l1 /
  l2 drawn), 2 draws a grid point: 8 trials, 16 epochs at most;
* ``lightgbm``: 8 trials, ``rounds_per_step=10`` (a Tune step is 10 boosting rounds, so at most 160
  rounds, ASHA's rungs at 10, 40 and 160 rounds), leaves, learning rate, leaf size, column and row
  sampling and the L2 penalty drawn.

Run (a few minutes on 2 cores)::

    python -m atlas_ray.search specs/june_trees.py --store ROOT --storage EXPERIMENTS
    python specs/june_trees.py EXPERIMENTS/june_trees      # the families side by side

The second command prints, per family: trials, how many ASHA stopped, the best and median validation
loss (mean over the folds, at each trial's last step), the best trial's out-of-sample loss and accuracy
(the folds' validation rows joined), and the time its trials took (Tune's ``time_total_s`` summed,
of which setting up (worker start, data, build) and training, and the training time of the trials
that ran to ``max_t``).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from ray import tune

from atlas_ray.search import ModelSpec, WorkSpec, WorkUnit
from specs.june import DIRECTION
from specs.june import SPEC as JUNE

JUNE_UNIT = JUNE.units[0]
JUNE_DNN = next(model for model in JUNE_UNIT.models if model.name == "dnn")

TREES = ModelSpec(
    "lightgbm",
    "lightgbm",
    {
        "rounds_per_step": 10,
        "num_leaves": tune.choice([7, 15, 31]),
        "learning_rate": tune.loguniform(1e-2, 1e-1),
        "min_data_in_leaf": tune.choice([50, 100, 200]),
        "feature_fraction": tune.uniform(0.6, 1.0),
        "bagging_fraction": tune.uniform(0.6, 1.0),
        "lambda_l2": tune.choice([0.0, 1.0, 10.0]),
    },
    num_samples=8,
)

SPEC = WorkSpec(
    name="june_trees",
    units=[
        WorkUnit(
            JUNE_UNIT.name,
            featureset=DIRECTION,
            start=JUNE_UNIT.start,
            end=JUNE_UNIT.end,
            split=JUNE_UNIT.split,
            models=[dataclasses.replace(JUNE_DNN, num_samples=2), TREES],
        )
    ],
    scheduler=JUNE.scheduler,
    resources=JUNE.resources,
    max_failures=JUNE.max_failures,
    seed=JUNE.seed,
)


def compare(experiment: str) -> str:
    """The families side by side (see the module docstring), as the text printed."""
    import numpy as np
    import pandas as pd

    from atlas_ray.search import TrialStatus, load_results

    rows = []
    for result in load_results(experiment):
        times = _tune_times(Path(experiment), result.trial_id)
        rows.append(
            {
                "family": result.identity.model,
                "trial": result.trial_id,
                "stopped": result.status is TrialStatus.STOPPED,
                "steps": result.epochs,
                "val_loss": result.metric("loss", "validation"),
                "oos_loss": result.metric("loss", "oos"),
                "oos_accuracy": result.metric("accuracy", "oos"),
                "seconds": times.get("time_total_s", float("nan")),
                "setup": times.get("time_setup_s", float("nan")),
                "fit": times.get("time_fit_s", float("nan")),
                "full_fit": times.get("time_fit_s", float("nan"))
                if result.epochs == JUNE.scheduler.max_t
                else None,
            }
        )
    frame = pd.DataFrame(rows)
    lines = []
    for family, group in frame.groupby("family"):
        best = group.loc[group["val_loss"].idxmin()]
        lines.append(
            f"{family:9s} trials {len(group)} (stopped {int(group['stopped'].sum())}), "
            f"steps {int(group['steps'].sum())}; val_loss best {best['val_loss']:.5f} median "
            f"{float(np.median(group['val_loss'])):.5f}; best trial {best['trial']}: oos loss "
            f"{best['oos_loss']:.5f}, oos accuracy {best['oos_accuracy']:.4f}; "
            f"time {group['seconds'].sum():.1f} s in all ({group['setup'].sum():.1f} s setting up, "
            f"{group['fit'].sum():.1f} s training), {group['seconds'].mean():.1f} s a trial; training a "
            f"trial to max_t: {_spread(group['full_fit'].dropna())}"
        )
    bests = frame.groupby("family")["val_loss"].min().sort_values()
    if len(bests) > 1:
        winner, runner = bests.index[0], bests.index[1]
        lines.append(
            f"best validation loss: {winner} by {bests.iloc[1] - bests.iloc[0]:.5f} "
            f"({(bests.iloc[1] - bests.iloc[0]) / bests.iloc[1]:.2%} below {runner}'s)"
        )
    return "\n".join(lines)


def _tune_times(experiment: Path, trial_id: str) -> dict[str, float]:
    """The trial's time keys (``time_total_s``, ``time_setup_s``, ``time_fit_s``, ...) as Tune last
    recorded them (its own folder beside ``trials/``)."""
    for folder in experiment.glob(f"*{trial_id}*"):
        path = folder / "result.json"
        if path.is_file():
            lines = [line for line in path.read_text().splitlines() if line.strip()]
            if lines:
                last = json.loads(lines[-1])
                return {
                    k: float(v)
                    for k, v in last.items()
                    if k.startswith("time_") and isinstance(v, int | float)
                }
    return {}


def _spread(values: object) -> str:
    import pandas as pd

    series = pd.Series(values, dtype="float64")
    if series.empty:
        return "none"
    return f"{series.min():.1f}-{series.max():.1f} s ({len(series)} trials)"


if __name__ == "__main__":
    print(compare(sys.argv[1]))
