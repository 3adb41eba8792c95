"""The SSH harvest against a real asyncssh SSH/SFTP server on 127.0.0.1 (throwaway host and user keys)
serving a small real experiment: real Keras models trained on the real Coinbase minute bars, gathered
into ResultsObjects (with their checksum manifests) by the search's own gather code."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from atlas_ray._cli import run_cli
from atlas_ray.experiment import Experiment, now, write_experiment
from atlas_ray.featurestore import MarketStore, TimeSplit
from atlas_ray.report import load_experiment_for_report
from atlas_ray.search import TrialIdentity, TrialStatus
from atlas_ray.search._gather import evaluate_trial, failed_result, settle_trial, unit_info
from atlas_ray.search._harvest import (
    HARVEST_FILE,
    HarvestError,
    HarvestIncompleteError,
    HarvestOptions,
    harvest,
    parse_target,
)
from atlas_ray.search._harvest_cli import TerminalProgress, main
from atlas_ray.search._manifest import MANIFEST_FILE, read_manifest
from atlas_ray.search._zoo import get_model
from tests.search import search_specs

ROOT = Path(__file__).resolve().parents[2]

TRIALS = ("dnn_00000", "dnn_00001", "dnn_00002")
USER = "tester"


# ------------------------------------------------------------------------------ the served experiment


def _identity(trial_id: str) -> TrialIdentity:
    return TrialIdentity("june", "specs/june.py", "direction", "dnn", trial_id, {"hidden_units": [4]}, 11)


@pytest.fixture(scope="module")
def head(minute_store: MarketStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The head node's disk: ``head/june`` is a finished experiment of three trials, written by the
    gather code (one completed, one stopped by ASHA and settled, one failed before any evaluation)."""
    featureset = search_specs.direction()
    prepared = featureset.prepare(
        featureset.build_local("2023-03-02", "2023-03-03", minute_store), TimeSplit(0.7, 0.15, 0.15)
    )
    model = get_model("dnn").build(
        {"hidden_units": [4], "seed": 1},
        input_shape=tuple(prepared.train.X.shape[1:]),
        task=prepared.task,
        n_classes=prepared.n_classes,
        train_X=prepared.train.X,
    )
    model.fit(prepared.train.X, prepared.train.y, epochs=1, batch_size=512, verbose=0)
    root = tmp_path_factory.mktemp("head")
    experiment = root / "june"
    curves = [{"epoch": 1, "loss": 1.1, "val_loss": 1.2}]
    completed, stopped, failed = (str(experiment / "trials" / t) for t in TRIALS)
    evaluate_trial(
        model,
        prepared,
        identity=_identity(TRIALS[0]),
        status=TrialStatus.COMPLETED,
        curves=curves,
        directory=completed,
    )
    evaluate_trial(
        model,
        prepared,
        identity=_identity(TRIALS[1]),
        status=TrialStatus.RUNNING,
        curves=curves,
        directory=stopped,
    )
    settle_trial(stopped, status=TrialStatus.STOPPED)
    fallback = failed_result(unit_info(prepared), identity=_identity(TRIALS[2]), error="ValueError: boom")
    settle_trial(failed, status=TrialStatus.FAILED, error="ValueError: boom", fallback=fallback)
    write_experiment(
        Experiment(
            name="june",
            spec="specs/june.py",
            metric="val_loss",
            mode="min",
            created=now(),
            finished=now(),
            status="finished",
            trial_ids=TRIALS,
        ),
        str(experiment),
    )
    return root


def _payload(experiment: Path, models: bool = False) -> dict[str, bytes]:
    """The trial files a harvest copies (relative path -> bytes), as the manifests list them."""
    files = {}
    for trial in TRIALS:
        manifest = read_manifest(str(experiment / "trials" / trial))
        assert manifest is not None
        for name in manifest.files:
            if models or name != "model.keras":
                files[f"trials/{trial}/{name}"] = (experiment / "trials" / trial / name).read_bytes()
    return files


