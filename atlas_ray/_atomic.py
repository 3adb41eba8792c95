"""Writing a file so that a reader never sees half of it, on a local disk or an object store.

A reader of any file atlas_ray writes (a partition, ``result.json``, ``experiment.json``, a
manifest, the featureset cache, an ingest report, a GDS watermark, ``model.keras``) sees the old
whole file, the new whole file, or (for a new name) no file; never a part. How, by filesystem:

- **Local disk** (``pyarrow.fs.LocalFileSystem``): the bytes go to a temporary file in the same
  folder (``NAME.<uuid>.tmp``; listings, the manifest and the harvest skip ``*.tmp``), are flushed to
  the disk (``fsync``), and ``os.replace`` puts it in place of the old one: a rename within one
  filesystem is atomic, and the file was whole on disk before it, so after a crash the name holds the
  old or the new content; the folder is then flushed too (``fsync`` of the folder), so the rename
  itself survives a power loss. The temporary name is private to its writer (a fresh uuid each time):
  two writers of one file never write into each other's temporary file. A failure before the rename
  removes the temporary file and leaves the old file as it was. (Two writers that each read, change
  and replace one file still need a lock around the three steps: ``atlas_ray._locks``.)
- **Object stores** (``s3://``, ``gs://``): no rename. A bucket's "rename" is a copy and a delete
  (two requests; between them, or after a crash, both or neither name exist, and the copy costs a
  second upload), so it buys nothing. Instead the whole file is first made in memory and then sent
  as one object: one ``PUT`` (or, for a large one, a multipart upload that the store makes visible
  only on its final ``CompleteMultipartUpload``). An object store makes an object visible whole or
  not at all, and a new version replaces the old one whole: S3 and GCS both promise that a read after
  a successful write sees the new object (strong read-after-write and list-after-write consistency),
  and that no reader sees a partly uploaded one. A failure while the file is made (in memory) sends
  nothing; a failed upload is not completed, so the old object stays. The file is made in memory
  *before* the stream is opened because closing a pyarrow S3 / GCS output stream completes the
  upload, and pyarrow closes it on the way out of a ``with`` block or in its destructor even when an
  exception is passing: streaming a half-made file there would publish the half.
- **gs://** keeps the same promises with pyarrow's ``GcsFileSystem``: its output stream is a GCS
  resumable upload, and GCS makes the object (a new generation of it) visible only when the upload
  is finalised, when the stream is closed after the whole buffer was written; a closed stream whose
  upload did not finalise leaves the previous generation live. Object writes on GCS are atomic per
  object and strongly consistent for reads and listings, as on S3.
- Any other filesystem (HDFS, where a rename is atomic and a file being written is visible):
  temporary file beside it, then ``FileSystem.move``.

Reading such a file back: ``read_parquet`` reads a parquet file through one open handle (a local
file) or one whole-object read (a bucket). ``pyarrow.parquet.read_table(path)`` opens the path twice
(the footer, then the pages), and a file a writer puts in place between the two is read against the
old footer ("Deserializing page header failed", or rows of neither file); every parquet file atlas_ray
replaces in place (partitions, the featureset cache) is read through ``read_parquet``.

Several files that must change together (``PartitionStore.write_many``) are ``stage``\\ d first and
``commit``\\ ted only when every one was made, so a failure while making them changes nothing. Each
file is atomic on its own; a crash between two commits leaves some new and some old, each whole.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

__all__ = ["Staged", "read_parquet", "stage", "upload_file", "write_bytes", "write_text", "write_with"]

Writer = Callable[[pa.NativeFile], object]
"""Writes a whole file into the stream it is given (``lambda out: pq.write_table(table, out)``)."""

_TEMP_SUFFIX = ".tmp"


@dataclass(frozen=True, eq=False)
class Staged:
    """A file made but not yet in place: ``commit`` puts it there (atomically), ``discard`` drops it.

    Local disk and rename-capable filesystems: ``temp`` is the whole file beside ``path``. Object
    stores: ``data`` is the whole file in memory, sent as one object on ``commit``."""

    fs: pafs.FileSystem
    path: str
    temp: str | None = None
    data: pa.Buffer | None = None

    def commit(self) -> None:
        if self.data is not None:
            _put(self.fs, self.path, self.data)
        elif self.temp is None:
            return
        elif _is_local(self.fs):
            try:
                os.replace(self.temp, self.path)
            except BaseException:
                self.discard()
                raise
            _fsync_folder(os.path.dirname(self.path))
        else:
            self.fs.move(self.temp, self.path)

    def discard(self) -> None:
        if self.temp is None:
            return
        with contextlib.suppress(OSError):  # already gone
            self.fs.delete_file(self.temp)


def stage(fs: pafs.FileSystem, path: str, writer: Writer) -> Staged:
    """Make the file ``path`` on ``fs`` with ``writer`` without putting it in place (see ``Staged``).

    Creates the folder. A ``writer`` that raises leaves nothing behind and the old file as it was."""
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    if parent:
        fs.create_dir(parent, recursive=True)
    if not _renames(fs):
        sink = pa.BufferOutputStream()
        writer(sink)
        return Staged(fs, path, data=sink.getvalue())
    temp = f"{path}.{uuid.uuid4().hex}{_TEMP_SUFFIX}"
    try:
        with fs.open_output_stream(temp) as stream:
            writer(stream)
        if _is_local(fs):
            _fsync(temp)
    except BaseException:
        Staged(fs, path, temp=temp).discard()
        raise
    return Staged(fs, path, temp=temp)


def write_with(fs: pafs.FileSystem, path: str, writer: Writer) -> None:
    """Write the file ``path`` on ``fs`` with ``writer`` so that no reader sees half of it."""
    stage(fs, path, writer).commit()


def write_bytes(fs: pafs.FileSystem, path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` on ``fs`` so that no reader sees half of it."""
    write_with(fs, path, lambda stream: stream.write(data))


