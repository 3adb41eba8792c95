"""A trial's attempt log (``_attempts``): each attempt appends its node and the epoch it went on from,
and settling a trial carries the whole log into its result.json (on the test session's real Ray)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from atlas_ray.experiment import write_result
from atlas_ray.featurestore import Task
from atlas_ray.search import ResultsObject, TrialIdentity, TrialStatus, read_result
from atlas_ray.search._attempts import ATTEMPTS_FILE, read_attempts, record_attempt
from atlas_ray.search._gather import failed_result, settle_trial
from atlas_ray.search._manifest import read_manifest

pytestmark = pytest.mark.slow  # starts Ray: not in scripts/test.sh --quick

IDENTITY = TrialIdentity("exp", "specs/x.py", "direction", "dnn", "abc_00001", {"hidden_units": [4]}, 11)
INFO = {
    "task": "multiclass",
    "classes": ["down", "flat", "up"],
    "features": ["f"],
    "label": "l",
    "scaling": {},
    "categories": None,
    "window": None,
    "featureset": {},
}


def test_each_attempt_is_appended_with_its_node(ray_cluster: None, tmp_path: Path) -> None:
    import ray

    directory = str(tmp_path / "trials" / "abc_00001")
    assert read_attempts(directory) == []
    first = record_attempt(directory, restored_from_epoch=0)
    log = record_attempt(directory, restored_from_epoch=4)
    assert log[0] == first[0] and read_attempts(directory) == log
    assert [(a["attempt"], a["restored_from_epoch"]) for a in log] == [(1, 0), (2, 4)]
    node = ray.get_runtime_context().get_node_id()
    assert all(a["node_id"] == node and a["node_ip"] for a in log)
    assert json.loads((tmp_path / "trials" / "abc_00001" / ATTEMPTS_FILE).read_text()) == log
    assert not list((tmp_path / "trials" / "abc_00001").glob("*.tmp"))


def test_settling_brings_the_result_s_attempts_up_to_date(ray_cluster: None, tmp_path: Path) -> None:
    # a trial that wrote a result at a rung, then was retried elsewhere and stopped there
    running = str(tmp_path / "running")
    first = record_attempt(running, restored_from_epoch=0)
    write_result(
        ResultsObject(
            identity=IDENTITY,
            status=TrialStatus.RUNNING,
            task=Task.MULTICLASS,
            classes=("down", "flat", "up"),
            features=("f",),
            label="l",
            metrics={},
            predictions=pd.DataFrame(),
            curves=pd.DataFrame({"epoch": [1, 2]}),
            epochs=2,
            attempts=tuple(first),
        ),
        running,
    )
    log = record_attempt(running, restored_from_epoch=2)
    assert settle_trial(running, status=TrialStatus.STOPPED)
    assert [dict(a) for a in read_result(running).attempts] == log

    # a trial that failed before writing any result: its fallback gets the log too
    failed = str(tmp_path / "failed")
    log = record_attempt(failed, restored_from_epoch=0)
    fallback = failed_result(INFO, identity=IDENTITY, error="RuntimeError: lost")
    assert settle_trial(failed, status=TrialStatus.FAILED, error="RuntimeError: lost", fallback=fallback)
    result = read_result(failed)
    assert result.status is TrialStatus.FAILED and [dict(a) for a in result.attempts] == log
    manifest = read_manifest(failed)
    assert manifest is not None and ATTEMPTS_FILE not in manifest.files  # hidden: never harvested
