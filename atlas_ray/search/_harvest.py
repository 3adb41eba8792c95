"""SSH harvest: copy an experiment from a head node with no shared storage, over SFTP (asyncssh).

What is copied: ``experiment.json`` and every trial whose ``trials/<id>/manifest.json`` exists on the
remote (``_manifest``): its files except ``model.keras`` (with ``models=True`` that too). Nothing else
(Ray Tune's state, TensorBoard events) and no remote shell: SFTP alone.

How a trial is copied, so that a cut harvest never leaves a half file that looks whole:

1. a file already here with the manifest's size and sha256 is not copied again;
2. a missing or changed file is read into ``trials/<id>/.<name>.<sha256[:16]>.part`` (a part left by an
   earlier, cut harvest of the same content is continued from where it stopped), and is kept only when
   its size and sha256 match the manifest;
3. when every file of the trial is verified, the parts are renamed into place (``result.json`` last)
   and the remote manifest is written beside them (atomically, last): a local ``manifest.json`` means
   the trial arrived whole.

A file whose sha256 does not match the manifest is refused (its part is deleted, nothing replaces the
copy already here): when the remote file is newer than its manifest the search is rewriting the trial
and the next harvest takes it; otherwise the remote file is corrupted and the harvest says so.

After each round ``EXPERIMENT/harvest.json`` records what is not here yet and why, which the report
shows::

    {"format": 1, "source": "ssh://user@host:port/path", "harvested": "<ISO UTC>",
     "remote_status": "running" | "finished", "missing": {"<trial_id>": "<why>"}}

Connecting (host keys, client keys, the URL) is ``_harvest_ssh``.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import stat
import sys
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import pyarrow.fs as pafs

from atlas_ray import _atomic
from atlas_ray.errors import AtlasError
from atlas_ray.experiment import EXPERIMENT_FILE, MODEL_FILES, RESULT_FILE, TRIALS_DIR, now
from atlas_ray.search._harvest_ssh import (
    CHUNK,
    DEFAULT_KNOWN_HOSTS,
    HarvestError,
    HarvestOptions,
    HarvestUnreachableError,
    Target,
    connect,
    parse_target,
)
from atlas_ray.search._manifest import (
    MANIFEST_FILE,
    FileEntry,
    Manifest,
    ManifestError,
    is_safe_name,
    parse_manifest,
    sha256_of_file,
)

with warnings.catch_warnings():
    # asyncssh still imports DSA, which cryptography >= 46 deprecates on import: noise for a user of
    # `harvest`, not a fault of theirs (the SSH code never offers or accepts DSA keys)
    warnings.filterwarnings("ignore", message="DSA is deprecated")
    import asyncssh

__all__ = [
    "DEFAULT_KNOWN_HOSTS",
    "HARVEST_FILE",
    "HarvestError",
    "HarvestIncompleteError",
    "HarvestOptions",
    "HarvestReport",
    "HarvestUnreachableError",
    "Progress",
    "Target",
    "harvest",
    "harvest_experiment",
    "parse_target",
]

HARVEST_FILE = "harvest.json"
_ATTEMPTS = 3
# What a lost connection raises (the harvest then keeps what arrived and says to run it again).
_LOST = (asyncssh.DisconnectError, asyncssh.SFTPConnectionLost, ConnectionError, TimeoutError)


class HarvestIncompleteError(AtlasError):
    """The connection was lost during a harvest; ``report`` says what arrived. Running the same
    command again continues where it stopped."""

    def __init__(self, message: str, report: HarvestReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class HarvestReport:
    """One harvest round: what was copied, what was already here, and what is not here yet."""

    files_copied: int
    bytes_copied: int
    files_present: int
    trials: int
    remote_status: str
    missing: Mapping[str, str] = field(default_factory=dict)
    corrupt: tuple[str, ...] = ()

    @property
    def finished(self) -> bool:
        """The remote search has finished and every one of its trials is here, verified."""
        return self.remote_status == "finished" and not self.missing and not self.corrupt


class Progress(Protocol):
    """What the harvest tells a progress display (the command line draws a bar on a terminal)."""

    def start(self, files: int, nbytes: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...

    def file_done(self) -> None: ...

    def finish(self) -> None: ...


class _NoProgress:
    def start(self, files: int, nbytes: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def file_done(self) -> None:
        pass

    def finish(self) -> None:
        pass


def _say(line: str) -> None:
    print(line, file=sys.stderr)


async def harvest(
    target: Target,
    options: HarvestOptions,
    *,
    progress: Progress | None = None,
    say: Callable[[str], None] = _say,
) -> HarvestReport:
    """Connect to ``target`` and harvest its experiment into ``options.to`` (one round)."""
    connection = await connect(target, options, say=say)
    async with connection:
        try:
            sftp = await connection.start_sftp_client()
        except (OSError, asyncssh.Error) as error:
            raise HarvestError(f"{target.host_port} offers no SFTP ({error})") from error
        async with sftp:
            return await harvest_experiment(
                sftp,
                target.path,
                options.to,
                models=options.models,
                progress=progress,
                source=target.url,
                chunk_size=options.chunk_size,
            )


# ------------------------------------------------------------------------------------------ harvesting


@dataclass
class _Tally:
    """What a round has done so far (internal, mutable)."""

    chunk_size: int = CHUNK
    files_copied: int = 0
    bytes_copied: int = 0
    files_present: int = 0
    trials: int = 0
    missing: dict[str, str] = field(default_factory=dict)
    corrupt: list[str] = field(default_factory=list)

    def report(self, remote_status: str) -> HarvestReport:
        return HarvestReport(
            files_copied=self.files_copied,
            bytes_copied=self.bytes_copied,
            files_present=self.files_present,
            trials=self.trials,
            remote_status=remote_status,
            missing=dict(sorted(self.missing.items())),
            corrupt=tuple(self.corrupt),
        )


@dataclass(frozen=True)
class _TrialPlan:
    """One remote trial: its manifest (bytes, parsed, mtime) and the files still to copy."""

    trial_id: str
    manifest_bytes: bytes
    manifest: Manifest
    manifest_mtime: int
    fetch: tuple[str, ...]
    present: int


async def harvest_experiment(
    sftp: asyncssh.SFTPClient,
    remote: str,
    local: str,
    *,
    models: bool = False,
    progress: Progress | None = None,
    source: str = "",
    chunk_size: int = CHUNK,
) -> HarvestReport:
    """Harvest the experiment at ``remote`` (an SFTP path) into the local folder ``local``; files are
    read ``chunk_size`` bytes at a time (what a cut transfer can lose of a file at most)."""
    progress = progress or _NoProgress()
    source = source or remote
    tally = _Tally(chunk_size=chunk_size)
    remote_status = "unknown"
    remote_ids: list[str] = []
    try:
        experiment_bytes = await _read_experiment(sftp, remote, source)
        remote_status = str(json.loads(experiment_bytes).get("status", "running"))
        os.makedirs(os.path.join(local, TRIALS_DIR), exist_ok=True)
        _write_atomic(os.path.join(local, EXPERIMENT_FILE), experiment_bytes)
        remote_ids = await _remote_trials(sftp, remote, tally)
        plans = []
        for trial_id in remote_ids:
            try:
                plan = await _plan_trial(sftp, remote, local, trial_id, models, tally)
            except _LOST:
                raise
            except asyncssh.SFTPError as error:
                tally.missing[trial_id] = f"cannot be read on the remote ({error.reason})"
                continue
            if plan is not None:
                plans.append(plan)
        progress.start(
            sum(len(p.fetch) for p in plans),
            sum(_left_to_copy(local, p, name) for p in plans for name in p.fetch),
        )
        for plan in plans:
            try:
                await _harvest_trial(sftp, remote, local, plan, models, tally, progress)
            except _LOST:
                raise
            except asyncssh.SFTPError as error:
                tally.missing[plan.trial_id] = f"cannot be read on the remote ({error.reason})"
    except _LOST as error:
        for trial_id in remote_ids:
            if not os.path.isfile(os.path.join(local, TRIALS_DIR, trial_id, MANIFEST_FILE)):
                tally.missing.setdefault(trial_id, "not harvested yet: the connection was lost")
        report = tally.report(remote_status)
        _write_harvest_record(local, source, report)
        raise HarvestIncompleteError(
            f"the connection to {source} was lost during the harvest ({' '.join(str(error).split())}); "
            f"{report.files_copied} files arrived whole, parts of others are kept: run the same command "
            "again to continue",
            report,
        ) from error
    except asyncssh.SFTPError as error:
        raise HarvestError(f"{source}: the remote refused to list or read it ({error.reason})") from error
    finally:
        progress.finish()
    report = tally.report(remote_status)
    _write_harvest_record(local, source, report)
    return report


async def _read_experiment(sftp: asyncssh.SFTPClient, remote: str, source: str) -> bytes:
    try:
        data = await _read_remote(sftp, posixpath.join(remote, EXPERIMENT_FILE))
    except asyncssh.SFTPNoSuchFile as error:
        raise HarvestError(
            f"{source} holds no {EXPERIMENT_FILE}: it is not an atlas_ray experiment (give the experiment "
            "directory, e.g. ssh://HOST/home/me/experiments/june)"
        ) from error
    except asyncssh.SFTPPermissionDenied as error:
        raise HarvestError(f"{source}/{EXPERIMENT_FILE}: permission denied on the remote") from error
    try:
        document = json.loads(data.decode())
    except (UnicodeDecodeError, ValueError) as error:
        raise HarvestError(f"{source}/{EXPERIMENT_FILE} is not valid JSON ({error})") from error
    if not isinstance(document, dict):
        raise HarvestError(f"{source}/{EXPERIMENT_FILE} is not a JSON object")
    return data


async def _read_remote(sftp: asyncssh.SFTPClient, path: str) -> bytes:
    async with sftp.open(path, "rb") as handle:
        data = await handle.read()
    return bytes(data)


async def _remote_trials(sftp: asyncssh.SFTPClient, remote: str, tally: _Tally) -> list[str]:
    """The remote trial directories with safe names, sorted."""
    try:
        entries = await sftp.readdir(posixpath.join(remote, TRIALS_DIR))
    except asyncssh.SFTPNoSuchFile:
        return []
    ids = []
    for entry in entries:
        name = str(entry.filename)
        if name in (".", "..") or not stat.S_ISDIR(entry.attrs.permissions or 0):
            continue
        if not is_safe_name(name):
            tally.corrupt.append(f"{TRIALS_DIR}/{name!r}: not a plain trial name; refused")
            continue
        ids.append(name)
    return sorted(ids)


async def _plan_trial(
    sftp: asyncssh.SFTPClient, remote: str, local: str, trial_id: str, models: bool, tally: _Tally
) -> _TrialPlan | None:
    """Read the remote manifest of ``trial_id`` and decide which files must be copied."""
    path = posixpath.join(remote, TRIALS_DIR, trial_id, MANIFEST_FILE)
    try:
        attrs = await sftp.stat(path)
        data = await _read_remote(sftp, path)
    except asyncssh.SFTPNoSuchFile:
        tally.missing[trial_id] = f"no {MANIFEST_FILE} on the remote yet (the search is still gathering it)"
        return None
    try:
        manifest = parse_manifest(data, source=f"{TRIALS_DIR}/{trial_id}/{MANIFEST_FILE}")
    except ManifestError as error:
        tally.corrupt.append(f"{error}; refused")
        tally.missing[trial_id] = f"its {MANIFEST_FILE} on the remote is broken"
        return None
    folder = os.path.join(local, TRIALS_DIR, trial_id)
    local_manifest = _local_manifest(folder)
    fetch, present = [], 0
    for name, entry in _wanted(manifest, models).items():
        if _local_matches(folder, name, entry, local_manifest):
            present += 1
        else:
            fetch.append(name)
    tally.files_present += present
    return _TrialPlan(trial_id, data, manifest, int(attrs.mtime or 0), tuple(fetch), present)


def _wanted(manifest: Manifest, models: bool) -> dict[str, FileEntry]:
    """The manifest's files to copy, ``result.json`` last (it makes the trial readable)."""
    files = {n: e for n, e in manifest.files.items() if models or n not in MODEL_FILES}
    return dict(sorted(files.items(), key=lambda item: (item[0] == RESULT_FILE, item[0])))


