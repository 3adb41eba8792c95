"""Which devices a trial trains on: a GPU share, TPU chips, or the CPU (and why), set up in the worker.

``plan_devices(resources, hardware, batch_size=...)`` decides (no side effect, tested directly);
``setup_devices(resources, batch_size=...)`` finds the worker's hardware (``detect_hardware``), plans,
configures TensorFlow and returns ``Devices``: the ``DevicePlan`` and the ``tf.distribute`` strategy to
build and fit the trial's models under (``Devices.scope()``). ``DevicePlan.record()`` is what the
trial's ``result.json`` keeps under ``"devices"``.

- **A GPU share** (``Resources(gpu=0.25)``): Ray gives the trial's worker the GPU (its
  ``CUDA_VISIBLE_DEVICES``); TensorFlow is then limited to the fraction of its memory, as a logical GPU
  with ``memory_limit = fraction x total - CUDA_CONTEXT_RESERVE_MB`` (the total read with
  ``nvidia-smi``). A hard limit, not memory growth: growth lets one trial's allocator take what the
  others need (TensorFlow's BFC allocator never gives memory back), so 4 trials at 0.25 could still run
  out; a limit makes 4 x 0.25 fit by construction (each CUDA context takes its own few hundred MB
  outside the limit, hence the reserve). Where the total cannot be read, memory growth is used instead
  and the record says so. A whole GPU (``gpu=1``) grows on demand; ``gpu=2`` or more trains
  data-parallel over those GPUs (``MirroredStrategy``), the batch scaled by their count.
- **TPU chips** (``Resources(tpu=4)``: Ray's ``"TPU"`` resource; Ray sets ``TPU_VISIBLE_CHIPS`` for the
  worker): ``TPUClusterResolver(tpu="local")``, the TPU system initialised once per process, and the
  models built and fitted under ``tf.distribute.TPUStrategy``, data-parallel over the chips, with the
  global batch = the trial's ``batch_size`` (per replica) x the replica count, as the Jane Street
  notebook did (``BATCH_SIZE * strategy.num_replicas_in_sync``).

  Why TensorFlow's TPU strategy and not Keras 3's JAX backend with ``keras.distribution``: the project
  runs Keras 3 on the TensorFlow backend everywhere (the zoo, ``model.keras``, Ray Serve), and Keras'
  backend is chosen once per process, so a JAX route would be a second backend for TPU trials only,
  with models that the TensorFlow side must still load, and JAX as a new dependency. Keras 3's
  TensorFlow trainer supports ``tf.distribute`` strategies, TPUStrategy included (it builds and fits
  models created under ``strategy.scope()``), and the same code path runs with ``MirroredStrategy``
  on several GPUs and, for tests, on virtual CPU devices. ``cluster/tpu.yaml`` installs
  ``tensorflow-tpu`` (which pulls ``libtpu``) for it. Under data parallelism batch normalisation keeps
  per-replica statistics (Keras' default), so a model with it does not match a single-device run
  exactly; every other layer of the zoo does, to float rounding.
- **Missing hardware**: a trial that asked for a GPU or TPU chips where there are none (a node that
  advertises the resource without the device, TensorFlow built without CUDA, a TPU runtime that fails
  to start; or, decided by the driver with ``fit_to_cluster``, a Ray cluster that has none at all and
  does not autoscale) trains on the CPU; ``DevicePlan.fallback`` says what was asked, what was missing
  and what it trained on, the record keeps it, and the search's progress display prints it as one line.
- **Test hook** (test and development only): ``ATLAS_VIRTUAL_DEVICES=N`` in the worker's environment
  makes a trial that asks for ``tpu=k`` (``k <= N``) on a host without TPU chips split the host CPU
  into ``N`` logical devices and train data-parallel over ``k`` of them with ``MirroredStrategy``
  (kind ``"cpu-virtual"``): the TPU path's data parallelism and batch scaling, without a TPU.

TensorFlow accepts device settings (memory limits, logical devices) only before its runtime starts
in the process. A worker Tune reuses runs trials of equal resources only, so a later trial finds the
settings its first trial made; where the runtime already started with other settings, the trial falls
back to what there is and says so.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from atlas_ray.search._spec import Resources

__all__ = [
    "CUDA_CONTEXT_RESERVE_MB",
    "VIRTUAL_DEVICES_ENV",
    "DeviceKind",
    "DevicePlan",
    "Devices",
    "Hardware",
    "detect_hardware",
    "fit_to_cluster",
    "gpu_memory_from_smi",
    "plan_devices",
    "resources_from_bundle",
    "setup_devices",
    "virtual_devices_from_env",
]

VIRTUAL_DEVICES_ENV = "ATLAS_VIRTUAL_DEVICES"
CUDA_CONTEXT_RESERVE_MB = 512
MIN_MEMORY_LIMIT_MB = 256

DeviceKind = Literal["cpu", "gpu", "tpu", "cpu-virtual"]


@dataclass(frozen=True)
class Hardware:
    """What the worker process has: the GPUs TensorFlow sees (and their total memory in MB, None where
    unknown), the TPU chips on the host, the GPU and TPU ids Ray assigned, the test hook's virtual
    device count, and the node."""

    gpus: tuple[str, ...] = ()
    gpu_memory_mb: tuple[int | None, ...] = ()
    tpu_chips: int = 0
    cuda_built: bool = True
    ray_gpu_ids: tuple[str, ...] = ()
    ray_tpu_ids: tuple[str, ...] = ()
    virtual_devices: int = 0
    node_ip: str = ""
    node_id: str = ""


@dataclass(frozen=True)
class DevicePlan:
    """What a trial trains on. ``kind``: ``"cpu"``, ``"gpu"``, ``"tpu"`` or ``"cpu-virtual"`` (the test
    hook); ``devices``: TensorFlow device names; ``replicas``: data-parallel replicas; ``global_batch_size``:
    the per-replica batch x ``replicas``; ``fallback``: None, or why it is not what was asked."""

    kind: DeviceKind
    devices: tuple[str, ...]
    replicas: int
    global_batch_size: int
    asked: Resources = field(default_factory=Resources)
    fallback: str | None = None
    memory_limit_mb: int | None = None
    memory_growth: bool = False
    hardware: Hardware = field(default_factory=Hardware)

    def record(self) -> dict[str, Any]:
        """The trial record's ``"devices"`` field (plain JSON)."""
        return {
            "kind": self.kind,
            "names": list(self.devices),
            "replicas": self.replicas,
            "global_batch_size": self.global_batch_size,
            "asked": {"cpu": self.asked.cpu, "gpu": self.asked.gpu, "tpu": self.asked.tpu},
            "fallback": self.fallback,
            "memory_limit_mb": self.memory_limit_mb,
            "memory_growth": self.memory_growth,
            "ray_gpu_ids": list(self.hardware.ray_gpu_ids),
            "ray_tpu_ids": list(self.hardware.ray_tpu_ids),
            "node_ip": self.hardware.node_ip,
            "node_id": self.hardware.node_id,
        }


