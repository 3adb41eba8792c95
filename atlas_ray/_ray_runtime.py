"""The one place atlas_ray starts or joins Ray, and what that promises about security.

``start_local`` starts a Ray of this process's own, ``connect(address)`` joins a running cluster (or
starts a local one when ``address`` is None), ``shutdown(started)`` stops what was started.

The local Ray
    * runs with token authentication: ``RAY_AUTH_MODE=token`` is set in the environment before
      ``ray.init`` (Ray >= 2.52 has it; 2.59+ also turns it on by default for a local ``ray.init``, which
      atlas_ray does not rely on). Ray writes the token to ``~/.ray/auth_token`` when there is none
      (``RAY_AUTH_TOKEN`` / ``RAY_AUTH_TOKEN_PATH`` take precedence); atlas_ray makes that file readable
      by its owner only. Every gRPC call (GCS, raylet, workers) and every dashboard request without the
      token is refused. ``ray get-auth-token`` prints it (for the dashboard's "Authentication Token
      Required" dialog); atlas_ray never prints it.
    * has its node address on 127.0.0.1. ``ray.init(_node_ip_address="127.0.0.1")`` alone is not
      enough on Linux: Ray replaces a loopback address by the machine's network address
      (``services.resolve_ip_for_localhost``) unless ``ray_constants.ENABLE_RAY_CLUSTER`` is false, so
      ``start_local`` turns that off for the duration of ``ray.init``, and the processes it starts
      inherit ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (Ray's own switch for it): the dashboard's
      modules join with ``ray.init(address="127.0.0.1:PORT")``, which would otherwise look for the GCS
      at the network address and hang (Serve's view, ``/api/serve/applications/``).
      With the node on 127.0.0.1, every listening socket Ray 2.60 opens binds to loopback (found with
      psutil, and checked by ``tests/test_ray_runtime.py``): the GCS, the raylet's node manager and
      object manager and every worker's gRPC server (C++ servers bind the node address), the dashboard
      (``dashboard_host``), the dashboard's and autoscaler's metrics servers and the dashboard agent's
      gRPC, HTTP and metrics-export ports and the runtime-env agent (Python servers bind loopback when
      the node address is loopback). The object store and the raylet's own socket are Unix sockets.
    * What Ray cannot bind to loopback: nothing of the above on a single-node local Ray. A node of a
      multi-machine cluster must be reachable by the other nodes, so there the same servers listen on
      the node's network address (the C++ ones on every interface in some versions): token
      authentication is what keeps strangers out there, and the cluster configs set it
      (``cluster/README.md``). ``ray start --head --node-ip-address 127.0.0.1`` (the CLI) also
      resolves the address to the network one; set ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` for a
      single-node head that stays on loopback (it then accepts no other nodes).

Metrics: every node's metrics agent serves Ray's metrics (atlas_ray's live metrics among them) in
Prometheus text format at ``http://NODE:PORT/metrics``, its metrics export port. The local Ray binds it
to 127.0.0.1 (the agent binds loopback when the node address is loopback, see above); its port is the
one asked for (``metrics_port``) or one Ray chose, read back by ``metrics_address``. Ray also writes
every node's address to a Prometheus file-based service-discovery file, ``metrics_discovery_file``.

Joining (``connect("host:port")`` or ``"auto"``) checks first, each within seconds, and fails with one
line naming the address and the likely cause: the GCS does not answer (unreachable), it refuses the
token (wrong or missing token), or no node of the cluster has an address of this machine (node
address mismatch: a driver must run on a node of the cluster). A cluster whose nodes run on this
machine under another address than the one used to reach it (started on 127.0.0.1, which the CLI
turns into the network address) is joined under the node's own address instead of waiting for a node
that does not exist.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atlas_ray._stderr import held_stderr
from atlas_ray.errors import AtlasError

__all__ = [
    "LOOPBACK",
    "RayJoinError",
    "connect",
    "dashboard_url",
    "dashboard_lines",
    "is_loopback",
    "metrics_address",
    "metrics_discovery_file",
    "shutdown",
    "start_local",
    "token_enabled",
]

LOOPBACK = "127.0.0.1"
AUTH_MODE = "RAY_AUTH_MODE"
# seconds a joined cluster has to run the call-back probe (a worker start on another node)
CALL_BACK_TIMEOUT_S = 30.0
#: seconds to wait for the GCS to accept a TCP connection before calling it unreachable
CONNECT_TIMEOUT_S = 5.0
#: seconds for the GCS to answer the pre-check's node listing
GCS_TIMEOUT_S = 20.0
TOKEN_HELP = (
    "RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token must hold the cluster's token "
    "(`ray get-auth-token` on the head prints it)"
)


class RayJoinError(AtlasError):
    """A Ray cluster could not be joined; names the address and the likely cause."""


@dataclass(frozen=True)
class _Target:
    """A GCS address split into host and port (``address`` as given)."""

    address: str
    host: str
    port: int


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (127.0.0.0/8, ::1, ::ffff:127.x, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def _raylet() -> Any:
    """Ray's compiled core (its type stub lists few of the names used here)."""
    import ray._raylet

    return ray._raylet