def _local_manifest(folder: str) -> Manifest | None:
    path = os.path.join(folder, MANIFEST_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as handle:
            return parse_manifest(handle.read(), source=path)
    except ManifestError:
        return None


def _local_matches(folder: str, name: str, entry: FileEntry, local_manifest: Manifest | None) -> bool:
    """Whether the local copy of ``name`` has the manifest's size and sha256 (the local manifest
    vouches for files the harvest verified before; anything else is hashed)."""
    path = os.path.join(folder, name)
    if not os.path.isfile(path) or os.path.getsize(path) != entry.size:
        return False
    if local_manifest is not None and local_manifest.files.get(name) == entry:
        return True
    return sha256_of_file(path) == entry.sha256


def _part_path(folder: str, name: str, entry: FileEntry) -> str:
    return os.path.join(folder, f".{name}.{entry.sha256[:16]}.part")


def _left_to_copy(local: str, plan: _TrialPlan, name: str) -> int:
    entry = plan.manifest.files[name]
    part = _part_path(os.path.join(local, TRIALS_DIR, plan.trial_id), name, entry)
    done = os.path.getsize(part) if os.path.isfile(part) else 0
    return max(entry.size - done, 0)


async def _harvest_trial(
    sftp: asyncssh.SFTPClient,
    remote: str,
    local: str,
    plan: _TrialPlan,
    models: bool,
    tally: _Tally,
    progress: Progress,
) -> None:
    """Copy the plan's files into verified parts, then commit the trial (see the module docstring).
    A mismatch re-reads the remote manifest: changed, the trial is planned again (a few times)."""
    folder = os.path.join(local, TRIALS_DIR, plan.trial_id)
    remote_folder = posixpath.join(remote, TRIALS_DIR, plan.trial_id)
    for _ in range(_ATTEMPTS):
        os.makedirs(folder, exist_ok=True)
        _remove_stale_parts(folder, plan.manifest)
        bad: tuple[str, str] | None = None
        for name in plan.fetch:
            entry = plan.manifest.files[name]
            part = _part_path(folder, name, entry)
            digest = await _fetch(sftp, posixpath.join(remote_folder, name), part, entry, tally, progress)
            if digest is not None:
                bad = (name, digest)
                break
            progress.file_done()
        if bad is None:
            _commit_trial(folder, plan, tally)
            return
        renewed = await _plan_trial(sftp, remote, local, plan.trial_id, models, _Tally())
        if renewed is not None and renewed.manifest_bytes != plan.manifest_bytes:
            plan = renewed
            continue
        await _judge_mismatch(sftp, remote_folder, plan, *bad, tally)
        return
    tally.missing[plan.trial_id] = "the search kept rewriting it during the harvest; the next one takes it"


def _commit_trial(folder: str, plan: _TrialPlan, tally: _Tally) -> None:
    """Rename the verified parts into place (``result.json`` last), then write the manifest."""
    for name in plan.fetch:
        os.replace(_part_path(folder, name, plan.manifest.files[name]), os.path.join(folder, name))
        tally.files_copied += 1
    manifest_path = os.path.join(folder, MANIFEST_FILE)
    if not os.path.isfile(manifest_path) or _read_local(manifest_path) != plan.manifest_bytes:
        _write_atomic(manifest_path, plan.manifest_bytes)
    tally.trials += 1


async def _judge_mismatch(
    sftp: asyncssh.SFTPClient, remote_folder: str, plan: _TrialPlan, name: str, digest: str, tally: _Tally
) -> None:
    """A file that does not match an unchanged manifest: newer than the manifest, the search is
    rewriting it (taken next time); otherwise it is corrupted on the remote."""
    attrs = await sftp.stat(posixpath.join(remote_folder, name))
    if int(attrs.mtime or 0) > plan.manifest_mtime:
        tally.missing[plan.trial_id] = f"{name} is being rewritten by the search; the next harvest takes it"
        return
    expected = plan.manifest.files[name]
    tally.corrupt.append(
        f"{TRIALS_DIR}/{plan.trial_id}/{name} on the remote is corrupted: its sha256 is {digest}, but "
        f"{MANIFEST_FILE} says {expected.sha256} ({expected.size} bytes); refused, not written"
    )
    tally.missing[plan.trial_id] = f"{name} is corrupted on the remote (sha256 mismatch)"


async def _fetch(
    sftp: asyncssh.SFTPClient,
    path: str,
    part: str,
    entry: FileEntry,
    tally: _Tally,
    progress: Progress,
) -> str | None:
    """Copy the remote ``path`` into ``part`` (continuing a part already there); ``None`` when the part
    matches ``entry``, else the sha256 found (the part is deleted). A continued part that does not
    match is copied once more from the start."""
    start = os.path.getsize(part) if os.path.isfile(part) else 0
    if start > entry.size:
        os.remove(part)
        start = 0
    digest = hashlib.sha256()
    if start:
        with open(part, "rb") as existing:
            while chunk := existing.read(1 << 20):
                digest.update(chunk)
    offset = start
    async with sftp.open(path, "rb") as source:
        with open(part, "ab") as sink:
            while True:
                # read at most one byte past the manifest's size: enough to see that the file is longer
                want = min(tally.chunk_size, entry.size + 1 - offset)
                if want <= 0:
                    break
                data = await source.read(want, offset)
                if not data:
                    break
                sink.write(data)
                sink.flush()
                digest.update(data)
                offset += len(data)
                tally.bytes_copied += len(data)
                progress.advance(len(data))
            os.fsync(sink.fileno())
    found = digest.hexdigest()
    if offset == entry.size and found == entry.sha256:
        return None
    os.remove(part)
    if start:
        return await _fetch(sftp, path, part, entry, tally, progress)
    return found if offset == entry.size else f"{found} over {offset}+ bytes"


def _remove_stale_parts(folder: str, manifest: Manifest) -> None:
    """Delete parts of contents the manifest no longer lists (an older version of a file)."""
    keep = {os.path.basename(_part_path(folder, n, e)) for n, e in manifest.files.items()}
    for name in os.listdir(folder):
        if name.startswith(".") and name.endswith(".part") and name not in keep:
            os.remove(os.path.join(folder, name))


def _read_local(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a uniquely named temp file, synced, then renamed
    (``atlas_ray._atomic``)."""
    _atomic.write_bytes(pafs.LocalFileSystem(), os.path.abspath(path), data)


def _write_harvest_record(local: str, source: str, report: HarvestReport) -> None:
    if not os.path.isdir(local):
        return
    document = {
        "format": 1,
        "source": source,
        "harvested": now(),
        "remote_status": report.remote_status,
        "missing": dict(report.missing),
    }
    _write_atomic(os.path.join(local, HARVEST_FILE), json.dumps(document, indent=2, sort_keys=True).encode())
