"""The one build every zoo model follows; a model states only its body.

::

    keras.Input(one row's shape)        named "window" for a windowed model, else "features"
    -> Flatten                          a model that does not read windows, given windows
    -> the model's body                 (``Body``: layers of its own)
    -> the task's output head           with the model's l1 / l2 (those it declares) on its kernel
    -> keras.Model(name=the zoo name)   compiled with Adam(learning_rate), the task's loss and metrics

``zoo_model(..., body=...)`` makes the ``ZooModel`` whose builder is that skeleton around ``body``.
Keras is imported only when a model is built, so reading the zoo stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from atlas_ray.featurestore import Task
from atlas_ray.search._zoo_model import Builder, ParameterRule, ZooModel

__all__ = ["Body", "BuildContext", "skeleton_builder", "zoo_model"]


@dataclass(frozen=True)
class BuildContext:
    """What a body may read besides its hyperparameters: one row's shape, the task, the class count,
    and the training split's features (for preprocessing adapted on training data only)."""

    input_shape: tuple[int, ...]
    task: Task
    n_classes: int
    train_X: np.ndarray  # noqa: N815 (the name every builder gives it)


Body = Callable[[Any, Mapping[str, Any], BuildContext], Any]
"""``body(x, config, context)``: the model's own layers applied to ``x`` (the input, flattened where
the model does not read windows); returns the tensor the output head reads."""


def skeleton_builder(body: Body, *, name: str, windowed: bool) -> Builder:
    """The zoo's ``build(config, *, input_shape, task, n_classes, train_X)`` around ``body``."""

    def build(
        config: Mapping[str, Any],
        *,
        input_shape: tuple[int, ...],
        task: Task,
        n_classes: int,
        train_X: np.ndarray,
    ) -> Any:
        import keras

        from atlas_ray.search._models._common import compile_for_task, flatten_rows, output_head, regularizer

        inputs = keras.Input(shape=input_shape, name="window" if windowed else "features")
        x = inputs if windowed else flatten_rows(inputs, input_shape)
        x = body(x, config, BuildContext(input_shape, task, n_classes, train_X))
        penalty = regularizer(float(config.get("l1", 0.0)), float(config.get("l2", 0.0)))
        outputs = output_head(x, task, n_classes, kernel_regularizer=penalty)
        model = keras.Model(inputs, outputs, name=name)
        return compile_for_task(model, task, n_classes, float(config["learning_rate"]))

    return build


def zoo_model(
    *,
    name: str,
    doc: str,
    windowed: bool,
    tasks: frozenset[Task],
    parameters: Mapping[str, ParameterRule],
    space: Callable[[], dict[str, Any]],
    body: Body,
) -> ZooModel:
    """The ``ZooModel`` called ``name`` whose builder is the skeleton around ``body``."""
    return ZooModel(
        name=name,
        doc=doc,
        windowed=windowed,
        tasks=tasks,
        parameters=parameters,
        space=space,
        builder=skeleton_builder(body, name=name, windowed=windowed),
    )