def token_enabled() -> bool:
    """Whether this process (and the Ray it starts or joins) uses token authentication."""
    raylet = _raylet()
    return bool(raylet.get_authentication_mode() == raylet.AuthenticationMode.TOKEN)


def _use_token_auth(force: bool) -> None:
    """Set ``RAY_AUTH_MODE=token`` (``force``: even over another value; else only when unset) and make
    Ray's cached config see it (``ray.init`` reads the mode from the config the import cached)."""
    if force:
        os.environ[AUTH_MODE] = "token"
    else:
        os.environ.setdefault(AUTH_MODE, "token")
    _raylet().Config.initialize("")


def _has_token() -> bool:
    loader = _raylet().AuthenticationTokenLoader.instance()
    loader.reset_cache()
    return bool(loader.has_token(ignore_auth_mode=True))


def _tighten_token_file() -> None:
    """Ray writes ``~/.ray/auth_token`` readable by everyone: make it readable by its owner only."""
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    with contextlib.suppress(OSError):
        if path.is_file() and path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o077:
            path.chmod(stat.S_IRUSR | stat.S_IWUSR)


@contextlib.contextmanager
def _loopback_node_allowed() -> Iterator[None]:
    """Let ``ray.init(_node_ip_address="127.0.0.1")`` keep 127.0.0.1 (see the module docstring): Ray's
    multi-node flag off in this process and, through the environment, in the processes ``ray.init``
    starts (the dashboard's modules call ``ray.init(address="127.0.0.1:PORT")`` themselves, which would
    otherwise look for the GCS at the network address). Both are restored afterwards."""
    from ray._private import ray_constants

    saved = ray_constants.ENABLE_RAY_CLUSTER
    saved_env = os.environ.get(ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR)
    ray_constants.ENABLE_RAY_CLUSTER = False
    os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = "0"
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved
        if saved_env is None:
            os.environ.pop(ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR, None)
        else:
            os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = saved_env


def _common_env(worker_env: Mapping[str, str] | None) -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    for key, value in (worker_env or {}).items():
        os.environ.setdefault(key, value)


def start_local(
    *,
    verbose: bool = False,
    dashboard: bool = True,
    num_cpus: int | None = None,
    object_store_memory: int | None = None,
    worker_env: Mapping[str, str] | None = None,
    metrics_port: int | None = None,
) -> bool:
    """Start a Ray of this process's own on 127.0.0.1 with token authentication (the dashboard on
    127.0.0.1:8265 or the next free port, the metrics export port on 127.0.0.1: ``metrics_port``, or one
    Ray chooses); False when Ray is already running in this process.
    ``worker_env`` is set (unless already set) in this process's environment, which the workers
    inherit. The workers' output reaches this console only with ``verbose``."""
    import ray

    if metrics_port is not None and not 0 < metrics_port < 65536:
        raise AtlasError(
            f"The value of `--metrics-port` is {metrics_port}, but must be `0 < --metrics-port < 65536`."
        )
    _common_env(worker_env)
    if ray.is_initialized():
        return False
    _use_token_auth(force=True)
    kwargs: dict[str, Any] = {}
    if num_cpus is not None:
        kwargs["num_cpus"] = num_cpus
    if object_store_memory is not None:
        kwargs["object_store_memory"] = object_store_memory
    if metrics_port is not None:
        kwargs["_metrics_export_port"] = metrics_port
    with _loopback_node_allowed():
        ray.init(
            address="local",  # never a cluster `ray start` left running (ray.init() alone would join it)
            _node_ip_address=LOOPBACK,
            include_dashboard=dashboard,
            dashboard_host=LOOPBACK,
            log_to_driver=verbose,
            configure_logging=False,
            **kwargs,
        )
    _tighten_token_file()
    return True


