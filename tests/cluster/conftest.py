"""Multi-node Ray clusters on this machine for the cluster tests: ``ray.cluster_utils.Cluster`` (a head
and worker nodes, each its own raylet and processes) with every node on 127.0.0.1.

``local_cluster`` gives a ``LocalCluster`` factory. Its Ray keeps to a temporary directory of the test's
own (``RAY_TMPDIR``), so ``ray.init()`` anywhere else on the machine never finds it as the "current"
cluster, and nothing is left running after the test. These tests never call ``ray.init`` in the test
process: the search runs as the user runs it, ``python -m atlas_ray.search SPEC --address HEAD``, in a
subprocess (``search_cli``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"


@dataclass
class LocalCluster:
    """A ``ray.cluster_utils.Cluster`` whose nodes all run on 127.0.0.1; nodes are named by the test."""

    cluster: Any
    nodes: dict[str, Any] = field(default_factory=dict)

    @property
    def address(self) -> str:
        """The GCS address a driver joins (``--address``)."""
        return str(self.cluster.address)

    def add(self, name: str, *, num_cpus: float = 1, **args: Any) -> Any:
        """Start a worker node called ``name`` (``num_gpus=``, ``resources={"TPU": 4}``, ...)."""
        node = self.cluster.add_node(num_cpus=num_cpus, node_ip_address=LOOPBACK, **args)
        self.nodes[name] = node
        return node

    def node_id(self, name: str) -> str:
        """The Ray node id (hex) of the node called ``name`` (``"head"`` for the head)."""
        return str(self.nodes[name].node_id)

    def names(self) -> dict[str, str]:
        """Node id -> the test's name for it."""
        return {self.node_id(name): name for name in self.nodes}

    def remove(self, name: str) -> None:
        """Kill every process of the node called ``name`` (its raylet, object store and workers)."""
        node = self.nodes.pop(name)
        self.cluster.remove_node(node, allow_graceful=False)

    def stop(self) -> None:
        """Kill every node, workers first, then the head; then forget the dead GCS as
        ``Cluster.shutdown`` does. (Starting the head pointed this process's internal KV at its GCS;
        left so, the next Ray Tune scheduler built here, which records a usage tag there, waits for
        the dead GCS and Ray ends the whole test process with exit 1 after 60 s.)"""
        import ray._private.services
        import ray.experimental.internal_kv

        for name in [n for n in self.nodes if n != "head"] + [n for n in self.nodes if n == "head"]:
            self.remove(name)
        ray.experimental.internal_kv._internal_kv_reset()
        ray._private.services.find_gcs_addresses.cache_clear()


@pytest.fixture
def local_cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., LocalCluster]]:
    """``make(head_cpus=0, **head_args) -> LocalCluster``: a head node on 127.0.0.1 (no dashboard);
    add workers with ``.add``. Every cluster made is stopped at the end of the test."""
    from ray.cluster_utils import Cluster

    temp = tempfile.mkdtemp(prefix="atlas_rc_")  # short: Ray's Unix socket paths must stay < 108 bytes
    monkeypatch.setenv("RAY_TMPDIR", temp)
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    _token_auth(monkeypatch, Path(temp) / "auth_token")
    made: list[LocalCluster] = []

    def make(head_cpus: float = 0, **head_args: Any) -> LocalCluster:
        cluster = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": head_cpus,
                "node_ip_address": LOOPBACK,
                "include_dashboard": False,
                **head_args,
            },
        )
        local = LocalCluster(cluster, {"head": cluster.head_node})
        made.append(local)
        return local

    try:
        yield make
    finally:
        for local in made:
            local.stop()
        import ray._common.utils
        import ray._raylet

        ray._common.utils.reset_ray_address(os.path.join(temp, "ray"))
        shutil.rmtree(temp, ignore_errors=True)
        monkeypatch.undo()  # the environment as before, and Ray's cached config and token read again
        ray._raylet.Config.initialize("")  # type: ignore[attr-defined]
        ray._raylet.AuthenticationTokenLoader.instance().reset_cache()  # type: ignore[attr-defined]


def _token_auth(monkeypatch: pytest.MonkeyPatch, token_file: Path) -> None:
    """Token authentication for every node and the driver, as on a real cluster: a fresh token in a
    file of the test's own (the nodes and the search inherit ``RAY_AUTH_MODE`` / ``RAY_AUTH_TOKEN_PATH``),
    and this process's cached Ray config reloaded so that its GCS client sends the token too."""
    import ray._raylet

    token_file.write_text(secrets.token_hex(32))
    token_file.chmod(0o600)
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token_file))
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    ray._raylet.Config.initialize("")  # type: ignore[attr-defined]
    ray._raylet.AuthenticationTokenLoader.instance().reset_cache()  # type: ignore[attr-defined]


def search_cli(
    spec: Path, storage: Path, store: str, address: str, *extra: str, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``python -m atlas_ray.search SPEC --storage S --store R --address A EXTRA...`` in its own
    session (so the test can end it and everything it started)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "atlas_ray.search",
            str(spec),
            "--storage",
            str(storage),
            "--store",
            store,
            "--address",
            address,
            "--progress-every",
            "5",
            *extra,
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
