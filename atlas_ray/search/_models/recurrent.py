"""LSTM and GRU over windows of rows.

``layers`` stacked recurrent layers of ``units`` each (all but the last return sequences), each with
``dropout`` on its inputs, ``recurrent_dropout`` on its state and ``l2`` on its kernels, then the
task's output head on the last state (``_skeleton``). Input: ``(window, features)`` per row. A non-zero
``recurrent_dropout`` makes TensorFlow fall back from the fused cuDNN kernel on GPUs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from atlas_ray.featurestore import Task
from atlas_ray.search._models._skeleton import Body, BuildContext, zoo_model
from atlas_ray.search._zoo_model import COMMON_PARAMETERS, float_rule, int_rule

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


def _body(layer_name: str, family: str) -> Body:
    """The stacked ``keras.layers.<layer_name>`` layers, named ``<family>_<index>``."""

    def body(x: Any, config: Mapping[str, Any], context: BuildContext) -> Any:
        import keras

        from atlas_ray.search._models._common import regularizer

        layer = getattr(keras.layers, layer_name)
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
        return x

    return body


LSTM = zoo_model(
    name="lstm",
    doc="Stacked LSTM over windows of rows, then the task's output head.",
    windowed=True,
    tasks=frozenset(Task),
    parameters=PARAMETERS,
    space=default_space,
    body=_body("LSTM", "lstm"),
)

GRU = zoo_model(
    name="gru",
    doc="Stacked GRU over windows of rows, then the task's output head.",
    windowed=True,
    tasks=frozenset(Task),
    parameters=PARAMETERS,
    space=default_space,
    body=_body("GRU", "gru"),
)
