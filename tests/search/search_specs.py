"""Small real specs for the search tests: the june features on a few days of real minute bars.

Also the models a test needs that the zoo does not hold: a build that raises, one whose loss is NaN,
and a keras-tuner HyperModel. This module is registered with cloudpickle to travel by value, so Ray
workers need not import it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import keras_tuner
import ray.cloudpickle
from ray import tune

from atlas_ray.featurestore import (
    FeatureLabelSet,
    InterExchangeSpread,
    LogReturns,
    Midpoint,
    Percentiles,
    TimeSplit,
    Volume,
)
from atlas_ray.search import ASHA, Mode, ModelSpec, Resources, WorkSpec, WorkUnit

FEATURES = [
    LogReturns().coinbase().one_min(),
    LogReturns().coinbase().one_min().lookback(5),
    LogReturns().kraken().one_min().lookback(5),
    Volume().coinbase().one_min(),
    InterExchangeSpread(Midpoint().coinbase().one_min(), Midpoint().kraken().one_min()),
]
LABEL = LogReturns().coinbase().one_min().lookforward(1)


def direction(window: int | None = None) -> FeatureLabelSet:
    """3-class direction of Coinbase's next minute from five Coinbase / Kraken features."""
    return FeatureLabelSet(FEATURES, [LABEL], categories=Percentiles((33.3, 66.7)), window=window)


def small_dnn(num_samples: int = 2) -> ModelSpec:
    return ModelSpec(
        "dnn",
        "dnn",
        {"hidden_units": tune.choice([[3], [6]]), "learning_rate": 3e-3, "batch_size": 256, "dropout": 0.0},
        num_samples=num_samples,
    )


def spec(
    name: str,
    models: Sequence[ModelSpec],
    *,
    start: str = "2023-03-01",
    end: str = "2023-03-02",
    max_t: int = 2,
    grace_period: int = 1,
    reduction_factor: int = 2,
    featureset: Any = None,
    max_failures: int = 0,
    split: Any = None,
    seed: int = 7,
) -> WorkSpec:
    return WorkSpec(
        name=name,
        units=[
            WorkUnit(
                "direction",
                featureset=featureset if featureset is not None else direction(),
                start=start,
                end=end,
                split=split if split is not None else TimeSplit(train=0.7, validation=0.15, test=0.15),
                models=list(models),
            )
        ],
        scheduler=ASHA(
            max_t=max_t,
            grace_period=grace_period,
            reduction_factor=reduction_factor,
            metric="val_loss",
            mode=Mode.MIN,
        ),
        resources=Resources(cpu=1),
        max_failures=max_failures,
        seed=seed,
    )


def broken_build(config: dict[str, Any]) -> Any:
    """A user's build that raises."""
    raise ValueError(f"this model cannot be built (units={config.get('units')})")


def nan_build(config: dict[str, Any]) -> Any:
    """A compiled model whose loss is NaN from the first batch."""
    import keras

    model = keras.Sequential([keras.Input((len(FEATURES),)), keras.layers.Dense(3, activation="softmax")])

    def nan_loss(y_true: Any, y_pred: Any) -> Any:
        return keras.ops.mean(y_pred) * float("nan")

    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=nan_loss)
    return model


class TinyHyperModel(keras_tuner.HyperModel):
    """Plain keras-tuner code: a dense classifier with a tunable width and learning rate."""

    def __init__(self, n_features: int = len(FEATURES), n_classes: int = 3) -> None:
        super().__init__()
        self.n_features = n_features
        self.n_classes = n_classes

    def build(self, hp: keras_tuner.HyperParameters) -> Any:
        import keras

        units = hp.Int("units", 2, 8, step=2)
        rate = hp.Float("lr", 1e-3, 1e-2, sampling="log")
        model = keras.Sequential(
            [
                keras.Input((self.n_features,)),
                keras.layers.Dense(units, activation=hp.Choice("activation", ["relu", "tanh"])),
                keras.layers.Dense(self.n_classes, activation="softmax"),
            ]
        )
        model.compile(
            optimizer=keras.optimizers.Adam(rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model


ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
