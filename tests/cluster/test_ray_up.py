"""`ray up` / `ray dashboard` / `ray down` with cluster/onprem.yaml, for real, on this machine.

Two throwaway SSH servers (``tests/cluster/_sshd.py``, asyncssh) stand in for two machines: the head
on 127.0.0.1 and a worker on 127.0.0.2, each in a PID and mount namespace of its own (``unshare``,
root) with a home of its own. Ray's launcher has no SSH port setting: `ray up` reaches the head on a
free port through ``auth.ssh_proxy_command``; the head's autoscaler reaches the worker on
127.0.0.2:22 (Ray drops the proxy command from the config it copies to the head). Ray's own
launcher does everything: rsync of the checkout and of the token, the setup
commands, ``ray start`` on the head, and the head's autoscaler starting the worker over SSH. The test
changes only what one machine shared with other tests needs: free ports, a short temp dir per node,
one CPU each, and the key, the token file and the cluster name.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.slow  # `ray up` over SSH: not in scripts/test.sh --quick

ROOT = Path(__file__).resolve().parents[2]
ONPREM = ROOT / "cluster" / "onprem.yaml"
VENV = Path(sys.executable).parent.parent
RAY = str(Path(sys.executable).parent / "ray")
USER_HOME = pwd.getpwuid(os.getuid()).pw_dir
HEAD_IP, WORKER_IP = "127.0.0.1", "127.0.0.2"
LOG_FLAGS = ("--log-style=record", "--log-color=false")
UNSHARE = ("unshare", "--pid", "--fork", "--mount-proc", "--kill-child")


def _free_port(*hosts: str) -> int:
    """A port free on every given loopback address."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((hosts[0], 0))
            port = int(probe.getsockname()[1])
        ok = True
        for host in hosts[1:]:
            with socket.socket() as other:
                try:
                    other.bind((host, port))
                except OSError:
                    ok = False
        if ok:
            return port
    raise RuntimeError(f"no port free on all of {hosts}")


