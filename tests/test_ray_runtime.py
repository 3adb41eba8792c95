"""``atlas_ray._ray_runtime``: the local Ray listens on loopback only, with token authentication on; a
client without the token is refused; ``--address`` to a cluster that cannot be joined is one line naming
the address and the likely cause, exit status 2. Every connection goes to 127.0.0.1."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest

from atlas_ray import _ray_runtime
from atlas_ray.errors import AtlasError

pytestmark = pytest.mark.slow  # starts Ray clusters and `ray start` heads: not in scripts/test.sh --quick

if TYPE_CHECKING:
    from atlas_ray.featurestore import MarketStore

ROOT = Path(__file__).resolve().parents[1]

SPEC = """
    from atlas_ray.featurestore import FeatureLabelSet, LogReturns, Percentiles
    from atlas_ray.search import ModelSpec, WorkSpec, WorkUnit
    FLS = FeatureLabelSet(
        [LogReturns().coinbase().one_min()], [LogReturns().coinbase().one_min().lookforward(1)],
        categories=Percentiles((33.3, 66.7)),
    )
    SPEC = WorkSpec("joined", [WorkUnit("direction", FLS, "2023-03-01", "2023-03-02",
                                        models=[ModelSpec("logistic", "logistic")])])
    """


def _loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%")[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def ray_listeners() -> dict[int, tuple[str, str]]:
    """Every listening TCP socket of the Ray this process started: port -> (address, process name).
    Ray's processes are the ones whose command line names this session's directory, and all theirs
    (workers, agents)."""
    import ray._private.worker as worker

    session = worker._global_node.get_session_dir_path()
    roots = [
        process
        for process in psutil.Process().children(recursive=True)
        if session in " ".join(_cmdline(process))
    ]
    assert roots, f"no process of the Ray session {session} found"
    processes = {process.pid: process for process in roots}
    for root in roots:
        for child in root.children(recursive=True):
            processes[child.pid] = child
    found: dict[int, tuple[str, str]] = {}
    for process in processes.values():
        try:
            connections = process.net_connections(kind="inet")
            name = process.name()
        except psutil.Error:
            continue
        for connection in connections:
            if connection.status == psutil.CONN_LISTEN:
                found[connection.laddr.port] = (connection.laddr.ip, name)
    return found


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def test_local_ray_listens_on_loopback_only_with_token_auth_on(ray_cluster: None) -> None:
    import ray

    context = ray.get_runtime_context()
    gcs_host, gcs_port = context.gcs_address.rsplit(":", 1)
    assert gcs_host == "127.0.0.1"  # the address Ray reports is loopback, not the machine's
    ray.get(ray.remote(lambda: 1).remote())  # a worker exists: its gRPC server listens too
    listeners = ray_listeners()
    dashboard = _ray_runtime.dashboard_url()
    assert dashboard is not None and dashboard.startswith("http://127.0.0.1:")
    dashboard_port = int(dashboard.rsplit(":", 1)[1])
    # the sockets looked at are Ray's: the GCS, the dashboard and at least the raylet's and agents'
    assert int(gcs_port) in listeners and dashboard_port in listeners, listeners
    # the metrics export endpoint a desk scrapes (Prometheus text) is one of them, on loopback
    metrics = _ray_runtime.metrics_address()
    assert metrics is not None and metrics.startswith("127.0.0.1:")
    assert int(metrics.rsplit(":", 1)[1]) in listeners, (metrics, listeners)
    assert len(listeners) >= 6, listeners
    beyond = {port: where for port, where in listeners.items() if not _loopback(where[0])}
    assert _ray_runtime.token_enabled()
    assert not beyond, f"Ray listens beyond loopback: {beyond}"
    token_file = Path.home() / ".ray" / "auth_token"
    if "RAY_AUTH_TOKEN" not in os.environ and "RAY_AUTH_TOKEN_PATH" not in os.environ:
        assert token_file.stat().st_mode & 0o077 == 0, oct(token_file.stat().st_mode)


def test_dashboard_refuses_a_request_without_the_token(ray_cluster: None) -> None:
    url = _ray_runtime.dashboard_url()
    assert url is not None
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{url}/api/v0/actors", timeout=30)
    assert refused.value.code == 401
    token = _token()
    request = urllib.request.Request(f"{url}/api/v0/actors", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def _token() -> str:
    if os.environ.get("RAY_AUTH_TOKEN"):
        return os.environ["RAY_AUTH_TOKEN"]
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token"
    return Path(path).read_text().strip()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def join(tmp_path: Path, store: MarketStore, address: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m atlas_ray.search SPEC --address ADDRESS`` as a new user runs it: HOME is an empty
    folder (no ~/.ray/auth_token) and no token in the environment, unless ``env`` gives one."""
    spec = tmp_path / "joined.py"
    spec.write_text(textwrap.dedent(SPEC))
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH", "RAY_ADDRESS"))}
    return subprocess.run(
        [sys.executable, "-m", "atlas_ray.search", str(spec), "--address", address,
         "--store", str(store.root), "--storage", str(tmp_path / "experiments")],
        cwd=ROOT,
        env={**clean, "HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=110,
    )


def _error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


@pytest.mark.timeout(120)
def test_address_nobody_listens_on_is_unreachable(tmp_path: Path, minute_store: MarketStore) -> None:
    address = f"127.0.0.1:{_free_port()}"
    line = _error_line(join(tmp_path, minute_store, address))
    assert line.startswith(f"error: cannot join the Ray cluster at {address}: unreachable"), line
    assert not (tmp_path / "experiments").exists()


@pytest.mark.timeout(120)
def test_address_that_is_no_host_port_is_refused(tmp_path: Path, minute_store: MarketStore) -> None:
    line = _error_line(join(tmp_path, minute_store, "head-node"))
    assert "cannot join the Ray cluster at 'head-node': not HOST:PORT" in line, line


@pytest.mark.timeout(240)
def test_a_client_without_the_token_or_with_a_wrong_one_is_refused(
    ray_cluster: None, tmp_path: Path, minute_store: MarketStore
) -> None:
    import ray

    address = ray.get_runtime_context().gcs_address
    assert address.startswith("127.0.0.1:")
    refused = f"error: cannot join the Ray cluster at {address}: wrong or missing token"
    missing = _error_line(join(tmp_path, minute_store, address))
    assert missing.startswith(refused), missing
    assert "ray get-auth-token" in missing
    wrong = _error_line(join(tmp_path, minute_store, address, RAY_AUTH_TOKEN="0" * 32))
    assert wrong.startswith(refused), wrong
    assert "refused" in wrong
    assert _token() not in missing + wrong
    assert not (tmp_path / "experiments").exists()


def test_a_metrics_port_out_of_range_is_refused_before_ray_starts() -> None:
    with pytest.raises(AtlasError, match="The value of `--metrics-port` is 70000"):
        _ray_runtime.start_local(metrics_port=70_000)
    with pytest.raises(AtlasError, match="`--metrics-port` sets a local Ray's port"):
        _ray_runtime.connect("127.0.0.1:1", metrics_port=9100)


def test_loopback_addresses() -> None:
    for host in ("127.0.0.1", "127.0.1.1", "::1", "::ffff:127.0.0.1", "localhost"):
        assert _ray_runtime.is_loopback(host), host
    for host in ("0.0.0.0", "::", "192.0.2.2", "10.0.0.1", "head-node"):
        assert not _ray_runtime.is_loopback(host), host


def _session_processes(marker: str) -> list[psutil.Process]:
    """Every process whose command line holds ``marker`` (a Ray temp dir), and all of theirs."""
    roots = [process for process in psutil.process_iter() if marker in " ".join(_cmdline(process))]
    found = {process.pid: process for process in roots}
    for root in roots:
        with contextlib.suppress(psutil.Error):
            found.update({child.pid: child for child in root.children(recursive=True)})
    return list(found.values())


@pytest.mark.timeout(240)
def test_a_ray_start_head_kept_on_loopback_is_joined_with_auto(tmp_path: Path) -> None:
    """The README's own head (``ray start --head --node-ip-address 127.0.0.1`` with token auth and
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``) listens on loopback only, and ``--address auto`` joins it
    at 127.0.0.1 (Ray alone would look for it at the machine's network address)."""
    import secrets
    import shutil
    import tempfile

    temp = tempfile.mkdtemp(prefix="atlas_rs_")  # short: Ray's Unix socket paths must stay < 108 bytes
    token = tmp_path / "auth_token"
    token.write_text(secrets.token_hex(32))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH", "RAY_ADDRESS"))},
        "RAY_TMPDIR": temp,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token),
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
        "PYTHONPATH": str(ROOT),
    }
    port = _free_port()
    ray_cli = Path(sys.executable).parent / "ray"
    try:
        started = subprocess.run(
            [str(ray_cli), "start", "--head", "--port", str(port), "--node-ip-address", "127.0.0.1",
             "--ray-client-server-port", str(_free_port()), "--dashboard-host", "127.0.0.1",
             "--include-dashboard", "false", "--num-cpus", "1", "--disable-usage-stats"],
            env=env, capture_output=True, text=True, timeout=120,
        )
        assert started.returncode == 0, started.stderr[-3000:]
        listeners = {}
        for process in _session_processes(temp):
            try:
                for connection in process.net_connections(kind="inet"):
                    if connection.status == psutil.CONN_LISTEN:
                        listeners[connection.laddr.port] = (connection.laddr.ip, process.name())
            except psutil.Error:
                continue
        assert port in listeners and len(listeners) >= 5, listeners
        beyond = {p: where for p, where in listeners.items() if not _loopback(where[0])}
        assert not beyond, f"the ray start head listens beyond loopback: {beyond}"
        joined = subprocess.run(
            [sys.executable, "-c",
             "import ray\nfrom atlas_ray import _ray_runtime\n"
             "assert not _ray_runtime.connect('auto')\n"
             "print(ray.get_runtime_context().gcs_address, ray.get(ray.remote(lambda: 'ran').remote()))\n"
             "ray.shutdown()"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )
        assert joined.returncode == 0, joined.stderr[-3000:]
        assert joined.stdout.split() == [f"127.0.0.1:{port}", "ran"], joined.stdout
    finally:
        processes = _session_processes(temp)
        for process in processes:
            with contextlib.suppress(psutil.Error):
                process.terminate()
        _, alive = psutil.wait_procs(processes, timeout=20)
        for process in alive:
            with contextlib.suppress(psutil.Error):
                process.kill()
        shutil.rmtree(temp, ignore_errors=True)
