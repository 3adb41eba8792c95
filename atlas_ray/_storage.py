"""Where atlas_ray keeps things: a local path or a URI, and the pyarrow filesystem behind it.

Every place that stores or reads (the market store, the featureset cache, experiments, trials, the
report's reading, ingest reports, GDS watermarks) takes one of these, and only this module turns it
into a ``pyarrow.fs.FileSystem`` and a path inside it:

- a local path (``./experiments``, ``atlas_store``, ``/data/store``) is made absolute with
  ``resolve`` **once, on the driver**, before anything is sent to Ray workers: a Ray worker's working
  directory is not the driver's (Tune moves each trial into its own folder, and a worker on another
  node starts wherever its raylet did), so a relative path would name another directory on every
  node. Objects that hold a location (``PartitionStore``, the experiment path a search hands its
  trials) keep the resolved form;
- a URI (``s3://bucket/prefix``, ``gs://bucket/prefix``, ``file:///abs/path``, anything
  ``pyarrow.fs.FileSystem.from_uri`` reads) is kept as given and means the same place on every node.

S3-compatible endpoints (MinIO, Ceph, moto, R2, ...): either set the AWS SDK's own variables on every
node (``AWS_ENDPOINT_URL=http://host:9000``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_DEFAULT_REGION``), or put the endpoint in the URI's query, which pyarrow reads::

    s3://bucket/experiments?endpoint_override=host:9000&scheme=http&region=us-east-1

The query stays at the end of every location ``join`` derives from it (``s3://bucket/experiments/june
/trials/x?endpoint_override=...``), so it travels with the path to every worker. Credentials never go
in the URI (they would be printed in messages); they come from the environment or the SDK's files.

``gs://`` (Google Cloud Storage, pyarrow's ``GcsFileSystem``): credentials from the environment
(``GOOGLE_APPLICATION_CREDENTIALS`` or the node's service account); the same locations, joins and
atomic writes (``atlas_ray._atomic``) apply. What a write promises on an object store is described
there.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable

import pyarrow.fs as pafs

from atlas_ray.errors import AtlasError

__all__ = [
    "StorageError",
    "exists",
    "filesystem",
    "is_dir",
    "is_file",
    "is_local",
    "is_uri",
    "join",
    "list_dir",
    "parent",
    "resolve",
    "split_query",
]

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# Object stores whose pyarrow path is "bucket/key": one filesystem object serves a whole bucket.
_BUCKET_SCHEMES = ("s3", "gs", "gcs")
_ENV_PREFIXES = ("AWS_", "GOOGLE_", "GCS_", "STORAGE_EMULATOR_HOST")


class StorageError(AtlasError):
    """A location that cannot be opened (unknown scheme, bad query, no bucket); names it and why."""

    def __init__(self, location: str, reason: str) -> None:
        super().__init__(f"storage {location!r} cannot be opened: {reason}")
        self.location = location
        self.reason = reason

    def __reduce__(self) -> tuple[type[StorageError], tuple[str, str]]:  # travels back from Ray workers
        return (type(self), (self.location, self.reason))


def is_uri(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` is a URI (``scheme://...``) rather than a local path."""
    return bool(_SCHEME.match(os.fspath(location)))


def is_local(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` is on this machine's disk (a path, or a ``file://`` URI)."""
    text = os.fspath(location)
    return not is_uri(text) or text.lower().startswith("file://")


def resolve(location: str | os.PathLike[str]) -> str:
    """``location`` as it means the same place on every node: an absolute local path (against the
    current working directory, here, now), or the URI unchanged."""
    text = os.fspath(location)
    if not text:
        raise StorageError(text, "it is empty; give a directory or a URI (s3://..., gs://...)")
    return text if is_uri(text) else os.path.abspath(text)


def split_query(location: str) -> tuple[str, str]:
    """``(location without its query, query)``; the query is ``""`` for a local path or a URI without one."""
    if not is_uri(location) or "?" not in location:
        return location, ""
    base, query = location.split("?", 1)
    return base, query


def join(location: str | os.PathLike[str], *parts: str) -> str:
    """``location/part/...``, the URI's query (an endpoint, a region) kept at the end."""
    base, query = split_query(os.fspath(location))
    joined = base.rstrip("/") or "/"
    for part in parts:
        if part.strip("/"):
            joined = f"{joined.rstrip('/')}/{part.strip('/')}"
    return f"{joined}?{query}" if query else joined


def parent(location: str | os.PathLike[str]) -> str:
    """The folder holding ``location`` (the query kept): ``parent("s3://b/x/june?q") == "s3://b/x?q"``."""
    base, query = split_query(os.fspath(location))
    head = base.rstrip("/").rsplit("/", 1)[0]
    return f"{head}?{query}" if query else head


def filesystem(location: str | os.PathLike[str]) -> tuple[pafs.FileSystem, str]:
    """``(filesystem, path inside it)`` for a local path (resolved) or a URI; the path has no
    trailing ``/``. Raises ``StorageError`` naming the location when pyarrow cannot open it."""
    text = resolve(location)
    if not is_uri(text):
        return _local(), text.rstrip("/") or "/"
    base, query = split_query(text)
    scheme, rest = base.split("://", 1)
    scheme = scheme.lower()
    try:
        if scheme in _BUCKET_SCHEMES:
            bucket, _, key = rest.partition("/")
            if not bucket:
                raise StorageError(text, f"it names no bucket; write {scheme}://BUCKET/PATH")
            fs = _bucket_filesystem(scheme, bucket, query, _environment())
            return fs, f"{bucket}/{key}".rstrip("/")
        fs, path = pafs.FileSystem.from_uri(text)
    except StorageError:
        raise
    except (ValueError, OSError, TypeError) as error:  # pyarrow.ArrowInvalid is a ValueError
        raise StorageError(text, " ".join(str(error).split())) from error
    return fs, path.rstrip("/")


def exists(location: str | os.PathLike[str]) -> bool:
    """Whether a file or folder is at ``location``."""
    fs, path = filesystem(location)
    return bool(fs.get_file_info(path).type != pafs.FileType.NotFound)


def is_file(location: str | os.PathLike[str]) -> bool:
    fs, path = filesystem(location)
    return bool(fs.get_file_info(path).type == pafs.FileType.File)


def is_dir(location: str | os.PathLike[str]) -> bool:
    fs, path = filesystem(location)
    return bool(fs.get_file_info(path).type == pafs.FileType.Directory)


def list_dir(location: str | os.PathLike[str]) -> list[pafs.FileInfo]:
    """What is directly inside the folder at ``location``, sorted by name (empty when it is absent)."""
    fs, path = filesystem(location)
    try:
        infos: Iterable[pafs.FileInfo] = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    except FileNotFoundError:
        return []
    return sorted(infos, key=lambda info: info.base_name)


@functools.cache
def _local() -> pafs.LocalFileSystem:
    return pafs.LocalFileSystem()


def _environment() -> tuple[tuple[str, str], ...]:
    """The variables an object store's client reads (part of the cache key: a changed endpoint or
    key in the environment gives a new filesystem object)."""
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES)))


@functools.lru_cache(maxsize=64)
def _bucket_filesystem(
    scheme: str, bucket: str, query: str, environment: tuple[tuple[str, str], ...]
) -> pafs.FileSystem:
    """One filesystem per bucket, query and environment: ``from_uri`` may look the bucket's region up
    (a request), and a report reads hundreds of trial folders of one bucket."""
    del environment  # only the cache key
    fs, _ = pafs.FileSystem.from_uri(f"{scheme}://{bucket}" + (f"?{query}" if query else ""))
    return fs
