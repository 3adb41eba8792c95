"""WorkSpec definitions, ASHA settings and the trial plan (no Ray cluster, no training)."""

from __future__ import annotations

import math

import pytest
from ray import tune
from ray.tune.schedulers.async_hyperband import _Bracket

from atlas_ray.errors import SpecError
from atlas_ray.search import ASHA, Mode, ModelSpec, Resources, WorkSpec, WorkUnit, trial_plan
from atlas_ray.search._spec import grid_points
from atlas_ray.search._zoo import full_space


@pytest.mark.parametrize(
    ("max_t", "grace_period", "reduction_factor"),
    [(9, 1, 3), (10, 1, 3), (16, 1, 4), (2, 1, 2), (12, 2, 3), (27, 3, 3), (5, 5, 2)],
)
def test_milestones_are_rays_rungs(max_t: int, grace_period: int, reduction_factor: int) -> None:
    bracket = _Bracket(grace_period, max_t, reduction_factor, 0)
    rays = sorted(milestone for milestone, _ in bracket._rungs)
    asha = ASHA(max_t=max_t, grace_period=grace_period, reduction_factor=reduction_factor)
    assert list(asha.milestones()) == rays
    assert asha.checkpoints()[-1] == max_t


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_t": 0}, "the value of `max_t` is 0, but must be an integer `max_t >= 1`."),
        ({"grace_period": 0}, "`grace_period >= 1`"),
        (
            {"reduction_factor": 1},
            "the value of `reduction_factor` is 1, but must be an integer `reduction_factor >= 2`.",
        ),
        ({"max_t": 3, "grace_period": 4}, "`grace_period <= max_t` (3)"),
        ({"mode": "min"}, "must be `Mode.MIN` or `Mode.MAX`"),
        ({"metric": ""}, "`metric`"),
    ],
)
def test_bad_asha_settings_say_value_and_rule(settings: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError) as error:
        ASHA(**settings)  # type: ignore[arg-type]
    assert message in str(error.value) and "\n" not in str(error.value)


def test_mode_is_flipped_in_one_place() -> None:
    assert Mode.MIN.sign == -1.0 and Mode.MAX.sign == 1.0
    assert Mode.MIN.better(0.1, 0.2) and not Mode.MIN.better(0.3, 0.2)
    assert Mode.MAX.better(0.3, 0.2) and not Mode.MAX.better(math.nan, 0.2) and Mode.MAX.better(0.1, math.nan)
    scheduler = ASHA(max_t=9, metric="val_auc", mode=Mode.MAX).to_scheduler()
    assert scheduler._metric == "val_auc" and scheduler._mode == "max" and scheduler._max_t == 9


def test_resources_become_tune_resources() -> None:
    assert Resources().as_tune() == {"cpu": 1.0, "gpu": 0.0}
    assert Resources(cpu=2, gpu=0.25, tpu=4).as_tune() == {"cpu": 2.0, "gpu": 0.25, "TPU": 4.0}
    assert Resources(cpu=2, gpu=0.25, tpu=4).describe() == "2 CPU + 0.25 GPU + 4 TPU"


def test_grid_points_expand_nested_grids() -> None:
    points = grid_points(
        {"a": tune.grid_search([1, 2]), "b": {"c": tune.grid_search(["x", "y", "z"])}, "d": 5}
    )
    assert len(points) == 6
    assert {(p["a"], p["b"]["c"]) for p in points} == {(a, c) for a in (1, 2) for c in "xyz"}
    assert all(p["d"] == 5 for p in points)


def test_trial_plan_counts_grid_points_times_samples_with_distinct_seeds() -> None:
    dnn = ModelSpec("dnn", "dnn", {"hidden_units": tune.grid_search([[3], [6], [3, 3]])}, num_samples=2)
    logistic = ModelSpec("logistic", "logistic", {}, num_samples=4, resources=Resources(cpu=2))
    spec = WorkSpec(
        "plan",
        units=[WorkUnit("u", featureset=None, start="2023-03-01", end="2023-03-02", models=[dnn, logistic])],
        seed=100,
    )
    plan = trial_plan(spec, full_space)
    assert [t.model for t in plan].count("dnn") == 6 and [t.model for t in plan].count("logistic") == 4
    assert [t.seed for t in plan] == list(range(100, 110))
    assert {tuple(t.space["hidden_units"]) for t in plan if t.model == "dnn"} == {(3,), (6,), (3, 3)}
    assert all(t.resources == Resources(cpu=2) for t in plan if t.model == "logistic")
    # the zoo's defaults fill what the spec leaves out; the spec wins where it speaks
    assert "learning_rate" in plan[0].space and "dropout" in plan[0].space


def test_definitions_are_frozen() -> None:
    spec = WorkSpec("frozen", units=[])
    with pytest.raises(AttributeError):
        spec.name = "other"  # type: ignore[misc]
    assert isinstance(spec.units, tuple)


ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["tpu.yaml", "gpu.yaml"])
def test_cluster_files_are_valid_launcher_configs(name: str) -> None:
    """cluster/*.yaml load and pass Ray's own cluster-launcher schema (defaults filled as `ray up` does)."""
    import yaml
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((ROOT / "cluster" / name).read_text())
    for key in (
        "cluster_name",
        "provider",
        "auth",
        "available_node_types",
        "head_node_type",
        "setup_commands",
        "head_start_ray_commands",
        "worker_start_ray_commands",
    ):
        assert key in config, key
    assert config["provider"]["type"] == "gcp"
    validate_config(prepare_config(config))
    workers = [t for n, t in config["available_node_types"].items() if n != config["head_node_type"]]
    if name == "tpu.yaml":
        assert any(t["resources"].get("TPU") == 4 and "acceleratorType" in t["node_config"] for t in workers)
    else:
        assert any(t["resources"].get("GPU") and t["node_config"].get("guestAccelerators") for t in workers)
    assert any("atlas_ray" in command for command in config["setup_commands"])
