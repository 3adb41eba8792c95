"""Keras pieces every zoo model shares: regularisers, the task's output head, compiling (and compiling a
user's model unless its author did, ``compile_if_needed``).

The output head and loss follow the task: one sigmoid unit and ``binary_crossentropy`` for
``Task.BINARY`` (labels 0/1), ``n_classes`` softmax units and ``sparse_categorical_crossentropy`` for
``Task.MULTICLASS`` (integer labels), one linear unit and ``mse`` for ``Task.REGRESSION``. Metrics are
named so the per-epoch history keys are stable: ``accuracy`` and ``auc`` (classifiers), ``mae``
(regressors).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from atlas_ray.errors import SpecError
from atlas_ray.featurestore import Task
from atlas_ray.search._zoo_model import COMMON_PARAMETERS

__all__ = [
    "SparseMulticlassAUC",
    "compile_for_task",
    "compile_if_needed",
    "flatten_rows",
    "output_head",
    "output_width",
    "regularizer",
]


@keras.saving.register_keras_serializable(package="atlas_ray")
class SparseMulticlassAUC(keras.metrics.AUC):  # type: ignore[misc]
    """Macro one-vs-rest ROC AUC for softmax outputs and integer labels.

    Keras' ``AUC`` wants one-hot labels; this one-hot encodes integer labels and averages the
    per-class AUCs (``multi_label=True``). Registered for ``.keras`` saving as ``atlas_ray>...``.
    """

    def __init__(self, n_classes: int, **kwargs: Any) -> None:
        kwargs["multi_label"] = True
        kwargs["num_labels"] = n_classes
        super().__init__(**kwargs)
        self.n_classes = n_classes

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        return super().update_state(keras.ops.one_hot(labels, self.n_classes), y_pred, sample_weight)

    def get_config(self) -> dict[str, Any]:
        config = dict(super().get_config())
        config.pop("multi_label", None)
        config.pop("num_labels", None)
        config["n_classes"] = self.n_classes
        return config


def regularizer(l1: float, l2: float) -> Any:
    """``L1L2(l1, l2)``, or ``None`` when both are zero."""
    if l1 == 0 and l2 == 0:
        return None
    return keras.regularizers.L1L2(l1=float(l1), l2=float(l2))


def output_width(task: Task, n_classes: int) -> int:
    """Units of the output layer: ``n_classes`` for multi-class, else 1."""
    return n_classes if task is Task.MULTICLASS else 1


def output_head(x: Any, task: Task, n_classes: int, kernel_regularizer: Any = None) -> Any:
    """The task's output layer applied to ``x``."""
    activation = {Task.BINARY: "sigmoid", Task.MULTICLASS: "softmax", Task.REGRESSION: "linear"}[task]
    return keras.layers.Dense(
        output_width(task, n_classes),
        activation=activation,
        kernel_regularizer=kernel_regularizer,
        name="output",
    )(x)


def flatten_rows(x: Any, input_shape: tuple[int, ...]) -> Any:
    """``x`` flattened to ``(batch, features)`` when one row has more than one axis."""
    return keras.layers.Flatten(name="flatten_window")(x) if len(input_shape) > 1 else x


def compile_for_task(model: Any, task: Task, n_classes: int, learning_rate: float) -> Any:
    """Compile ``model`` with Adam(``learning_rate``), the task's loss and the named metrics."""
    metrics: list[Any]
    if task is Task.BINARY:
        loss = "binary_crossentropy"
        metrics = [keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")]
    elif task is Task.MULTICLASS:
        loss = "sparse_categorical_crossentropy"
        metrics = [
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            SparseMulticlassAUC(n_classes, name="auc"),
        ]
    else:
        loss = "mse"
        metrics = [keras.metrics.MeanAbsoluteError(name="mae")]
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss=loss, metrics=metrics)
    return model


def compile_if_needed(
    model: Any, config: Mapping[str, Any], name: str, task: Task, n_classes: int
) -> Any:
    """``model`` compiled for ``task`` unless its author compiled it; ``SpecError`` if it is no Keras
    model or its output width does not fit the task."""
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