def _pid_namespace(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/ns/pid")


def _processes_in(namespace: str) -> list[str]:
    """Command lines of every process in a PID namespace (seen from here)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") != namespace:
                continue
            raw = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if raw:
            found.append(raw.replace(b"\0", b" ").decode(errors="replace").strip())
    return found


# The shell Ray's SSH runner keeps open for a port-forwarding session (`ray dashboard`), and its
# `sleep`: they belong to the SSH connection, not to Ray, and go when the connection does (its
# ControlPersist runs out seconds after the tunnel stops; on a slow machine they were still there,
# or the sleep was, when `ray down` had finished).
_FORWARDING_SESSION = ("while true; do sleep 86400; done", "sleep 86400")


def _ray_processes_in(namespace: str) -> list[str]:
    return [
        c
        for c in _processes_in(namespace)
        if "tests.cluster._sshd" not in c and not any(c.endswith(part) for part in _FORWARDING_SESSION)
    ]


@dataclass
class Machine:
    """One SSH server in its own PID namespace: a stand-in for one node."""

    ip: str
    home: Path
    process: subprocess.Popen[bytes]
    namespace: str

    def stop(self) -> None:
        # SIGKILL on unshare: --kill-child kills the namespace's PID 1, and with it every process
        # the node started
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)


def _start_machine(ip: str, port: int, home: Path, keys: Path) -> Machine:
    home.mkdir(parents=True)
    # the venv is this checkout's: the config's setup command (`test -x ~/atlas_ray/.venv/bin/ray ||
    # pip install ...`) finds it and installs nothing (no network needed)
    (home / "atlas_ray").mkdir()
    (home / "atlas_ray" / ".venv").symlink_to(VENV)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(ROOT), "LANG": "C.UTF-8"}
    # readiness is a file the server creates once it listens; its output (a dependency's warnings
    # included) goes to a log read only to explain a failure
    ready, log_path = home.parent / f"{ip}.ready", home.parent / f"{ip}.log"
    server = [sys.executable, "-m", "tests.cluster._sshd", "--listen", ip, "--port", str(port)]
    server += ["--host-key", str(keys / "host"), "--client-key", str(keys / "client.pub")]
    server += ["--home", USER_HOME, "--ready-file", str(ready)]
    # a PID namespace and a mount namespace of its own; the node's folder is bound over the user's
    # home inside it only (unshare makes the new mount namespace private), with the Python
    # installation bound back into it when it lives in that home (pyenv)
    binds = []
    python_home = Path(sys.base_prefix).resolve()
    if python_home.is_relative_to(USER_HOME):
        inside = home / python_home.relative_to(USER_HOME)
        inside.mkdir(parents=True)
        binds.append(f"mount --bind {shlex.quote(str(python_home))} {shlex.quote(str(inside))}")
    binds.append(f"mount --rbind {shlex.quote(str(home))} {shlex.quote(USER_HOME)}")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*UNSHARE, "sh", "-c", " && ".join(binds) + ' && exec "$@"', "sh", *server],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
    _wait_until_ready(process, ready, log_path, f"{ip}:{port}")
    init = _namespace_init(process.pid)
    return Machine(ip, home, process, _pid_namespace(init))


def _wait_until_ready(
    process: subprocess.Popen[bytes], ready: Path, log: Path, where: str, timeout: float = 60
) -> None:
    """Wait for the server's ready file; a server that exits or never gets there fails with its log."""
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait(timeout=30)
            output = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(
                f"the SSH server on {where} did not start (exit {process.returncode}): {output}"
            )
        time.sleep(0.05)


def _namespace_init(unshare_pid: int) -> int:
    children = Path(f"/proc/{unshare_pid}/task/{unshare_pid}/children").read_text().split()
    return int(children[0])


@dataclass
class OnPrem:
    config: Path
    token: Path
    head: Machine
    worker: Machine
    gcs_port: int
    dashboard_port: int
    cluster_name: str
    env: dict[str, str]

    def ray(self, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [RAY, *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )


def _replace(command: str, old: str, new: str) -> str:
    assert old in command, f"cluster/onprem.yaml changed: {old!r} not in {command!r}"
    return command.replace(old, new)


def _test_config(
    base: dict[str, Any], *, root: Path, keys: Path, token: Path, ssh_port: int, ports: dict[str, int]
) -> dict[str, Any]:
    """cluster/onprem.yaml with what a machine shared with other tests needs changed."""
    config = dict(base)
    assert config["provider"] == {"type": "local", "head_ip": HEAD_IP, "worker_ips": [WORKER_IP]}
    config["cluster_name"] = f"atlas-onprem-test-{os.getpid()}-{secrets.token_hex(3)}"
    config["auth"] = {
        "ssh_user": getpass.getuser(),
        "ssh_private_key": str(keys / "client"),
        "ssh_proxy_command": f"{sys.executable} {ROOT / 'tests' / 'cluster' / '_relay.py'} %h {ssh_port}",
    }
    mounts = dict(config["file_mounts"])
    assert mounts["~/.ray/auth_token"] == "~/.ray/auth_token"
    mounts["~/.ray/auth_token"] = str(token)  # never the real ~/.ray/auth_token of this machine
    config["file_mounts"] = mounts
    common = "--num-cpus=1 --object-store-memory=80000000 --disable-usage-stats"
    head = config["head_start_ray_commands"][-1]
    head = _replace(head, "--port=6390", f"--port={ports['gcs']}")
    head = _replace(head, "--dashboard-port=8265", f"--dashboard-port={ports['dashboard']}")
    head += (
        f" --temp-dir={root}/rh --ray-client-server-port={ports['client']}"
        f" --dashboard-agent-listen-port={ports['head_agent']} {common}"
    )
    worker = config["worker_start_ray_commands"][-1]
    worker = _replace(worker, ":6390", f":{ports['gcs']}")
    # `ray down` stops the head only; a worker's raylet exits once the GCS has been gone this long
    # (Ray's default: 60 s)
    reconnect = "RAY_gcs_rpc_server_reconnect_timeout_s=10"
    worker = _replace(worker, "RAY_AUTH_MODE=token ", f"{reconnect} RAY_AUTH_MODE=token ")
    worker += f" --temp-dir={root}/rw --dashboard-agent-listen-port={ports['worker_agent']} {common}"
    config["head_start_ray_commands"] = [*config["head_start_ray_commands"][:-1], head]
    config["worker_start_ray_commands"] = [*config["worker_start_ray_commands"][:-1], worker]
    return config


@pytest.fixture(scope="module")
def onprem() -> Iterator[OnPrem]:
    if os.geteuid() != 0:
        # PID and mount namespaces (unshare) and the worker's port 22 need root
        pytest.skip("needs root: namespaces per node (unshare --pid --mount) and 127.0.0.2:22")
    for tool in ("ssh", "rsync", "unshare"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: bash scripts/services.sh installs it")
    import asyncssh

    # short: Ray's unix sockets live under the temp dir (108-byte limit)
    root = Path(tempfile.mkdtemp(prefix="aro", dir="/tmp"))
    keys = root / "keys"
    keys.mkdir()
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(keys / "host")
    client = asyncssh.generate_private_key("ssh-ed25519")
    client.write_private_key(keys / "client")
    client.write_public_key(keys / "client.pub")
    (keys / "client").chmod(0o600)
    token = root / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    ssh_port = _free_port(HEAD_IP)
    ports = {
        "gcs": _free_port(HEAD_IP, WORKER_IP),
        "dashboard": _free_port(HEAD_IP, WORKER_IP),
        "client": _free_port(HEAD_IP),
        "head_agent": _free_port(HEAD_IP, WORKER_IP),
        "worker_agent": _free_port(HEAD_IP, WORKER_IP),
    }
    base = yaml.safe_load(ONPREM.read_text())
    config = _test_config(base, root=root, keys=keys, token=token, ssh_port=ssh_port, ports=ports)
    path = root / "onprem.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    # Ray 2.60's autoscaler v2 counts the head (the local provider's one node type) as one of
    # min_workers and never starts the only worker: cluster/README.md says to use v1 (`ray up` reads it)
    env["RAY_UP_enable_autoscaler_v2"] = "0"
    machines: list[Machine] = []
    try:
        machines.append(_start_machine(HEAD_IP, ssh_port, root / "head", keys))
        # the head's autoscaler reaches workers on port 22 (Ray drops ssh_proxy_command from the
        # config it copies to the head)
        with socket.socket() as probe:
            try:
                probe.bind((WORKER_IP, 22))
            except OSError as error:
                pytest.fail(f"{WORKER_IP}:22 is needed for the worker's SSH server: {error}")
        machines.append(_start_machine(WORKER_IP, 22, root / "worker", keys))
        head, worker = machines
        name = config["cluster_name"]
        yield OnPrem(path, token, head, worker, ports["gcs"], ports["dashboard"], name, env)
    finally:
        for machine in machines:
            machine.stop()
        # the SSH control sockets' folder Ray's launcher made for this cluster
        user_hash = hashlib.sha256(getpass.getuser().encode()).hexdigest()[:10]
        name_hash = hashlib.sha256(config["cluster_name"].encode()).hexdigest()[:10]
        shutil.rmtree(f"/tmp/ray_ssh_{user_hash}/{name_hash}", ignore_errors=True)
        for suffix in ("state", "lock"):  # the local provider's record of the cluster
            Path(tempfile.gettempdir(), "ray", f"cluster-{config['cluster_name']}.{suffix}").unlink(
                missing_ok=True
            )
        shutil.rmtree(root, ignore_errors=True)


CLIENT = """
import json, sys, ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
ray.init(address=sys.argv[1], log_to_driver=False, configure_logging=False)
nodes = [n for n in ray.nodes() if n["Alive"]]

@ray.remote(num_cpus=1)
def where():
    return ray.util.get_node_ip_address()

ips = ray.get([
    where.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote()
    for n in nodes
])
print(json.dumps({"nodes": sorted(n["NodeManagerAddress"] for n in nodes), "ran_on": sorted(ips)}))
"""


JOB = (
    "import atlas_ray, ray; ray.init(address='auto'); "
    "print('atlas-job-nodes', sum(n['Alive'] for n in ray.nodes()))"
)


def _client(gcs: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CLIENT, gcs],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def _http_status(url: str, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def _logs(cluster: OnPrem) -> str:
    tails = []
    for log in sorted(cluster.head.home.parent.glob("r[hw]/session_latest/logs/monitor*")):
        tails.append(f"--- {log}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-30:]))
    return "\n".join(tails)


def _phase(name: str, since: float) -> None:
    """Where the time goes (shown with pytest -s)."""
    print(f"[ray up test] {name}: {time.monotonic() - since:.0f} s", flush=True)


def test_ray_up_dashboard_and_down_with_a_token(onprem: OnPrem) -> None:
    cluster = onprem
    start = time.monotonic()
    up = cluster.ray("up", "-y", "--no-config-cache", *LOG_FLAGS, str(cluster.config))
    assert up.returncode == 0, up.stdout[-4000:] + up.stderr[-4000:]
    _phase("ray up", start)
    gcs = f"{HEAD_IP}:{cluster.gcs_port}"
    with_token = {**cluster.env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(cluster.token)}

    # the head's autoscaler starts the worker on 127.0.0.2 over SSH: wait for both nodes. `ray start`
    # never advertises a node as 127.0.0.1 (other machines could not reach it): the head started on
    # 127.0.0.1 is advertised as this machine's own address; 127.0.0.2 is kept
    from ray._private.services import resolve_ip_for_localhost

    expected = sorted([resolve_ip_for_localhost(HEAD_IP), WORKER_IP])
    deadline = time.monotonic() + 150
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline:
        answer = _client(gcs, with_token)
        if answer.returncode == 0:
            seen = json.loads(answer.stdout.strip().splitlines()[-1])
            if seen["nodes"] == expected:
                break
        time.sleep(3)
    assert seen.get("nodes") == expected, f"{seen} / {answer.stderr[-3000:]}\n{_logs(cluster)}"
    assert seen["ran_on"] == expected

    # token auth is on: a client with another token is refused
    _phase("ray up and both nodes alive", start)
    wrong = _client(gcs, {**cluster.env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 64})
    assert wrong.returncode != 0
    assert re.search(r"(?i)auth|token|unauthenticated", wrong.stderr), wrong.stderr[-2000:]

    # the dashboard answers on the head's 127.0.0.1 only, and only with the token
    dashboard = f"http://{HEAD_IP}:{cluster.dashboard_port}/api/version"
    assert _http_status(dashboard, cluster.token.read_text().strip()) == 200
    assert _http_status(dashboard) == 401
    with socket.socket() as probe, pytest.raises(OSError):
        probe.settimeout(5)
        probe.connect((WORKER_IP, cluster.dashboard_port))  # 127.0.0.2 is this machine too

    # `ray dashboard`: an SSH tunnel from a local port to the head's dashboard
    _phase("token and dashboard checks", start)
    local = _free_port(HEAD_IP)
    forward = ["-p", str(local), "--remote-port", str(cluster.dashboard_port)]
    tunnel = subprocess.Popen(
        [RAY, "dashboard", "--no-config-cache", *forward, str(cluster.config)],
        cwd=ROOT,
        env=cluster.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its ssh goes with it
    )
    try:
        status = 0
        for _ in range(60):
            try:
                status = _http_status(f"http://127.0.0.1:{local}/api/version", cluster.token.read_text())
            except (urllib.error.URLError, ConnectionError):
                status = 0
            if status == 200:
                break
            time.sleep(1)
        assert status == 200
        # a job through the tunnel, as cluster/README.md submits a search: it runs on the head in
        # the node's venv, imports atlas_ray and joins the cluster with --address auto's rule
        job = subprocess.run(
            [RAY, "job", "submit", "--address", f"http://127.0.0.1:{local}", "--", "python", "-c", JOB],
            cwd=ROOT,
            env=with_token,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert "atlas-job-nodes 2" in job.stdout, job.stdout[-3000:] + job.stderr[-3000:]
    finally:
        os.killpg(tunnel.pid, signal.SIGTERM)
        tunnel.wait(timeout=30)

    # `ray down` stops Ray on the head; nothing of the head's Ray is left
    # `ray exec` on the head, as cluster/README.md looks at the cluster (the token read on the head)
    status_command = f"RAY_AUTH_MODE=token ray status --address {HEAD_IP}:{cluster.gcs_port}"
    shown = cluster.ray("exec", *LOG_FLAGS, str(cluster.config), status_command, timeout=120)
    assert shown.returncode == 0 and "Node status" in shown.stdout, shown.stdout[-3000:] + shown.stderr[-999:]
    _phase("tunnel, job and ray exec", start)
    down = cluster.ray("down", "-y", *LOG_FLAGS, str(cluster.config))
    assert down.returncode == 0, down.stdout[-4000:] + down.stderr[-4000:]
    assert _ray_processes_in(cluster.head.namespace) == []
    _phase("ray down", start)
    # the worker's raylet and its workers end by themselves once the head is gone (10 s here); its
    # two agents follow about a minute later (not waited for: the namespace ends them), and Ray's log
    # monitor stays on that machine until its next `ray stop` (the next `ray up` runs one)
    later = ("log_monitor.py", "ray::DashboardAgent", "ray::RuntimeEnvAgent")

    def worker_left() -> list[str]:
        processes = _ray_processes_in(cluster.worker.namespace)
        return [c for c in processes if not any(name in c for name in later)]

    deadline = time.monotonic() + 90
    while worker_left() and time.monotonic() < deadline:
        time.sleep(2)
    assert worker_left() == []
    _phase("the worker's raylet gone", start)
    with socket.socket() as probe, pytest.raises(OSError):
        probe.settimeout(5)
        probe.connect((HEAD_IP, cluster.gcs_port))
