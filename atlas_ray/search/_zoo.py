"""The model zoo: named Keras 3 model families, their hyperparameters and the rules those obey.

A ``ZooModel`` is a frozen definition: its name, what it is, whether it reads windows
(``(rows, window, features)``), which tasks it supports, every hyperparameter it accepts with a
``ParameterRule`` (type and range), a default Ray Tune search space, and ``build`` returning a
compiled ``keras.Model``. ``ZOO`` maps names to the built-in families (``linear``, ``logistic``,
``dnn``, ``lstm``, ``gru``, ``conv1d_resnet``, and beside them the gradient-boosted trees of
``lightgbm``, ``ModelFamily.LIGHTGBM``; see ``atlas_ray/search/_models``); ``get_model``
looks one up, ``callable_model`` wraps a user's ``build(config) -> keras.Model`` and
``as_zoo_model`` turns anything a ``ModelSpec`` accepts (a name, a callable, a keras-tuner
``HyperModel`` or its class) into a ``ZooModel`` and ``full_space`` gives a ``ModelSpec``'s full search
space.

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

Keras is imported only when a model is built, so validating a spec stays cheap. The definitions and
rules live in ``_zoo_model``, which the model modules import; this module (the registry) imports them,
never the other way round.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from atlas_ray.errors import SpecError
from atlas_ray.featurestore import Task
from atlas_ray.search._zoo_model import (
    ACTIVATIONS,
    COMMON_PARAMETERS,
    NOT_HYPERPARAMETERS,
    Builder,
    ModelFamily,
    ParameterKind,
    ParameterRule,
    ZooModel,
    bool_rule,
    choice_rule,
    float_rule,
    int_rule,
    validate_config,
)

if TYPE_CHECKING:
    from atlas_ray.search._spec import ModelSpec

__all__ = [
    "ACTIVATIONS",
    "COMMON_PARAMETERS",
    "NOT_HYPERPARAMETERS",
    "Builder",
    "ModelFamily",
    "ParameterKind",
    "ParameterRule",
    "ZOO",
    "ZooModel",
    "as_zoo_model",
    "bool_rule",
    "callable_model",
    "choice_rule",
    "float_rule",
    "full_space",
    "get_model",
    "int_rule",
    "validate_config",
]


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
        config: Mapping[str, Any],
        *,
        input_shape: tuple[int, ...],
        task: Task,
        n_classes: int,
        train_X: np.ndarray,
    ) -> Any:
        from atlas_ray.search._models._common import compile_if_needed

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


def as_zoo_model(model: Any, name: str | None = None) -> ZooModel:
    """Whatever a ``ModelSpec`` names as its model, as a ``ZooModel``: a zoo name, a ``ZooModel``, a
    keras-tuner ``HyperModel`` (its declared hyperparameters become the parameters and the default
    space; a ``HyperModel`` class is instantiated with no arguments), or a callable
    ``build(config) -> keras.Model``."""
    if isinstance(model, type):  # a HyperModel class: instantiate it with no arguments
        model = model()
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


def full_space(spec: ModelSpec) -> dict[str, Any]:
    """A ``ModelSpec``'s full search space: its model's default space with ``spec.space`` laid over
    it (the spec wins, key by key)."""
    zoo_model = as_zoo_model(spec.model, name=spec.name)
    return {**zoo_model.default_space(), **dict(spec.space)}


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
