"""A search on a one-node Ray cluster whose head advertises a GPU and 4 TPU chips it does not have, run
in a process of its own by ``test_devices`` (test use only):

    python -m tests.search.device_search STORE STORAGE

Its node processes inherit this process's environment: with ``ATLAS_VIRTUAL_DEVICES=4`` a trial that
asks for ``tpu=4`` trains data-parallel on 4 virtual CPU devices. A process of its own because the
virtual devices and the node's resources are fixed when TensorFlow and Ray start, and the test
session's own Ray must not be touched. Ray keeps to ``RAY_TMPDIR`` (set by the test), nodes on
127.0.0.1, no dashboard, token authentication (``token_env``).
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

from atlas_ray.search import ModelSpec, Resources, WorkSpec
from tests.search import search_specs

# every hyperparameter fixed (no batch normalisation: its statistics are per replica under data parallelism)
SPACE = {
    "hidden_units": [6],
    "activation": "relu",
    "l1": 0.0,
    "l2": 0.0,
    "dropout": 0.0,
    "batch_norm": False,
    "learning_rate": 3e-3,
}
PER_REPLICA_BATCH = 64
CHIPS = 4
MAX_T = 2


def device_spec() -> WorkSpec:
    """One trial asking for 4 TPU chips (batch 64 per replica), one asking for a quarter GPU."""
    return search_specs.spec(
        "devices",
        [
            ModelSpec(
                "tpu4",
                "dnn",
                {**SPACE, "batch_size": PER_REPLICA_BATCH},
                resources=Resources(cpu=1, tpu=CHIPS),
            ),
            ModelSpec(
                "gpu_share",
                "dnn",
                {**SPACE, "batch_size": PER_REPLICA_BATCH * CHIPS},
                resources=Resources(cpu=1, gpu=0.25),
            ),
        ],
        max_t=MAX_T,
        grace_period=MAX_T,
    )


def token_env(folder: Path) -> dict[str, str]:
    """Token authentication for the cluster and the search, as on a real cluster: a fresh token in a
    file in ``folder``; the environment variables that point Ray at it."""
    token = folder / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}


def main(store_root: str, storage: str) -> int:
    """Start the cluster, search on it as a user joining it does (``run(..., address=HEAD)``), stop it.
    The environment holds the cluster's token (``RAY_AUTH_MODE=token``, ``RAY_AUTH_TOKEN_PATH``, see
    ``token_env``) before Ray is imported."""
    import ray
    from ray.cluster_utils import Cluster

    from atlas_ray.featurestore import MarketStore
    from atlas_ray.search import run

    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 2,
            "num_gpus": 1,
            "resources": {"TPU": CHIPS},
            "node_ip_address": "127.0.0.1",
            "include_dashboard": False,
            "object_store_memory": 300_000_000,
        },
    )
    try:
        run(
            device_spec(),
            storage=storage,
            store=MarketStore(store_root),
            address=cluster.address,
            spec_path="devices.py",
            every=5,
        )
    finally:
        ray.shutdown()
        cluster.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
