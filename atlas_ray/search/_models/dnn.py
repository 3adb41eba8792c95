"""DNN classifier and regressor: dense hidden layers, then the task's output head (``_skeleton``).

Each hidden layer is ``Dense(units, l1/l2 on the kernel)``, then ``BatchNormalization`` when
``batch_norm``, then the activation, then ``Dropout(dropout)`` when ``dropout > 0``. ``hidden_units``
lists the layer sizes (Atlas' ``[3]``, ``[6]``, ``[3, 3]``, ``[6, 6]``). A windowed input is flattened.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from atlas_ray.featurestore import Task
from atlas_ray.search._models._skeleton import BuildContext, zoo_model
from atlas_ray.search._zoo_model import (
    ACTIVATIONS,
    COMMON_PARAMETERS,
    ParameterKind,
    ParameterRule,
    bool_rule,
    choice_rule,
    float_rule,
)

__all__ = ["DNN"]

PARAMETERS = {
    **COMMON_PARAMETERS,
    "hidden_units": ParameterRule(
        ParameterKind.INT_LIST, (6, 6), "sizes of the hidden layers", low=1, high=65_536, max_length=32
    ),
    "activation": choice_rule("relu", ACTIVATIONS, doc="activation of the hidden layers"),
    "l1": float_rule(0.0, 0.0, doc="L1 penalty on every kernel"),
    "l2": float_rule(0.0, 0.0, doc="L2 penalty on every kernel"),
    "dropout": float_rule(0.0, 0.0, 1.0, high_open=True, doc="dropout rate after each hidden layer"),
    "batch_norm": bool_rule(False, doc="BatchNormalization before each activation"),
}


def default_space() -> dict[str, Any]:
    from ray import tune

    return {
        "hidden_units": tune.choice([[3], [6], [3, 3], [6, 6]]),
        "activation": tune.choice(["relu", "tanh"]),
        "l1": tune.choice([0.0, 1e-5, 1e-4]),
        "l2": tune.choice([0.0, 1e-5, 1e-4]),
        "dropout": tune.choice([0.0, 0.1, 0.2]),
        "batch_norm": tune.choice([False, True]),
        "learning_rate": tune.loguniform(1e-4, 1e-2),
        "batch_size": tune.choice([128, 256, 512]),
    }


def body(x: Any, config: Mapping[str, Any], context: BuildContext) -> Any:
    import keras

    from atlas_ray.search._models._common import regularizer

    penalty = (float(config["l1"]), float(config["l2"]))
    for index, units in enumerate(config["hidden_units"]):
        x = keras.layers.Dense(int(units), kernel_regularizer=regularizer(*penalty), name=f"dense_{index}")(x)
        if config["batch_norm"]:
            x = keras.layers.BatchNormalization(name=f"batch_norm_{index}")(x)
        x = keras.layers.Activation(config["activation"], name=f"activation_{index}")(x)
        if config["dropout"] > 0:
            x = keras.layers.Dropout(float(config["dropout"]), name=f"dropout_{index}")(x)
    return x


DNN = zoo_model(
    name="dnn",
    doc="Dense network: hidden layers with l1/l2, dropout and optional batch norm; classifier or "
    "regressor by task.",
    windowed=False,
    tasks=frozenset(Task),
    parameters=PARAMETERS,
    space=default_space,
    body=body,
)
