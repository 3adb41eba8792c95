"""A trial's training input: one ``tf.data`` pipeline over all the epochs it trains, each epoch's row order
drawn from that epoch's own seed, run on one thread.

Why not hand ``fit`` the numpy arrays: Keras then builds its own pipeline with autotuned prefetching and
parallel calls on TensorFlow's shared thread pools. Given one CPU per trial, that costs time twice:
measured on the 2-core machine (16 fits of bench_search's DNN, 4 epochs each, one TensorFlow thread),
numpy input 7.10 s in one process, and 1.27x slower per process with two processes side by side (their
extra threads fight over the cores); this pipeline 6.36 s in one process and 1.02x side by side.

Order: epoch ``e`` of fold ``k`` visits the rows in ``stateless_shuffle(range(rows), seed=(epoch_seed(
seed, k, e), 0))``, then batches them (the last batch may be short), then gathers those rows. The order
depends on the trial's seed, the fold and the epoch number alone: a trial restored from a checkpoint at
epoch ``e`` trains epoch ``e + 1`` on the same order as one that never stopped. The validation rows go
in their stored order, in batches of the same size.

Memory: the arrays become TensorFlow tensors once per ``fit`` (as Keras' own numpy path does); each
batch is a gather, so no shuffle buffer holds a copy of the rows.

Devices: the rows are kept on the host, where ``tf.data`` runs, and no batch is prefetched (on a CPU
a prefetching thread is one more thread fighting the trial's). On a GPU or TPU, prefetching would overlap
the host's gathers with the device's steps: not measured (no such device here), so not done.

Other Keras backends (JAX, torch) get the numpy arrays, shuffled by Keras (``fit_inputs``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["fit_inputs", "tensorflow_backend"]


def tensorflow_backend() -> bool:
    """Whether Keras runs on TensorFlow (``KERAS_BACKEND``, TensorFlow unless set): then ``fit_inputs``
    builds the ``tf.data`` pipeline, and a trial sets TensorFlow's thread pools."""
    return os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow"


def fit_inputs(
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    *,
    batch_size: int,
    first_epoch: int,
    last_epoch: int,
    seed_of: Callable[[int], int],
    replicas: int = 1,
    validation_batch_size: int | None = None,
) -> dict[str, Any]:
    """The keyword arguments of ``model.fit`` for epochs ``first_epoch..last_epoch`` (1-based) of
    ``train`` with ``validation``: the data, the batch sizes and the shuffling. ``seed_of(epoch)`` is the
    seed of that epoch's order. Data-parallel (``replicas`` > 1) every training batch splits evenly over
    the replicas (each epoch leaves out its last ``rows % replicas`` rows in its order, a different few
    each epoch: a distributed step fails on a batch that does not split), and the validation arrays go
    to Keras as they are, in batches of ``validation_batch_size``."""
    X, y = train
    if not tensorflow_backend():
        return {
            "x": X,
            "y": y,
            "validation_data": validation,
            "batch_size": batch_size,
            "validation_batch_size": validation_batch_size or batch_size,
            "shuffle": True,
        }
    import tensorflow as tf

    rows = len(y)
    kept = rows - rows % replicas if rows >= replicas else rows
    options = _one_thread()
    with tf.device("/CPU:0"):  # tf.data runs on the host: the rows stay there, on a GPU / TPU host too
        features, labels = tf.convert_to_tensor(X), tf.convert_to_tensor(y)
        seeds = tf.constant([seed_of(e) for e in range(first_epoch, last_epoch + 1)], dtype=tf.int64)

    def epoch_order(epoch_seed: Any) -> Any:
        order = tf.random.experimental.stateless_shuffle(
            tf.range(rows, dtype=tf.int64), seed=tf.stack([epoch_seed, tf.constant(0, tf.int64)])
        )
        return tf.data.Dataset.from_tensor_slices(order[:kept]).batch(batch_size)

    def rows_of(index: Any) -> tuple[Any, Any]:
        return tf.gather(features, index), tf.gather(labels, index)

    data = tf.data.Dataset.from_tensor_slices(seeds).flat_map(epoch_order).map(rows_of)
    inputs = {
        "x": data.with_options(options),
        "steps_per_epoch": math.ceil(kept / batch_size),
        "shuffle": False,
    }
    if replicas > 1:
        return {**inputs, "validation_data": validation, "validation_batch_size": validation_batch_size}
    checked = tf.data.Dataset.from_tensor_slices(validation).batch(validation_batch_size or batch_size)
    return {**inputs, "validation_data": checked.with_options(options)}


def _one_thread() -> Any:
    """``tf.data`` options: a private pool of one thread, no autotuning (no extra threads)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    options.autotune.enabled = False
    return options
