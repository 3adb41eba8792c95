"""Fixtures for the live side: a real redis-server of the test's own, and a small real atlas_ray search.

``redis_server`` starts Debian's ``redis-server`` on a free port of 127.0.0.1 (no persistence) and can
stop it and start it again on the same port (the outage test). ``served_experiment`` runs a small real
search with ``atlas_ray.search.run`` on the real Coinbase and Kraken minute bars of 1-2 March 2023: a
flat unit (logistic, a DNN and LightGBM trees) and a windowed one (a GRU over 8 bars), so every
serving path is real.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from atlas_ray.featurestore import (
    FeatureLabelSet,
    Percentiles,
    TimeSplit,
)
from atlas_ray.search import ASHA, Mode, ModelSpec, Resources, WorkSpec, WorkUnit
from tests.search.search_specs import FEATURES, LABEL  # the june features on two exchanges

START, END = "2023-03-01", "2023-03-03"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RedisServer:
    """A redis-server of the test's own on 127.0.0.1."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (scripts/services.sh installs it)")
        self.process = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
                return
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        pytest.fail(f"redis-server did not start on 127.0.0.1:{self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


def serve_spec(name: str = "live") -> WorkSpec:
    flat = FeatureLabelSet(FEATURES, [LABEL], categories=Percentiles((33.3, 66.7)))
    windowed = FeatureLabelSet(FEATURES, [LABEL], categories=Percentiles((50.0,)), window=8)
    split = TimeSplit(train=0.6, validation=0.2, test=0.2)
    return WorkSpec(
        name=name,
        units=[
            WorkUnit(
                "flat",
                featureset=flat,
                start=START,
                end=END,
                split=split,
                models=[
                    ModelSpec(
                        "logistic", "logistic", {"learning_rate": 3e-3, "batch_size": 256}, num_samples=1
                    ),
                    ModelSpec(
                        "dnn",
                        "dnn",
                        {"hidden_units": [6], "learning_rate": 3e-3, "batch_size": 256, "dropout": 0.0},
                        num_samples=1,
                    ),
                    ModelSpec(  # the zoo's gradient-boosted trees, served through the same engine
                        "lightgbm",
                        "lightgbm",
                        {"rounds_per_step": 10, "num_leaves": 7, "min_data_in_leaf": 50},
                        num_samples=1,
                    ),
                ],
            ),
            WorkUnit(
                "windowed",
                featureset=windowed,
                start=START,
                end=END,
                split=split,
                models=[
                    ModelSpec(
                        "gru",
                        "gru",
                        {"units": 4, "layers": 1, "learning_rate": 3e-3, "batch_size": 256},
                        num_samples=1,
                    )
                ],
            ),
        ],
        scheduler=ASHA(max_t=2, grace_period=2, reduction_factor=2, metric="val_loss", mode=Mode.MIN),
        resources=Resources(cpu=1),
        seed=11,
    )


@pytest.fixture(scope="session")
def served_experiment(
    minute_store: object, ray_cluster: None, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A finished real search: ``EXPERIMENT/trials/<id>`` for a logistic, a DNN, a LightGBM and a GRU
    trial."""
    import io

    from atlas_ray.search import run

    storage = tmp_path_factory.mktemp("serve_experiments")
    path = run(serve_spec(), storage=str(storage), store=minute_store, out=io.StringIO())
    return Path(path)


# the GDS tests' real MariaDB (the machine's, or a private mariadbd) and a database of the test's own
from tests.featurestore.conftest import gds_database, mariadb  # noqa: E402, F401
