"""One writer at a time: a named writer lock, on a local disk, a shared POSIX filesystem or a bucket.

``hold(fs, names)`` holds the lock of every name (a path on ``fs`` without suffix) while its block
runs; the market store takes one per series (``PartitionStore.writing``) and the GDS watermark one
per database (``StateFile.update``). How, by filesystem:

- **Local disk and shared POSIX filesystems** (``pyarrow.fs.LocalFileSystem``; an NFS, CephFS,
  Lustre or GPFS mount is local to pyarrow): an exclusive ``fcntl`` record lock (``fcntl.lockf``) on
  the lock file ``NAME.lock``. POSIX record locks exclude other processes on this machine and, on
  NFS (v3 through lockd / NLM, v4 natively) and the cluster filesystems above, processes on other
  machines (Linux emulates ``flock`` on NFS with these same locks). The kernel (or the NFS server's
  lease) drops the lock when its process dies, so a crashed writer never leaves a stale lock behind.
  A second writer waits for the first (polling, up to ``timeout`` seconds, then ``StoreBusyError``
  naming the holder, which the holder writes into the lock file: host, pid, since). POSIX record
  locks belong to a process, not to a file handle, so threads of one process are kept apart by a
  ``threading.RLock`` per lock file as well; the thread that holds a lock may take it again (a
  series locked by ``ingest`` is written by ``write_counted``, which locks it too).
- **Object stores** (``s3://``, ``gs://``) and any other pyarrow filesystem: there is no lock, and
  pyarrow offers no conditional write (``If-None-Match``), so the rule is **one writer per series at a
  time**, and a lease makes a second writer visible: the writer puts the object ``NAME.lease`` (its
  owner id, host, pid, when it started and when the lease expires) and deletes it when done. A
  writer that finds a live lease of another owner refuses at once with ``StoreBusyError`` (one line:
  what, who, until when, and the lease to delete if that writer is dead). A lease left behind by a
  crashed writer expires after ``lease_seconds`` (15 minutes). Checking and putting are two
  requests, so two writers that start in the same instant can both go on (each re-reads the lease
  after its put, which narrows that window to the time between one's check and the other's put);
  the lease catches a second writer, it does not replace the rule.

Names are taken in sorted order, so two writers that need several of them never deadlock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pyarrow.fs as pafs

from atlas_ray import _atomic
from atlas_ray.errors import StoreBusyError

__all__ = ["LEASE_SECONDS", "LOCK_TIMEOUT", "hold", "lock_file"]

LOCK_TIMEOUT = 600.0
"""Seconds a writer waits for another one's lock on a disk before it gives up."""
LEASE_SECONDS = 900.0
"""Seconds a lease on an object store stays live (a crashed writer's lease expires after that)."""

_OWNER = uuid.uuid4().hex
"""This process's identity in leases (a pid alone repeats across machines)."""


@dataclass
class _Entry:
    """One lock name as this process holds it: the thread lock, how deep it is held, what to undo."""

    thread_lock: threading.RLock
    depth: int = 0
    descriptor: int | None = None
    lease: str | None = None


_ENTRIES: dict[str, _Entry] = {}
_ENTRIES_GUARD = threading.Lock()


def lock_file(name: str) -> str:
    """The lock file of ``name`` on a disk (``NAME.lock``)."""
    return f"{name}.lock"


@contextlib.contextmanager
def hold(
    fs: pafs.FileSystem,
    names: Sequence[str],
    *,
    what: str = "",
    timeout: float = LOCK_TIMEOUT,
    lease_seconds: float = LEASE_SECONDS,
) -> Iterator[None]:
    """Hold the writer lock of every name in ``names`` (paths on ``fs``) while the block runs.

    ``what`` says in an error what is locked (``the series bitflyer/btc_jpy trades``). Raises
    ``StoreBusyError`` when another writer holds one past ``timeout`` seconds (disk) or holds a live
    lease (object store); nothing is held then."""
    if timeout < 0:
        raise ValueError(f"The value of `timeout` is {timeout}, but must be `timeout >= 0`.")
    if lease_seconds <= 0:
        raise ValueError(f"The value of `lease_seconds` is {lease_seconds}, but must be `lease_seconds > 0`.")
    with contextlib.ExitStack() as stack:
        for name in sorted(set(names)):
            stack.enter_context(_hold_one(fs, name, what or name, timeout, lease_seconds))
        yield


