"""A leftover kept only for ``_runner.py`` and ``_trainable.py``: a ModelSpec's model and search space
now come from ``atlas_ray.search._zoo`` (``as_zoo_model``, ``full_space``). Delete this module once
those two import from ``_zoo``.
"""

from atlas_ray.search._zoo import as_zoo_model as resolve_model
from atlas_ray.search._zoo import full_space

__all__ = ["full_space", "resolve_model"]