def connect(
    address: str | None,
    *,
    verbose: bool = False,
    dashboard: bool = True,
    worker_env: Mapping[str, str] | None = None,
    metrics_port: int | None = None,
) -> bool:
    """Join the cluster at ``address`` (``host:port`` of its GCS, or ``auto``; None: ``$RAY_ADDRESS``
    when set), or start a local Ray when there is none (``start_local``, with ``metrics_port``: a
    joined cluster's nodes keep the ports they were started with); whether a Ray was started
    (and must be shut down).
    Joining passes ``worker_env`` to the workers as the job's environment. A cluster that cannot be
    joined raises ``RayJoinError`` (one line: the address and the likely cause) within a minute."""
    import ray

    address = address or os.environ.get("RAY_ADDRESS") or None
    if not address:
        return start_local(
            verbose=verbose, dashboard=dashboard, worker_env=worker_env, metrics_port=metrics_port
        )
    if metrics_port is not None:
        raise AtlasError(
            f"`--metrics-port` sets a local Ray's port, but this joins the cluster at {address}: its nodes "
            "export on the port they were started with (`ray start --metrics-export-port PORT`)."
        )
    _common_env(worker_env)
    if ray.is_initialized():
        return False
    if address.startswith("ray://"):
        _init_joined(address, None, verbose, worker_env)
        return False
    target = _resolve(address)
    _check_reachable(target)
    _use_token_auth(force=False)
    if token_enabled() and not _has_token():
        raise RayJoinError(
            f"cannot join the Ray cluster at {target.address}: wrong or missing token, no token found "
            f"here ({TOKEN_HELP})."
        )
    node_ip = _local_node_ip(target)
    _init_joined(target.address, node_ip, verbose, worker_env)
    _check_calls_back(target.address)
    return False


def _check_calls_back(address: str) -> None:
    """Fail in one line where a worker on another node of the joined cluster cannot call this driver.

    A cluster started without token authentication accepts a driver that sends a token, but its workers
    then cannot reach the driver (they send none), and the first task that borrows one of the driver's
    objects on another node dies deep inside with ``OwnerDiedError``. One task that does just that, on one
    other live node, shows it at once. A probe that does not finish in time (a busy or starting node)
    proves nothing and is let go."""
    import ray
    from ray.exceptions import GetTimeoutError, OwnerDiedError, RayTaskError
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    others = [n["NodeID"] for n in ray.nodes() if n.get("Alive") and n["NodeID"] != here]
    if not others:
        return

    @ray.remote(num_cpus=0, max_retries=0)
    def borrow(refs: list[Any]) -> int:
        return len(ray.get(refs[0]))

    probe = borrow.options(scheduling_strategy=NodeAffinitySchedulingStrategy(others[0], soft=False))
    try:
        ray.get(probe.remote([ray.put(b"atlas_ray")]), timeout=CALL_BACK_TIMEOUT_S)
    except GetTimeoutError:
        return
    except (OwnerDiedError, RayTaskError) as error:
        if not isinstance(error, OwnerDiedError) and not isinstance(
            getattr(error, "cause", None), OwnerDiedError
        ):
            raise
        ray.shutdown()
        raise RayJoinError(
            f"cannot use the Ray cluster at {address}: its workers cannot call this driver back; the "
            "cluster most likely runs without token authentication while this driver uses it: start "
            "every node with RAY_AUTH_MODE=token (cluster/README.md)."
        ) from None


def _resolve(address: str) -> _Target:
    """``host:port`` as given, or ``auto``: the cluster this machine started last (Ray's own lookup)."""
    given = address
    if address == "auto":
        from ray._private import services

        try:
            # as Ray finds it, but not resolved further: Ray would turn 127.0.0.1 into the network address
            address = str(services.get_ray_address_from_environment("auto", None))
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise RayJoinError(
                f"cannot join the Ray cluster at auto: no running Ray found on this machine "
                f"({str(error).splitlines()[0] if str(error) else type(error).__name__})."
            ) from None
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise RayJoinError(
            f"cannot join the Ray cluster at {given!r}: not HOST:PORT of its GCS (e.g. 127.0.0.1:6379) "
            "nor `auto`."
        )
    return _Target(address=address, host=host.strip("[]"), port=int(port))


