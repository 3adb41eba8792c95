"""result.json: written, read back and settled by atlas_ray.experiment alone."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from atlas_ray.experiment import (
    RESULT_FILE,
    ResultsObject,
    TrialIdentity,
    TrialStatus,
    jsonable,
    read_result,
    read_status,
    settle_result,
    trial_directory,
    trial_ids_on_disk,
    write_result,
)
from atlas_ray.featurestore import Task


def result(trial_id: str = "t_00001", loss: float = 0.9) -> ResultsObject:
    identity = TrialIdentity("exp", "spec.py", "unit", "dnn", trial_id, {"units": 4}, 7)
    predictions = pd.DataFrame({"timestamp": pd.date_range("2023-03-01", periods=3, freq="min", tz="UTC"),
                                "split": "validation", "reality": ["up", "down", "up"],
                                "prediction": ["up", "up", "up"], "label_value": [0.1, -0.1, 0.2]})
    curves = pd.DataFrame({"epoch": [1, 2], "loss": [1.1, 1.0], "val_loss": [1.2, loss]})
    return ResultsObject(identity=identity, status=TrialStatus.RUNNING, task=Task.BINARY,
                         classes=("down", "up"),
                         features=("f",), label="l", metrics={"validation": {"loss": loss, "auc": math.nan}},
                         predictions=predictions, curves=curves, epochs=2, model_file="model.keras")


def test_round_trip(tmp_path: Path) -> None:
    directory = trial_directory(str(tmp_path), "t_00001")
    write_result(result(), directory)
    read = read_result(directory)
    assert read.identity == result().identity and read.status is TrialStatus.RUNNING
    assert read.metric("loss") == 0.9 and math.isnan(read.metric("auc"))
    pd.testing.assert_frame_equal(read.curves, result().curves)
    assert read.model_path == f"{directory}/model.keras"
    assert trial_ids_on_disk(str(tmp_path)) == ["t_00001"]


def test_settling_rewrites_the_status_once(tmp_path: Path) -> None:
    directory = trial_directory(str(tmp_path), "t_00001")
    assert not settle_result(directory, status=TrialStatus.STOPPED)  # no result yet
    write_result(result(), directory)
    attempts = [{"attempt": 1, "node_id": "n"}]
    assert settle_result(directory, status=TrialStatus.STOPPED, attempts=attempts)
    assert read_status(directory) == (TrialStatus.STOPPED, 2)
    assert read_result(directory).attempts == ({"attempt": 1, "node_id": "n"},)
    assert not settle_result(directory, status=TrialStatus.FAILED, error="late")  # already settled
    assert json.loads((Path(directory) / RESULT_FILE).read_text())["error"] is None


def test_jsonable() -> None:
    assert jsonable({1: (np.float32(0.5), np.arange(2))}) == {"1": [0.5, [0, 1]]}
