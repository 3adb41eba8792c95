"""placeholder"""
from __future__ import annotations

from pathlib import Path

from atlas_ray.featurestore._formats._common import Source, file_error

FORMAT = "cdd"
def looks_like_cdd(header: list[str]) -> bool:
    return False
def read_cdd(path: Path, name: str) -> Source:
    raise file_error(name, "not yet")