def _check_reachable(target: _Target) -> None:
    try:
        with socket.create_connection((target.host, target.port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as error:
        reason = type(error).__name__ if not error.strerror else error.strerror
        raise RayJoinError(
            f"cannot join the Ray cluster at {target.address}: unreachable (no GCS answers there within "
            f"{CONNECT_TIMEOUT_S:.0f} s: {reason}); is the head running and the port open?"
        ) from None


def _machine_addresses() -> set[str]:
    import psutil

    found = {LOOPBACK}
    for addresses in psutil.net_if_addrs().values():
        for entry in addresses:
            if entry.family in (socket.AF_INET, socket.AF_INET6):
                found.add(entry.address.split("%")[0])
    return found


def _local_node_ip(target: _Target) -> str | None:
    """The address of the cluster's node on this machine that the driver must attach to; None to let
    Ray choose. Refuses a wrong token and a cluster with no node on this machine."""
    from ray.exceptions import AuthenticationError

    try:
        # a refused token is also logged by Ray's C++ core: the user gets our one line instead
        with held_stderr(lambda _line: False, pass_on_failure=False):
            client = _raylet().GcsClient(address=target.address)
            infos = client.get_all_node_info(timeout=GCS_TIMEOUT_S)
    except AuthenticationError:
        raise RayJoinError(
            f"cannot join the Ray cluster at {target.address}: wrong or missing token, the GCS refused "
            f"this one ({TOKEN_HELP})."
        ) from None
    except Exception as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise RayJoinError(
            f"cannot join the Ray cluster at {target.address}: no Ray GCS answers there ({first}); is it "
            "the head's GCS port (`ray start --head --port`, 6379 by default)?"
        ) from None
    alive = sorted({info.node_manager_address for info in infos.values() if info.state == 0})
    if not alive:
        raise RayJoinError(f"cannot join the Ray cluster at {target.address}: it has no live node.")
    from ray._private import services

    expected = services.node_ip_address_from_perspective(target.address)
    if expected in alive:
        return expected
    here = _machine_addresses()
    local = [ip for ip in alive if ip in here or is_loopback(ip)]  # all of 127.0.0.0/8 is this machine
    if local:
        return local[0]
    raise RayJoinError(
        f"cannot join the Ray cluster at {target.address}: node address mismatch, no node of the cluster "
        f"runs on this machine (nodes at {', '.join(alive)}; this machine is {expected}); run on a node "
        "of the cluster."
    )


def _init_joined(
    address: str, node_ip: str | None, verbose: bool, worker_env: Mapping[str, str] | None
) -> None:
    import ray
    from ray.exceptions import AuthenticationError

    env = dict(worker_env or {})
    if "KERAS_BACKEND" in os.environ:
        env.setdefault("KERAS_BACKEND", os.environ["KERAS_BACKEND"])
    kwargs: dict[str, Any] = {"runtime_env": {"env_vars": env}} if env else {}
    if node_ip is not None:
        kwargs["_node_ip_address"] = node_ip
    guard = _loopback_node_allowed() if node_ip and is_loopback(node_ip) else contextlib.nullcontext()
    try:
        with guard:
            ray.init(address=address, log_to_driver=verbose, configure_logging=False, **kwargs)
    except AuthenticationError:
        raise RayJoinError(
            f"cannot join the Ray cluster at {address}: wrong or missing token ({TOKEN_HELP})."
        ) from None
    except (ConnectionError, RuntimeError, TimeoutError, ValueError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise RayJoinError(f"cannot join the Ray cluster at {address}: {first}") from None


def shutdown(started: bool) -> None:
    """Stop the Ray this process started (``started`` as ``connect`` / ``start_local`` returned)."""
    if started:
        import ray

        ray.shutdown()


def dashboard_url() -> str | None:
    """``http://HOST:PORT`` of the running Ray's dashboard, None when it has none."""
    import ray._private.worker as worker

    try:
        url = worker.get_dashboard_url()
    except Exception:
        return None
    if not url:
        return None
    return url if url.startswith("http") else f"http://{url}"


def dashboard_lines() -> list[str]:
    """Where the dashboard is and how to get the token it asks for (never the token itself)."""
    url = dashboard_url()
    if url is None:
        return []
    lines = [f"Ray dashboard: {url}"]
    if token_enabled():
        lines.append(
            "  it asks for the cluster's token: `ray get-auth-token` prints it "
            "(or read ~/.ray/auth_token / $RAY_AUTH_TOKEN)"
        )
    return lines


def metrics_address(node_id: str | None = None) -> str | None:
    """``HOST:PORT`` of the metrics export endpoint (Prometheus text at ``/metrics``) of the node
    ``node_id`` (default: this process's node) of the running Ray; None when it exports none."""
    import ray

    wanted = node_id or ray.get_runtime_context().get_node_id()
    for node in ray.nodes():
        if node.get("NodeID") == wanted and node.get("Alive"):
            port = int(node.get("MetricsExportPort") or 0)
            return f"{node['NodeManagerAddress']}:{port}" if port > 0 else None
    return None


def metrics_discovery_file() -> str:
    """The Prometheus file-based service-discovery file Ray keeps up to date (every node's metrics
    address, ``[{"labels": {"job": "ray"}, "targets": [...]}]``) in this node's session directory."""
    import ray._private.worker as worker
    from ray._private import ray_constants

    node = worker.global_worker.node
    return str(Path(node.get_session_dir_path()) / ray_constants.PROMETHEUS_SERVICE_DISCOVERY_FILE)
