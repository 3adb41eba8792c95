"""The training input (``_epochs.fit_inputs``) on a real PreparedSet: every row once per epoch, each
epoch's order from its own seed (so a restored trial's next epoch matches an uninterrupted one), even
batches for replicas, and the validation rows as stored."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from atlas_ray.featurestore import FeatureLabelSet, LogReturns, Percentiles, TimeSplit
from atlas_ray.search._epochs import fit_inputs
from atlas_ray.search._trainable import epoch_seed, even_batch

BATCH = 256


@pytest.fixture(scope="module")
def prepared(minute_store):  # type: ignore[no-untyped-def]
    featureset = FeatureLabelSet(
        [LogReturns().coinbase().one_min().lookback(n) for n in (1, 5, 15)],
        [LogReturns().coinbase().one_min().lookforward(1)],
        categories=Percentiles((33.3, 66.7)),
    )
    frame = featureset.build("2023-03-01", "2023-03-04", minute_store)
    return featureset.prepare(frame, TimeSplit(0.7, 0.15, 0.15), seed=3)


def epochs_of(inputs: dict[str, Any], epochs: int) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """The batches (X, y) of each epoch, as ``fit`` takes them (``steps_per_epoch`` batches each)."""
    batches = [(np.asarray(X), np.asarray(y)) for X, y in inputs["x"]]
    steps = inputs["steps_per_epoch"]
    assert len(batches) == steps * epochs
    return [batches[e * steps : (e + 1) * steps] for e in range(epochs)]


def row_ids(prepared, batches) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Which training rows the batches hold, in order (rows of X are distinct)."""
    lookup = {row.tobytes(): i for i, row in enumerate(prepared.train.X)}
    return np.array([lookup[row.tobytes()] for X, _ in batches for row in X])


def inputs_for(
    prepared, first: int, last: int, seed: int = 7, batch: int = BATCH, **more: Any
) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return fit_inputs(
        (prepared.train.X, prepared.train.y),
        (prepared.validation.X, prepared.validation.y),
        batch_size=batch,
        first_epoch=first,
        last_epoch=last,
        seed_of=lambda epoch: epoch_seed(seed, 0, epoch),
        **more,
    )


def test_every_row_once_per_epoch_in_an_order_of_the_epoch_s_own(prepared) -> None:  # type: ignore[no-untyped-def]
    rows = len(prepared.train.y)
    assert len(np.unique(prepared.train.X, axis=0)) == rows
    inputs = inputs_for(prepared, 1, 3)
    assert inputs["steps_per_epoch"] == math.ceil(rows / BATCH) and inputs["shuffle"] is False
    orders = []
    for batches in epochs_of(inputs, 3):
        assert all(len(X) == BATCH for X, _ in batches[:-1])
        ids = row_ids(prepared, batches)
        assert sorted(ids) == list(range(rows))
        labels = np.concatenate([y for _, y in batches])
        np.testing.assert_array_equal(labels, prepared.train.y[ids])  # rows keep their labels
        orders.append(ids)
    assert not np.array_equal(orders[0], orders[1]) and not np.array_equal(orders[1], orders[2])
    assert not np.array_equal(orders[0], np.arange(rows))

    # a trial restored after epoch 2 sees epoch 3 in the same order; another seed, another order
    restored = epochs_of(inputs_for(prepared, 3, 3), 1)[0]
    np.testing.assert_array_equal(row_ids(prepared, restored), orders[2])
    other = epochs_of(inputs_for(prepared, 1, 1, seed=8), 1)[0]
    assert not np.array_equal(row_ids(prepared, other), orders[0])


def test_validation_rows_as_stored(prepared) -> None:  # type: ignore[no-untyped-def]
    validation = list(inputs_for(prepared, 1, 1)["validation_data"])
    np.testing.assert_array_equal(
        np.concatenate([np.asarray(X) for X, _ in validation]), prepared.validation.X
    )
    np.testing.assert_array_equal(
        np.concatenate([np.asarray(y) for _, y in validation]), prepared.validation.y
    )


def test_replicas_get_batches_that_split_evenly(prepared) -> None:  # type: ignore[no-untyped-def]
    rows = len(prepared.train.y)
    replicas = 3 if rows % 3 else 7
    assert rows % replicas
    batch = even_batch(rows, BATCH, replicas)  # as the trial gives it: a multiple of the replicas
    assert batch is not None
    inputs = inputs_for(prepared, 1, 2, batch=batch, replicas=replicas, validation_batch_size=255)
    for batches in epochs_of(inputs, 2):
        assert all(len(X) % replicas == 0 for X, _ in batches)
        assert len(set(row_ids(prepared, batches))) == rows - rows % replicas
    # the validation arrays go to Keras as they are, in even batches
    assert inputs["validation_data"][0] is prepared.validation.X and inputs["validation_batch_size"] == 255


def test_other_backends_get_the_arrays(prepared, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    inputs = inputs_for(prepared, 1, 2)
    assert inputs["x"] is prepared.train.X and inputs["y"] is prepared.train.y
    assert inputs["batch_size"] == BATCH and inputs["shuffle"] is True
