"""A zoo model's definition and the rules its hyperparameters obey: ``ZooModel``, ``ParameterRule``
(with the ``int_rule`` / ``float_rule`` / ``choice_rule`` / ``bool_rule`` shorthands), the parameters
every model accepts (``COMMON_PARAMETERS``) and ``validate_config``.

The model families (``atlas_ray/search/_models``), the keras-tuner adapter (``_hypermodel``) and the
zoo's registry (``_zoo``) all build on this module, which imports none of them: the dependency runs
one way, ``_zoo -> _models / _hypermodel -> _zoo_model``. See ``_zoo`` for the conventions every model
follows.
"""

from __future__ import annotations

import enum
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from atlas_ray.errors import SpecError
from atlas_ray.featurestore import Task

__all__ = [
    "ACTIVATIONS",
    "COMMON_PARAMETERS",
    "NOT_HYPERPARAMETERS",
    "Builder",
    "ModelFamily",
    "ParameterKind",
    "ParameterRule",
    "ZooModel",
    "bool_rule",
    "choice_rule",
    "float_rule",
    "int_rule",
    "validate_config",
]

Builder = Callable[..., Any]
"""``builder(config, *, input_shape, task, n_classes, train_X) -> keras.Model`` (compiled); for a
``ModelFamily.LIGHTGBM`` model, the booster's LightGBM parameters (a plain dict) instead."""


class ModelFamily(enum.Enum):
    """How a zoo model trains: a Keras model fitted epoch by epoch (``_trainable``), or LightGBM
    boosters grown ``rounds_per_step`` rounds per Tune step (``_trainable_trees``)."""

    KERAS = "keras"
    LIGHTGBM = "lightgbm"


class ParameterKind(enum.Enum):
    """The type of a hyperparameter's values."""

    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    CHOICE = "choice"  # one of ``choices`` (strings or other constants)
    INT_LIST = "int_list"  # a non-empty list of ints, e.g. hidden layer sizes [6, 6]


