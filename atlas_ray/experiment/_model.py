"""A stored trial's model: ``save_model``, ``load_model`` and ``predict_proba``, the one prediction function.

Two model formats, one owner (this module): a Keras model is ``model.keras``; a LightGBM booster (the
zoo's ``lightgbm`` family) is ``model.txt``, LightGBM's own text model format
(``Booster.model_to_string``; no pickle). ``save_model`` writes the one its model needs and returns the
file's name, which ``result.json`` records as ``model_file``; ``load_model`` reads by that name.

``predict_proba`` is what wrote the trial's predictions during the search and what the live side
predicts with, so the two agree to the bit on the same inputs.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from atlas_ray import _atomic, _storage
from atlas_ray.experiment._layout import MODEL_FILE, TREES_MODEL_FILE
from atlas_ray.experiment._results import ResultsObject
from atlas_ray.featurestore import Task

if TYPE_CHECKING:
    import keras

__all__ = ["is_booster", "load_model", "model_file_of", "predict_proba", "save_model"]


def is_booster(model: object) -> bool:
    """Whether ``model`` is a LightGBM ``Booster`` (told without importing LightGBM)."""
    return type(model).__name__ == "Booster" and type(model).__module__.startswith("lightgbm")


def model_file_of(model: object) -> str:
    """The file name ``model`` is stored under: ``model.txt`` for a LightGBM booster, else ``model.keras``."""
    return TREES_MODEL_FILE if is_booster(model) else MODEL_FILE


def load_model(
    result_or_path: ResultsObject | str, *, custom_objects: Mapping[str, object] | None = None
) -> keras.Model | Any:
    """The trained model of a trial (a ResultsObject, or the path or URI of its model file): a
    ``keras.Model`` from ``model.keras``, a ``lightgbm.Booster`` from ``model.txt``. Custom Keras layers
    must be registered with Keras first, or given as ``custom_objects`` (``atlas_ray.search.load_model``
    registers the zoo's)."""
    path = result_or_path.model_path if isinstance(result_or_path, ResultsObject) else result_or_path
    if path is None:
        raise ValueError("this trial has no model (it failed before any evaluation)")
    if path.endswith(f"/{TREES_MODEL_FILE}") or path == TREES_MODEL_FILE:
        return _load_booster(path)
    import keras

    objects = dict(custom_objects) if custom_objects is not None else None
    if not _storage.is_uri(path):
        return keras.models.load_model(path, custom_objects=objects)
    fs, inner = _storage.filesystem(path)
    with tempfile.TemporaryDirectory() as temp, fs.open_input_stream(inner) as stream:
        local = os.path.join(temp, MODEL_FILE)
        with open(local, "wb") as sink:
            sink.write(stream.read())
        return keras.models.load_model(local, custom_objects=objects)


def _load_booster(path: str) -> Any:
    import lightgbm

    fs, inner = _storage.filesystem(path)
    with fs.open_input_stream(inner) as stream:
        text = stream.read().decode()
    return lightgbm.Booster(model_str=text)


def save_model(model: keras.Model | Any, directory: str) -> str:
    """Save ``model`` into ``directory`` (any pyarrow filesystem) atomically: a Keras model as
    ``model.keras`` (through a local temp file), a LightGBM booster as ``model.txt``. Returns the file's
    name."""
    fs, base = _storage.filesystem(directory)
    fs.create_dir(base, recursive=True)
    name = model_file_of(model)
    if is_booster(model):
        _atomic.write_text(fs, f"{base}/{name}", model.model_to_string())
        return name
    with tempfile.TemporaryDirectory() as temp:
        local = os.path.join(temp, name)
        model.save(local)
        _atomic.upload_file(local, fs, f"{base}/{name}")
    return name


def predict_proba(model: keras.Model | Any, X: np.ndarray, task: Task, batch_size: int = 8192) -> np.ndarray:
    """The model's output on ``X``: class probabilities ``(rows, classes)`` for classifiers (a single
    sigmoid unit, or a binary booster's probability, becomes ``[1 - p, p]``), values ``(rows,)`` for
    regressors.

    A Keras model is called directly (eagerly, in inference mode) in large chunks: ``model.predict``
    would trace a new function for every model and every distinct final-batch shape, which costs more
    than the prediction itself for the small models of a search. A LightGBM booster predicts on ``X``
    with each row flattened (a window becomes its lags side by side, as it was trained).
    """
    if is_booster(model):
        out = _booster_output(model, X)
    elif len(X) == 0:
        out = np.zeros((0, 1), dtype=np.float64)
    else:
        import keras

        chunks = [
            np.asarray(
                keras.ops.convert_to_numpy(model(X[i : i + batch_size], training=False)), dtype=np.float64
            )
            for i in range(0, len(X), batch_size)
        ]
        out = np.concatenate(chunks, axis=0)
    if out.ndim == 1:
        out = out[:, None]
    if task is Task.REGRESSION:
        return out[:, 0]
    if out.shape[1] == 1:
        return np.concatenate([1.0 - out, out], axis=1)
    return out


def _booster_output(booster: Any, X: np.ndarray) -> np.ndarray:
    """A booster's prediction (probabilities, or values) on the rows of ``X``, flattened."""
    width = booster.num_feature()
    if len(X) == 0:  # the output's width, from one row of zeros
        shape = np.asarray(booster.predict(np.zeros((1, width)))).shape
        return np.zeros((0, *shape[1:]), dtype=np.float64)
    rows = np.asarray(X).reshape(len(X), -1)
    if rows.shape[1] != width:
        raise ValueError(f"the booster reads {width} columns, but the rows have {rows.shape[1]}")
    return np.asarray(booster.predict(rows), dtype=np.float64)
