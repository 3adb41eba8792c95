"""ASHA settings: the scheduler part of a WorkSpec, and the one place the metric direction lives.

``ASHA(max_t, grace_period, reduction_factor, metric, mode)`` compiles to Ray Tune's
``ASHAScheduler`` with ``time_attr="training_iteration"``; a trial reports once per epoch, so one
iteration is one epoch and ``max_t`` is the training budget in epochs. ``milestones()`` gives the
epochs at which ASHA may stop a trial (its rungs), computed exactly as Ray's ``_Bracket`` does: the
search writes a trial's full ResultsObject at these epochs, so a trial ASHA stops keeps its results.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any

from atlas_ray.errors import SpecError

__all__ = ["ASHA", "Mode"]


class Mode(enum.Enum):
    """Whether a smaller or a larger metric is better."""

    MIN = "min"
    MAX = "max"

    @property
    def sign(self) -> float:
        """``+1`` for MAX and ``-1`` for MIN: ``sign * value`` is always to be maximised."""
        return 1.0 if self is Mode.MAX else -1.0

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b`` (NaN is never better)."""
        if math.isnan(a):
            return False
        if math.isnan(b):
            return True
        return self.sign * a > self.sign * b


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
        rungs = int(math.log(self.max_t / self.grace_period) / math.log(self.reduction_factor) + 1)
        return tuple(self.grace_period * self.reduction_factor**k for k in range(rungs))

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

    def as_dict(self) -> dict[str, Any]:
        """JSON-able settings (for experiment.json and the report's rungs plot)."""
        return {
            "scheduler": "asha",
            "max_t": self.max_t,
            "grace_period": self.grace_period,
            "reduction_factor": self.reduction_factor,
            "metric": self.metric,
            "mode": self.mode.value,
            "milestones": list(self.milestones()),
        }


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(
            f"scheduler: the value of `{name}` is {value!r}, but must be an integer `{name} >= {minimum}`."
        )