@dataclass(frozen=True)
class ParameterRule:
    """What values one hyperparameter takes: its kind, default and range.

    Numeric bounds are inclusive unless ``low_open`` / ``high_open``; for ``INT_LIST`` they bound each
    element and ``max_length`` bounds the list's length.
    """

    kind: ParameterKind
    default: Any
    doc: str = ""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] | None = None
    max_length: int | None = None

    def violation(self, name: str, value: Any) -> str | None:
        """``None`` when ``value`` obeys the rule, else one sentence with the value and the rule."""
        shown = _show(value)
        if self.kind is ParameterKind.BOOL:
            if not isinstance(value, bool | np.bool_):
                return f"The value of `{name}` is {shown}, but must be a bool (True or False)."
            return None
        if self.kind is ParameterKind.CHOICE:
            if self.choices is not None and value not in self.choices:
                options = ", ".join(_show(choice) for choice in self.choices)
                return f"The value of `{name}` is {shown}, but must be one of {options}."
            return None
        if self.kind is ParameterKind.INT_LIST:
            return self._list_violation(name, value)
        if self.kind is ParameterKind.INT and not _is_int(value):
            return f"The value of `{name}` is {shown}, but must be an integer ({self.range_text(name)})."
        if self.kind is ParameterKind.FLOAT and not _is_number(value):
            return f"The value of `{name}` is {shown}, but must be a number ({self.range_text(name)})."
        if not self._in_range(float(value)):
            return f"The value of `{name}` is {shown}, but must be `{self.range_text(name)}`."
        return None

    def range_text(self, name: str) -> str:
        """The range as a formula, e.g. ``0 <= dropout < 1``."""
        low = "" if self.low is None else f"{_num(self.low)} {'<' if self.low_open else '<='} "
        high = "" if self.high is None else f" {'<' if self.high_open else '<='} {_num(self.high)}"
        if self.low is not None and self.high is None:
            return f"{name} {'>' if self.low_open else '>='} {_num(self.low)}"
        if self.low is None and self.high is None:
            return f"{name} is finite"
        return f"{low}{name}{high}"

    def _in_range(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (self.high is not None and (value > self.high or (self.high_open and value == self.high)))

    def _list_violation(self, name: str, value: Any) -> str | None:
        shown = _show(value)
        limit = f" of at most {self.max_length}" if self.max_length is not None else " of"
        element = self.range_text("each")
        if not isinstance(value, list | tuple) or not value or not all(_is_int(v) for v in value):
            return f"The value of `{name}` is {shown}, but must be a non-empty list{limit} integers."
        if self.max_length is not None and len(value) > self.max_length:
            return f"The value of `{name}` is {shown}, but must be a list{limit} integers."
        if not all(self._in_range(float(v)) for v in value):
            return f"The value of `{name}` is {shown}, but must be a list with `{element}`."
        return None


def int_rule(default: int, low: int, high: int | None = None, doc: str = "") -> ParameterRule:
    return ParameterRule(ParameterKind.INT, default, doc, low=low, high=high)


def float_rule(
    default: float,
    low: float | None = 0.0,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    doc: str = "",
) -> ParameterRule:
    return ParameterRule(
        ParameterKind.FLOAT, default, doc, low=low, high=high, low_open=low_open, high_open=high_open
    )


def choice_rule(default: Any, choices: Iterable[Any], doc: str = "") -> ParameterRule:
    return ParameterRule(ParameterKind.CHOICE, default, doc, choices=tuple(choices))


def bool_rule(default: bool, doc: str = "") -> ParameterRule:
    return ParameterRule(ParameterKind.BOOL, default, doc)


ACTIVATIONS = ("relu", "tanh", "sigmoid", "elu", "selu", "gelu", "swish", "linear")

COMMON_PARAMETERS: Mapping[str, ParameterRule] = MappingProxyType(
    {
        "learning_rate": float_rule(1e-3, 0.0, 1.0, low_open=True, doc="Adam's learning rate"),
        "batch_size": int_rule(256, 1, 1_000_000, doc="rows per gradient step (read by the runner's fit)"),
        "seed": int_rule(0, 0, 2**32 - 1, doc="keras.utils.set_random_seed, called by the runner"),
        "position_threshold": float_rule(
            0.0, 0.0, 1.0, high_open=True,
            doc="a classifier trades only above this probability (atlas_ray.backtest.PositionRule; "
            "read by the trial, not the model)",
        ),
    }
)
"""Hyperparameters every model accepts."""

_ROUNDS = "the boosting rounds are the scheduler's max_t x rounds_per_step, not a hyperparameter"
_STOPPING = "ASHA decides where a trial stops; LightGBM's own early stopping is not used"
NOT_HYPERPARAMETERS: Mapping[str, str] = MappingProxyType(
    {
        "epochs": "the training budget in epochs is the scheduler's max_t, not a hyperparameter",
        "num_boost_round": _ROUNDS,
        "num_iterations": _ROUNDS,
        "n_estimators": _ROUNDS,
        "early_stopping_round": _STOPPING,
        "early_stopping_rounds": _STOPPING,
    }
)


@dataclass(frozen=True)
class ZooModel:
    """A model family: its hyperparameters, default search space and compiled-model builder.

    ``accepts_any`` marks a user's callable: keys outside ``parameters`` are passed through
    unchecked (those in ``parameters``, the common ones, are still checked). ``family`` says how the
    trial trains it (``ModelFamily``): a ``LIGHTGBM`` model's ``build`` gives LightGBM parameters.
    """

    name: str
    doc: str
    windowed: bool
    tasks: frozenset[Task]
    parameters: Mapping[str, ParameterRule]
    space: Callable[[], dict[str, Any]] = field(repr=False)
    builder: Builder = field(repr=False)
    accepts_any: bool = False
    family: ModelFamily = ModelFamily.KERAS

    def default_space(self) -> dict[str, Any]:
        """A fresh dict of Ray Tune domains (``tune.choice``, ``tune.loguniform``, ...)."""
        return self.space()

    def resolve(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """``config`` validated, with every missing parameter at its default."""
        validate_config(self, config)
        resolved = {name: rule.default for name, rule in self.parameters.items()}
        resolved.update(config)
        return resolved

    def build(
        self,
        config: Mapping[str, Any],
        *,
        input_shape: tuple[int, ...],
        task: Task,
        n_classes: int,
        train_X: np.ndarray,
    ) -> Any:
        """A compiled ``keras.Model`` for ``task`` on inputs of ``input_shape`` (one row's shape); for a
        ``ModelFamily.LIGHTGBM`` model, the LightGBM parameters of its boosters.

        ``train_X`` is the training split's features only: models that adapt a preprocessing layer
        (``conv1d_resnet``'s ``Normalization``) adapt on it and nothing else.
        """
        if task not in self.tasks:
            supported = ", ".join(sorted(t.value for t in self.tasks))
            raise SpecError(
                f"model `{self.name}`: task `{task.value}` is not supported; it supports: {supported}"
            )
        shape = tuple(int(n) for n in input_shape)
        if self.windowed and len(shape) != 2:
            raise SpecError(
                f"model `{self.name}`: the input shape is {shape}, but the model reads windows and "
                "needs (window, features): give the featureset a window"
            )
        if task is Task.BINARY and n_classes != 2:
            raise SpecError(f"model `{self.name}`: a binary task has 2 classes, not {n_classes}")
        if task is Task.MULTICLASS and n_classes < 2:
            raise SpecError(f"model `{self.name}`: n_classes is {n_classes}, but must be `n_classes >= 2`")
        return self.builder(
            self.resolve(config), input_shape=shape, task=task, n_classes=n_classes, train_X=train_X
        )


def validate_config(
    model: ZooModel, config_or_space_keys: Mapping[str, Any] | Iterable[str], *, where: str = ""
) -> None:
    """Raise ``SpecError`` naming the model and parameter for an unknown parameter or a bad value.

    Takes sampled values, a search space (Ray Tune domains are checked by their bounds or
    categories, ``{"grid_search": [...]}`` by each value; ``tune.sample_from`` is checked once
    sampled), or just the keys. ``where`` prefixes the message (e.g. "unit `june`").
    """
    prefix = f"{where}, model `{model.name}`" if where else f"model `{model.name}`"
    items: Iterable[tuple[str, Any]]
    if isinstance(config_or_space_keys, Mapping):
        items = config_or_space_keys.items()
    else:
        items = ((key, _NO_VALUE) for key in config_or_space_keys)
    for key, value in items:
        if not isinstance(key, str):
            raise SpecError(f"{prefix}: parameter names are strings, not {key!r}")
        rule = model.parameters.get(key)
        if rule is None:
            if model.accepts_any:
                continue
            if key in NOT_HYPERPARAMETERS:
                raise SpecError(f"{prefix}: parameter `{key}` is not accepted: {NOT_HYPERPARAMETERS[key]}")
            known = ", ".join(sorted(model.parameters))
            raise SpecError(f"{prefix} has no parameter `{key}`; it accepts: {known}")
        if value is _NO_VALUE:
            continue
        for candidate in _values_to_check(key, rule, value):
            problem = rule.violation(key, candidate)
            if problem is not None:
                raise SpecError(f"{prefix}, parameter `{key}`: {problem}")



class _NoValue:
    pass


_NO_VALUE = _NoValue()


def _values_to_check(name: str, rule: ParameterRule, value: Any) -> list[Any]:
    """The concrete values standing for ``value``: itself, a grid's values, a domain's categories or
    the bounds a numeric domain can reach."""
    if isinstance(value, Mapping) and set(value) == {"grid_search"}:
        return list(value["grid_search"])
    domain_type = type(value).__module__
    if not domain_type.startswith("ray.tune.search"):
        return [value]
    from ray.tune.search.sample import Categorical, Float, Function, Integer, Quantized

    if isinstance(value, Categorical):
        return list(value.categories)
    if isinstance(value, Function):
        return []  # sample_from: checked on sampled values
    if isinstance(value, Float):
        if rule.kind is ParameterKind.INT:
            raise SpecError(
                f"parameter `{name}`: the space gives a float range {value.domain_str}, but `{name}` "
                "takes integers: use tune.randint / tune.qrandint / tune.choice"
            )
        upper = float(value.upper)
        if rule.high_open and rule.high is not None and upper == rule.high:
            upper = math.nextafter(upper, -math.inf)  # uniform sampling never reaches the upper bound
        return [float(value.lower), upper]
    if isinstance(value, Integer):
        sampler = value.get_sampler()
        inclusive = isinstance(sampler, Quantized) and sampler.q != 1
        return [int(value.lower), int(value.upper) if inclusive else int(value.upper) - 1]
    return [value]


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, np.generic):
        return repr(value.item())
    return repr(value)
