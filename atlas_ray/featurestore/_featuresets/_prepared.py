"""``PreparedSet``: a built FeatureLabelSet made ready for a model, the hand-off to the search.

``FeatureLabelSet.prepare(frame, split)`` makes one: split by time, features z-scaled with statistics
fitted on the training part only, the label made categorical with boundaries fitted on the training
part only (or kept continuous for regression), optionally cut into windows. Everything a model needs
to be served later (``scaling``, ``categories``, ``window``, and ``sources``: the decision of where each
series was read from, see ``_sources``) travels with it as plain JSON-able dicts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["PreparedSet", "SplitPart", "Task"]


class Task(enum.Enum):
    """What the label asks of a model."""

    BINARY = "binary"
    MULTICLASS = "multiclass"
    REGRESSION = "regression"


@dataclass(frozen=True, eq=False)
class SplitPart:
    """One time split of a prepared set.

    ``X``: float32, ``(rows, features)`` or, windowed, ``(rows, window, features)`` (the last row of a
    window is the row it predicts from). ``y``: int64 class ids (classification) or float32 values
    (regression). ``index``: the UTC time of each row (a window's last row). ``label_value``: the
    continuous label before categorisation (float64), for regression baselines and backtests.
    """

    X: np.ndarray
    y: np.ndarray
    index: pd.DatetimeIndex
    label_value: np.ndarray

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True, eq=False)
class PreparedSet:
    """Train / validation / test parts plus the fitted transforms needed to serve a model."""

    train: SplitPart
    validation: SplitPart
    test: SplitPart
    feature_names: tuple[str, ...]
    label_name: str
    task: Task
    classes: tuple[str, ...]
    scaling: dict[str, Any]
    categories: dict[str, Any] | None
    window: int | None = None
    featureset: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, Any] | None = None
    """The built frame's decided sources as JSON (``Sources.to_json``); None for a frame not built by
    ``FeatureLabelSet.build``."""

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def parts(self) -> dict[str, SplitPart]:
        return {"train": self.train, "validation": self.validation, "test": self.test}
