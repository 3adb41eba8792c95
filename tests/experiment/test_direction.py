"""One direction for every metric, and the scheduler flips it the same way."""

from __future__ import annotations

import pytest
from ray.tune.schedulers import ASHAScheduler

from atlas_ray.experiment import MINIMISED, Mode, direction, is_minimised
from atlas_ray.report._summary import lower_is_better
from atlas_ray.search import ASHA
from atlas_ray.serve._trial import metric_direction

MIN = ["loss", "val_loss", "test_loss", "mse", "val_mae", "persistence_mse", "zero_mse", "max_drawdown",
       "turnover", "lr_minus[up]", "test_lr_minus[down]", "huber_loss", "val_mse"]
MAX = ["accuracy", "val_accuracy", "auc", "val_auc", "sign_accuracy", "precision[up]", "npv[down]", "tpr[up]",
       "tnr[up]", "lr_plus[up]", "net_return", "sharpe", "hit_rate", "ic", "rank_icir", "balanced_accuracy"]


@pytest.mark.parametrize("metric", MIN)
def test_minimised(metric: str) -> None:
    assert is_minimised(metric) and direction(metric) is Mode.MIN
    assert lower_is_better(metric)  # the report's columns


@pytest.mark.parametrize("metric", MAX)
def test_maximised(metric: str) -> None:
    assert not is_minimised(metric) and direction(metric) is Mode.MAX
    assert not lower_is_better(metric)


@pytest.mark.parametrize("metric", ["val_loss", "loss", "mse", "accuracy", "val_auc"])
def test_serve_best_uses_the_same_direction(metric: str) -> None:
    assert metric_direction(metric)[2] == direction(metric).value


@pytest.mark.parametrize("metric", ["val_loss", "val_accuracy", "val_mse", "val_auc"])
def test_the_scheduler_flips_the_direction_as_mode_does(metric: str) -> None:
    """Ray's ASHA maximises ``metric_op * value``; ``Mode.sign`` is that ``metric_op``."""
    mode = direction(metric)
    scheduler = ASHA(max_t=4, grace_period=1, reduction_factor=2, metric=metric, mode=mode).to_scheduler()
    assert isinstance(scheduler, ASHAScheduler)
    assert scheduler._metric_op == mode.sign
    assert mode.better(1.0, 2.0) is (metric in ("val_loss", "val_mse"))


def test_every_listed_name_is_minimised() -> None:
    assert all(is_minimised(name) for name in MINIMISED)
