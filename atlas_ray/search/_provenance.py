"""What produced an experiment, recorded in ``experiment.json`` under ``provenance``::

    {"spec_path": ..., "spec_source": <the spec file's text> | null, "spec_sha256": <hex> | null,
     "seed": <the spec's seed>, "git_commit": <atlas_ray's commit> | null, "git_dirty": bool | null,
     "versions": {"python", "atlas_ray", "ray", "tensorflow", "keras", "pandas", "pyarrow", "numpy"},
     "featureset_code": <featurestore feature code version>,
     "store": {unit: {"store", "cache_key", "partitions": [[path, size, mtime_ns], ...]}},
     "costs": {unit: {"fee_bps", "spread_bps", "minimum_bps"}}}

``costs``: each unit's cost model as its trials charge it (a quoted spread as the number measured
before the search, ``_spread``); a continued search charges these, never a figure measured again.

``spec_source`` is the text the search ran (``finalize`` prepares the test part from it, not from a
file that may have changed since). ``git_dirty`` tells whether atlas_ray's working tree differed from
its commit (tracked files only).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["LIBRARIES", "git_state", "provenance", "spec_source", "versions"]

LIBRARIES = ("atlas_ray", "ray", "tensorflow", "keras", "pandas", "pyarrow", "numpy")


def versions() -> dict[str, str | None]:
    """Python's and each of ``LIBRARIES``' installed version (None when not installed)."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def git_state() -> tuple[str | None, bool | None]:
    """atlas_ray's git commit and whether tracked files differ from it; ``(None, None)`` outside git."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None, None
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None, None
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return commit.stdout.strip(), dirty


def spec_source(spec_path: str) -> tuple[str | None, str | None]:
    """The spec file's text and its SHA-256, or ``(None, None)`` when there is no such file."""
    path = Path(spec_path) if spec_path else None
    if path is None or not path.is_file():
        return None, None
    text = path.read_text()
    return text, hashlib.sha256(text.encode()).hexdigest()


def provenance(
    spec_path: str, seed: int, store_state: Mapping[str, Any], costs: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The ``provenance`` document of an experiment (see the module docstring)."""
    from atlas_ray.featurestore import feature_code_version

    source, digest = spec_source(spec_path)
    commit, dirty = git_state()
    return {
        "spec_path": spec_path,
        "spec_source": source,
        "spec_sha256": digest,
        "seed": seed,
        "git_commit": commit,
        "git_dirty": dirty,
        "versions": versions(),
        "featureset_code": feature_code_version(),
        "store": dict(store_state),
        "costs": dict(costs or {}),
    }
