"""The checksum manifest of one trial: ``EXPERIMENT/trials/<trial_id>/manifest.json``.

The search writes it each time it writes or settles a trial's ResultsObject (``_gather``), after the
trial's files, so it describes the files as they stand. The SSH harvest (``_harvest``) takes a copied
file as good only when its size and sha256 match the manifest. Format (version 1)::

    {"format": 1,
     "algorithm": "sha256",
     "written": "<ISO UTC>",
     "files": {"curves.parquet":      {"sha256": "<64 hex digits>", "size": <bytes>},
               "model.keras":         {...},          (absent for a trial that failed early)
               "predictions.parquet": {...},
               "result.json":         {...}}}

``files`` lists every plain file of the trial directory except ``manifest.json`` itself, temporary
files (``*.tmp``) and hidden files (a name starting with ``.``: a harvest's ``*.part`` files); names are
plain file names (no folders). The manifest is written atomically (``atlas_ray._atomic``), on any
pyarrow filesystem (a local path or a storage URI).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow.fs as pafs

from atlas_ray import _atomic, _storage
from atlas_ray.errors import AtlasError

__all__ = [
    "MANIFEST_FILE",
    "FileEntry",
    "Manifest",
    "ManifestError",
    "is_safe_name",
    "manifest_of",
    "parse_manifest",
    "read_manifest",
    "sha256_of_file",
    "write_manifest",
]

MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = 1
_CHUNK = 1 << 20
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.,=+-]*")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class ManifestError(AtlasError):
    """A manifest that cannot be read or breaks the format; names the manifest and the field."""


@dataclass(frozen=True)
class FileEntry:
    """One file's size in bytes and sha256 (lowercase hex)."""

    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """A trial's files by name, and when the manifest was written."""

    files: Mapping[str, FileEntry]
    written: str = ""


def is_safe_name(name: str) -> bool:
    """Whether ``name`` is a plain file or folder name (no separator, no ``..``, not hidden)."""
    return bool(_SAFE_NAME.fullmatch(name)) and ".." not in name


def _listed(name: str) -> bool:
    return name != MANIFEST_FILE and not name.endswith(".tmp") and not name.startswith(".")


def manifest_of(directory: str) -> Manifest:
    """The manifest of the files in ``directory`` as they are now (sizes and sha256 read back)."""
    from atlas_ray.experiment import now

    fs, base = _storage.filesystem(directory)
    files: dict[str, FileEntry] = {}
    for info in fs.get_file_info(pafs.FileSelector(base)):
        if info.type != pafs.FileType.File or not _listed(info.base_name):
            continue
        digest = hashlib.sha256()
        size = 0
        with fs.open_input_stream(info.path) as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        files[info.base_name] = FileEntry(size=size, sha256=digest.hexdigest())
    return Manifest(files=dict(sorted(files.items())), written=now())


def manifest_bytes(manifest: Manifest) -> bytes:
    document = {
        "format": MANIFEST_FORMAT,
        "algorithm": "sha256",
        "written": manifest.written,
        "files": {name: {"sha256": e.sha256, "size": e.size} for name, e in manifest.files.items()},
    }
    return json.dumps(document, indent=2, sort_keys=True).encode()


def write_manifest(directory: str) -> Manifest:
    """Checksum every file of the trial in ``directory`` and write ``manifest.json`` atomically."""
    manifest = manifest_of(directory)
    fs, base = _storage.filesystem(directory)
    _atomic.write_bytes(fs, f"{base}/{MANIFEST_FILE}", manifest_bytes(manifest))
    return manifest


def read_manifest(directory: str) -> Manifest | None:
    """The manifest in ``directory``, or None when there is none."""
    fs, base = _storage.filesystem(directory)
    path = f"{base}/{MANIFEST_FILE}"
    if fs.get_file_info(path).type != pafs.FileType.File:
        return None
    with fs.open_input_stream(path) as stream:
        return parse_manifest(stream.read(), source=path)


def parse_manifest(data: bytes, *, source: str) -> Manifest:
    """Parse and check manifest bytes read from ``source`` (named in errors)."""
    try:
        document: Any = json.loads(data.decode())
    except (UnicodeDecodeError, ValueError) as error:
        raise ManifestError(f"{source} is not valid JSON ({error})") from error
    if not isinstance(document, dict) or document.get("format") != MANIFEST_FORMAT:
        found = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise ManifestError(f"{source}: format is {found!r}, but must be {MANIFEST_FORMAT}")
    if document.get("algorithm") != "sha256":
        raise ManifestError(f"{source}: algorithm is {document.get('algorithm')!r}, but must be 'sha256'")
    raw = document.get("files")
    if not isinstance(raw, dict):
        raise ManifestError(f"{source}: files is {type(raw).__name__}, but must be an object")
    files: dict[str, FileEntry] = {}
    for name, entry in raw.items():
        if not is_safe_name(name) or not _listed(name):
            raise ManifestError(f"{source}: file name {name!r} is not a plain file name")
        size = entry.get("size") if isinstance(entry, dict) else None
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ManifestError(f"{source}: files[{name!r}].size is {size!r}, but must be an integer >= 0")
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise ManifestError(f"{source}: files[{name!r}].sha256 is {digest!r}, but must be 64 hex digits")
        files[name] = FileEntry(size=size, sha256=digest)
    return Manifest(files=files, written=str(document.get("written", "")))


def sha256_of_file(path: str) -> str:
    """The sha256 (hex) of a local file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
