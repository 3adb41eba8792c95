"""Every zoo model builds the same Keras model for the same seed and hyperparameters: its layers (names,
kinds, output shapes), parameter counts and initial weights are pinned per model, task and variant
(pinned from the builders before they shared one skeleton, ``_models/_skeleton.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from atlas_ray.featurestore import Task
from atlas_ray.search._zoo import ZOO

FEATURES = 5
WINDOW = 12
N_CLASSES = {Task.BINARY: 2, Task.MULTICLASS: 3, Task.REGRESSION: 1}
SEED = 11

VARIANTS: dict[str, dict[str, dict[str, Any]]] = {
    "linear": {"default": {}, "penalised": {"l1": 1e-4, "l2": 1e-3}},
    "logistic": {"default": {}, "penalised": {"l1": 1e-4, "l2": 0.0}},
    "dnn": {
        "default": {},
        "deep": {"hidden_units": [7, 5, 3], "dropout": 0.1, "batch_norm": True, "l1": 1e-5, "l2": 1e-4},
    },
    "lstm": {"default": {}, "stacked": {"units": 6, "layers": 2, "dropout": 0.1, "l2": 1e-4}},
    "gru": {"default": {}, "stacked": {"units": 5, "layers": 3, "recurrent_dropout": 0.1}},
    "conv1d_resnet": {
        "default": {"filters": 8},
        "average": {"filters": 6, "kernel_size": 3, "pooling": "global_average", "dense_units": 4},
        "max": {"filters": 4, "pooling": "global_max", "dropout": 0.2, "noise_std": 0.0, "l2": 1e-4},
    },
}
CASES = [
    (name, task.value, variant)
    for name, variants in VARIANTS.items()
    for task in sorted(ZOO[name].tasks, key=lambda t: t.value)
    for variant in variants
]
PINS = Path(__file__).with_name("zoo_builds.json")
_SETTINGS = (
    "units",
    "filters",
    "kernel_size",
    "padding",
    "activation",
    "rate",
    "stddev",
    "return_sequences",
    "dropout",
    "recurrent_dropout",
    "kernel_regularizer",
)
"""The layer settings pinned beside each layer's name, class and output shape."""


def built_summary(name: str, task_name: str, variant: str) -> dict[str, Any]:
    """What pins a built model: each layer's name, class, output shape and settings, the parameter
    counts, the loss, and the initial weights (their sum, to 6 significant digits)."""
    import keras

    model = ZOO[name]
    task = Task(task_name)
    shape = (WINDOW, FEATURES) if model.windowed else (FEATURES,)
    train_X = np.random.default_rng(3).normal(size=(64, *shape)).astype("float32")
    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(SEED)
    built = model.build(
        {**VARIANTS[name][variant], "seed": SEED},
        input_shape=shape,
        task=task,
        n_classes=N_CLASSES[task],
        train_X=train_X,
    )
    weights = [np.asarray(w, dtype="float64") for w in built.get_weights()]
    layers = []
    for layer in built.layers:
        config = layer.get_config()
        settings = {key: config[key] for key in _SETTINGS if key in config}
        layers.append([layer.name, type(layer).__name__, str(layer.output.shape), settings])
    summary = {
        "model": built.name,
        "layers": layers,
        "params": int(built.count_params()),
        "trainable": int(sum(int(np.prod(w.shape)) for w in built.trainable_weights)),
        "loss": str(built.loss),
        "weights_sum": float(f"{sum(float(w.sum()) for w in weights):.6g}"),
    }
    return dict(json.loads(json.dumps(summary)))


@pytest.mark.parametrize(("name", "task", "variant"), CASES)
def test_a_zoo_model_builds_as_pinned(name: str, task: str, variant: str) -> None:
    pinned = json.loads(PINS.read_text())[f"{name}|{task}|{variant}"]
    assert built_summary(name, task, variant) == pinned