def _cpu(asked: Resources, hardware: Hardware, batch_size: int, fallback: str | None) -> DevicePlan:
    return DevicePlan(
        kind="cpu",
        devices=("/device:CPU:0",),
        replicas=1,
        global_batch_size=batch_size,
        asked=asked,
        fallback=fallback,
        hardware=hardware,
    )


def plan_devices(resources: Resources, hardware: Hardware, *, batch_size: int) -> DevicePlan:
    """The devices a trial asking for ``resources`` trains on, given ``hardware``; ``batch_size`` is per
    replica. Decides only: ``setup_devices`` configures TensorFlow."""
    if batch_size < 1:
        raise ValueError(f"The value of `batch_size` is {batch_size}, but must be `batch_size >= 1`.")
    if resources.tpu:
        return _plan_tpu(resources, hardware, batch_size)
    if resources.gpu:
        return _plan_gpu(resources, hardware, batch_size)
    return _cpu(resources, hardware, batch_size, None)


def _plan_tpu(asked: Resources, hardware: Hardware, batch_size: int) -> DevicePlan:
    chips = int(asked.tpu)
    if hardware.tpu_chips >= chips:
        # The replica count is the TPU system's (cores per chip differ by generation): set at setup.
        names = tuple(f"/device:TPU:{k}" for k in range(chips))
        return DevicePlan("tpu", names, chips, batch_size * chips, asked, hardware=hardware)
    found = f"only {hardware.tpu_chips} TPU chips" if hardware.tpu_chips else "no TPU chips"
    missing = f"asked for tpu={chips}; {found} on this host (no /dev/accel* or TPU vfio device)"
    virtual = hardware.virtual_devices
    if virtual >= chips > 0:
        names = tuple(f"/device:CPU:{k}" for k in range(chips))
        reason = (
            f"{missing}: trained data-parallel on {chips} virtual CPU devices "
            f"({VIRTUAL_DEVICES_ENV}={virtual}, test/dev only)"
        )
        return DevicePlan(
            "cpu-virtual", names, chips, batch_size * chips, asked, fallback=reason, hardware=hardware
        )
    if virtual:
        missing += f" and {VIRTUAL_DEVICES_ENV}={virtual} is fewer than the {chips} chips asked for"
    return _cpu(asked, hardware, batch_size, f"{missing}: trained on CPU")


