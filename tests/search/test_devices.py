"""Which devices a trial trains on (``atlas_ray.search._devices``).

The plan on its own (GPU shares as memory limits, TPU chips, fallbacks and their reasons); the setup on
this host, which has no GPU and no TPU (every asked-for accelerator falls back to the CPU, saying why);
and a real search on a one-node Ray cluster advertising a GPU and 4 TPU chips it does not have, with
the test hook ``ATLAS_VIRTUAL_DEVICES=4``: the trial asking for 4 chips trains data-parallel on 4
virtual CPU devices with its batch scaled by 4, and its curves and weights match a single-device run at
that global batch; the trial asking for a quarter GPU records its fallback to the CPU, and the progress
display prints both fallbacks.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from atlas_ray.featurestore import TimeSplit
from atlas_ray.search import Resources, TrialStatus, load_experiment, load_model, load_results
from atlas_ray.search._devices import (
    CUDA_CONTEXT_RESERVE_MB,
    VIRTUAL_DEVICES_ENV,
    Hardware,
    detect_hardware,
    fit_to_cluster,
    gpu_memory_from_smi,
    plan_devices,
    resources_from_bundle,
    setup_devices,
    virtual_devices_from_env,
)
from tests.search import device_search

ROOT = Path(__file__).resolve().parents[2]
ONE_GPU = Hardware(gpus=("/physical_device:GPU:0",), gpu_memory_mb=(16_384,), ray_gpu_ids=("0",))


# ------------------------------------------------------------------------------------------- the plan
def test_a_cpu_trial_trains_on_the_cpu_without_a_fallback() -> None:
    plan = plan_devices(Resources(cpu=2), Hardware(), batch_size=128)
    assert (plan.kind, plan.devices, plan.replicas) == ("cpu", ("/device:CPU:0",), 1)
    assert plan.global_batch_size == 128
    assert plan.fallback is None and plan.memory_limit_mb is None


def test_a_gpu_share_is_a_memory_limit_that_four_trials_fit_in() -> None:
    plan = plan_devices(Resources(gpu=0.25), ONE_GPU, batch_size=256)
    assert (plan.kind, plan.devices, plan.replicas) == ("gpu", ("/device:GPU:0",), 1)
    assert plan.global_batch_size == 256
    assert plan.fallback is None and not plan.memory_growth
    assert plan.memory_limit_mb == 16_384 // 4 - CUDA_CONTEXT_RESERVE_MB
    # four such trials, each with its CUDA context outside the limit, fit in the GPU's memory
    assert 4 * (plan.memory_limit_mb + CUDA_CONTEXT_RESERVE_MB) <= 16_384
    half = plan_devices(Resources(gpu=0.5), ONE_GPU, batch_size=256)
    assert half.memory_limit_mb == 16_384 // 2 - CUDA_CONTEXT_RESERVE_MB


def test_a_gpu_share_whose_memory_is_unknown_grows_on_demand_and_says_so() -> None:
    hardware = Hardware(gpus=("/physical_device:GPU:0",), gpu_memory_mb=(None,))
    plan = plan_devices(Resources(gpu=0.25), hardware, batch_size=256)
    assert plan.kind == "gpu" and plan.memory_growth and plan.memory_limit_mb is None
    assert plan.fallback == (
        "asked for gpu=0.25; the GPU's total memory is unknown (no nvidia-smi): "
        "memory grows on demand instead of a limit to the share"
    )


def test_a_whole_gpu_grows_on_demand_and_several_train_data_parallel() -> None:
    whole = plan_devices(Resources(gpu=1), ONE_GPU, batch_size=256)
    assert (whole.kind, whole.replicas, whole.memory_growth, whole.memory_limit_mb) == ("gpu", 1, True, None)
    two = Hardware(gpus=("/physical_device:GPU:0", "/physical_device:GPU:1"), gpu_memory_mb=(80_000,) * 2)
    plan = plan_devices(Resources(gpu=2), two, batch_size=256)
    assert plan.devices == ("/device:GPU:0", "/device:GPU:1")
    assert (plan.replicas, plan.global_batch_size) == (2, 512)


def test_a_gpu_asked_for_where_there_is_none_falls_back_to_the_cpu_with_its_reason() -> None:
    advertised = Hardware(ray_gpu_ids=("0",))  # a node advertising num_gpus=1 without a GPU
    plan = plan_devices(Resources(gpu=0.25), advertised, batch_size=256)
    assert (plan.kind, plan.devices, plan.global_batch_size) == ("cpu", ("/device:CPU:0",), 256)
    assert plan.fallback == (
        "asked for gpu=0.25; TensorFlow sees no GPU here (Ray assigned GPU ids ['0']): trained on CPU"
    )
    no_cuda = plan_devices(Resources(gpu=1), Hardware(cuda_built=False), batch_size=256)
    assert no_cuda.fallback == "asked for gpu=1; this TensorFlow is built without CUDA: trained on CPU"
    fewer = plan_devices(Resources(gpu=2), ONE_GPU, batch_size=256)
    assert fewer.kind == "cpu" and "TensorFlow sees only 1 GPU(s)" in (fewer.fallback or "")


def test_tpu_chips_on_the_host_train_data_parallel_with_the_batch_scaled() -> None:
    plan = plan_devices(Resources(tpu=4), Hardware(tpu_chips=4), batch_size=64)
    assert (plan.kind, plan.replicas, plan.global_batch_size, plan.fallback) == ("tpu", 4, 256, None)


def test_tpu_chips_asked_for_where_there_are_none() -> None:
    plan = plan_devices(Resources(tpu=4), Hardware(), batch_size=64)
    assert (plan.kind, plan.replicas, plan.global_batch_size) == ("cpu", 1, 64)
    assert plan.fallback == (
        "asked for tpu=4; no TPU chips on this host (no /dev/accel* or TPU vfio device): trained on CPU"
    )
    virtual = plan_devices(Resources(tpu=4), Hardware(virtual_devices=4), batch_size=64)
    assert (virtual.kind, virtual.replicas, virtual.global_batch_size) == ("cpu-virtual", 4, 256)
    assert virtual.devices == tuple(f"/device:CPU:{k}" for k in range(4))
    assert virtual.fallback is not None and virtual.fallback.endswith(
        "trained data-parallel on 4 virtual CPU devices (ATLAS_VIRTUAL_DEVICES=4, test/dev only)"
    )
    too_few = plan_devices(Resources(tpu=4), Hardware(virtual_devices=2), batch_size=64)
    assert too_few.kind == "cpu"
    assert (too_few.fallback or "").endswith(
        "and ATLAS_VIRTUAL_DEVICES=2 is fewer than the 4 chips asked for: trained on CPU"
    )


def test_bad_values_are_refused_naming_them() -> None:
    with pytest.raises(ValueError, match=r"The value of `batch_size` is 0, but must be `batch_size >= 1`"):
        plan_devices(Resources(), Hardware(), batch_size=0)
    with pytest.raises(ValueError, match=r"The value of `ATLAS_VIRTUAL_DEVICES` is 'four'"):
        virtual_devices_from_env({VIRTUAL_DEVICES_ENV: "four"})
    assert virtual_devices_from_env({VIRTUAL_DEVICES_ENV: " 4 "}) == 4
    assert virtual_devices_from_env({}) == 0


def test_gpu_memory_is_read_for_the_gpus_the_process_sees() -> None:
    smi = "0, GPU-aaaa, 81559\n1, GPU-bbbb, 40960\n"
    assert gpu_memory_from_smi(smi, None, 2) == (81_559, 40_960)
    assert gpu_memory_from_smi(smi, "1", 1) == (40_960,)
    assert gpu_memory_from_smi(smi, "GPU-bbbb,GPU-aaaa", 2) == (40_960, 81_559)
    assert gpu_memory_from_smi("", "0", 1) == (None,)
    assert gpu_memory_from_smi(smi, "1", 2) == (40_960, None)


def test_the_record_names_its_fields() -> None:
    assert resources_from_bundle({"CPU": 1.0, "GPU": 0.25, "TPU": 4.0}) == Resources(cpu=1, gpu=0.25, tpu=4)
    hardware = Hardware(
        ray_tpu_ids=("0", "1", "2", "3"), node_ip="127.0.0.1", node_id="ab12", virtual_devices=4
    )
    record = plan_devices(Resources(tpu=4), hardware, batch_size=64).record()
    assert record == {
        "kind": "cpu-virtual",
        "names": ["/device:CPU:0", "/device:CPU:1", "/device:CPU:2", "/device:CPU:3"],
        "replicas": 4,
        "global_batch_size": 256,
        "asked": {"cpu": 1.0, "gpu": 0.0, "tpu": 4},
        "fallback": record["fallback"],
        "memory_limit_mb": None,
        "memory_growth": False,
        "ray_gpu_ids": [],
        "ray_tpu_ids": ["0", "1", "2", "3"],
        "node_ip": "127.0.0.1",
        "node_id": "ab12",
    }
    assert record["fallback"].startswith("asked for tpu=4; no TPU chips on this host")


def test_a_data_parallel_fit_batches_split_evenly_over_the_replicas() -> None:
    from atlas_ray.search._trainable import even_batch

    assert even_batch(1004, 256, 1) is None  # one replica: Keras' own batches, as before
    assert even_batch(1004, 256, 4) == 256  # enough rows: the global batch itself
    assert even_batch(214, 256, 4) == 212  # fewer: the most rows that split evenly over 4


def test_more_gpu_or_tpu_than_a_fixed_cluster_has_trains_on_the_cpu() -> None:
    cluster = {"CPU": 2.0, "GPU": 1.0}
    asked = Resources(cpu=1, gpu=0.25, tpu=4)
    given, reason = fit_to_cluster(asked, cluster, autoscaling=False)
    assert given == Resources(cpu=1)
    assert reason == (
        "asked for tpu=4; the Ray cluster has no TPU chips (and does not autoscale): trained on CPU"
    )
    given, reason = fit_to_cluster(Resources(gpu=2), cluster, autoscaling=False)
    assert (given, reason) == (
        Resources(cpu=1),
        "asked for gpu=2; the Ray cluster has 1 GPU (and does not autoscale): trained on CPU",
    )
    assert fit_to_cluster(Resources(gpu=0.25), cluster, autoscaling=False) == (Resources(gpu=0.25), None)
    assert fit_to_cluster(asked, {"CPU": 2.0}, autoscaling=True) == (asked, None)  # it adds nodes


# ------------------------------------------------------------------------------ the setup on this host
def test_this_host_has_no_accelerator_and_each_asked_for_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VIRTUAL_DEVICES_ENV, raising=False)
    hardware = detect_hardware()
    assert hardware.gpus == () and hardware.tpu_chips == 0 and hardware.virtual_devices == 0
    tpu = setup_devices(Resources(tpu=4), batch_size=64)
    assert tpu.strategy is None and tpu.plan.kind == "cpu" and tpu.plan.global_batch_size == 64
    assert tpu.plan.fallback is not None and tpu.plan.fallback.startswith("asked for tpu=4; no TPU chips")
    # a GPU the hardware survey believed in but TensorFlow cannot use: the GPU setup (memory limit)
    # runs, finds no GPU in this process, and the trial falls back to the CPU saying so
    gpu = setup_devices(Resources(gpu=0.25), batch_size=256, hardware=ONE_GPU)
    assert gpu.strategy is None and gpu.plan.kind == "cpu"
    assert gpu.plan.fallback == (
        "asked for gpu=0.25; setting up gpu failed (RuntimeError: TensorFlow lists 0 GPU(s) in this "
        "process, fewer than the 1 planned): trained on CPU"
    )
    with gpu.scope():  # no strategy: a no-op scope
        pass


def test_virtual_devices_asked_for_after_the_runtime_started_fall_back_saying_why() -> None:
    import tensorflow as tf

    tf.constant(1.0) + 1.0  # TensorFlow's runtime starts in this process with its one CPU device
    assert len(tf.config.list_logical_devices("CPU")) == 1
    devices = setup_devices(Resources(tpu=4), batch_size=64, hardware=Hardware(virtual_devices=4))
    assert devices.strategy is None and devices.plan.kind == "cpu" and devices.plan.global_batch_size == 64
    assert devices.plan.fallback == (
        "asked for tpu=4; setting up cpu-virtual failed (RuntimeError: TensorFlow's runtime already "
        "started in this worker with 1 CPU device(s), fewer than the 4 replicas): trained on CPU"
    )


# ----------------------------------------------------------- a real search on a cluster with the resources
@pytest.fixture(scope="module")
def device_searched(minute_store, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """``tests/search/device_search.py`` run in a process of its own with ``ATLAS_VIRTUAL_DEVICES=4``:
    its output, the experiment's results, and the unit's PreparedSet as the trials saw it."""
    storage = tmp_path_factory.mktemp("device_experiments")
    with tempfile.TemporaryDirectory(prefix="atlas_dv_") as temp:  # short: Ray's socket paths
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "RAY_TMPDIR": temp,
            "RAY_USAGE_STATS_ENABLED": "0",
            VIRTUAL_DEVICES_ENV: "4",
        }
        for name in ("RAY_ADDRESS", "RAY_AUTH_TOKEN"):
            env.pop(name, None)
        env.update(device_search.token_env(Path(temp)))
        done = subprocess.run(
            [sys.executable, "-m", "tests.search.device_search", str(minute_store.root), str(storage)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=540,
        )
    text = done.stdout + done.stderr
    assert done.returncode == 0, text[-4000:]
    spec = device_search.device_spec()
    experiment = storage / spec.name
    assert load_experiment(experiment).status == "finished"
    unit = spec.units[0]
    frame = unit.featureset.build_local(unit.start, unit.end, minute_store)
    prepared = unit.featureset.prepare(frame, TimeSplit(0.7, 0.15, 0.15), seed=spec.seed)
    results = {r.identity.model: r for r in load_results(experiment)}
    return done.stdout, results, prepared


def _single_device(result: Any, prepared: Any, batch_size: int) -> tuple[Any, list[dict[str, float]]]:
    """The trial's model trained again here, the trainable's way (same seed, build, lock-step fit and
    epoch seeds), on one device with ``batch_size``."""
    import keras

    from atlas_ray.search._trainable import LockStep
    from atlas_ray.search._zoo import as_zoo_model

    hp, seed = dict(result.identity.hyperparameters), result.identity.seed
    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(seed)
    model = as_zoo_model("dnn", name=result.identity.model).build(
        {**hp, "seed": seed},
        input_shape=tuple(prepared.train.X.shape[1:]),
        task=prepared.task,
        n_classes=prepared.n_classes,
        train_X=prepared.train.X,
    )
    lockstep = LockStep(
        [model], (prepared,), first_epoch=1, max_t=device_search.MAX_T, seed=seed, batch_size=batch_size
    )
    try:
        logs = [lockstep.next_epoch(epoch)[0] for epoch in range(1, device_search.MAX_T + 1)]
    finally:
        lockstep.close()
    return model, logs


@pytest.mark.slow
def test_a_trial_asking_for_4_chips_trains_on_4_devices_with_the_batch_scaled(device_searched) -> None:  # type: ignore[no-untyped-def]
    _, results, prepared = device_searched
    result = results["tpu4"]
    assert result.status is TrialStatus.COMPLETED, result.error
    devices = result.devices
    assert devices is not None
    assert devices["kind"] == "cpu-virtual" and devices["replicas"] == 4
    assert devices["names"] == [f"/device:CPU:{k}" for k in range(4)]
    assert devices["global_batch_size"] == 4 * device_search.PER_REPLICA_BATCH
    assert devices["asked"] == {"cpu": 1.0, "gpu": 0.0, "tpu": 4}
    assert devices["node_ip"] == "127.0.0.1" and devices["node_id"]
    assert devices["fallback"].startswith("asked for tpu=4; no TPU chips on this host")
    assert "trained data-parallel on 4 virtual CPU devices (ATLAS_VIRTUAL_DEVICES=4" in devices["fallback"]

    # the same trial on one device at the global batch: the same curves and weights, to tolerance
    model, logs = _single_device(result, prepared, devices["global_batch_size"])
    trained = load_model(result).get_weights()
    for got, want in zip(trained, model.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    curves = result.curves
    for epoch, row in enumerate(logs, start=1):
        for name in ("loss", "val_loss"):
            recorded = float(curves.loc[curves["epoch"] == epoch, name].iloc[0])
            assert recorded == pytest.approx(row[name], rel=1e-4), (epoch, name)
    # and not what one device makes of the per-replica batch: the batch really was scaled
    small, _ = _single_device(result, prepared, device_search.PER_REPLICA_BATCH)
    pairs = zip(trained, small.get_weights(), strict=True)
    assert not all(np.allclose(got, want, rtol=1e-4, atol=1e-5) for got, want in pairs)


@pytest.mark.slow
def test_a_gpu_share_on_a_node_without_a_gpu_records_its_fallback(device_searched) -> None:  # type: ignore[no-untyped-def]
    output, results, _ = device_searched
    result = results["gpu_share"]
    assert result.status is TrialStatus.COMPLETED, result.error
    devices = result.devices
    assert devices is not None
    assert (devices["kind"], devices["names"], devices["replicas"]) == ("cpu", ["/device:CPU:0"], 1)
    assert devices["asked"] == {"cpu": 1.0, "gpu": 0.25, "tpu": 0}
    assert devices["ray_gpu_ids"] == ["0"]  # Ray gave it the node's advertised GPU
    assert devices["fallback"] == (
        "asked for gpu=0.25; TensorFlow sees no GPU here (Ray assigned GPU ids ['0']): trained on CPU"
    )
    # the console says so, one line per trial, as the trial starts reporting
    tpu_line = f"trial {results['tpu4'].trial_id} (tpu4) devices: asked for tpu=4; no TPU chips"
    gpu_line = f"trial {result.trial_id} (gpu_share) devices: {devices['fallback']}"
    lines = output.splitlines()
    assert sum(line.startswith(tpu_line) for line in lines) == 1, output[-3000:]
    assert sum(line == gpu_line for line in lines) == 1, output[-3000:]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_gpu_trial_on_a_cluster_without_gpus_trains_on_the_cpu(
    ray_cluster: None, minute_store, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """The session's local Ray has no GPU: without the cut the trial would wait for ever."""
    import io

    from atlas_ray.search import ModelSpec, run
    from tests.search import search_specs

    space = {**device_search.SPACE, "batch_size": 256}
    model = ModelSpec("dnn", "dnn", space, resources=Resources(cpu=1, gpu=0.25))
    spec = search_specs.spec("no_gpu", [model], max_t=1, grace_period=1)
    out = io.StringIO()
    experiment = run(spec, storage=str(tmp_path), store=minute_store, spec_path="no_gpu.py", out=out)
    (result,) = load_results(experiment)
    assert result.status is TrialStatus.COMPLETED, result.error
    reason = "asked for gpu=0.25; the Ray cluster has no GPU (and does not autoscale): trained on CPU"
    assert result.devices is not None
    assert (result.devices["kind"], result.devices["fallback"]) == ("cpu", reason)
    assert result.devices["asked"] == {"cpu": 1.0, "gpu": 0.25, "tpu": 0}
    lines = out.getvalue().splitlines()
    assert f"unit `direction`, model `dnn`: {reason}" in lines
    assert f"trial {result.trial_id} (dnn) devices: {reason}" in lines
