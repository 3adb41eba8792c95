"""Joining a multi-node cluster that runs without token authentication: the driver (token on, as
atlas_ray always runs) is accepted by the cluster's GCS, but the cluster's workers cannot call it back.
The search must say so in one line and exit 2 before it builds or trains anything, rather than die deep
inside the first Ray Data build with ``OwnerDiedError``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.cluster.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_a_cluster_without_token_auth_is_refused_in_one_line(  # type: ignore[no-untyped-def]
    local_cluster, minute_store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray._raylet

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # the nodes start without token authentication
    ray._raylet.Config.initialize("")  # type: ignore[attr-defined]
    cluster = local_cluster(head_cpus=1)
    cluster.add("worker", num_cpus=1)
    spec = tmp_path / "joined.py"
    spec.write_text(
        textwrap.dedent(
            """
            from tests.search import search_specs
            MODELS = [search_specs.small_dnn(num_samples=1)]
            SPEC = search_specs.spec("joined", MODELS, max_t=1, grace_period=1)
            """
        )
    )
    storage = tmp_path / "experiments"
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    search = subprocess.run(
        [
            sys.executable,
            "-m",
            "atlas_ray.search",
            str(spec),
            "--storage",
            str(storage),
            "--store",
            str(minute_store.root),
            "--address",
            cluster.address,
        ],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert search.returncode == 2, search.stdout[-3000:] + search.stderr[-3000:]
    # (TensorFlow's import writes its own notices to stderr first; the search's own lines are ours)
    errors = [line for line in search.stderr.splitlines() if line.startswith("error")]
    assert errors == [
        f"error: cannot use the Ray cluster at {cluster.address}: its workers cannot call this driver "
        "back; the cluster most likely runs without token authentication while this driver uses it: "
        "start every node with RAY_AUTH_MODE=token (cluster/README.md)."
    ], search.stderr[-3000:]
    assert "Traceback" not in search.stderr and "OwnerDiedError" not in search.stderr
    assert not list(storage.glob("joined/trials/*")), "nothing may be trained"
