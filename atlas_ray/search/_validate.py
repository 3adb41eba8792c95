"""Checking a WorkSpec before Ray starts.

``validate(spec, store)`` raises ``SpecError`` at the first problem, with one line naming the unit,
the model and the field, the value and the rule: names (non-empty, unique), resources, retries,
dates (``start < end``), the featureset (a FeatureLabelSet whose labels are not among its features),
each model (known, its space's parameters known and every value it can take accepted, windowed models
only on windowed featuresets and flat models only on flat ones), the scheduler's metric (one the
models report), and the data (the source rule, ``featurestore.decide``, finds a source
in the store for every series the featureset reads over the range).
``check_prepared`` runs once a unit is prepared: the models support its task and report the metric.
"""

from __future__ import annotations

import math
import re
from typing import Any

from atlas_ray.backtest import NET_METRICS, Costs, PositionRule
from atlas_ray.errors import AtlasError, SpecError
from atlas_ray.featurestore import PreparedSet, Task
from atlas_ray.search._spec import ModelSpec, Resources, WorkSpec, WorkUnit
from atlas_ray.search._spread import check_quotes
from atlas_ray.search._zoo import as_zoo_model, full_space

__all__ = ["check_prepared", "reported_metrics", "validate", "validate_static"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_CLASSIFIER_METRICS = ("loss", "accuracy", "auc")
_REGRESSOR_METRICS = ("loss", "mae")


def reported_metrics(task: Task) -> tuple[str, ...]:
    """The per-epoch metrics a zoo model reports for ``task`` (training and ``val_`` forms), and the
    validation net-of-cost figures every trial reports (``val_net_sharpe``, ... : ``atlas_ray.backtest``)."""
    names = _REGRESSOR_METRICS if task is Task.REGRESSION else _CLASSIFIER_METRICS
    return (*names, *(f"val_{name}" for name in names), *(f"val_{name}" for name in NET_METRICS))


def validate(spec: WorkSpec, store: Any = None) -> None:
    """Every check, the store's data included (``store``: a MarketStore; None skips the data check)."""
    validate_static(spec)
    if store is not None:
        for unit in spec.units:
            _check_data(unit, store)
            check_quotes(unit, store)


def validate_static(spec: WorkSpec) -> None:
    """Every check that needs no market data."""
    if not isinstance(spec, WorkSpec):
        raise SpecError(f"`SPEC` is a {type(spec).__name__}, but must be a WorkSpec.")
    _check_name("spec", "name", spec.name)
    if not spec.units:
        raise SpecError(
            f"spec `{spec.name}`, field `units`: the value is [], but must hold at least one WorkUnit."
        )
    _check_resources(f"spec `{spec.name}`", spec.resources)
    if (
        isinstance(spec.max_failures, bool)
        or not isinstance(spec.max_failures, int)
        or spec.max_failures < -1
    ):
        raise SpecError(
            f"spec `{spec.name}`, field `max_failures`: the value is {spec.max_failures!r}, but must be an "
            "integer `max_failures >= 0` (or -1: retry forever)."
        )
    if isinstance(spec.seed, bool) or not isinstance(spec.seed, int) or spec.seed < 0:
        raise SpecError(
            f"spec `{spec.name}`, field `seed`: the value is {spec.seed!r}, "
            "but must be an integer `seed >= 0`."
        )
    seen: set[str] = set()
    for unit in spec.units:
        if not isinstance(unit, WorkUnit):
            raise SpecError(f"spec `{spec.name}`, field `units`: {unit!r} is not a WorkUnit.")
        _check_name(f"spec `{spec.name}`, unit", "name", unit.name)
        if unit.name in seen:
            raise SpecError(
                f"unit `{unit.name}`, field `name`: the name appears twice, but unit names must be unique."
            )
        seen.add(unit.name)
        _check_unit(spec, unit)


def _check_name(where: str, field: str, value: object) -> None:
    if not isinstance(value, str) or not _NAME.match(value):
        raise SpecError(
            f"{where} field `{field}`: the value is {value!r}, "
            "but must be a non-empty name of letters, digits, "
            "'_', '.' and '-' (it names directories)."
        )


def _check_resources(where: str, resources: object) -> None:
    if not isinstance(resources, Resources):
        raise SpecError(f"{where}, field `resources`: {resources!r} is not a Resources.")
    checks = (
        ("cpu", resources.cpu, resources.cpu > 0 if _number(resources.cpu) else False, "cpu > 0"),
        ("gpu", resources.gpu, resources.gpu >= 0 if _number(resources.gpu) else False, "gpu >= 0"),
        (
            "tpu",
            resources.tpu,
            isinstance(resources.tpu, int) and resources.tpu >= 0,
            "tpu >= 0 (an integer)",
        ),
    )
    for field, value, ok, rule in checks:
        if not ok:
            raise SpecError(
                f"{where}, field `resources.{field}`: the value is {value!r}, but must be `{rule}`."
            )
    if resources.gpu > 1 and resources.gpu != int(resources.gpu):
        raise SpecError(
            f"{where}, field `resources.gpu`: the value is {resources.gpu!r}, but must be a fraction "
            "`0 <= gpu <= 1` or a whole number of GPUs."
        )


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_unit(spec: WorkSpec, unit: WorkUnit) -> None:
    where = f"unit `{unit.name}`"
    featureset = unit.featureset
    for attribute in ("build", "prepare", "definition", "features", "labels"):
        if not hasattr(featureset, attribute):
            raise SpecError(
                f"{where}, field `featureset`: {type(featureset).__name__} is not a FeatureLabelSet "
                f"(no `{attribute}`)."
            )
    _check_range(where, unit)
    _check_costs(where, unit)
    feature_names = {getattr(f, "name", str(f)) for f in featureset.features}
    for label in featureset.labels:
        name = getattr(label, "name", str(label))
        if name in feature_names:
            raise SpecError(
                f"{where}, field `featureset.labels`: the label {name} is also among the features, "
                "but a label must never be an input."
            )
    resolutions = {getattr(f, "resolution", None) for f in (*featureset.features, *featureset.labels)}
    if len(resolutions) > 1:
        shown = sorted(str(getattr(r, "value", r)) for r in resolutions)
        raise SpecError(
            f"{where}, field `featureset`: features and labels mix the resolutions {shown}, "
            "but must share one."
        )
    if not unit.models:
        raise SpecError(f"{where}, field `models`: the value is [], but a unit needs at least one ModelSpec.")
    names: set[str] = set()
    for model in unit.models:
        if not isinstance(model, ModelSpec):
            raise SpecError(f"{where}, field `models`: {model!r} is not a ModelSpec.")
        _check_name(f"{where}, model", "name", model.name)
        if model.name in names:
            raise SpecError(
                f"{where}, model `{model.name}`, field `name`: the name appears twice in the unit."
            )
        names.add(model.name)
        _check_model(spec, unit, model)


def _check_costs(where: str, unit: WorkUnit) -> None:
    """The unit's cost model and position rule are ``atlas_ray.backtest``'s (their fields check
    themselves when made; checked again here for an object made around ``__init__``)."""
    for field, kind in (("costs", Costs), ("position", PositionRule)):
        value = getattr(unit, field)
        if not isinstance(value, kind):
            raise SpecError(f"{where}, field `{field}`: {value!r} is not a {kind.__name__}.")
        try:
            type(value).from_dict(value.as_dict())  # type: ignore[attr-defined]
        except SpecError as error:
            raise SpecError(f"{where}, field `{field}`: {str(error).split(': ', 1)[-1]}") from None


def _check_range(where: str, unit: WorkUnit) -> None:
    import pandas as pd

    stamps = []
    for field in ("start", "end"):
        value = getattr(unit, field)
        try:
            stamps.append(pd.Timestamp(value))
        except (TypeError, ValueError):
            raise SpecError(
                f"{where}, field `{field}`: the value is {value!r}, but must be a date or time."
            ) from None
    start, end = (s.tz_localize("UTC") if s.tzinfo is None else s.tz_convert("UTC") for s in stamps)
    if not start < end:
        raise SpecError(
            f"{where}, field `end`: the range [{unit.start}, {unit.end}) is empty, "
            "but must satisfy `start < end`."
        )


def _check_model(spec: WorkSpec, unit: WorkUnit, model: ModelSpec) -> None:
    where = f"unit `{unit.name}`, model `{model.name}`"
    if isinstance(model.num_samples, bool) or not isinstance(model.num_samples, int) or model.num_samples < 1:
        raise SpecError(
            f"{where}, field `num_samples`: the value is {model.num_samples!r}, "
            "but must be an integer `num_samples >= 1`."
        )
    if model.resources is not None:
        _check_resources(where, model.resources)
    try:
        zoo_model = as_zoo_model(model.model, name=model.name)
    except SpecError as error:
        raise SpecError(f"{where}, field `model`: {error}") from None
    if not isinstance(model.space, dict):
        raise SpecError(f"{where}, field `space`: {type(model.space).__name__} is not a dict of parameters.")
    from atlas_ray.search._zoo_model import validate_config

    try:
        validate_config(zoo_model, full_space(model))
    except SpecError as error:
        raise SpecError(f"{where}, field `space`: {_strip_model(str(error), zoo_model.name)}") from None
    window = getattr(unit.featureset, "window", None)
    if zoo_model.windowed and window is None:
        raise SpecError(
            f"{where}, field `featureset.window`: the value is None, but `{zoo_model.name}` reads windows: "
            "give the featureset `window=<rows>`."
        )
    task = expected_task(unit.featureset)
    if task is not None and task not in zoo_model.tasks:
        supported = ", ".join(sorted(t.value for t in zoo_model.tasks))
        raise SpecError(
            f"{where}, field `model`: the featureset's task is {task.value}, "
            f"but `{zoo_model.name}` supports {supported}."
        )
    metric = spec.scheduler.metric
    known = (
        reported_metrics(task) if task is not None else (*reported_metrics(Task.MULTICLASS), "mae", "val_mae")
    )
    if metric not in known and not zoo_model.accepts_any:
        raise SpecError(
            f"{where}, field `scheduler.metric`: the value is {metric!r}, but must be one the model reports: "
            f"{', '.join(known)}."
        )


def expected_task(featureset: Any) -> Task | None:
    """The task a FeatureLabelSet's ``categories`` make (None when it cannot be told before building)."""
    if not hasattr(featureset, "categories"):
        return None
    categories = featureset.categories
    if categories is None:
        return Task.REGRESSION
    n_classes = getattr(categories, "n_classes", None)
    if n_classes is None:
        return None
    return Task.BINARY if n_classes == 2 else Task.MULTICLASS


def _strip_model(message: str, name: str) -> str:
    prefix = f"model `{name}`"
    return message[len(prefix) :].lstrip(":, ") if message.startswith(prefix) else message


def _check_data(unit: WorkUnit, store: Any) -> None:
    """The store can supply every series the unit's featureset reads over the unit's range: the
    source rule's decision (``featurestore.decide``, the one the build reads by) can be
    made; bars coarser than the store's are resampled, so a 5-minute featureset on a 1-minute store
    passes."""
    featureset = unit.featureset
    if not hasattr(featureset, "sources") or not hasattr(featureset, "resolution"):
        return  # not a FeatureLabelSet: its build reports missing data itself
    from atlas_ray.featurestore import decide

    try:
        featureset.sources(unit.start, unit.end, store)
    except AtlasError as error:
        try:  # held on other days: the range is wrong; held nowhere: the featureset is
            decide(store, featureset.columns, None, None, featureset.resolution)
            field = "start"
        except AtlasError:
            field = "featureset"
        raise SpecError(f"unit `{unit.name}`, field `{field}`: {' '.join(str(error).split())}") from None


def check_prepared(spec: WorkSpec, unit: WorkUnit, prepared: PreparedSet) -> None:
    """The unit's models support its prepared task, and report the scheduler's metric for it."""
    for model in unit.models:
        where = f"unit `{unit.name}`, model `{model.name}`"
        zoo_model = as_zoo_model(model.model, name=model.name)
        if prepared.task not in zoo_model.tasks:
            supported = ", ".join(sorted(t.value for t in zoo_model.tasks))
            raise SpecError(
                f"{where}, field `model`: the featureset's task is {prepared.task.value}, "
                f"but `{zoo_model.name}` "
                f"supports {supported}."
            )
        if not zoo_model.accepts_any and spec.scheduler.metric not in reported_metrics(prepared.task):
            raise SpecError(
                f"{where}, field `scheduler.metric`: the value is {spec.scheduler.metric!r}, but a "
                f"{prepared.task.value} model reports {', '.join(reported_metrics(prepared.task))}."
            )
    if len(prepared.train) == 0 or len(prepared.validation) == 0:
        raise SpecError(
            f"unit `{unit.name}`, field `split`: the train part has {len(prepared.train)} rows "
            "and validation "
            f"{len(prepared.validation)}, but both must hold rows: widen [start, end)."
        )