def _local_files(local: Path) -> dict[str, bytes]:
    """Every file under ``local/trials`` with its final name (no hidden parts, no manifests)."""
    found = {}
    for path in sorted((local / "trials").rglob("*")):
        if path.is_file() and not path.name.startswith(".") and path.name != MANIFEST_FILE:
            found[str(path.relative_to(local))] = path.read_bytes()
    return found


# ------------------------------------------------------------------------------------- the SSH server


@dataclass
class _Served:
    """What the server read for clients: ``(path under the served root, offset, bytes)`` per read, and
    a byte budget after which it drops the connection (a cut transfer)."""

    reads: list[tuple[str, int, int]] = field(default_factory=list)
    cut_after: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def payload_bytes(self) -> int:
        return sum(n for path, _, n in self.reads if "/trials/" in path and not path.endswith(MANIFEST_FILE))


class _CountingSFTP(asyncssh.SFTPServer):
    def __init__(self, chan: asyncssh.SSHServerChannel, *, root: str, served: _Served) -> None:
        super().__init__(chan, chroot=root)
        self._root = root
        self._served = served

    def read(self, file_obj: Any, offset: int, size: int) -> bytes:
        data = bytes(super().read(file_obj, offset, size))  # type: ignore[arg-type]
        path = os.path.relpath(os.fsdecode(file_obj.name), self._root)
        with self._served.lock:
            cut = self._served.cut_after
            if cut is not None and self._served.payload_bytes() + len(data) > cut and "/trials/" in path:
                self._served.cut_after = None
                self.channel.get_connection().abort()
                raise asyncssh.SFTPFailure("connection cut by the test")
            self._served.reads.append((path, offset, len(data)))
        return data


@dataclass(frozen=True)
class _Server:
    port: int
    host_key: asyncssh.SSHKey
    user_key_file: Path
    root: Path
    served: _Served

    def url(self, name: str = "june") -> str:
        return f"ssh://{USER}@127.0.0.1:{self.port}/{name}"

    def known_hosts(self, folder: Path, key: asyncssh.SSHKey | None = None) -> Path:
        """A known_hosts file in ``folder`` vouching ``key`` (the server's own by default)."""
        line = (key or self.host_key).export_public_key().decode().split()[:2]
        path = folder / "known_hosts"
        path.write_text(f"[127.0.0.1]:{self.port} {' '.join(line)}\n")
        return path


