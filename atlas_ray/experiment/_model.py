"""A stored trial's model: ``load_model`` and ``predict_proba``, the one prediction function.

``predict_proba`` is what wrote the trial's predictions during the search and what the live side
predicts with, so the two agree to the bit on the same inputs.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from atlas_ray import _atomic, _storage
from atlas_ray.experiment._layout import MODEL_FILE
from atlas_ray.experiment._results import ResultsObject
from atlas_ray.featurestore import Task

if TYPE_CHECKING:
    import keras

__all__ = ["load_model", "predict_proba", "save_model"]


def load_model(
    result_or_path: ResultsObject | str, *, custom_objects: Mapping[str, object] | None = None
) -> keras.Model:
    """The trained ``keras.Model`` of a trial (a ResultsObject, or the path or URI of its
    ``model.keras``). Custom layers must be registered with Keras first, or given as
    ``custom_objects`` (``atlas_ray.search.load_model`` registers the zoo's)."""
    import keras

    path = result_or_path.model_path if isinstance(result_or_path, ResultsObject) else result_or_path
    if path is None:
        raise ValueError("this trial has no model (it failed before any evaluation)")
    objects = dict(custom_objects) if custom_objects is not None else None
    if not _storage.is_uri(path):
        return keras.models.load_model(path, custom_objects=objects)
    fs, inner = _storage.filesystem(path)
    with tempfile.TemporaryDirectory() as temp, fs.open_input_stream(inner) as stream:
        local = os.path.join(temp, MODEL_FILE)
        with open(local, "wb") as sink:
            sink.write(stream.read())
        return keras.models.load_model(local, custom_objects=objects)


def save_model(model: keras.Model, directory: str) -> None:
    """Save ``model.keras`` into ``directory`` (any pyarrow filesystem) through a local temp file."""
    fs, base = _storage.filesystem(directory)
    fs.create_dir(base, recursive=True)
    with tempfile.TemporaryDirectory() as temp:
        local = os.path.join(temp, MODEL_FILE)
        model.save(local)
        _atomic.upload_file(local, fs, f"{base}/{MODEL_FILE}")


def predict_proba(model: keras.Model, X: np.ndarray, task: Task, batch_size: int = 8192) -> np.ndarray:
    """The model's output on ``X``: class probabilities ``(rows, classes)`` for classifiers (a single
    sigmoid unit becomes ``[1 - p, p]``), values ``(rows,)`` for regressors.

    The model is called directly (eagerly, in inference mode) in large chunks: ``model.predict`` would
    trace a new function for every model and every distinct final-batch shape, which costs more than
    the prediction itself for the small models of a search.
    """
    import keras

    if len(X) == 0:
        out = np.zeros((0, 1), dtype=np.float64)
    else:
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