def _plan_gpu(asked: Resources, hardware: Hardware, batch_size: int) -> DevicePlan:
    wanted = max(1, int(asked.gpu))
    if len(hardware.gpus) < wanted:
        if not hardware.cuda_built:
            why = "this TensorFlow is built without CUDA"
        elif hardware.gpus:
            why = f"TensorFlow sees only {len(hardware.gpus)} GPU(s)"
        else:
            why = "TensorFlow sees no GPU here"
        ids = f" (Ray assigned GPU ids {list(hardware.ray_gpu_ids)})" if hardware.ray_gpu_ids else ""
        return _cpu(asked, hardware, batch_size, f"asked for gpu={asked.gpu:g}; {why}{ids}: trained on CPU")
    names = tuple(f"/device:GPU:{k}" for k in range(wanted))
    if asked.gpu < 1:
        total = hardware.gpu_memory_mb[0] if hardware.gpu_memory_mb else None
        if total is not None:
            limit = max(MIN_MEMORY_LIMIT_MB, int(asked.gpu * total) - CUDA_CONTEXT_RESERVE_MB)
            return DevicePlan("gpu", names, 1, batch_size, asked, memory_limit_mb=limit, hardware=hardware)
        reason = (
            f"asked for gpu={asked.gpu:g}; the GPU's total memory is unknown (no nvidia-smi): "
            "memory grows on demand instead of a limit to the share"
        )
        return DevicePlan(
            "gpu", names, 1, batch_size, asked, fallback=reason, memory_growth=True, hardware=hardware
        )
    return DevicePlan("gpu", names, wanted, batch_size * wanted, asked, memory_growth=True, hardware=hardware)


def fit_to_cluster(
    wanted: Resources, cluster: Mapping[str, float], *, autoscaling: bool
) -> tuple[Resources, str | None]:
    """What a trial asking for ``wanted`` is given on a Ray cluster holding ``cluster`` in all
    (``ray.cluster_resources()``), and why, when that is less. A GPU share or TPU chips more than the
    whole cluster has would leave the trial waiting for ever (Ray Tune only warns), so on a cluster that
    cannot grow it trains on the CPU instead; an autoscaling cluster gets what was asked (it adds nodes)."""
    if autoscaling:
        return wanted, None
    have_gpu, have_tpu = float(cluster.get("GPU", 0.0)), float(cluster.get("TPU", 0.0))
    cut = []
    if wanted.gpu and wanted.gpu > have_gpu:
        cut.append((f"gpu={wanted.gpu:g}", f"{have_gpu:g} GPU" if have_gpu else "no GPU"))
    if wanted.tpu and wanted.tpu > have_tpu:
        cut.append((f"tpu={wanted.tpu}", f"{have_tpu:g} TPU chips" if have_tpu else "no TPU chips"))
    if not cut:
        return wanted, None
    asked = " and ".join(what for what, _ in cut)
    has = " and ".join(have for _, have in cut)
    given = Resources(cpu=wanted.cpu)
    return given, f"asked for {asked}; the Ray cluster has {has} (and does not autoscale): trained on CPU"


