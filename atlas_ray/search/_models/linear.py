"""Linear regression and logistic regression: one dense layer with l1/l2 on its weights.

``linear``: ``y = X w + b`` trained on mse, for regression. ``logistic``: ``sigmoid(X w + b)`` for
binary labels, ``softmax(X W + b)`` (multinomial logistic regression) for multi-class labels. A
windowed input is flattened, so the model sees every lag of every feature.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from atlas_ray.featurestore import Task
from atlas_ray.search._zoo_model import COMMON_PARAMETERS, ZooModel, float_rule

__all__ = ["LINEAR", "LOGISTIC"]

PARAMETERS = {
    **COMMON_PARAMETERS,
    "l1": float_rule(0.0, 0.0, doc="L1 penalty on the weights"),
    "l2": float_rule(0.0, 0.0, doc="L2 penalty on the weights"),
}


def default_space() -> dict[str, Any]:
    from ray import tune

    return {
        "l1": tune.choice([0.0, 1e-5, 1e-4, 1e-3]),
        "l2": tune.choice([0.0, 1e-5, 1e-4, 1e-3]),
        "learning_rate": tune.loguniform(1e-4, 1e-2),
        "batch_size": tune.choice([128, 256, 512]),
    }


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

    inputs = keras.Input(shape=input_shape, name="features")
    x = flatten_rows(inputs, input_shape)
    outputs = output_head(x, task, n_classes, kernel_regularizer=regularizer(config["l1"], config["l2"]))
    model = keras.Model(inputs, outputs, name=f"{'linear' if task is Task.REGRESSION else 'logistic'}")
    return compile_for_task(model, task, n_classes, float(config["learning_rate"]))


LINEAR = ZooModel(
    name="linear",
    doc="Linear regression (one linear unit, mse) with l1/l2 on the weights.",
    windowed=False,
    tasks=frozenset({Task.REGRESSION}),
    parameters=PARAMETERS,
    space=default_space,
    builder=build,
)

LOGISTIC = ZooModel(
    name="logistic",
    doc="Logistic regression (sigmoid for binary, softmax for multi-class) with l1/l2 on the weights.",
    windowed=False,
    tasks=frozenset({Task.BINARY, Task.MULTICLASS}),
    parameters=PARAMETERS,
    space=default_space,
    builder=build,
)
