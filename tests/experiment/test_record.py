"""The experiment record: its round trip and the scheduler's rungs as the scheduler decided them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ray.tune.schedulers import ASHAScheduler

from atlas_ray.experiment import Experiment, asha_rungs, load_experiment, now, write_experiment
from atlas_ray.report._plots_search import rungs as report_rungs
from atlas_ray.search import ASHA
from atlas_ray.search._asha import scheduler_rungs

SETTINGS = [
    (18, 2, 3), (9, 1, 3), (10, 1, 3), (16, 1, 4), (2, 1, 2), (12, 2, 3), (27, 3, 3), (5, 5, 2), (8, 2, 2)
]


def real_rungs(max_t: int, grace: int, factor: int) -> tuple[int, ...]:
    """The rungs of Ray Tune's own ASHAScheduler, as the search builds it."""
    scheduler = ASHAScheduler(time_attr="training_iteration", metric="val_loss", mode="min", max_t=max_t,
                              grace_period=grace, reduction_factor=factor, brackets=1)
    return tuple(sorted(milestone for milestone, _ in scheduler._brackets[0]._rungs))


@pytest.mark.parametrize(("max_t", "grace", "factor"), SETTINGS)
def test_rungs_are_the_schedulers(max_t: int, grace: int, factor: int) -> None:
    asha = ASHA(max_t=max_t, grace_period=grace, reduction_factor=factor)
    expected = real_rungs(max_t, grace, factor)
    assert asha_rungs(max_t, grace, factor) == expected
    assert scheduler_rungs(asha.to_scheduler()) == expected
    assert asha.as_dict(asha.to_scheduler())["milestones"] == list(expected)
    assert report_rungs(max_t, grace, factor) == list(expected)  # what the report draws


def test_the_issues_case_draws_the_last_rung() -> None:
    assert real_rungs(18, 2, 3) == (2, 6, 18)
    assert report_rungs(18, 2, 3) == [2, 6, 18]


def record(scheduler: dict[str, object]) -> Experiment:
    return Experiment(
        name="e", spec="s.py", metric="val_loss", mode="min", created=now(), scheduler=scheduler
    )


def test_a_record_round_trips(tmp_path: Path) -> None:
    asha = ASHA(max_t=18, grace_period=2, reduction_factor=3)
    written = record(asha.as_dict(asha.to_scheduler())).finish(["t1", "t2"])
    write_experiment(written, str(tmp_path))
    read = load_experiment(str(tmp_path))
    assert read.trial_ids == ("t1", "t2") and read.status == "finished"
    assert read.rungs == (2, 6, 18) and read.asha_settings() == (18, 2, 3)
    assert read.direction.value == "min"


def test_an_old_record_without_rungs_gets_the_schedulers(tmp_path: Path) -> None:
    settings = {"scheduler": "asha", "max_t": 18, "grace_period": 2, "reduction_factor": 3}
    write_experiment(record(settings), str(tmp_path))
    document = json.loads((tmp_path / "experiment.json").read_text())
    assert "milestones" not in document["scheduler"]
    assert load_experiment(str(tmp_path)).rungs == real_rungs(18, 2, 3)
    assert record({}).rungs == ()
