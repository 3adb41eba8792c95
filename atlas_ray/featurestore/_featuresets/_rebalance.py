"""Rebalancing classes of the training part: ``"undersample"`` or ``"oversample"``.

* ``undersample``: every class keeps as many rows as the rarest class, drawn without replacement;
* ``oversample``: every class grows to as many rows as the commonest class, its extra rows drawn with
  replacement from its own rows (every original row is kept).

Draws come from ``seed`` (``FeatureLabelSet.prepare(..., seed=)``; a search passes its spec's seed),
so a featureset prepares the same way every time for one seed; the chosen positions are
returned sorted, so the rows stay in time order. Only the training part is rebalanced: validation and
test keep the true class frequencies.
"""

from __future__ import annotations

import numpy as np

from atlas_ray.errors import FeatureError

__all__ = ["REBALANCES", "check_rebalance", "rebalance_positions"]

REBALANCES: tuple[str, ...] = ("undersample", "oversample")


def check_rebalance(rebalance: str | None) -> None:
    if rebalance is not None and rebalance not in REBALANCES:
        raise FeatureError(
            f"The value of `rebalance` is {rebalance!r}, but must be None or one of {list(REBALANCES)}."
        )


def rebalance_positions(y: np.ndarray, how: str, *, seed: int = 0) -> np.ndarray:
    """Positions into ``y`` (class ids ``>= 0``) after rebalancing, sorted (time order kept)."""
    check_rebalance(how)
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
