"""How a ModelSpec's ``model`` becomes a ZooModel and a full search space.

``_zoo.as_zoo_model`` resolves a zoo name, a keras-tuner ``HyperModel`` (its declared hyperparameters
become the model's parameters and default space) or a user's callable ``build(config)``. A model's
full space is its default space with the spec's ``space`` laid over it (the spec wins, key by key).
"""

from __future__ import annotations

from typing import Any

from atlas_ray.search._spec import ModelSpec

__all__ = ["full_space", "resolve_model"]


def resolve_model(model: object, name: str | None = None) -> Any:
    """The ``ZooModel`` for a ModelSpec's ``model``."""
    from atlas_ray.search._zoo import as_zoo_model

    if isinstance(model, type):  # a HyperModel class: instantiate it with no arguments
        model = model()
    return as_zoo_model(model, name=name)


def full_space(spec: ModelSpec) -> dict[str, Any]:
    """The model's default space with ``spec.space`` laid over it."""
    zoo_model = resolve_model(spec.model, name=spec.name)
    return {**zoo_model.default_space(), **dict(spec.space)}
