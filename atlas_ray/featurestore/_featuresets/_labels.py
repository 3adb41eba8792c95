"""Making a continuous label categorical: ``Percentiles`` and ``Boundaries``, fitted on training data.

A categorisation is a sorted list of boundaries ``b_1 < ... < b_k`` that cuts the label's values into
``k + 1`` classes, lowest first. ``Boundaries`` gives them directly; ``Percentiles`` fits them as
percentiles of the *training* part's label values (never validation or test: that would leak).

A value lying exactly on a boundary is handled by ``boundary``:

* ``"assign_left"``: it goes to the class on the boundary's left (the lower class), so classes are
  ``(-inf, b_1], (b_1, b_2], ..., (b_k, inf)``;
* ``"assign_right"``: it goes to the class on the boundary's right (the upper class), so classes are
  ``(-inf, b_1), [b_1, b_2), ..., [b_k, inf)``;
* ``"drop"``: the row is dropped (its class id is ``-1``).

Classes are named ``("down", "up")`` for 2 classes, ``("down", "flat", "up")`` for 3, and
``"c0" .. "cN"`` otherwise. The fitted categorisation is a JSON-able dict (``fit_categories``) so that
serving applies exactly what training used (``apply_categories``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from atlas_ray.errors import FeatureError

__all__ = [
    "BOUNDARY_MODES",
    "Boundaries",
    "BoundaryMode",
    "Percentiles",
    "apply_categories",
    "categories_from_definition",
    "class_names",
    "fit_categories",
]

BoundaryMode = Literal["assign_left", "assign_right", "drop"]
BOUNDARY_MODES: tuple[str, ...] = ("assign_left", "assign_right", "drop")


def _check_boundary_mode(owner: str, boundary: str) -> None:
    if boundary not in BOUNDARY_MODES:
        raise FeatureError(
            f"The value of `{owner}.boundary` is {boundary!r}, but must be one of {list(BOUNDARY_MODES)}."
        )


def _check_increasing(owner: str, field: str, values: Sequence[float]) -> tuple[float, ...]:
    if isinstance(values, str) or not isinstance(values, Sequence) or len(values) == 0:
        raise FeatureError(
            f"The value of `{owner}.{field}` is {values!r}, but must be a non-empty sequence of numbers."
        )
    out = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise FeatureError(
                f"The value of `{owner}.{field}` is {list(values)!r}, "
                "but every entry must be a finite number."
            )
        out.append(float(value))
    if any(b <= a for a, b in itertools.pairwise(out)):
        raise FeatureError(
            f"The value of `{owner}.{field}` is {list(values)!r}, but must be strictly increasing."
        )
    return tuple(out)


@dataclass(frozen=True)
class Percentiles:
    """Boundaries at these percentiles (0 < p < 100) of the training part's label values."""

    percentiles: tuple[float, ...] = (33.3, 66.7)
    boundary: BoundaryMode = "assign_left"

    def __post_init__(self) -> None:
        values = _check_increasing("Percentiles", "percentiles", self.percentiles)
        if values[0] <= 0.0 or values[-1] >= 100.0:
            raise FeatureError(
                f"The value of `Percentiles.percentiles` is {list(self.percentiles)!r}, "
                "but every entry must satisfy `0 < p < 100`."
            )
        _check_boundary_mode("Percentiles", self.boundary)
        object.__setattr__(self, "percentiles", values)

    @property
    def n_classes(self) -> int:
        return len(self.percentiles) + 1

    def definition(self) -> dict[str, Any]:
        return {"kind": "percentiles", "values": list(self.percentiles), "boundary": self.boundary}


@dataclass(frozen=True)
class Boundaries:
    """Fixed boundaries in the label's units (say log returns ``(-0.0005, 0.0005)``)."""

    boundaries: tuple[float, ...] = (-0.0005, 0.0005)
    boundary: BoundaryMode = "assign_left"

    def __post_init__(self) -> None:
        values = _check_increasing("Boundaries", "boundaries", self.boundaries)
        _check_boundary_mode("Boundaries", self.boundary)
        object.__setattr__(self, "boundaries", values)

    @property
    def n_classes(self) -> int:
        return len(self.boundaries) + 1

    def definition(self) -> dict[str, Any]:
        return {"kind": "boundaries", "values": list(self.boundaries), "boundary": self.boundary}


