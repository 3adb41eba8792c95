"""The model zoo: named Keras 3 model families, their hyperparameters and the rules those obey.

A ``ZooModel`` is a frozen definition: its name, what it is, whether it reads windows
(``(rows, window, features)``), which tasks it supports, every hyperparameter it accepts with a
``ParameterRule`` (type and range), a default Ray Tune search space, and ``build`` returning a
compiled ``keras.Model``. ``ZOO`` maps names to the built-in families (``linear``, ``logistic``,
``dnn``, ``lstm``, ``gru``, ``conv1d_resnet``; see ``atlas_ray/search/_models``); ``get_model``
looks one up, ``callable_model`` wraps a user's ``build(config) -> keras.Model`` and
``as_zoo_model`` turns anything a ``ModelSpec`` accepts (a name, a callable, a keras-tuner
``HyperModel``) into a ``ZooModel``.

Conventions every model follows (the search runner relies on them):

- ``config`` is a plain resolved dict (Ray Tune's sampled values); keys it lacks take the rule's
  default (``ZooModel.resolve``).
- Every model accepts ``learning_rate`` (Adam's), ``batch_size`` (read by the runner's ``fit``) and
  ``seed`` (the runner calls ``keras.utils.set_random_seed(seed)`` before ``build``; a build uses only
  Keras' seeded global generators, so the same seed gives the same initial weights). ``epochs`` is
  not a hyperparameter: the training budget is the scheduler's ``max_t``.
- Compiled with Adam and the task's loss: ``binary_crossentropy`` on one sigmoid unit for
  ``Task.BINARY`` (labels 0/1), ``sparse_categorical_crossentropy`` on a softmax for
  ``Task.MULTICLASS``, ``mse`` on one linear unit for ``Task.REGRESSION``. Per-epoch metrics:
  ``accuracy`` and ``auc`` for classifiers (multi-class ``auc`` is the macro average of one-vs-rest
  AUCs), ``mae`` for regressors, so history keys are ``loss, accuracy, auc`` / ``loss, mae`` and their
  ``val_`` forms.
- Models that do not read windows flatten a windowed input (``(window, features)`` becomes
  ``window * features`` inputs); windowed models require ``input_shape == (window, features)``.

Keras is imported only when a model is built, so validating a spec stays cheap.
"""

from __future__ import annotations

import enum
import math
import numbers
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from atlas_ray.errors import SpecError
from atlas_ray.featurestore._prepared import Task

__all__ = [
    "COMMON_PARAMETERS",
    "ParameterKind",
    "ParameterRule",
    "ZOO",
    "ZooModel",
    "as_zoo_model",
    "callable_model",
    "get_model",
    "validate_config",
]

Builder = Callable[..., Any]
"""``builder(config, *, input_shape, task, n_classes, train_X) -> keras.Model`` (compiled)."""


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
    }
)
"""Hyperparameters every model accepts."""

NOT_HYPERPARAMETERS: Mapping[str, str] = MappingProxyType(
    {"epochs": "the training budget in epochs is the scheduler's max_t, not a hyperparameter"}
)


@dataclass(frozen=True)
class ZooModel:
    """A model family: its hyperparameters, default search space and compiled-model builder.

    ``accepts_any`` marks a user's callable: keys outside ``parameters`` are passed through
    unchecked (those in ``parameters``, the common ones, are still checked).
    """

    name: str
    doc: str
    windowed: bool
    tasks: frozenset[Task]
    parameters: Mapping[str, ParameterRule]
    space: Callable[[], dict[str, Any]] = field(repr=False)
    builder: Builder = field(repr=False)
    accepts_any: bool = False

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
        """A compiled ``keras.Model`` for ``task`` on inputs of ``input_shape`` (one row's shape).

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


def get_model(name: str) -> ZooModel:
    """The zoo model called ``name``; ``SpecError`` listing the known names otherwise."""
    try:
        return ZOO[name]
    except KeyError:
        known = ", ".join(sorted(ZOO))
        raise SpecError(f"model `{name}` is not in the zoo; known models: {known}") from None


def callable_model(fn: Callable[[Mapping[str, Any]], Any], name: str | None = None) -> ZooModel:
    """Wrap a user's ``build(config) -> keras.Model`` as a ``ZooModel``.

    It accepts any parameter (the common ones are still checked), supports every task and does not
    require windows (it gets whatever the featureset gives). If the returned model is not compiled it
    is compiled here with Adam(``learning_rate``) and the task's loss and metrics, after checking its
    output width (1 for binary and regression, ``n_classes`` for multi-class).
    """
    model_name = name or str(getattr(fn, "__name__", type(fn).__name__))

    def build(
        config: Mapping[str, Any], *, input_shape: tuple[int, ...], task: Task, n_classes: int,
        train_X: np.ndarray,
    ) -> Any:
        return compile_if_needed(fn(dict(config)), config, model_name, task, n_classes)

    return ZooModel(
        name=model_name,
        doc=(getattr(fn, "__doc__", None) or "a user's build(config) -> keras.Model").strip(),
        windowed=False,
        tasks=frozenset(Task),
        parameters=COMMON_PARAMETERS,
        space=dict,
        builder=build,
        accepts_any=True,
    )


def compile_if_needed(
    model: Any, config: Mapping[str, Any], name: str, task: Task, n_classes: int
) -> Any:
    """``model`` compiled for ``task`` unless its author compiled it; ``SpecError`` if it is no Keras
    model or its output width does not fit the task."""
    import keras

    from atlas_ray.search._models._common import compile_for_task, output_width

    if not isinstance(model, keras.Model):
        raise SpecError(
            f"model `{name}`: build returned {type(model).__name__}, but must return a keras.Model"
        )
    if getattr(model, "compiled", False):
        return model
    width = model.outputs[0].shape[-1] if getattr(model, "outputs", None) else None
    expected = output_width(task, n_classes)
    if width is not None and int(width) != expected:
        raise SpecError(
            f"model `{name}`: the output has {width} units, but a {task.value} task needs {expected}"
        )
    rate = config.get("learning_rate", COMMON_PARAMETERS["learning_rate"].default)
    compile_for_task(model, task, n_classes, float(rate))
    return model


def as_zoo_model(model: Any, name: str | None = None) -> ZooModel:
    """Whatever a ``ModelSpec`` names as its model, as a ``ZooModel``: a zoo name, a ``ZooModel``, a
    keras-tuner ``HyperModel`` (its declared hyperparameters become the parameters and the default
    space), or a callable ``build(config) -> keras.Model``."""
    if isinstance(model, ZooModel):
        return model
    if isinstance(model, str):
        return get_model(model)
    if hasattr(model, "declare_hyperparameters") and hasattr(model, "build"):
        from atlas_ray.search._hypermodel import hypermodel_zoo_model

        return hypermodel_zoo_model(model, name=name)
    if callable(model):
        return callable_model(model, name=name)
    raise SpecError(
        f"model is a {type(model).__name__}, but must be a zoo name, a keras_tuner.HyperModel or a "
        "callable build(config) -> keras.Model"
    )


class _Registry(Mapping[str, ZooModel]):
    """The built-in models, loaded from ``atlas_ray.search._models`` on first use."""

    def __init__(self) -> None:
        self._models: dict[str, ZooModel] | None = None

    def _load(self) -> dict[str, ZooModel]:
        if self._models is None:
            from atlas_ray.search._models import MODELS

            self._models = {model.name: model for model in MODELS}
        return self._models

    def __getitem__(self, name: str) -> ZooModel:
        return self._load()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


ZOO: Mapping[str, ZooModel] = _Registry()


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
