"""Rebalancing classes of the training part: ``"undersample"``, ``"oversample"`` or ``Smote(k)``.

* ``undersample``: every class keeps as many rows as the rarest class, drawn without replacement;
* ``oversample``: every class grows to as many rows as the commonest class, its extra rows drawn with
  replacement from its own rows (every original row is kept);
* ``Smote(k_neighbors=5)`` (``"smote"`` is ``Smote()``): every class grows to as many rows as the
  commonest class with *synthetic* rows, imbalanced-learn's SMOTE: a row of the class and one of its
  ``k_neighbors`` nearest rows of the same class (in the z-scaled feature space, as the model sees it)
  are drawn, and the new row lies at a random point between them. Every original row is kept. Every
  class needs at least ``k_neighbors + 1`` training rows (its own neighbours); fewer is an error that
  names the class.

Decisions for SMOTE:

* a synthetic row has no bar of its own. It takes the time and the continuous label value of the real
  row of its class nearest to it (the row it was, or nearly was, drawn from), so the training part
  stays in time order like the other samplers' and every row has a time and a label value
  (train predictions, backtests); its class is the class it was made for;
* classifier only, as every rebalancing (``FeatureLabelSet`` refuses it without ``categories``);
* refused with ``window`` (sequence models): a window's nearest windows of its class are mostly the
  windows a few bars away, which share all but a few of its rows, so SMOTE there is oversampling with
  jitter at the cost of a nearest-neighbour search over ``window x features`` dimensions, and an
  interpolated window is no sequence any market produced. Use ``"oversample"`` for windows.

Draws come from ``seed`` (``FeatureLabelSet.prepare(..., seed=)``; a search passes its spec's seed; SMOTE
gets it as ``random_state``), so a featureset prepares the same way every time for one seed; rows come
out in time order. Only the training part is rebalanced, on each fold's own training rows: validation
and test keep the true class frequencies and never reach a sampler.

In a definition (``FeatureLabelSet.definition()``, hence ``result.json``, the featureset cache key and
``experiment.json``'s provenance) ``rebalance`` is ``"undersample"``, ``"oversample"``, ``None`` or
``{"method": "smote", "k_neighbors": k}``; ``rebalance_from_definition`` reads each back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np

from atlas_ray.errors import FeatureError

__all__ = [
    "REBALANCES",
    "Smote",
    "as_rebalance",
    "check_rebalance",
    "rebalance_definition",
    "rebalance_from_definition",
    "rebalance_positions",
    "smote_rows",
]

REBALANCES: tuple[str, ...] = ("undersample", "oversample", "smote")


@dataclass(frozen=True)
class Smote:
    """SMOTE rebalancing of the training classes (see the module docstring)."""

    k_neighbors: int = 5

    def __post_init__(self) -> None:
        k = self.k_neighbors
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise FeatureError(
                f"The value of `k_neighbors` is {k!r}, but must be an integer `k_neighbors >= 1`."
            )

    def definition(self) -> dict[str, Any]:
        return {"method": "smote", "k_neighbors": self.k_neighbors}


Rebalance = Literal["undersample", "oversample", "smote"] | Smote | None


def check_rebalance(rebalance: object) -> None:
    if rebalance is None or isinstance(rebalance, Smote):
        return
    if not isinstance(rebalance, str) or rebalance not in REBALANCES:
        raise FeatureError(
            f"The value of `rebalance` is {rebalance!r}, but must be None, Smote(k_neighbors=...) or one "
            f"of {list(REBALANCES)}."
        )


def as_rebalance(rebalance: object) -> Rebalance:
    """``rebalance`` checked, with ``"smote"`` as ``Smote()`` (one spelling, one definition)."""
    check_rebalance(rebalance)
    return Smote() if rebalance == "smote" else cast(Rebalance, rebalance)


def rebalance_definition(rebalance: Rebalance) -> str | dict[str, Any] | None:
    return rebalance.definition() if isinstance(rebalance, Smote) else rebalance


def rebalance_from_definition(value: object) -> Rebalance:
    """The rebalancing a definition's ``rebalance`` field describes (``rebalance_definition``'s inverse)."""
    if isinstance(value, dict):
        if value.get("method") != "smote" or set(value) - {"method", "k_neighbors"}:
            raise FeatureError(
                f"The value of `rebalance` is {value!r}, but a rebalancing written as a dict must be "
                "{'method': 'smote', 'k_neighbors': k}."
            )
        return Smote(value.get("k_neighbors", 5))
    return as_rebalance(value)


def rebalance_positions(y: np.ndarray, how: str, *, seed: int = 0) -> np.ndarray:
    """Positions into ``y`` (class ids ``>= 0``) after under- or oversampling, sorted (time order kept)."""
    check_rebalance(how)
    if how not in ("undersample", "oversample"):
        raise FeatureError(f"The value of `how` is {how!r}, but must be 'undersample' or 'oversample'.")
    y = np.asarray(y)
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) == 0:
        return np.zeros(0, dtype="int64")
    rng = np.random.default_rng(seed)
    chosen = []
    for cls in classes:
        rows = np.flatnonzero(y == cls)
        if how == "undersample":
            chosen.append(rng.choice(rows, size=int(counts.min()), replace=False))
        else:
            extra = rng.choice(rows, size=int(counts.max()) - len(rows), replace=True)
            chosen.append(np.concatenate([rows, extra]))
    return np.sort(np.concatenate(chosen)).astype("int64")


def smote_rows(
    X: np.ndarray, y: np.ndarray, smote: Smote, *, seed: int = 0, classes: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SMOTE on flat training rows ``X`` ``(n, features)`` with class ids ``y``: ``(X_new, y_new, source)``
    in time order, where ``source[j]`` is the position in ``X`` of the real row that row ``j`` is (an
    original) or stands in time for (a synthetic row: the nearest real row of its class). ``classes``
    names the ids in the error."""
    from imblearn.over_sampling import SMOTE
    from sklearn.neighbors import NearestNeighbors

    X = np.asarray(X)
    y = np.asarray(y).astype("int64")
    if X.ndim != 2:
        raise FeatureError(f"SMOTE takes flat rows (rows, features), not an array of shape {X.shape}.")
    ids, counts = np.unique(y, return_counts=True)
    if len(ids) < 2 or counts.min() == counts.max():  # nothing to balance
        return X, y, np.arange(len(y), dtype="int64")
    k = smote.k_neighbors
    for cls, count in zip(ids, counts, strict=True):
        if count < k + 1:
            name = classes[int(cls)] if classes is not None else int(cls)
            raise FeatureError(
                f"The training part has {count} row(s) of class {name!r}, but rebalance=Smote(k_neighbors="
                f"{k}) needs at least k_neighbors + 1 = {k + 1} in every class; lower `k_neighbors` or "
                "train on more rows."
            )
    sampler = SMOTE(k_neighbors=k, random_state=seed)
    X_res, y_res = sampler.fit_resample(X.astype("float64"), y)
    n = len(y)
    source = np.arange(len(y_res), dtype="int64")
    synthetic_y = np.asarray(y_res[n:])
    for cls in np.unique(synthetic_y):
        own = np.flatnonzero(y == cls)
        made = n + np.flatnonzero(synthetic_y == cls)
        nearest = NearestNeighbors(n_neighbors=1).fit(X[own]).kneighbors(X_res[made], return_distance=False)
        source[made] = own[nearest[:, 0]]
    order = np.argsort(source, kind="stable")  # time order; an original before its synthetic neighbours
    return X_res[order].astype(X.dtype), np.asarray(y_res)[order].astype("int64"), source[order]