@contextlib.contextmanager
def _hold_one(
    fs: pafs.FileSystem, name: str, what: str, timeout: float, lease_seconds: float
) -> Iterator[None]:
    local = isinstance(fs, pafs.LocalFileSystem)
    key = f"{type(fs).__name__}:{os.path.abspath(name) if local else name}"
    with _ENTRIES_GUARD:
        entry = _ENTRIES.setdefault(key, _Entry(threading.RLock()))
    if not entry.thread_lock.acquire(timeout=timeout):
        raise StoreBusyError(f"{what}: another thread of this process held its writer lock for {timeout:g} s")
    try:
        if entry.depth == 0:
            if local:
                entry.descriptor = _lock_on_disk(lock_file(name), what, timeout)
            else:
                entry.lease = _take_lease(fs, f"{name}.lease", what, lease_seconds)
        entry.depth += 1
        try:
            yield
        finally:
            entry.depth -= 1
            if entry.depth == 0:
                _release(fs, entry)
    finally:
        entry.thread_lock.release()


def _release(fs: pafs.FileSystem, entry: _Entry) -> None:
    if entry.descriptor is not None:
        descriptor, entry.descriptor = entry.descriptor, None
        os.close(descriptor)  # closing drops the process's record locks on the file
    if entry.lease is not None:
        lease, entry.lease = entry.lease, None
        with contextlib.suppress(OSError):  # gone already (deleted by hand): nothing to undo
            if _read_lease(fs, lease).get("owner") == _OWNER:
                fs.delete_file(lease)


def _holder() -> dict[str, object]:
    return {"owner": _OWNER, "host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}


def _describe(holder: dict[str, object]) -> str:
    since = holder.get("since")
    when = _utc(since, "%Y-%m-%d %H:%M:%S UTC")
    return f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} since {when}"


def _utc(seconds: object, layout: str) -> str:
    return time.strftime(layout, time.gmtime(float(seconds))) if isinstance(seconds, int | float) else "?"


def _lock_on_disk(path: str, what: str, timeout: float) -> int:
    """An exclusive fcntl record lock on ``path`` (created), waited for up to ``timeout`` seconds."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout
    pause = 0.002
    try:
        while True:
            try:
                fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:  # EACCES / EAGAIN: another process holds it
                if time.monotonic() >= deadline:
                    raise StoreBusyError(
                        f"{what}: another writer ({_describe(_read_holder(descriptor))}) held its lock "
                        f"{path} for over {timeout:g} s; atlas_ray writes a series from one writer at a time"
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.05)
        info = json.dumps(_holder()).encode()
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, info, 0)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def _read_holder(descriptor: int) -> dict[str, object]:
    try:
        data = json.loads(os.pread(descriptor, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _read_lease(fs: pafs.FileSystem, path: str) -> dict[str, object]:
    """The lease at ``path``; ``{}`` when there is none (or it cannot be read as one)."""
    if fs.get_file_info(path).type != pafs.FileType.File:
        return {}
    with fs.open_input_stream(path) as stream:
        raw = stream.read()
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _take_lease(fs: pafs.FileSystem, path: str, what: str, seconds: float) -> str:
    """Put a lease of this process at ``path``, refusing when another owner's lease is live."""
    _refuse_live_lease(fs, path, what)
    lease = {**_holder(), "expires": time.time() + seconds}
    _atomic.write_text(fs, path, json.dumps(lease))
    _refuse_live_lease(fs, path, what)  # a writer that put its lease just after ours
    return path


def _refuse_live_lease(fs: pafs.FileSystem, path: str, what: str) -> None:
    found = _read_lease(fs, path)
    if not found or found.get("owner") == _OWNER:
        return
    expires = found.get("expires")
    if isinstance(expires, int | float) and expires <= time.time():
        return  # a crashed writer's lease: expired
    until = _utc(expires, "%H:%M:%S UTC")
    raise StoreBusyError(
        f"{what}: another writer ({_describe(found)}) holds its lease {path} until {until}; on an object "
        "store atlas_ray writes a series from one writer at a time (delete the lease if that writer is dead)"
    )
