"""Every cluster config in cluster/ passes Ray's own cluster-config checks (what `ray up` runs first:
``prepare_config`` then ``validate_config`` against ray-schema.json), keeps the dashboard off public
interfaces and runs every node with token authentication."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

CLUSTER = Path(__file__).resolve().parents[2] / "cluster"
CONFIGS = sorted(CLUSTER.glob("*.yaml"))


def _load(path: Path) -> dict[str, Any]:
    config = yaml.safe_load(path.read_text())
    assert isinstance(config, dict), f"{path.name}: not a mapping"
    return config


def _start_commands(config: dict[str, Any]) -> dict[str, list[str]]:
    return {
        key: list(config.get(key) or [])
        for key in ("head_start_ray_commands", "worker_start_ray_commands")
    }


def test_the_three_configs_are_there() -> None:
    assert {p.name for p in CONFIGS} >= {"tpu.yaml", "gpu.yaml", "onprem.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_ray_accepts_the_config(path: Path) -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(_load(path)))


def test_ray_refuses_a_broken_config() -> None:
    """The check above can fail: a misspelt field is refused by Ray's schema."""
    import jsonschema
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = _load(CLUSTER / "gpu.yaml")
    config["max_worker"] = config.pop("max_workers")
    with pytest.raises(jsonschema.ValidationError, match="max_worker"):
        validate_config(prepare_config(config))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_dashboard_only_on_loopback(path: Path) -> None:
    text = path.read_text()
    assert "0.0.0.0" not in text, f"{path.name}: nothing may listen on 0.0.0.0"
    (head,) = [c for c in _start_commands(_load(path))["head_start_ray_commands"] if "--head" in c]
    assert re.search(r"--dashboard-host[= ]127\.0\.0\.1\b", head), f"{path.name}: {head}"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_node_runs_with_token_auth(path: Path) -> None:
    config = _load(path)
    for key, commands in _start_commands(config).items():
        starts = [c for c in commands if re.search(r"\bray start\b", c)]
        assert starts, f"{path.name}: {key} starts no Ray"
        for command in starts:
            assert re.search(r"\bRAY_AUTH_MODE=token\b", command), f"{path.name} {key}: {command}"
    # the token reaches every node as ~/.ray/auth_token, where `ray start` looks for it
    assert config["file_mounts"].get("~/.ray/auth_token") == "~/.ray/auth_token", path.name


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_gcs_port_is_not_redis_port(path: Path) -> None:
    starts = " ".join(c for cs in _start_commands(_load(path)).values() for c in cs)
    assert ":6379" not in starts and "--port=6379" not in starts, path.name
