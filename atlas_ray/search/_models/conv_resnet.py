"""The Conv1D residual network of the Jane Street TPU notebook, over windows of rows.

As in that notebook (soosten/market-prediction, ``notebooks/tpu.ipynb``: windows of 20 rows, noise
0.1, 64 filters of width 5)::

    window -> Normalization (mean / variance adapted on train_X only)
           -> GaussianNoise(noise_std)                      (active in training only)
           -> skip:  Conv1D(filters, kernel_size) -> BatchNorm                 (projection)
              block: Conv1D -> BatchNorm -> activation -> Conv1D -> BatchNorm  (two conv blocks)
           -> Add(skip, block) -> activation
           -> Flatten | GlobalAveragePooling1D | GlobalMaxPooling1D          (``pooling``)
           -> [Dense(dense_units, activation)] -> Dropout(dropout) -> task's output head (``_skeleton``)

Departures from the notebook: Adam with ``learning_rate`` instead of Nesterov SGD (every zoo model
trains with Adam), an optional hidden dense layer and dropout in the head, and l2 on the conv
kernels. Convolutions use ``padding="same"`` so the window length is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from atlas_ray.featurestore import Task
from atlas_ray.search._models._skeleton import BuildContext, zoo_model
from atlas_ray.search._zoo_model import (
    ACTIVATIONS,
    COMMON_PARAMETERS,
    choice_rule,
    float_rule,
    int_rule,
)

__all__ = ["CONV1D_RESNET", "POOLINGS"]

POOLINGS = ("flatten", "global_average", "global_max")

PARAMETERS = {
    **COMMON_PARAMETERS,
    "filters": int_rule(64, 1, 4096, doc="filters of every Conv1D"),
    "kernel_size": int_rule(5, 1, 1024, doc="width of every Conv1D kernel, in rows"),
    "noise_std": float_rule(0.1, 0.0, doc="stddev of the GaussianNoise added in training"),
    "activation": choice_rule("relu", ACTIVATIONS, doc="activation after the conv blocks"),
    "pooling": choice_rule("flatten", POOLINGS, doc="how the conv output becomes one vector"),
    "dense_units": int_rule(0, 0, 65_536, doc="units of the head's hidden layer (0: none)"),
    "dropout": float_rule(0.0, 0.0, 1.0, high_open=True, doc="dropout before the output layer"),
    "l2": float_rule(0.0, 0.0, doc="L2 penalty on the conv and dense kernels"),
}


def default_space() -> dict[str, Any]:
    from ray import tune

    return {
        "filters": tune.choice([16, 32, 64]),
        "kernel_size": tune.choice([3, 5]),
        "noise_std": tune.choice([0.0, 0.05, 0.1]),
        "pooling": tune.choice(list(POOLINGS)),
        "dense_units": tune.choice([0, 32]),
        "dropout": tune.choice([0.0, 0.1, 0.2]),
        "learning_rate": tune.loguniform(1e-4, 1e-2),
        "batch_size": tune.choice([128, 256, 512]),
    }


def body(x: Any, config: Mapping[str, Any], context: BuildContext) -> Any:
    import keras

    from atlas_ray.search._models._common import regularizer

    train_X, input_shape = context.train_X, context.input_shape
    if train_X.ndim != 3 or tuple(train_X.shape[1:]) != tuple(input_shape):
        raise ValueError(f"train_X has shape {train_X.shape}, but rows of shape {input_shape} were declared")
    penalty = regularizer(0.0, float(config["l2"]))
    activation = config["activation"]

    def conv(name: str) -> Any:
        return keras.layers.Conv1D(
            int(config["filters"]),
            int(config["kernel_size"]),
            padding="same",
            kernel_regularizer=penalty,
            name=name,
        )

    normalization = keras.layers.Normalization(axis=-1, name="normalization")
    normalization.adapt(np.asarray(train_X, dtype="float32"))
    x = normalization(x)
    x = keras.layers.GaussianNoise(float(config["noise_std"]), name="noise")(x)

    skip = keras.layers.BatchNormalization(name="skip_batch_norm")(conv("skip_conv")(x))
    block = keras.layers.BatchNormalization(name="block1_batch_norm")(conv("block1_conv")(x))
    block = keras.layers.Activation(activation, name="block1_activation")(block)
    block = keras.layers.BatchNormalization(name="block2_batch_norm")(conv("block2_conv")(block))
    x = keras.layers.Add(name="residual_add")([skip, block])
    x = keras.layers.Activation(activation, name="residual_activation")(x)

    pooling = {
        "flatten": keras.layers.Flatten,
        "global_average": keras.layers.GlobalAveragePooling1D,
        "global_max": keras.layers.GlobalMaxPooling1D,
    }[config["pooling"]]
    x = pooling(name="pooling")(x)
    if int(config["dense_units"]) > 0:
        x = keras.layers.Dense(
            int(config["dense_units"]), activation=activation, kernel_regularizer=penalty, name="head_dense"
        )(x)
    if float(config["dropout"]) > 0:
        x = keras.layers.Dropout(float(config["dropout"]), name="head_dropout")(x)
    return x


CONV1D_RESNET = zoo_model(
    name="conv1d_resnet",
    doc="The Jane Street TPU notebook's Conv1D residual network: normalisation adapted on training "
    "data, gaussian noise, two conv blocks with batch norm and a skip connection, dense head.",
    windowed=True,
    tasks=frozenset(Task),
    parameters=PARAMETERS,
    space=default_space,
    body=body,
)