def categories_from_definition(definition: dict[str, Any] | None) -> Percentiles | Boundaries | None:
    """The inverse of ``Percentiles.definition`` / ``Boundaries.definition`` (``None`` stays ``None``)."""
    if definition is None:
        return None
    if not isinstance(definition, dict):
        raise FeatureError(f"The value of `categories` is {definition!r}, but must be a dict or null.")
    unknown = sorted(set(definition) - {"kind", "values", "boundary"})
    if unknown:
        raise FeatureError(
            f"The field(s) {unknown} of `categories` are unknown; the fields are kind, values, boundary."
        )
    kind = definition.get("kind")
    values = tuple(definition.get("values", ()))
    boundary = definition.get("boundary", "assign_left")
    if kind == "percentiles":
        return Percentiles(values, boundary=boundary)
    if kind == "boundaries":
        return Boundaries(values, boundary=boundary)
    raise FeatureError(
        f"The value of `categories.kind` is {kind!r}, but must be 'percentiles' or 'boundaries'."
    )


def class_names(n_classes: int) -> tuple[str, ...]:
    """``("down", "up")``, ``("down", "flat", "up")``, else ``("c0", ..., "cN")``."""
    if n_classes == 2:
        return ("down", "up")
    if n_classes == 3:
        return ("down", "flat", "up")
    return tuple(f"c{i}" for i in range(n_classes))


def fit_categories(
    values: np.ndarray, categories: Percentiles | Boundaries, *, label: str = "label"
) -> dict[str, Any]:
    """The fitted categorisation as a JSON-able dict; ``values`` are the *training* label values.

    ``{"kind", "boundaries", "boundary", "classes"}`` (plus ``"percentiles"`` for ``Percentiles``).
    Percentiles that fall on equal values (a label with many identical values) give equal boundaries,
    which cannot separate classes: that is refused with the boundaries found.
    """
    if isinstance(categories, Boundaries):
        bounds = list(categories.boundaries)
        fitted: dict[str, Any] = {"kind": "boundaries"}
    else:
        finite = np.asarray(values, dtype="float64")
        finite = finite[np.isfinite(finite)]
        if finite.size == 0:
            raise FeatureError(
                f"The label {label} has no finite value on the training part to fit percentiles."
            )
        bounds = [float(b) for b in np.percentile(finite, list(categories.percentiles))]
        if any(b <= a for a, b in itertools.pairwise(bounds)):
            raise FeatureError(
                f"The percentiles {list(categories.percentiles)} of the label {label} on the training part "
                f"give boundaries {bounds}, but boundaries must be strictly increasing."
            )
        fitted = {"kind": "percentiles", "percentiles": list(categories.percentiles)}
    fitted["boundaries"] = bounds
    fitted["boundary"] = categories.boundary
    fitted["classes"] = list(class_names(len(bounds) + 1))
    return fitted


def apply_categories(values: np.ndarray | Sequence[float], categories: dict[str, Any]) -> np.ndarray:
    """Class ids (int64) of ``values`` under a fitted categorisation (``fit_categories``' dict).

    ``-1`` marks a row without a class: a NaN value, or a value on a boundary when ``boundary`` is
    ``"drop"``. Callers drop those rows.
    """
    x = np.asarray(values, dtype="float64")
    bounds = np.asarray(categories["boundaries"], dtype="float64")
    mode = categories["boundary"]
    _check_boundary_mode("categories", mode)
    side: Literal["left", "right"] = "right" if mode == "assign_right" else "left"
    ids = np.searchsorted(bounds, x, side=side).astype("int64")
    ids[np.isnan(x)] = -1
    if mode == "drop":
        ids[np.isin(x, bounds)] = -1
    return ids