@pytest.fixture(scope="module")
def server(head: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Server]:
    """A real asyncssh SSH server on 127.0.0.1 (free port), SFTP only, chrooted to the head's disk,
    accepting one throwaway user key."""
    keys = tmp_path_factory.mktemp("keys")
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    user_key = asyncssh.generate_private_key("ssh-ed25519")
    user_key_file = keys / "id_ed25519"
    user_key.write_private_key(str(user_key_file))
    user_key_file.chmod(0o600)
    served = _Served()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> asyncssh.SSHAcceptor:
        return await asyncssh.create_server(
            asyncssh.SSHServer,
            "127.0.0.1",
            0,
            server_host_keys=[host_key],
            authorized_client_keys=asyncssh.import_authorized_keys(user_key.export_public_key().decode()),
            sftp_factory=functools.partial(_CountingSFTP, root=str(head), served=served),
            allow_scp=False,
        )

    acceptor = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=30)
    port = acceptor.sockets[0].getsockname()[1]
    try:
        yield _Server(port, host_key, user_key_file, head, served)
    finally:
        acceptor.close()
        asyncio.run_coroutine_threadsafe(acceptor.wait_closed(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)


@pytest.fixture
def served(server: _Server) -> _Served:
    server.served.reads.clear()
    server.served.cut_after = None
    return server.served


def _options(server: _Server, tmp_path: Path, **kwargs: Any) -> HarvestOptions:
    known = kwargs.pop("known_hosts", None) or server.known_hosts(tmp_path)
    return HarvestOptions(
        to=str(tmp_path / "june"), key=str(server.user_key_file), known_hosts=str(known), **kwargs
    )


def _cli(server: _Server, tmp_path: Path, *extra: str, name: str = "june") -> list[str]:
    return [server.url(name), "--to", str(tmp_path / name), "--key", str(server.user_key_file), *extra]


# ---------------------------------------------------------------------------------------------- tests


def test_full_harvest_is_identical_and_then_copies_nothing(
    server: _Server, served: _Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    known = server.known_hosts(tmp_path)
    code = run_cli(main, _cli(server, tmp_path, "--known-hosts", str(known)))
    out, err = capsys.readouterr()
    remote = server.root / "june"
    payload = _payload(remote)
    assert code == 0, err
    assert f"{len(payload)} files copied" in out and "remote search finished" in out
    local = tmp_path / "june"
    assert _local_files(local) == payload
    assert (local / "experiment.json").read_bytes() == (remote / "experiment.json").read_bytes()
    for trial in TRIALS:
        manifest = local / "trials" / trial / MANIFEST_FILE
        assert manifest.read_bytes() == (remote / "trials" / trial / MANIFEST_FILE).read_bytes()
        assert not (local / "trials" / trial / "model.keras").exists()
    assert json.loads((local / HARVEST_FILE).read_text())["missing"] == {}
    assert served.payload_bytes() == sum(len(b) for b in payload.values())
    experiment = load_experiment_for_report(str(local))
    assert sorted(r.trial_id for r in experiment.results) == list(TRIALS)
    assert not any("not harvested" in line or "no directory" in line for line in experiment.missing)

    served.reads.clear()
    again = asyncio.run(harvest(parse_target(server.url()), _options(server, tmp_path)))
    assert (again.files_copied, again.bytes_copied, served.payload_bytes()) == (0, 0, 0)
    assert again.files_present == len(payload) and again.finished

    served.reads.clear()
    with_models = asyncio.run(harvest(parse_target(server.url()), _options(server, tmp_path, models=True)))
    models = {k: v for k, v in _payload(remote, models=True).items() if k.endswith("model.keras")}
    assert len(models) == 2  # the failed trial has no model
    assert with_models.bytes_copied == served.payload_bytes() == sum(len(b) for b in models.values())
    assert _local_files(local) == _payload(remote, models=True)


def test_cut_transfer_resumes_without_copying_again(server: _Server, served: _Served, tmp_path: Path) -> None:
    remote = server.root / "june"
    payload = _payload(remote)
    total = sum(len(b) for b in payload.values())
    # the harvest copies trial by trial, each file by file (result.json last): cut half way through
    # the second trial's predictions, after the first trial arrived whole
    first_trial = sum(len(b) for path, b in payload.items() if path.startswith(f"trials/{TRIALS[0]}/"))
    halfway = f"trials/{TRIALS[1]}/predictions.parquet"
    curves = len(payload[f"trials/{TRIALS[1]}/curves.parquet"])
    served.cut_after = first_trial + curves + len(payload[halfway]) // 2
    options = _options(server, tmp_path, chunk_size=4096)
    target = parse_target(server.url())
    with pytest.raises(HarvestIncompleteError, match="run the same command again") as cut:
        asyncio.run(harvest(target, options))
    first = cut.value.report.bytes_copied
    assert 0 < first < total
    local = tmp_path / "june"
    arrived = _local_files(local)
    assert arrived != payload
    for path, data in arrived.items():  # a file with its final name is always whole
        assert data == payload[path]
    parts = {  # trials/<id>/<name> -> bytes that arrived of it
        f"trials/{p.parent.name}/{p.name[1:].rsplit('.', 2)[0]}": p.stat().st_size
        for p in (local / "trials").rglob(".*.part")
    }
    assert sorted(arrived) == sorted(p for p in payload if p.startswith(f"trials/{TRIALS[0]}/"))
    assert 0 < parts[halfway] < len(payload[halfway])
    experiment = load_experiment_for_report(str(local))
    assert any("not harvested yet" in line for line in experiment.missing)

    served.reads.clear()
    second = asyncio.run(harvest(target, options))
    assert _local_files(local) == payload and second.finished
    assert first + second.bytes_copied == total  # no byte copied twice
    assert served.payload_bytes() == second.bytes_copied
    first_offsets: dict[str, int] = {}
    for path, offset, _ in served.reads:
        first_offsets.setdefault(path.split("june/", 1)[1], offset)
    assert not set(first_offsets) & set(arrived)  # whole files are not read again
    for path, done in parts.items():  # parts continue where they stopped
        assert first_offsets.get(path, done) == done
    assert not list((local / "trials").rglob(".*.part"))
    assert not any("not harvested" in line for line in load_experiment_for_report(str(local)).missing)


def test_unknown_host_is_refused_then_trusted_on_first_use(
    server: _Server, served: _Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    known = tmp_path / "ssh" / "known_hosts"
    argv = _cli(server, tmp_path, "--known-hosts", str(known))
    assert run_cli(main, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: host 127.0.0.1:{server.port} is unknown")
    assert "--accept-new-host" in err[0]
    assert not (tmp_path / "june").exists() and not known.exists()

    assert run_cli(main, [*argv, "--accept-new-host"]) == 0
    assert "trusted new host" in capsys.readouterr().err
    blob = server.host_key.export_public_key().decode().split()[1]
    assert known.read_text().split() == [f"[127.0.0.1]:{server.port}", "ssh-ed25519", blob]
    assert run_cli(main, argv) == 0  # recorded: known from now on


def test_changed_host_key_is_refused_even_with_accept_new_host(
    server: _Server, served: _Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    known = server.known_hosts(tmp_path, asyncssh.generate_private_key("ssh-ed25519"))
    recorded = known.read_text()
    for extra in ((), ("--accept-new-host",)):
        assert run_cli(main, _cli(server, tmp_path, "--known-hosts", str(known), *extra)) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "does not match the one recorded" in err[0] and "refused" in err[0]
    assert known.read_text() == recorded and not (tmp_path / "june" / "trials").exists()
    assert served.reads == []


def test_corrupted_remote_file_is_refused(
    server: _Server, served: _Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    remote = server.root / "june_corrupt"
    if not remote.exists():
        shutil.copytree(server.root / "june", remote)
    bad = remote / "trials" / TRIALS[0] / "predictions.parquet"
    stamp = bad.stat()
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    os.utime(bad, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # bit rot does not touch the mtime
    known = server.known_hosts(tmp_path)
    code = run_cli(main, _cli(server, tmp_path, "--known-hosts", str(known), name="june_corrupt"))
    err = capsys.readouterr().err
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert f"trials/{TRIALS[0]}/predictions.parquet on the remote is corrupted" in errors[0]
    assert hashlib.sha256(bytes(data)).hexdigest() in errors[0]
    local = tmp_path / "june_corrupt" / "trials"
    assert not (local / TRIALS[0] / "predictions.parquet").exists()
    assert not (local / TRIALS[0] / MANIFEST_FILE).exists()
    assert not list(local.rglob(".predictions.parquet.*"))  # verified parts of other files may wait
    for trial in TRIALS[1:]:
        assert (local / trial / MANIFEST_FILE).exists()
    missing = load_experiment_for_report(str(tmp_path / "june_corrupt")).missing
    assert any(
        line.startswith(f"trial {TRIALS[0]}: not harvested yet") and "corrupted" in line for line in missing
    )


def test_a_file_newer_than_its_manifest_waits_for_the_next_harvest(
    server: _Server, served: _Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    remote = server.root / "june_rewriting"
    if not remote.exists():
        shutil.copytree(server.root / "june", remote)
    trial = remote / "trials" / TRIALS[1]
    manifest = (trial / MANIFEST_FILE).stat()
    (trial / "curves.parquet").write_bytes(b"the search is writing this file again")
    os.utime(trial / MANIFEST_FILE, ns=(manifest.st_atime_ns, manifest.st_mtime_ns - 10**10))
    known = server.known_hosts(tmp_path)
    code = run_cli(main, _cli(server, tmp_path, "--known-hosts", str(known), name="june_rewriting"))
    err = capsys.readouterr().err
    assert code == 0 and "error:" not in err
    assert f"not here yet: trial {TRIALS[1]}: curves.parquet is being rewritten by the search" in err
    assert not (tmp_path / "june_rewriting" / "trials" / TRIALS[1] / MANIFEST_FILE).exists()


def test_watch_stops_once_a_finished_experiment_is_all_here(
    server: _Server, served: _Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    known = server.known_hosts(tmp_path)
    assert run_cli(main, _cli(server, tmp_path, "--known-hosts", str(known), "--watch", "0.01")) == 0
    assert capsys.readouterr().out.count("harvested ") == 1
    with pytest.raises(SystemExit) as refused:
        run_cli(main, _cli(server, tmp_path, "--known-hosts", str(known), "--watch", "0"))
    assert refused.value.code == 2
    assert "--watch is '0', but must be a number of seconds > 0" in capsys.readouterr().err


def test_an_experiment_that_is_not_there_is_one_error_line(
    server: _Server, served: _Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    known = server.known_hosts(tmp_path)
    assert run_cli(main, _cli(server, tmp_path, "--known-hosts", str(known), name="nowhere")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds no experiment.json" in err[0]


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("ssh://me:secret@head/exp", "holds a password"),
        ("sftp://head/exp", "is not an ssh:// URL"),
        ("me:secret@head:/exp", "scp's USER@HOST:PATH is not accepted"),
        ("ssh://head", "names no experiment path"),
        ("ssh://head:99999/exp", "port"),
    ],
)
def test_bad_urls_are_refused(url: str, rule: str) -> None:
    with pytest.raises(HarvestError, match=rule) as error:
        parse_target(url)
    assert "secret" not in str(error.value)


def test_urls_parse() -> None:
    target = parse_target("ssh://me@head.example:2222/~/experiments/june/")
    assert (target.user, target.host, target.port) == ("me", "head.example", 2222)
    assert target.path == "experiments/june"
    assert parse_target("ssh://head/srv/june").path == "/srv/june"


def test_progress_bar_draws_only_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    bar = TerminalProgress(screen, width=10)
    bar.start(files=4, nbytes=2_000_000)
    bar.advance(1_000_000)
    bar.file_done()
    assert bar.line() == "[#####-----] 1/4 files  1.0 MB/2.0 MB"
    bar.finish()
    assert screen.getvalue().endswith(bar.line() + "\n")
    pipe = io.StringIO()
    quiet = TerminalProgress(pipe)
    quiet.start(files=1, nbytes=10)
    quiet.file_done()
    quiet.finish()
    assert pipe.getvalue() == ""


def test_search_command_dispatches_harvest(capsys: pytest.CaptureFixture[str]) -> None:
    from atlas_ray.search.__main__ import main as search_main

    assert run_cli(search_main, ["harvest", "ssh://me:hunter2@head/exp"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the URL holds a password") and "hunter2" not in err


@pytest.mark.slow  # a process of its own (~5-16 s): not in scripts/test.sh --quick
def test_a_refused_harvest_in_its_own_process_is_one_line_whatever_its_libraries_warn(tmp_path: Path) -> None:
    """The command as a user runs it, warnings shown as Python shows them by default: the import of
    asyncssh (cryptography >= 46 deprecates DSA on it) adds nothing to the one error line."""
    done = subprocess.run(
        [sys.executable, "-W", "default", "-m", "atlas_ray.search", "harvest", "ssh://me:secret@head/exp",
         "--to", str(tmp_path / "exp")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("TF_")}, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "secret" not in done.stderr
