"""The model zoo on real Coinbase minute data: every model builds and trains for every task it
supports, the conv ResNet's normalisation sees training data only, configs and spaces are validated
with the model and parameter named, user callables are wrapped, and builds are seeded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from ray import tune

from atlas_ray.errors import SpecError
from atlas_ray.featurestore._featuresets._prepared import Task
from atlas_ray.search._zoo import (
    COMMON_PARAMETERS,
    ZOO,
    ModelFamily,
    ZooModel,
    as_zoo_model,
    callable_model,
    get_model,
    validate_config,
)
from tests.search.zoo_data import MinuteData, load_minute_data

pytestmark = pytest.mark.slow

TINY: dict[str, dict[str, Any]] = {
    "linear": {"l1": 1e-4, "l2": 1e-4},
    "logistic": {"l1": 1e-4, "l2": 1e-4},
    "dnn": {"hidden_units": [4, 3], "dropout": 0.1, "batch_norm": True, "l2": 1e-4},
    "lstm": {"units": 4, "dropout": 0.1},
    "gru": {"units": 4, "recurrent_dropout": 0.1},
    "conv1d_resnet": {"filters": 8, "kernel_size": 3, "dense_units": 4, "dropout": 0.1},
}
CASES = [(name, task) for name in TINY for task in sorted(ZOO[name].tasks, key=lambda t: t.value)]


@pytest.fixture(scope="module")
def data(data_dir: Path) -> MinuteData:
    return load_minute_data(data_dir)


def _build(model: ZooModel, task: Task, data: MinuteData, config: dict[str, Any]) -> Any:
    train = data.parts(task, model.windowed)["train"]
    return model.build(
        {**config, "learning_rate": 3e-3},
        input_shape=train.X.shape[1:],
        task=task,
        n_classes=max(len(data.classes[task.value]), 1),
        train_X=train.X,
    )


def test_zoo_holds_the_issue_families() -> None:
    assert set(ZOO) == {"linear", "logistic", "dnn", "lstm", "gru", "conv1d_resnet", "lightgbm"}
    assert ZOO["linear"].tasks == {Task.REGRESSION}
    assert ZOO["logistic"].tasks == {Task.BINARY, Task.MULTICLASS}
    assert {name for name, model in ZOO.items() if model.windowed} == {"lstm", "gru", "conv1d_resnet"}
    assert {name for name, model in ZOO.items() if model.family is ModelFamily.LIGHTGBM} == {"lightgbm"}
    assert ZOO["lightgbm"].tasks == set(Task)
    for model in ZOO.values():
        assert "epochs" not in model.parameters
        if model.family is ModelFamily.KERAS:  # (trees take no batch_size; their learning_rate is shrinkage)
            assert set(COMMON_PARAMETERS) <= set(model.parameters)


@pytest.mark.parametrize(("name", "task"), CASES, ids=[f"{n}-{t.value}" for n, t in CASES])
def test_model_trains_two_epochs_on_real_data(name: str, task: Task, data: MinuteData) -> None:
    keras.utils.set_random_seed(0)
    model = ZOO[name]
    parts = data.parts(task, model.windowed)
    network = _build(model, task, data, TINY[name])
    validation = (parts["validation"].X, parts["validation"].y) if name == "dnn" else None
    # One batch per epoch: a partial last batch would make TensorFlow trace the step twice.
    train = parts["train"]
    history = network.fit(
        train.X, train.y, epochs=2, batch_size=len(train.y), verbose=0, validation_data=validation
    ).history
    expected = {"loss", "mae"} if task is Task.REGRESSION else {"loss", "accuracy", "auc"}
    if validation is not None:
        expected |= {f"val_{key}" for key in expected}
    assert set(history) == expected
    assert len(history["loss"]) == 2 and np.isfinite(history["loss"]).all()
    prediction = np.asarray(network(parts["test"].X, training=False))
    width = 3 if task is Task.MULTICLASS else 1
    assert prediction.shape == (len(parts["test"].y), width)
    assert np.isfinite(prediction).all()
    if task is Task.MULTICLASS:
        np.testing.assert_allclose(prediction.sum(axis=1), 1.0, rtol=1e-5)
    if task is Task.BINARY:
        assert ((prediction >= 0) & (prediction <= 1)).all()
    assert network.optimizer.__class__.__name__ == "Adam"
    assert float(network.optimizer.learning_rate) == pytest.approx(3e-3)


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_conv1d_resnet_normalisation_is_adapted_on_train_only(data: MinuteData, tmp_path: Path) -> None:
    parts = data.parts(Task.MULTICLASS, windowed=True)
    network = _build(ZOO["conv1d_resnet"], Task.MULTICLASS, data, TINY["conv1d_resnet"])
    layer = network.get_layer("normalization")
    rows = parts["train"].X.reshape(-1, parts["train"].X.shape[-1]).astype("float64")
    np.testing.assert_allclose(np.ravel(layer.mean), rows.mean(axis=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.ravel(layer.variance), rows.var(axis=0), rtol=1e-4, atol=1e-5)
    everything = np.concatenate([parts[s].X for s in ("train", "validation", "test")])
    assert not np.allclose(np.ravel(layer.mean), everything.reshape(-1, rows.shape[1]).mean(axis=0))
    kinds = {type(network.get_layer(name)).__name__ for name in ("noise", "residual_add")}
    assert kinds == {"GaussianNoise", "Add"}
    # A saved model (custom multi-class AUC, adapted normalisation) reloads and predicts the same.
    network.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    sample = parts["test"].X[:64]
    np.testing.assert_allclose(np.asarray(reloaded(sample)), np.asarray(network(sample)), rtol=1e-6)
    np.testing.assert_allclose(np.ravel(reloaded.get_layer("normalization").mean), np.ravel(layer.mean))


def test_hyperparameters_reach_the_network(data: MinuteData) -> None:
    network = _build(ZOO["dnn"], Task.MULTICLASS, data, {"hidden_units": [5, 3], "activation": "tanh"})
    assert [network.get_layer(f"dense_{i}").units for i in range(2)] == [5, 3]
    assert network.get_layer("activation_0").activation.__name__ == "tanh"
    recurrent = _build(ZOO["gru"], Task.BINARY, data, {"units": 3, "layers": 2})
    assert [recurrent.get_layer(f"gru_{i}").units for i in range(2)] == [3, 3]


def test_seed_makes_the_build_deterministic(data: MinuteData) -> None:
    def weights(seed: int) -> list[np.ndarray]:
        keras.utils.set_random_seed(seed)
        return [np.asarray(w) for w in _build(ZOO["dnn"], Task.BINARY, data, TINY["dnn"]).get_weights()]

    first, again, other = weights(7), weights(7), weights(8)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_unknown_parameter_is_refused_naming_model_and_parameter() -> None:
    with pytest.raises(SpecError, match=r"model `dnn` has no parameter `units`; it accepts: .*hidden_units"):
        validate_config(get_model("dnn"), ["units", "dropout"])
    with pytest.raises(SpecError, match=r"model `lstm`: parameter `epochs` is not accepted: .*max_t"):
        validate_config(get_model("lstm"), {"epochs": 10})


@pytest.mark.parametrize(
    ("name", "config", "message"),
    [
        ("dnn", {"dropout": 1.5}, r"model `dnn`, parameter `dropout`: The value of `dropout` is 1.5, "
         r"but must be `0 <= dropout < 1`\."),
        ("lstm", {"layers": 0}, r"parameter `layers`: The value of `layers` is 0, but must be `1 <= layers"),
        ("dnn", {"hidden_units": [6, 0]}, r"parameter `hidden_units`: .* must be a list with `1 <= each"),
        ("dnn", {"hidden_units": "6,6"}, r"must be a non-empty list of at most 32 integers"),
        ("dnn", {"activation": "rleu"}, r"parameter `activation`: The value of `activation` is 'rleu', "
         r"but must be one of 'relu'"),
        ("linear", {"learning_rate": 0.0}, r"The value of `learning_rate` is 0.0, but must be "
         r"`0 < learning_rate <= 1`"),
        ("gru", {"units": 8.5}, r"The value of `units` is 8.5, but must be an integer"),
        ("conv1d_resnet", {"batch_norm": True}, r"model `conv1d_resnet` has no parameter `batch_norm`"),
        ("dnn", {"batch_norm": 1}, r"The value of `batch_norm` is 1, but must be a bool"),
    ],
)
def test_out_of_range_value_is_refused(name: str, config: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        validate_config(get_model(name), config)


def test_search_space_domains_are_checked_by_their_reach() -> None:
    dnn, lstm = get_model("dnn"), get_model("lstm")
    validate_config(dnn, {"dropout": tune.uniform(0.0, 1.0), "hidden_units": tune.choice([[3], [6, 6]])})
    validate_config(lstm, {"layers": tune.randint(1, 9), "units": tune.qrandint(8, 64, 8)})
    validate_config(lstm, {"units": {"grid_search": [4, 8]}, "seed": tune.sample_from(lambda _: 3)})
    with pytest.raises(SpecError, match=r"parameter `dropout`: The value of `dropout` is 1.5"):
        validate_config(dnn, {"dropout": tune.uniform(0.0, 1.5)})
    with pytest.raises(SpecError, match=r"parameter `layers`: The value of `layers` is 9"):
        validate_config(lstm, {"layers": tune.randint(1, 10)})
    with pytest.raises(SpecError, match=r"parameter `hidden_units`"):
        validate_config(dnn, {"hidden_units": tune.choice([[3], []])})
    with pytest.raises(SpecError, match=r"parameter `units`: the space gives a float range"):
        validate_config(lstm, {"units": tune.uniform(4, 8)})
    with pytest.raises(SpecError, match=r"parameter `units`: The value of `units` is 0"):
        validate_config(lstm, {"units": {"grid_search": [0, 8]}})
    validate_config(dnn, ["dropout", "l1"])  # keys only: nothing to refuse
    with pytest.raises(SpecError, match=r"^unit `june`, model `dnn`, parameter `l1`"):
        validate_config(dnn, {"l1": -1.0}, where="unit `june`")


def test_every_default_space_is_valid_and_samples_valid_configs() -> None:
    rng = np.random.default_rng(0)
    for model in ZOO.values():
        space = model.default_space()
        validate_config(model, space)
        for _ in range(5):
            sampled = {key: domain.sample(random_state=rng) for key, domain in space.items()}
            assert set(model.resolve(sampled)) == set(model.parameters)


def test_get_model_lists_known_names() -> None:
    with pytest.raises(SpecError, match=r"model `resnet` is not in the zoo; known models: conv1d_resnet, "):
        get_model("resnet")


def test_build_refuses_an_unsupported_task_or_missing_window(data: MinuteData) -> None:
    flat = data.parts(Task.REGRESSION, windowed=False)["train"].X
    with pytest.raises(SpecError, match=r"model `logistic`: task `regression` is not supported; it supports: "
                       r"binary, multiclass"):
        ZOO["logistic"].build({}, input_shape=flat.shape[1:], task=Task.REGRESSION, n_classes=1, train_X=flat)
    with pytest.raises(SpecError, match=r"model `lstm`: the input shape is \(5,\), but the model reads"):
        ZOO["lstm"].build({}, input_shape=flat.shape[1:], task=Task.REGRESSION, n_classes=1, train_X=flat)


def test_flat_models_flatten_a_window(data: MinuteData) -> None:
    parts = data.parts(Task.BINARY, windowed=True)
    network = ZOO["logistic"].build(
        {}, input_shape=parts["train"].X.shape[1:], task=Task.BINARY, n_classes=2, train_X=parts["train"].X
    )
    assert network.get_layer("output").kernel.shape == (20 * 5, 1)


def test_callable_model_is_wrapped_and_compiled_for_the_task(data: MinuteData) -> None:
    parts = data.parts(Task.MULTICLASS, windowed=False)

    def build(config: dict[str, Any]) -> Any:
        inputs = keras.Input((5,))
        hidden = keras.layers.Dense(config["width"], activation="relu", name="hidden")(inputs)
        return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))

    model = callable_model(build)
    assert model.name == "build" and model.tasks == set(Task) and model.accepts_any
    validate_config(model, {"width": 4, "anything": "goes"})
    with pytest.raises(SpecError, match=r"model `build`, parameter `batch_size`"):
        validate_config(model, {"batch_size": 0})
    network = model.build(
        {"width": 4, "learning_rate": 0.01}, input_shape=(5,), task=Task.MULTICLASS, n_classes=3,
        train_X=parts["train"].X,
    )
    assert network.compiled and network.get_layer("hidden").units == 4
    assert float(network.optimizer.learning_rate) == pytest.approx(0.01)
    history = network.fit(parts["train"].X, parts["train"].y, epochs=1, batch_size=512, verbose=0).history
    assert set(history) == {"loss", "accuracy", "auc"} and np.isfinite(history["loss"]).all()
    with pytest.raises(SpecError, match=r"model `build`: the output has 3 units, but a binary task needs 1"):
        model.build({"width": 4}, input_shape=(5,), task=Task.BINARY, n_classes=2, train_X=parts["train"].X)
    broken = callable_model(lambda config: "not a model", name="broken")
    with pytest.raises(SpecError, match=r"model `broken`: build returned str, but must return a keras.Model"):
        broken.build({}, input_shape=(5,), task=Task.BINARY, n_classes=2, train_X=parts["train"].X)


def test_as_zoo_model_accepts_names_callables_and_zoo_models() -> None:
    assert as_zoo_model("dnn") is ZOO["dnn"]
    assert as_zoo_model(ZOO["gru"]) is ZOO["gru"]
    assert as_zoo_model(lambda config: None, name="mine").name == "mine"
    with pytest.raises(SpecError, match=r"model is a int, but must be a zoo name"):
        as_zoo_model(3)