def resources_from_bundle(bundle: Mapping[str, float]) -> Resources:
    """A Ray resource bundle (``{"CPU": 1, "GPU": 0.25, "TPU": 4}``) as ``Resources``."""
    return Resources(
        cpu=float(bundle.get("CPU", 1.0)),
        gpu=float(bundle.get("GPU", 0.0)),
        tpu=int(bundle.get("TPU", 0)),
    )


# ------------------------------------------------------------------------------------ the worker's side
def detect_hardware() -> Hardware:
    """What this process has (see ``Hardware``). Reads TensorFlow's physical devices (which does not
    start its runtime), ``nvidia-smi`` for GPU memory, the host's TPU device files, and Ray's
    assignment when this runs in a Ray worker."""
    import tensorflow as tf

    gpus = tuple(device.name for device in tf.config.list_physical_devices("GPU"))
    ray_gpu_ids: tuple[str, ...] = ()
    ray_tpu_ids: tuple[str, ...] = ()
    node_ip = node_id = ""
    try:
        import ray

        if ray.is_initialized():
            accelerators = ray.get_runtime_context().get_accelerator_ids()
            ray_gpu_ids = tuple(str(i) for i in accelerators.get("GPU", ()))
            ray_tpu_ids = tuple(str(i) for i in accelerators.get("TPU", ()))
            node_id = ray.get_runtime_context().get_node_id()
            node_ip = ray.util.get_node_ip_address()
    except Exception:  # outside a Ray worker: nothing assigned
        pass
    return Hardware(
        gpus=gpus,
        gpu_memory_mb=_gpu_memory_mb(len(gpus)),
        tpu_chips=_tpu_chips(),
        cuda_built=bool(tf.test.is_built_with_cuda()),
        ray_gpu_ids=ray_gpu_ids,
        ray_tpu_ids=ray_tpu_ids,
        virtual_devices=virtual_devices_from_env(),
        node_ip=node_ip,
        node_id=node_id,
    )


def virtual_devices_from_env(environ: Mapping[str, str] | None = None) -> int:
    """``ATLAS_VIRTUAL_DEVICES`` as a count (0 when unset); any other value than a whole number >= 0 is
    refused, naming the variable."""
    text = (environ if environ is not None else os.environ).get(VIRTUAL_DEVICES_ENV, "").strip()
    if not text:
        return 0
    if not text.isdigit():
        raise ValueError(
            f"The value of `{VIRTUAL_DEVICES_ENV}` is {text!r}, but must be a whole number >= 0 "
            "(the CPU devices to split the host into; test/dev only)."
        )
    return int(text)


def _tpu_chips() -> int:
    """TPU chips on this host, as Ray counts them (``/dev/accel*``, TPU vfio groups)."""
    try:
        from ray._private.accelerators.tpu import TPUAcceleratorManager

        return int(TPUAcceleratorManager.get_current_node_num_accelerators())
    except Exception:  # another Ray layout: count the character devices ourselves
        return len([path for path in glob.glob("/dev/accel*") if not os.path.isdir(path)])


