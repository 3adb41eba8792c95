"""keras-tuner HyperModels on Ray Tune: declared hyperparameters become Ray Tune domains of the right
types and ranges, sampled values reach the built model, conditional and dynamic hyperparameters are
discovered, and the HyperModel runs unchanged on real minute data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import keras_tuner
import numpy as np
import pytest
from ray import cloudpickle
from ray.tune.search.sample import Categorical, Float, Integer, LogUniform, Quantized

from atlas_ray.errors import SpecError
from atlas_ray.featurestore._featuresets._prepared import Task
from atlas_ray.search._hypermodel import (
    hypermodel_builder,
    hypermodel_zoo_model,
    hyperparameters_for,
    space_from_hypermodel,
)
from atlas_ray.search._zoo import as_zoo_model, validate_config
from tests.search.zoo_data import MinuteData, load_minute_data

pytestmark = pytest.mark.slow


class DirectionHyperModel(keras_tuner.HyperModel):
    """Three-class direction of the next minute's return: an ordinary keras-tuner HyperModel."""

    def __init__(self, n_features: int) -> None:
        super().__init__(name="direction")
        self.n_features = n_features
        self.builds = 0

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        self.builds += 1
        inputs = keras.Input((self.n_features,))
        x = keras.layers.Dense(
            hp.Int("units", min_value=4, max_value=32, step=4),
            activation=hp.Choice("activation", ["relu", "tanh"]),
            name="hidden",
        )(inputs)
        if hp.Boolean("dropout"):
            x = keras.layers.Dropout(hp.Fixed("rate", 0.25), name="dropout")(x)
        outputs = keras.layers.Dense(3, activation="softmax")(x)
        model = keras.Model(inputs, outputs)
        model.compile(
            optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-4, 1e-2, sampling="log")),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model


class BranchingHyperModel(keras_tuner.HyperModel):
    """A conditional scope and a layer count that decides which hyperparameters exist."""

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        inputs = keras.Input((5,))
        x = inputs
        for index in range(hp.Int("layers", 1, 3)):
            x = keras.layers.Dense(hp.Int(f"units_{index}", 2, 8), name=f"dense_{index}")(x)
        kind = hp.Choice("head", ["plain", "wide"])
        with hp.conditional_scope("head", ["wide"]):
            if kind == "wide":
                x = keras.layers.Dense(hp.Int("wide_units", 8, 16, sampling="log"), name="wide")(x)
        return keras.Model(inputs, keras.layers.Dense(1)(x))


@pytest.fixture(scope="module")
def data(data_dir: Path) -> MinuteData:
    return load_minute_data(data_dir)


def test_declared_hyperparameters_become_ray_tune_domains() -> None:
    space = space_from_hypermodel(DirectionHyperModel(5))
    assert set(space) == {"units", "activation", "dropout", "rate", "lr"}
    units = space["units"]
    assert isinstance(units, Integer) and isinstance(units.get_sampler(), Quantized)
    assert (units.lower, units.upper, units.get_sampler().q) == (4, 32, 4)
    assert isinstance(space["activation"], Categorical) and space["activation"].categories == ["relu", "tanh"]
    assert isinstance(space["dropout"], Categorical) and space["dropout"].categories == [True, False]
    assert space["rate"] == 0.25
    lr = space["lr"]
    assert isinstance(lr, Float) and isinstance(lr.get_sampler(), LogUniform)
    assert (lr.lower, lr.upper) == (1e-4, 1e-2)
    rng = np.random.default_rng(0)
    for _ in range(20):  # every sample is one keras-tuner itself could draw
        assert space["units"].sample(random_state=rng) in range(4, 33, 4)
        assert 1e-4 <= space["lr"].sample(random_state=rng) <= 1e-2


def test_discovery_runs_once_and_travels_with_the_hypermodel() -> None:
    hm = DirectionHyperModel(5)
    space = space_from_hypermodel(hm)
    discovery_builds = hm.builds
    assert discovery_builds >= 2  # defaults, then the Boolean switched on to find `rate`
    shipped = cloudpickle.loads(cloudpickle.dumps(hm))  # as Ray ships it to a worker
    assert set(space_from_hypermodel(shipped)) == set(space) and shipped.builds == discovery_builds
    hypermodel_builder(shipped)({"units": 4})
    assert shipped.builds == discovery_builds + 1  # the trial's own build, no rediscovery


