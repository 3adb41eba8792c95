"""User-facing errors.

Every error a user can cause (a broken file, an unknown feature, a bad spec) is an ``AtlasError``
whose message is one line naming the file, row, feature or field, the value and the rule. The command
line tools turn it into that one line on stderr and exit status 2 (see ``atlas_ray._cli``); a
traceback means a bug in atlas_ray, never a user mistake.
"""

from __future__ import annotations

__all__ = [
    "AtlasError",
    "FeatureError",
    "IngestError",
    "MissingDataError",
    "SpecError",
    "StoreBusyError",
]


class AtlasError(Exception):
    """Base of every user-facing error; ``str(error)`` is one line."""


class IngestError(AtlasError):
    """A market-data file could not be read; names the file and, where known, the row and field."""


class MissingDataError(AtlasError):
    """A feature needs data the store does not hold; names the feature and the data."""


class FeatureError(AtlasError):
    """A feature definition or name is invalid; names the feature, the step and the rule."""


class SpecError(AtlasError):
    """A WorkSpec is invalid; names the unit, model and field."""


class StoreBusyError(AtlasError):
    """Another writer holds a series of the store (its lock, or its lease on an object store); names
    the series, the other writer and the rule."""
