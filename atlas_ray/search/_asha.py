"""ASHA settings: the scheduler part of a WorkSpec (the metric direction, ``Mode``, is
``atlas_ray.experiment``'s).

``ASHA(max_t, grace_period, reduction_factor, metric, mode)`` compiles to Ray Tune's
``ASHAScheduler`` with ``time_attr="training_iteration"``; a trial reports once per epoch, so one
iteration is one epoch and ``max_t`` is the training budget in epochs. ``milestones()`` gives the
epochs at which ASHA may stop a trial (its rungs), ``atlas_ray.experiment.asha_rungs`` (Ray's
``_Bracket`` rule): the search writes a trial's full ResultsObject at these epochs, so a trial ASHA
stops keeps its results. ``scheduler_rungs`` reads the rungs back from the scheduler Ray built, which
is what ``experiment.json`` records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from atlas_ray.errors import SpecError
from atlas_ray.experiment import Mode, asha_rungs

__all__ = ["ASHA", "Mode", "scheduler_rungs"]


@dataclass(frozen=True)
class ASHA:
    """Asynchronous successive halving over epochs.

    ``max_t``: the training budget in epochs; ``grace_period``: epochs before a trial may be stopped;
    ``reduction_factor``: a rung keeps the best ``1 / reduction_factor`` of trials; ``metric`` is a
    per-epoch Keras metric (validation ones start with ``val_``); ``mode`` its direction.
    """

    max_t: int = 10
    grace_period: int = 1
    reduction_factor: int = 3
    metric: str = "val_loss"
    mode: Mode = Mode.MIN

    def __post_init__(self) -> None:
        _check_int("max_t", self.max_t, 1)
        _check_int("grace_period", self.grace_period, 1)
        _check_int("reduction_factor", self.reduction_factor, 2)
        if self.grace_period > self.max_t:
            raise SpecError(
                f"scheduler: the value of `grace_period` is {self.grace_period}, but must be "
                f"`grace_period <= max_t` ({self.max_t})."
            )
        if not isinstance(self.metric, str) or not self.metric:
            raise SpecError(
                f"scheduler: the value of `metric` is {self.metric!r}, but must be a metric name."
            )
        if not isinstance(self.mode, Mode):
            raise SpecError(
                f"scheduler: the value of `mode` is {self.mode!r}, but must be `Mode.MIN` or `Mode.MAX`."
            )

    def milestones(self) -> tuple[int, ...]:
        """The rung epochs, ascending, as Ray's ``_Bracket`` computes them (bracket 0)."""
        return asha_rungs(self.max_t, self.grace_period, self.reduction_factor)

    def checkpoints(self) -> tuple[int, ...]:
        """The epochs at which a trial writes its full ResultsObject: every rung and ``max_t``."""
        return tuple(sorted({*self.milestones(), self.max_t}))

    def to_scheduler(self) -> Any:
        """The Ray Tune ``ASHAScheduler`` these settings describe."""
        from ray.tune.schedulers import ASHAScheduler

        return ASHAScheduler(
            time_attr="training_iteration",
            metric=self.metric,
            mode=self.mode.value,
            max_t=self.max_t,
            grace_period=self.grace_period,
            reduction_factor=self.reduction_factor,
            brackets=1,
        )

    def as_dict(self, scheduler: Any = None) -> dict[str, Any]:
        """JSON-able settings for experiment.json; ``milestones`` are those of ``scheduler`` (the Ray
        Tune scheduler built from these settings, ``scheduler_rungs``) when given."""
        return {
            "scheduler": "asha",
            "max_t": self.max_t,
            "grace_period": self.grace_period,
            "reduction_factor": self.reduction_factor,
            "metric": self.metric,
            "mode": self.mode.value,
            "milestones": list(self.milestones() if scheduler is None else scheduler_rungs(scheduler)),
        }


def scheduler_rungs(scheduler: Any) -> tuple[int, ...]:
    """The rung epochs, ascending, of a built Ray Tune ``ASHAScheduler``: its brackets' milestones as it
    decided them (what a trial is stopped at), read from the scheduler itself."""
    brackets = scheduler._brackets
    return tuple(sorted({int(milestone) for bracket in brackets for milestone, _ in bracket._rungs}))


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(
            f"scheduler: the value of `{name}` is {value!r}, but must be an integer `{name} >= {minimum}`."
        )