def write_text(fs: pafs.FileSystem, path: str, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` on ``fs`` so that no reader sees half of it."""
    write_bytes(fs, path, text.encode("utf-8"))


def upload_file(local: str, fs: pafs.FileSystem, path: str) -> None:
    """Copy the local file ``local`` to ``path`` on ``fs`` so that no reader sees half of it."""

    def copy(stream: pa.NativeFile) -> None:
        with open(local, "rb") as source:
            while chunk := source.read(1 << 22):
                stream.write(chunk)

    write_with(fs, path, copy)


def _is_local(fs: pafs.FileSystem) -> bool:
    return isinstance(fs, pafs.LocalFileSystem)


def _renames(fs: pafs.FileSystem) -> bool:
    """Whether a rename on ``fs`` is one atomic step (a local disk, HDFS), not a copy and a delete."""
    return _is_local(fs) or type(fs).__name__ == "HadoopFileSystem"


def _put(fs: pafs.FileSystem, path: str, data: pa.Buffer) -> None:
    """Send ``data`` as the one object ``path``: it appears only when the upload completes."""
    with fs.open_output_stream(path) as stream:
        stream.write(data)


def _fsync_folder(path: str) -> None:
    """Flush a folder's entries (the rename just made) to the disk, where folders can be opened."""
    try:
        descriptor = os.open(path or ".", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # a platform or filesystem whose folders cannot be opened: nothing to flush
        return
    try:
        with contextlib.suppress(OSError):  # some filesystems (and platforms) refuse fsync of a folder
            os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync(path: str) -> None:
    """Flush the file's data to the disk (any descriptor of the file flushes its pages)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read_parquet(fs: pafs.FileSystem, path: str, columns: Sequence[str] | None = None) -> pa.Table:
    """A parquet file (the ``columns`` of them it holds; None: all) read through one open handle, so
    a writer replacing it meanwhile cannot mix two files (see the module docstring). On a disk the
    file opened lives on while it is open; on an object store the whole object is read in one request."""
    if isinstance(fs, pafs.LocalFileSystem):
        with fs.open_input_file(path) as handle:
            return _read_columns(pq.ParquetFile(handle), columns)
    with fs.open_input_stream(path) as stream:
        data = stream.read_buffer()
    return _read_columns(pq.ParquetFile(pa.BufferReader(data)), columns)


def _read_columns(file: pq.ParquetFile, columns: Sequence[str] | None) -> pa.Table:
    if columns is None:
        return file.read()
    held = set(file.schema_arrow.names)
    return file.read(columns=[c for c in dict.fromkeys(columns) if c in held])
