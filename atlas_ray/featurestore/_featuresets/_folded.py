"""``FoldedSet``: a built FeatureLabelSet prepared for walk-forward evaluation (``WalkForward``).

One ``PreparedSet`` per fold, each fitted (scaling, categories, rebalancing) on its own training
window only; every fold's ``test`` part is the same sealed test block after the last fold, transformed
with that fold's fitted statistics. The search trains one model per fold; the last fold's model, with
the last fold's scaling and categories, is the one a trial keeps, serves and is finally tested with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from atlas_ray.featurestore._featuresets._prepared import PreparedSet, SplitPart, Task

__all__ = ["FoldedSet"]


@dataclass(frozen=True, eq=False)
class FoldedSet:
    """The folds of a walk-forward split, in time order (``folds[-1]`` trains on the most recent rows)."""

    folds: tuple[PreparedSet, ...]
    split: dict[str, Any]

    @property
    def last(self) -> PreparedSet:
        return self.folds[-1]

    @property
    def test(self) -> SplitPart:
        """The sealed test block, transformed as the last fold's model expects it."""
        return self.last.test

    @property
    def task(self) -> Task:
        return self.last.task

    @property
    def classes(self) -> tuple[str, ...]:
        return self.last.classes

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.last.feature_names

    @property
    def label_name(self) -> str:
        return self.last.label_name

    @property
    def n_features(self) -> int:
        return self.last.n_features

    @property
    def n_classes(self) -> int:
        return self.last.n_classes

    @property
    def window(self) -> int | None:
        return self.last.window