def test_sampled_values_reach_the_model() -> None:
    build = hypermodel_builder(DirectionHyperModel(5))
    model = build({"units": 12, "activation": "tanh", "dropout": True, "rate": 0.25, "lr": 3e-3, "seed": 1})
    assert model.get_layer("hidden").units == 12
    assert model.get_layer("hidden").activation.__name__ == "tanh"
    assert model.get_layer("dropout").rate == 0.25
    assert float(model.optimizer.learning_rate) == pytest.approx(3e-3)
    plain = build({"units": 8, "activation": "relu", "dropout": False, "rate": 0.25, "lr": 1e-3})
    assert "dropout" not in [layer.name for layer in plain.layers]
    hp = hyperparameters_for(DirectionHyperModel(5), {"units": 8, "lr": 1e-3, "batch_size": 64, "seed": 3})
    assert hp.values == {"units": 8, "lr": 1e-3}  # the runner's own keys stay out


def test_conditional_and_dynamic_hyperparameters_are_discovered() -> None:
    hm = BranchingHyperModel()
    space = space_from_hypermodel(hm)
    assert set(space) == {"layers", "units_0", "units_1", "units_2", "head", "wide_units"}
    assert (space["layers"].lower, space["layers"].upper) == (1, 4)  # randint: upper exclusive
    assert isinstance(space["wide_units"].get_sampler(), LogUniform)
    build = hypermodel_builder(hm)
    config = {"layers": 2, "units_0": 3, "units_1": 7, "units_2": 5, "head": "plain", "wide_units": 9}
    model = build(config)
    assert [model.get_layer(f"dense_{i}").units for i in range(2)] == [3, 7]
    assert "wide" not in [layer.name for layer in model.layers]  # inactive scope: value ignored
    assert build({**config, "head": "wide"}).get_layer("wide").units == 9


def test_hypermodel_runs_unchanged_on_real_data(data: MinuteData) -> None:
    parts = data.parts(Task.MULTICLASS, windowed=False)
    model = as_zoo_model(DirectionHyperModel(parts["train"].X.shape[1]))
    assert model.name == "direction" and set(model.parameters) >= {"units", "lr", "learning_rate", "seed"}
    space = model.default_space()
    validate_config(model, space)
    rng = np.random.default_rng(1)
    config = {key: value.sample(random_state=rng) if hasattr(value, "sample") else value
              for key, value in space.items()}
    validate_config(model, config)
    keras.utils.set_random_seed(0)
    network = model.build(
        config, input_shape=parts["train"].X.shape[1:], task=Task.MULTICLASS, n_classes=3,
        train_X=parts["train"].X,
    )
    assert network.get_layer("hidden").units == config["units"]
    history = network.fit(parts["train"].X, parts["train"].y, epochs=2, batch_size=256, verbose=0).history
    assert np.isfinite(history["loss"]).all() and len(history["loss"]) == 2
    with pytest.raises(SpecError, match=r"model `direction` has no parameter `width`"):
        validate_config(model, {"width": 3})
    with pytest.raises(SpecError, match=r"model `direction`, parameter `units`: The value of `units` is 40, "
                       r"but must be `4 <= units <= 32`"):
        validate_config(model, {"units": 40})


def test_uncompiled_hypermodel_is_compiled_for_the_task() -> None:
    model = hypermodel_zoo_model(BranchingHyperModel(), name="branching")
    network = model.build(
        {"layers": 1, "units_0": 2, "head": "plain", "learning_rate": 0.02},
        input_shape=(5,), task=Task.REGRESSION, n_classes=1, train_X=np.zeros((4, 5), "float32"),
    )
    assert network.compiled and network.loss == "mse"
    assert float(network.optimizer.learning_rate) == pytest.approx(0.02)


class ReverseLogHyperModel(keras_tuner.HyperModel):
    def build(self, hp: keras_tuner.HyperParameters) -> Any:
        inputs = keras.Input((2,))
        units = hp.Int("units", 2, 64, sampling="reverse_log")
        return keras.Model(inputs, keras.layers.Dense(units)(inputs))


class TwiceHyperModel(keras_tuner.HyperModel):
    def build(self, hp: keras_tuner.HyperParameters) -> Any:
        inputs = keras.Input((2,))
        kind = hp.Choice("kind", ["a", "b"])
        with hp.conditional_scope("kind", ["a"]):
            small = hp.Int("units", 2, 4)
        with hp.conditional_scope("kind", ["b"]):
            large = hp.Int("units", 16, 32)
        return keras.Model(inputs, keras.layers.Dense(small if kind == "a" else large)(inputs))


def test_unsupported_hypermodels_are_refused_in_one_line() -> None:
    with pytest.raises(SpecError, match=r"hyperparameter `units`: sampling='reverse_log' without a step"):
        space_from_hypermodel(ReverseLogHyperModel())
    with pytest.raises(SpecError, match=r"hyperparameter `units` is declared twice with different"):
        space_from_hypermodel(TwiceHyperModel())
    with pytest.raises(SpecError, match=r"model is a function, but must be a keras_tuner.HyperModel"):
        space_from_hypermodel(lambda hp: None)