def _gpu_memory_mb(count: int) -> tuple[int | None, ...]:
    """Total memory (MB) of each GPU TensorFlow sees, in its order (``CUDA_VISIBLE_DEVICES`` maps them to
    ``nvidia-smi``'s indexes or UUIDs); None where unknown."""
    if count == 0:
        return ()
    unknown: tuple[int | None, ...] = (None,) * count
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return unknown
    try:
        text = subprocess.run(
            [smi, "--query-gpu=index,uuid,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return unknown
    return gpu_memory_from_smi(text, os.environ.get("CUDA_VISIBLE_DEVICES"), count)


def gpu_memory_from_smi(text: str, visible: str | None, count: int) -> tuple[int | None, ...]:
    """The total memory (MB) of the first ``count`` GPUs a process sees, from ``nvidia-smi
    --query-gpu=index,uuid,memory.total --format=csv,noheader,nounits`` (every GPU of the host) and the
    process's ``CUDA_VISIBLE_DEVICES`` (indexes or UUIDs; None: all, in order)."""
    rows: dict[str, int] = {}
    for line in text.splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) == 3 and parts[2].isdigit():
            rows[parts[0]] = rows[parts[1]] = int(parts[2])
    order = [item.strip() for item in visible.split(",")] if visible else [str(k) for k in range(count)]
    order = order[:count]
    return tuple(rows.get(item) for item in order) + (None,) * (count - len(order))


@dataclass(frozen=True)
class Devices:
    """A configured ``DevicePlan`` and the ``tf.distribute`` strategy to build and fit under (None:
    TensorFlow's default placement, one device)."""

    plan: DevicePlan
    strategy: Any = None

    def scope(self) -> contextlib.AbstractContextManager[Any]:
        """``strategy.scope()``, or a no-op without a strategy."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()


_TPU_STRATEGY: Any = None  # the TPU system is initialised once per process


def setup_devices(resources: Resources, *, batch_size: int, hardware: Hardware | None = None) -> Devices:
    """Plan the trial's devices on this worker and configure TensorFlow for them (see the module
    docstring); a step that fails turns into a CPU fallback with its reason, never an error."""
    hardware = hardware if hardware is not None else detect_hardware()
    plan = plan_devices(resources, hardware, batch_size=batch_size)
    try:
        if plan.kind == "gpu":
            return _setup_gpu(plan)
        if plan.kind == "cpu-virtual":
            return _setup_virtual(plan)
        if plan.kind == "tpu":
            return _setup_tpu(plan)
    except Exception as error:  # a runtime that refuses: train on the CPU, and say why
        asked = _asked_text(resources)
        text = " ".join(str(error).split())[:300]
        reason = (
            f"asked for {asked}; setting up {plan.kind} failed ({type(error).__name__}: {text}): "
            "trained on CPU"
        )
        return Devices(_cpu(resources, hardware, batch_size, reason))
    return Devices(plan)


def _asked_text(resources: Resources) -> str:
    return f"tpu={resources.tpu}" if resources.tpu else f"gpu={resources.gpu:g}"


def _setup_gpu(plan: DevicePlan) -> Devices:
    import tensorflow as tf

    physical = tf.config.list_physical_devices("GPU")[: len(plan.devices)]
    if len(physical) < len(plan.devices):
        raise RuntimeError(
            f"TensorFlow lists {len(physical)} GPU(s) in this process, "
            f"fewer than the {len(plan.devices)} planned"
        )
    for gpu in physical:
        with contextlib.suppress(RuntimeError):  # the runtime started: the first trial's settings hold
            if plan.memory_limit_mb is not None:
                tf.config.set_logical_device_configuration(
                    gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=plan.memory_limit_mb)]
                )
            else:
                tf.config.experimental.set_memory_growth(gpu, True)
    names = tuple(device.name for device in tf.config.list_logical_devices("GPU"))[: len(plan.devices)]
    plan = replace(plan, devices=names or plan.devices)
    if plan.replicas > 1:
        return Devices(plan, tf.distribute.MirroredStrategy(devices=list(plan.devices)))
    return Devices(plan)


def _setup_virtual(plan: DevicePlan) -> Devices:
    import tensorflow as tf

    count = plan.hardware.virtual_devices
    cpu = tf.config.list_physical_devices("CPU")[0]
    with contextlib.suppress(RuntimeError):  # the runtime started: use its CPU devices, if enough
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    names = tuple(device.name for device in tf.config.list_logical_devices("CPU"))
    if len(names) < plan.replicas:
        raise RuntimeError(
            f"TensorFlow's runtime already started in this worker with {len(names)} CPU device(s), "
            f"fewer than the {plan.replicas} replicas"
        )
    plan = replace(plan, devices=names[: plan.replicas])
    return Devices(plan, tf.distribute.MirroredStrategy(devices=list(plan.devices)))


def _setup_tpu(plan: DevicePlan) -> Devices:
    global _TPU_STRATEGY
    import tensorflow as tf

    if _TPU_STRATEGY is None:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu="local")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        _TPU_STRATEGY = tf.distribute.TPUStrategy(resolver)
    strategy = _TPU_STRATEGY
    replicas = int(strategy.num_replicas_in_sync)
    names = tuple(str(name) for name in strategy.extended.worker_devices)
    per_replica = plan.global_batch_size // plan.replicas
    plan = replace(plan, devices=names, replicas=replicas, global_batch_size=per_replica * replicas)
    return Devices(plan, strategy)
