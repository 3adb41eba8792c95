"""One score per trial: the progress line, the table of best trials, finalize and serve --best agree."""

from __future__ import annotations

import io
import math
import re
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from atlas_ray.experiment import (
    TrialStatus,
    best_trials,
    read_score,
    trial_directory,
    trial_score,
    write_result,
)
from atlas_ray.search import ASHA
from atlas_ray.search._finalize import choose
from atlas_ray.search._progress import Progress, ProgressCallback, ProgressDisplay
from atlas_ray.search._runner import print_best
from tests.experiment.test_results import result

#: The issue's case: the best epoch said 1.02968, the last epoch (saved, evaluated, served) 1.030933.
BEST_EPOCH, LAST_EPOCH = 1.02968, 1.030933


def written(tmp_path: Path) -> list:  # type: ignore[type-arg]
    first = replace(result("t_00001", LAST_EPOCH), status=TrialStatus.COMPLETED,
                    curves=pd.DataFrame({"epoch": [1, 2], "val_loss": [BEST_EPOCH, LAST_EPOCH]}))
    second = replace(result("t_00002", 1.2), status=TrialStatus.STOPPED)
    failed = replace(result("t_00003", 0.1), status=TrialStatus.FAILED, error="boom")
    for item in (first, second, failed):
        write_result(item, trial_directory(str(tmp_path), item.trial_id))
    return [first, second, failed]


def tune_trial(trial_id: str, status: str) -> SimpleNamespace:
    return SimpleNamespace(trial_id=trial_id, status=status, config={"variant": {"model": "dnn"}},
                           last_result={"training_iteration": 2, "val_loss": BEST_EPOCH})


def test_the_progress_line_shows_the_tables_number(tmp_path: Path) -> None:
    results = written(tmp_path)
    out = io.StringIO()
    display = ProgressDisplay(Progress(total=3, max_t=2, metric="val_loss", sign=-1.0), out, tty=False)
    callback = ProgressCallback(display, error_text=str, experiment=str(tmp_path), checkpoints=(2,))
    trials = [tune_trial("t_00001", "TERMINATED"), tune_trial("t_00002", "TERMINATED"),
              tune_trial("t_00003", "ERROR")]
    callback.on_trial_error(0, trials, trials[2])
    callback.on_experiment_end(trials)
    line = out.getvalue().strip().splitlines()[-1]
    assert "best val_loss 1.03093 (trial t_00001, dnn, last epoch)" in line
    spec = SimpleNamespace(scheduler=ASHA(max_t=2, grace_period=1, reduction_factor=2))
    table = io.StringIO()
    print_best(results, spec, str(tmp_path), table)  # type: ignore[arg-type]
    assert "at their last epoch" in table.getvalue()
    row = next(r for r in table.getvalue().splitlines() if r.startswith("t_00001"))
    shown = float(re.search(r"\d+\.\d{6}", row).group())  # type: ignore[union-attr]
    assert shown == LAST_EPOCH and f"{shown:.6g}" in line


def test_every_reader_ranks_by_the_same_score(tmp_path: Path) -> None:
    results = written(tmp_path)
    first = results[0]
    assert trial_score(first, "val_loss") == LAST_EPOCH == read_score(first_dir(tmp_path), "val_loss")
    assert math.isnan(read_score(trial_directory(str(tmp_path), "t_00003"), "val_loss"))  # failed: none
    assert [r.trial_id for r in best_trials(results, "val_loss")] == ["t_00001", "t_00002"]
    assert [r.trial_id for r in choose(results, 2, "loss", "min")] == ["t_00001", "t_00002"]  # finalize


def first_dir(tmp_path: Path) -> str:
    return trial_directory(str(tmp_path), "t_00001")
