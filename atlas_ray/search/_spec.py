"""WorkSpecs: what a search runs.

A spec module under ``specs/`` defines ``SPEC = WorkSpec(...)``::

    WorkSpec(
        name="june",
        units=[WorkUnit("btc_direction", featureset=FeatureLabelSet(...), start="2023-03-01",
                        end="2023-03-08", split=TimeSplit(0.7, 0.15, 0.15),
                        models=[ModelSpec("dnn", "dnn", {"hidden_units": tune.choice([[3], [6]])},
                                          num_samples=8)])],
        scheduler=ASHA(max_t=12, grace_period=2, reduction_factor=3),
        resources=Resources(cpu=1, gpu=0.0, tpu=0),
        max_failures=1,
        seed=0,
    )

Definitions are frozen and do no work; ``validate(spec, store)`` (``_validate.py``) checks them before
Ray starts, and ``trial_plan(spec)`` lists the trials a run creates.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from atlas_ray.backtest import Costs, PositionRule
from atlas_ray.errors import SpecError
from atlas_ray.search._asha import ASHA
from atlas_ray.search._searcher import Searcher

__all__ = ["ModelSpec", "PlannedTrial", "Resources", "WorkSpec", "WorkUnit", "grid_points", "trial_plan"]


@dataclass(frozen=True)
class Resources:
    """What one trial holds: CPUs, a fraction of a GPU, TPU chips (Ray's custom resource ``"TPU"``)."""

    cpu: float = 1.0
    gpu: float = 0.0
    tpu: int = 0

    def as_tune(self) -> dict[str, float]:
        """The resource dict for ``tune.with_resources``."""
        resources: dict[str, float] = {"cpu": float(self.cpu), "gpu": float(self.gpu)}
        if self.tpu:
            resources["TPU"] = float(self.tpu)
        return resources

    def describe(self) -> str:
        parts = [f"{self.cpu:g} CPU"]
        if self.gpu:
            parts.append(f"{self.gpu:g} GPU")
        if self.tpu:
            parts.append(f"{self.tpu} TPU")
        return " + ".join(parts)


@dataclass(frozen=True)
class ModelSpec:
    """A model family and its search space.

    ``model``: a zoo name (``"dnn"``), a callable ``build(config) -> keras.Model`` (compiled), or a
    ``keras_tuner.HyperModel`` whose declared hyperparameters become the space. ``space``: Ray Tune
    domains (``tune.choice``, ``tune.loguniform``, ``tune.grid_search``) or constants, merged over the
    model's default space. ``num_samples``: draws from the space (each grid point ``num_samples``
    times). ``resources``: overrides the spec's per-trial resources for this model.
    """

    name: str
    model: str | Callable[..., Any] | Any
    space: Mapping[str, Any] = field(default_factory=dict)
    num_samples: int = 1
    resources: Resources | None = None


@dataclass(frozen=True)
class WorkUnit:
    """One featureset, built on ``[start, end)`` and split by ``split``, with the models to try on it.

    ``split``: a ``TimeSplit`` (one train / validation / test split; the default) or a
    ``WalkForward(folds=K, ...)``: each trial then trains on every fold and ASHA decides on the mean
    validation metric over the folds. Either way the test part stays sealed during the search.

    ``costs``: the cost model of this unit's market (``atlas_ray.backtest.Costs``; default Binance
    spot's taker fee, 10 bps a side) and ``position``: how a model's output becomes a position
    (``PositionRule``; default: the most probable class / the sign, no threshold, no dead band). Stated
    per unit because a unit is one featureset, so one exchange; every trial's ``net_*`` figures (and
    ``finalize``'s, and the report's) use them.
    """

    name: str
    featureset: Any
    start: str | pd.Timestamp
    end: str | pd.Timestamp
    models: Sequence[ModelSpec] = ()
    split: Any = None
    costs: Costs = field(default_factory=Costs)
    position: PositionRule = field(default_factory=PositionRule)

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(self.models))


@dataclass(frozen=True)
class WorkSpec:
    """A whole search: its units, the ASHA settings, per-trial resources, retries, the base seed and the
    searcher drawing the hyperparameters (``Searcher.RANDOM`` or ``Searcher.OPTUNA``, see ``_searcher``;
    its value as a string is accepted too)."""

    name: str
    units: Sequence[WorkUnit]
    scheduler: ASHA = field(default_factory=ASHA)
    resources: Resources = field(default_factory=Resources)
    max_failures: int = 0
    seed: int = 0
    searcher: Searcher = Searcher.RANDOM

    def __post_init__(self) -> None:
        object.__setattr__(self, "units", tuple(self.units))
        if not isinstance(self.searcher, Searcher):
            known = ", ".join(repr(s.value) for s in Searcher)
            try:
                object.__setattr__(self, "searcher", Searcher(self.searcher))
            except ValueError:
                raise SpecError(
                    f"The value of `searcher` is {self.searcher!r}, but must be one of {known}."
                ) from None

    def unit(self, name: str) -> WorkUnit:
        for unit in self.units:
            if unit.name == name:
                return unit
        raise KeyError(name)

    def model(self, unit: str, model: str) -> ModelSpec:
        for spec in self.unit(unit).models:
            if spec.name == model:
                return spec
        raise KeyError((unit, model))

    def resources_for(self, model: ModelSpec) -> Resources:
        return model.resources if model.resources is not None else self.resources


@dataclass(frozen=True)
class PlannedTrial:
    """One trial a run creates (before its hyperparameters are drawn)."""

    unit: str
    model: str
    sample: int
    seed: int
    resources: Resources
    space: Mapping[str, Any] = field(default_factory=dict)


def grid_points(space: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``space`` with every ``tune.grid_search`` (top level or in nested dicts) replaced by each of its
    values in turn: one space per grid point (a space without grid searches gives itself)."""
    points: list[dict[str, Any]] = [{}]
    for key, value in space.items():
        if isinstance(value, Mapping) and set(value) == {"grid_search"}:
            options: list[Any] = list(value["grid_search"])
        elif isinstance(value, Mapping):
            options = grid_points(value)
        else:
            options = [value]
        points = [{**point, key: option} for point in points for option in options]
    return points


def trial_plan(
    spec: WorkSpec, space_of: Callable[[ModelSpec], Mapping[str, Any]] | None = None
) -> list[PlannedTrial]:
    """Every trial of ``spec`` in order: unit, model, grid point, then ``num_samples`` draws.

    ``space_of(model)`` gives a model's full space (default: ``model.space``; the runner passes the
    space merged over the model's own defaults).

    Seeds are ``spec.seed + n`` for the n-th trial of the plan, so a spec run twice uses the same
    seeds (the hyperparameters drawn from domains follow Ray Tune's own random state).
    """
    counter = itertools.count()
    plan = []
    for unit in spec.units:
        for model in unit.models:
            for point in grid_points(space_of(model) if space_of else model.space):
                for sample in range(model.num_samples):
                    plan.append(
                        PlannedTrial(
                            unit=unit.name,
                            model=model.name,
                            sample=sample,
                            seed=spec.seed + next(counter),
                            resources=spec.resources_for(model),
                            space=point,
                        )
                    )
    return plan
