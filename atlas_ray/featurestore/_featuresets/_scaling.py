"""Z-scaling of feature columns, fitted on the training part only and kept for serving.

``fit_scaling`` measures each column's mean and population standard deviation (``ddof=0``) on the
training rows; ``apply_scaling`` maps ``x -> (x - mean) / std`` with those numbers on any frame (the
validation and test parts, or live rows when serving). A column that is constant on the training part
(``std == 0`` or not finite) is given ``std = 1.0`` so that it is centred but never divided by zero.

The fitted scaling is the JSON-able dict ``{"mean": {name: value}, "std": {name: value}}``; no scaling
(``scaling=None`` on the featureset) is the identity ``mean = 0, std = 1`` in the same shape, so that
serving code has one path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from atlas_ray.errors import FeatureError

__all__ = ["SCALINGS", "apply_scaling", "fit_scaling", "identity_scaling"]

SCALINGS: tuple[str, ...] = ("zscore",)


def fit_scaling(train: pd.DataFrame, columns: Sequence[str]) -> dict[str, Any]:
    """Mean and population standard deviation of each of ``columns`` on ``train``."""
    values = train.loc[:, list(columns)].to_numpy(dtype="float64")
    means = np.nanmean(values, axis=0) if len(values) else np.zeros(len(columns))
    stds = np.nanstd(values, axis=0) if len(values) else np.ones(len(columns))
    mean: dict[str, float] = {}
    std: dict[str, float] = {}
    for name, m, s in zip(columns, means, stds, strict=True):
        mean[name] = float(m) if math.isfinite(m) else 0.0
        std[name] = float(s) if math.isfinite(s) and s > 0.0 else 1.0
    return {"mean": mean, "std": std}


def identity_scaling(columns: Sequence[str]) -> dict[str, Any]:
    """The scaling that changes nothing, in ``fit_scaling``'s shape."""
    return {"mean": dict.fromkeys(columns, 0.0), "std": dict.fromkeys(columns, 1.0)}


def apply_scaling(frame: pd.DataFrame, scaling: dict[str, Any]) -> pd.DataFrame:
    """``frame``'s scaled columns ``(x - mean) / std`` (float64), in ``scaling``'s column order.

    Every column the scaling names must be in ``frame``; other columns are left out.
    """
    mean = scaling.get("mean")
    std = scaling.get("std")
    if not isinstance(mean, dict) or not isinstance(std, dict) or set(mean) != set(std):
        raise FeatureError(
            "The value of `scaling` must be {'mean': {name: value}, 'std': {name: value}} "
            "with the same names."
        )
    names = list(mean)
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise FeatureError(f"The frame lacks the column(s) {missing} that the scaling was fitted on.")
    values = frame.loc[:, names].to_numpy(dtype="float64")
    m = np.array([mean[name] for name in names], dtype="float64")
    s = np.array([std[name] for name in names], dtype="float64")
    return pd.DataFrame((values - m) / s, index=frame.index, columns=names)
