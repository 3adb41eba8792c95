"""Reading experiments as far as they exist."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from atlas_ray.experiment import TrialStatus
from atlas_ray.report import ExperimentNotFoundError, asha_settings, load_experiment_for_report


def test_a_finished_experiment_reads_whole(june_a):
    assert june_a.name == "june_a"
    assert len(june_a.results) == 16
    assert june_a.metric == "val_loss" and june_a.mode == "min"
    assert asha_settings(june_a.meta) == (8, 2, 2)
    statuses = {r.status for r in june_a.results}
    assert {TrialStatus.COMPLETED, TrialStatus.STOPPED, TrialStatus.FAILED} <= statuses
    # the only missing thing is the failed trial's predictions, named with its error.
    assert len(june_a.missing) == 1
    assert "logit_00010 failed without predictions" in june_a.missing[0]
    assert "'C' parameter" in june_a.missing[0]


def half_finished(source: Path, target: Path) -> Path:
    """A copy of ``source`` as a crashed search leaves it: no experiment.json, one trial without
    result.json, one listed trial never started."""
    shutil.copytree(source, target)
    (target / "experiment.json").unlink()
    (target / "trials" / "sgd_00003" / "result.json").unlink()
    return target


def test_a_half_finished_experiment_says_what_is_missing(report_experiments, tmp_path):
    path = half_finished(report_experiments["june_a"], tmp_path / "crashed")
    experiment = load_experiment_for_report(str(path))
    assert experiment.meta is None and experiment.name == "crashed"
    assert len(experiment.results) == 15
    text = "\n".join(experiment.missing)
    assert "experiment.json is missing" in text
    assert "trial sgd_00003: no result.json" in text


def test_listed_trials_without_directories_and_unfinished_runs(report_experiments, tmp_path):
    target = tmp_path / "running"
    shutil.copytree(report_experiments["june_b"], target)
    document = (target / "experiment.json").read_text()
    (target / "experiment.json").write_text(
        document.replace('"finished": "2024-06-01T00:05:00+00:00"', '"finished": null')
        .replace('"trial_ids": [', '"trial_ids": [\n    "never_started_00099",'))
    experiment = load_experiment_for_report(str(target))
    text = "\n".join(experiment.missing)
    assert "the experiment has not finished" in text
    assert "trial never_started_00099: listed in experiment.json but has no directory" in text


def test_an_empty_experiment_reads_as_empty(tmp_path):
    (tmp_path / "empty").mkdir()
    experiment = load_experiment_for_report(str(tmp_path / "empty"))
    assert experiment.results == ()
    assert any("trials/ is missing" in line for line in experiment.missing)
    assert any("no trial has results yet" in line for line in experiment.missing)


def test_a_missing_experiment_is_one_clear_error(tmp_path):
    with pytest.raises(ExperimentNotFoundError, match=r"experiment '.*nowhere' does not exist"):
        load_experiment_for_report(str(tmp_path / "nowhere"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExperimentNotFoundError, match="is not a directory"):
        load_experiment_for_report(str(tmp_path / "file"))


def test_a_filesystem_uri_reads_the_same(report_experiments):
    experiment = load_experiment_for_report(f"file://{report_experiments['june_b']}")
    assert len(experiment.results) == 16
    assert experiment.results[0].directory.startswith("file://")
