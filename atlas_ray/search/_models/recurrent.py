"""LSTM and GRU over windows of rows.

``layers`` stacked recurrent layers of ``units`` each (all but the last return sequences), each with
``dropout`` on its inputs, ``recurrent_dropout`` on its state and ``l2`` on its kernels, then the
task's output head on the last state. Input: ``(window, features)`` per row. A non-zero
``recurrent_dropout`` makes TensorFlow fall back from the fused cuDNN kernel on GPUs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from atlas_ray.featurestore import Task
from atlas_ray.search._zoo_model import COMMON_PARAMETERS, ZooModel, float_rule, int_rule

__all__ = ["GRU", "LSTM"]

PARAMETERS = {
    **COMMON_PARAMETERS,
    "units": int_rule(16, 1, 4096, doc="units of each recurrent layer"),
    "layers": int_rule(1, 1, 8, doc="stacked recurrent layers"),
    "dropout": float_rule(0.0, 0.0, 1.0, high_open=True, doc="dropout on each layer's inputs"),
    "recurrent_dropout": float_rule(0.0, 0.0, 1.0, high_open=True, doc="dropout on the recurrent state"),
    "l2": float_rule(0.0, 0.0, doc="L2 penalty on the kernels and the output layer"),
}


def default_space() -> dict[str, Any]:
    from ray import tune

    return {
        "units": tune.choice([8, 16, 32]),
        "layers": tune.choice([1, 2]),
        "dropout": tune.choice([0.0, 0.1, 0.2]),
        "recurrent_dropout": tune.choice([0.0]),
        "l2": tune.choice([0.0, 1e-5, 1e-4]),
        "learning_rate": tune.loguniform(1e-4, 1e-2),
        "batch_size": tune.choice([128, 256, 512]),
    }


def _builder(layer_name: str, family: str) -> Callable[..., Any]:
    def build(
        config: Mapping[str, Any],
        *,
        input_shape: tuple[int, ...],
        task: Task,
        n_classes: int,
        train_X: np.ndarray,
    ) -> Any:
        import keras

        from atlas_ray.search._models._common import compile_for_task, output_head, regularizer

        layer = getattr(keras.layers, layer_name)
        inputs = keras.Input(shape=input_shape, name="window")
        x = inputs
        depth = int(config["layers"])
        for index in range(depth):
            x = layer(
                int(config["units"]),
                return_sequences=index < depth - 1,
                dropout=float(config["dropout"]),
                recurrent_dropout=float(config["recurrent_dropout"]),
                kernel_regularizer=regularizer(0.0, float(config["l2"])),
                name=f"{family}_{index}",
            )(x)
        outputs = output_head(x, task, n_classes, kernel_regularizer=regularizer(0.0, float(config["l2"])))
        model = keras.Model(inputs, outputs, name=family)
        return compile_for_task(model, task, n_classes, float(config["learning_rate"]))

    return build


LSTM = ZooModel(
    name="lstm",
    doc="Stacked LSTM over windows of rows, then the task's output head.",
    windowed=True,
    tasks=frozenset(Task),
    parameters=PARAMETERS,
    space=default_space,
    builder=_builder("LSTM", "lstm"),
)

GRU = ZooModel(
    name="gru",
    doc="Stacked GRU over windows of rows, then the task's output head.",
    windowed=True,
    tasks=frozenset(Task),
    parameters=PARAMETERS,
    space=default_space,
    builder=_builder("GRU", "gru"),
)
