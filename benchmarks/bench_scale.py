"""Scale: searches of 100, 300 and 1,000 short trials on a simulated cluster, atlas_ray's cost per trial.

The cluster: a ``ray.cluster_utils.Cluster`` on this machine, a head of 0 CPUs (the GCS, as on a big
cluster) and ``--nodes`` worker nodes of 4 logical CPUs each, every node on 127.0.0.1 with token
authentication (as ``tests/cluster/conftest.py``'s ``LocalCluster``). The driver joins it with
``run(spec, address=HEAD)``, as ``python -m atlas_ray.search SPEC --address HEAD`` does, in this
process so that its time can be taken apart.

The trials: the zoo's ``lightgbm`` family on one day of real Coinbase and Kraken minute bars (about
1,000 training rows), ``rounds_per_step`` 5, ASHA ``max_t`` 4 steps, grace 1, reduction factor 2, so
trials stop at rungs 1 and 2 or run 4 steps (20 rounds), and write their ResultsObject at each rung.
Each trial holds ``TRIAL_CPUS`` = 2 logical CPUs, so 2 trial actors run on each node: a Ray worker
holding a trial (ray, pandas, pyarrow, lightgbm, atlas_ray) is about 300 MiB, and 16 nodes x 4 trials
of 1 CPU would be 64 workers, about 19 GiB beside the raylets on this 24 GiB machine.

TensorFlow: a LightGBM trial never uses it, but ``_trainable.configure_threads`` imports it in every
trial actor unless ``KERAS_BACKEND`` is not ``tensorflow`` (about 7 s of CPU and 600 MiB more per
worker, measured: 32 workers would need 19 GiB more and 4 minutes of this machine's 2 cores). The
benchmark therefore sets ``KERAS_BACKEND=numpy`` in the driver, which the joined workers inherit
(``_ray_runtime._init_joined``); nothing in a LightGBM trial imports Keras.

What is measured, per search of N trials (the same cluster, one search after the other). A search
starts ``slots`` (= nodes x 4 / 2) trial actors, each importing ray, pandas, pyarrow, lightgbm and
atlas_ray (about 6 s of CPU each, all on this machine's 2 cores): a fixed cost that would make a search
of 100 look dearer per trial than one of 1,000 and hide any growth. So the per-trial figures are taken
over the steady part of the search, from the moment the ``slots``-th trial ended (every slot has turned
over once) to ``run()``'s return (settling, the finished record and the table of best trials included),
divided by the N - ``slots`` trials that ended in it:

- ``per_trial_ms`` (the key, and ``growth``): the driver process's CPU time per trial. Tune's
  controller, the GCS client and atlas_ray's driver side (its callbacks, settling, the experiment
  record) run there and training never does, so this is the cost per trial outside training that a
  driver on a real cluster pays too; work that grows with the trials done shows here first.
- inside it, the wall time in atlas_ray's own driver-side callbacks (``ProgressCallback``: the progress
  line and the scores; ``SettleCallback``: settling each ended trial's ResultsObject) and in Tune's
  saving of the experiment state (``TuneController.save_to_dir``, at most every
  ``TUNE_GLOBAL_CHECKPOINT_S``, which atlas_ray sets to 1 s), timed by wrapping those methods here
  (atlas_ray unchanged); and the GCS server's CPU time per trial.
- the wall time per trial outside training: the steady part's wall time minus the in-trial time spent
  in it (the sum of the phases each trial reports, ``_trainable.TIME_KEYS``: set-up, boosting,
  evaluation and ResultsObject writes, checkpoints; taken as ending when the trial ended, the part before
  the steady part cut off) over the ``slots``, per trial. On this
  machine every raylet, worker and the driver share 2 cores, so this is an upper bound that holds
  contention, not a cluster's figure.
- for the whole search, start-up included: the driver's CPU per trial, ``(wall - in-trial / slots) / N``,
  and the driver's CPU per trial added between two sizes (the fixed costs cancel there).
- ``--profile FILE`` cProfiles the driver's main thread (where Tune's controller runs the callbacks)
  in every search (``FILE.N``) and prints the top functions of the largest; it slows the driver, so
  the figures of such a run compare sizes only.

The same work: every search must end with one ResultsObject per planned trial, each COMPLETED or
STOPPED (none FAILED), epochs between 1 and ``max_t``, the finished experiment record listing every
trial; otherwise the benchmark exits 1.

The report: ``python -m atlas_ray.report EXPERIMENT --out DIR`` over the largest search, its wall time
and the peak memory of its process tree (the report draws in forked workers: their proportional set
sizes are summed, sampled every 50 ms, as ``bench_report``). Targets: growth (per_trial_ms at 1,000 /
at 100) <= 1.2, the report in < 60 s and < 4 GiB.

``--nodes 2 --trials 10,20`` runs it small (a check of the benchmark itself). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import itertools
import json
import logging
import os
import pstats
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "numpy")  # see the module docstring: no TensorFlow per worker
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"
NODE_CPUS = 4
TRIAL_CPUS = 2
ROUNDS_PER_STEP = 5
MAX_T = 4
GRACE = 1
REDUCTION = 2
TARGET = 1.2
REPORT_TARGET_S = 60.0
REPORT_TARGET_GIB = 4.0
CALLBACK_METHODS = ("on_step_end", "on_trial_result", "on_trial_complete", "on_trial_error",
                    "on_experiment_end")


def featureset() -> Any:
    from atlas_ray.featurestore import FeatureLabelSet, InterExchangeSpread, LogReturns, Midpoint, Percentiles

    features = [
        *(LogReturns().coinbase().one_min().lookback(n) for n in (1, 5, 15)),
        *(LogReturns().kraken().one_min().lookback(n) for n in (1, 5, 15)),
        InterExchangeSpread(Midpoint().coinbase().one_min(), Midpoint().kraken().one_min()),
    ]
    return FeatureLabelSet(
        features, [LogReturns().coinbase().one_min().lookforward(1)], categories=Percentiles((50.0,))
    )


def spec_for(trials: int, fs: Any) -> Any:
    from ray import tune

    from atlas_ray.featurestore import TimeSplit
    from atlas_ray.search import ASHA, ModelSpec, Resources, WorkSpec, WorkUnit

    space = {
        "rounds_per_step": ROUNDS_PER_STEP,
        "num_leaves": tune.choice([3, 7, 15]),
        "learning_rate": tune.loguniform(0.02, 0.3),
        "min_data_in_leaf": tune.choice([20, 50]),
        "feature_fraction": tune.uniform(0.6, 1.0),
    }
    return WorkSpec(
        f"bench_scale_{trials}",
        units=[
            WorkUnit(
                "direction",
                featureset=fs,
                start="2023-03-01",
                end="2023-03-02",
                split=TimeSplit(0.7, 0.15, 0.15),
                models=[ModelSpec("gbm", "lightgbm", space, num_samples=trials)],
            )
        ],
        scheduler=ASHA(max_t=MAX_T, grace_period=GRACE, reduction_factor=REDUCTION),
        resources=Resources(cpu=TRIAL_CPUS),
        seed=7,
    )


# --------------------------------------------------------------------------------------------- cluster


@contextmanager
def simulated_cluster(nodes: int, temp: Path) -> Iterator[Any]:
    """A head of 0 CPUs and ``nodes`` worker nodes of ``NODE_CPUS`` on 127.0.0.1, token authentication,
    Ray's files under ``temp``; every node stopped (workers first) and this process's Ray state reset at
    the end (as ``tests/cluster/conftest.py``)."""
    import ray._raylet
    from ray.cluster_utils import Cluster

    token = temp / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    saved = {key: os.environ.get(key) for key in ("RAY_TMPDIR", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH")}
    os.environ.update(RAY_TMPDIR=str(temp), RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
    os.environ.pop("RAY_AUTH_TOKEN", None)
    ray._raylet.Config.initialize("")  # type: ignore[attr-defined]
    ray._raylet.AuthenticationTokenLoader.instance().reset_cache()  # type: ignore[attr-defined]
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "node_ip_address": LOOPBACK, "include_dashboard": False},
    )
    workers = []
    try:
        for _ in range(nodes):
            workers.append(cluster.add_node(num_cpus=NODE_CPUS, node_ip_address=LOOPBACK))
        cluster.wait_for_nodes()
        yield cluster
    finally:
        import ray
        import ray._common.utils
        import ray._private.services
        import ray.experimental.internal_kv

        ray.shutdown()
        for node in workers:
            cluster.remove_node(node, allow_graceful=False)
        cluster.remove_node(cluster.head_node, allow_graceful=False)
        ray.experimental.internal_kv._internal_kv_reset()
        ray._private.services.find_gcs_addresses.cache_clear()
        ray._common.utils.reset_ray_address(os.path.join(temp, "ray"))
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# ------------------------------------------------------------------------------------------ measuring


class MemorySampler:
    """The machine's used memory (MemTotal - MemAvailable), or the proportional set size summed over a
    process tree (as ``bench_report``), sampled every ``every`` s in a thread; ``peak`` in bytes."""

    def __init__(self, pid: int | None = None, every: float = 0.05) -> None:
        self.pid, self.every, self.peak = pid, every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.sample())
            self._stop.wait(self.every)

    def sample(self) -> int:
        if self.pid is None:
            meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
            kib = int(meminfo["MemTotal"].split()[0]) - int(meminfo["MemAvailable"].split()[0])
            return kib * 1024
        import psutil

        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0
        total = 0
        for proc in procs:  # PSS: pages the forked workers share with the report count once
            with suppress(psutil.Error):
                info = proc.memory_full_info()
                total += int(getattr(info, "pss", info.rss))
        return total


class CallbackClock:
    """Time spent in atlas_ray's driver-side Tune callbacks (``ProgressCallback``: the progress line and
    the scores; ``SettleCallback``: settling each ended trial's ResultsObject), and in Tune's saving of
    the experiment state (``TuneController.save_to_dir``, at most every ``TUNE_GLOBAL_CHECKPOINT_S``,
    which atlas_ray sets to 1 s), per class and method, by wrapping those methods in this process
    (atlas_ray itself unchanged)."""

    def __init__(self) -> None:
        from ray.tune.execution.tune_controller import TuneController

        from atlas_ray.search._progress import ProgressCallback
        from atlas_ray.search._runner import SettleCallback

        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._saved: list[tuple[type, str, Callable[..., Any]]] = []
        timed = [(cls, name) for cls in (ProgressCallback, SettleCallback) for name in CALLBACK_METHODS]
        for cls, name in [*timed, (TuneController, "save_to_dir")]:
            if name in cls.__dict__:
                original = cls.__dict__[name]
                self._saved.append((cls, name, original))
                setattr(cls, name, self._timed(f"{cls.__name__}.{name}", original))

        self.ended = 0
        self.mark_at = 0
        self.mark: dict[str, Any] | None = None
        self.gcs = 0
        self.order: list[str] = []  # the trials in the order they ended
        self.ends: dict[str, float] = {}  # when each ended (perf_counter)

    def atlas_seconds(self, since: dict[str, float] | None = None) -> float:
        """The seconds in atlas_ray's callbacks (since the ``since`` snapshot of ``seconds``)."""
        since = since or {}
        return sum(
            v - since.get(k, 0.0) for k, v in self.seconds.items() if not k.startswith("TuneController.")
        )

    def arm(self, after: int, gcs: int) -> None:
        """Take a snapshot (``mark``: driver CPU, GCS CPU, time, ``seconds``) when the ``after``-th trial
        ends; the steady part of a search is from there on."""
        self.ended, self.mark_at, self.mark, self.gcs = 0, after, None, gcs
        self.order.clear()
        self.ends.clear()

    def _ended(self, trial_id: str) -> None:
        self.order.append(trial_id)
        self.ends[trial_id] = time.perf_counter()
        self.ended += 1
        if self.ended == self.mark_at:
            self.mark = {
                "cpu": driver_cpu_s(),
                "gcs": process_cpu_s(self.gcs),
                "time": time.perf_counter(),
                "seconds": dict(self.seconds),
            }

    def _timed(self, key: str, original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - began
                self.calls[key] = self.calls.get(key, 0) + 1
                if key in ("SettleCallback.on_trial_complete", "SettleCallback.on_trial_error"):
                    self._ended(str(kwargs["trial"].trial_id if "trial" in kwargs else args[3].trial_id))

        return timed

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()

    def restore(self) -> None:
        for cls, name, original in self._saved:
            setattr(cls, name, original)


def driver_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_s(pid: int) -> float:
    """The CPU seconds (user + system) process ``pid`` has used so far."""
    import psutil

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def gcs_pid(cluster: Any) -> int:
    """The process id of the cluster's GCS server (on the head node)."""
    return int(cluster.head_node.all_processes["gcs_server"][0].process.pid)


def trial_seconds(experiment: Path) -> dict[str, dict[str, float]]:
    """Per trial id, the last value of each ``TIME_KEYS`` phase it reported to Tune."""
    from atlas_ray.search._trainable import TIME_KEYS

    seconds = {}
    for path in experiment.glob("*/result.json"):
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        if lines:
            last = json.loads(lines[-1])
            trial_id = path.parent.name.rsplit("-", 1)[-1]
            seconds[trial_id] = {key: float(last.get(key, 0.0)) for key in TIME_KEYS}
    return seconds


class Lines(io.TextIOBase):
    """The search's output stream: its progress lines printed with a prefix, the rest kept quiet."""

    def __init__(self, prefix: str) -> None:
        self.prefix, self.buffer = prefix, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.buffer += text
        while "\n" in self.buffer:
            line, self.buffer = self.buffer.split("\n", 1)
            if " done" in line and "elapsed" in line:
                print(f"{self.prefix} {line}", flush=True)
        return len(text)


# ------------------------------------------------------------------------------------------ the searches


def check_same_work(experiment: str, trials: int) -> list[str]:
    """What is wrong with the finished search (empty when it did the planned work)."""
    from atlas_ray.experiment import TrialStatus, load_experiment, load_results

    problems = []
    results = load_results(experiment)
    record = load_experiment(experiment)
    if len(results) != trials:
        problems.append(f"{len(results)} ResultsObjects for {trials} planned trials")
    if len({r.trial_id for r in results}) != len(results):
        problems.append("trial ids repeat")
    failed = [r for r in results if r.status is TrialStatus.FAILED]
    if failed:
        problems.append(f"{len(failed)} trials FAILED (first: {failed[0].trial_id}: {failed[0].error})")
    unsettled = [r.trial_id for r in results if r.status not in (TrialStatus.COMPLETED, TrialStatus.STOPPED)]
    if unsettled:
        problems.append(f"{len(unsettled)} trials not settled")
    wrong = [r.trial_id for r in results if not 1 <= r.epochs <= MAX_T]
    if wrong:
        problems.append(f"{len(wrong)} trials with epochs outside 1..{MAX_T}")
    if record.status != "finished" or len(record.trial_ids) != trials:
        problems.append(f"experiment record {record.status} with {len(record.trial_ids)} trials")
    return problems


def one_search(
    trials: int, fs: Any, store: Any, storage: Path, cluster: Any, slots: int, clock: CallbackClock,
    profile: bool,
) -> dict[str, Any]:
    from atlas_ray.experiment import TrialStatus, load_results
    from atlas_ray.search import run

    spec = spec_for(trials, fs)
    clock.reset()
    gcs = gcs_pid(cluster)
    clock.arm(slots, gcs)
    profiler = cProfile.Profile() if profile else None
    out = Lines(f"  [{trials}]")
    with MemorySampler(every=0.5) as memory:
        cpu, gcs_cpu, began = driver_cpu_s(), process_cpu_s(gcs), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        experiment = run(
            spec, storage=str(storage), store=store, address=cluster.address, out=out,  # type: ignore[arg-type]
            every=30.0,
        )
        if profiler is not None:
            profiler.disable()
        ended, cpu_end, gcs_end = time.perf_counter(), driver_cpu_s(), process_cpu_s(gcs)
        wall, cpu, gcs_cpu = ended - began, cpu_end - cpu, gcs_end - gcs_cpu
    if profiler is not None:
        profiler.dump_stats(str(storage.parent / f"driver_{trials}.prof"))
    per_trial = trial_seconds(Path(experiment))
    phases = {key: sum(s[key] for s in per_trial.values()) for key in next(iter(per_trial.values()), {})}
    inside = sum(phases.values())
    problems = check_same_work(experiment, trials)
    results = load_results(experiment)
    stopped = sum(r.status is TrialStatus.STOPPED for r in results)
    mark = clock.mark
    if mark is None:
        raise SystemExit(f"error: {trials} trials: fewer than {slots} trials ended; run more trials")
    steady = trials - slots  # the trials that ended after the first `slots` (start-up behind)
    key = "TuneController.save_to_dir"
    callbacks = clock.atlas_seconds(mark["seconds"])
    state_save = clock.seconds.get(key, 0.0) - mark["seconds"].get(key, 0.0)
    steady_wall = ended - mark["time"]
    # each trial's in-trial time taken as ending when it ended, clipped to the steady part
    steady_inside = sum(
        min(sum(per_trial.get(trial_id, {}).values()), clock.ends[trial_id] - mark["time"])
        for trial_id in clock.order[slots:]
    )
    return {
        "trials": trials,
        "experiment": experiment,
        "wall_s": wall,
        "in_trial_s": inside,
        "phases": phases,
        "outside_wall_ms": 1000 * (wall - inside / slots) / trials,
        "steady_wall_ms": 1000 * steady_wall / steady,
        "steady_outside_ms": 1000 * (steady_wall - steady_inside / slots) / steady,
        "per_trial_ms": 1000 * (cpu_end - mark["cpu"]) / steady,
        "whole_cpu_ms": 1000 * cpu / trials,
        "gcs_cpu_ms": 1000 * (gcs_end - mark["gcs"]) / steady,
        "callbacks_ms": 1000 * callbacks / steady,
        "state_save_ms": 1000 * state_save / steady,
        "driver_cpu_s": cpu,
        "callbacks": {k: (round(v, 2), clock.calls[k]) for k, v in sorted(clock.seconds.items())},
        "epochs": sum(r.epochs for r in results),
        "stopped": stopped,
        "memory_peak_gib": memory.peak / 2**30,
        "problems": problems,
    }


def report(experiment: str, out: Path) -> tuple[float, float, int]:
    """``python -m atlas_ray.report EXPERIMENT --out OUT``: seconds, peak GiB of its process tree, rc."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}  # as bench_report
    began = time.perf_counter()
    with subprocess.Popen(
        [sys.executable, "-m", "atlas_ray.report", experiment, "--out", str(out)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    ) as process:
        with MemorySampler(process.pid) as memory:
            _, err = process.communicate()
        seconds = time.perf_counter() - began
    if process.returncode:
        print(err.decode(errors="replace")[-2000:], file=sys.stderr)
    return seconds, memory.peak / 2**30, process.returncode


def print_profile(path: Path, top: int = 18) -> None:
    text = io.StringIO()
    stats = pstats.Stats(str(path), stream=text)
    stats.sort_stats("cumulative").print_stats(r"atlas_ray|tune/execution|tune/experiment|callback", top)
    lines = [line for line in text.getvalue().splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    print("driver profile (cumulative s, the largest search; atlas_ray and Tune's controller):")
    for line in lines[start : start + top + 1]:
        print("  " + line[:150])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=16)
    parser.add_argument("--trials", default="100,300,1000", help="comma-separated search sizes")
    parser.add_argument("--profile", type=Path, default=None,
                        help="cProfile the driver's main thread in every search (PROFILE.N; slows the "
                             "driver, so the figures are then for comparison between sizes only)")
    args = parser.parse_args()
    sizes = [int(n) for n in args.trials.split(",")]
    slots = args.nodes * NODE_CPUS // TRIAL_CPUS
    for name in ("ray", "ray.tune", "ray.data", "ray.train"):
        logging.getLogger(name).setLevel(logging.ERROR)
    from benchmarks._search_common import minute_store

    temp = Path(tempfile.mkdtemp(prefix="atlas_sc_"))  # short: Ray's socket paths stay < 108 bytes
    clock = CallbackClock()
    rows: list[dict[str, Any]] = []
    try:
        store = minute_store(temp / "store")
        fs = featureset()
        began = time.perf_counter()
        with simulated_cluster(args.nodes, temp) as cluster:
            print(f"cluster: head (0 CPUs, the GCS) + {args.nodes} nodes x {NODE_CPUS} CPUs on 127.0.0.1, "
                  f"trials of {TRIAL_CPUS} CPUs: {slots} at once; up in {time.perf_counter() - began:.1f} s",
                  flush=True)
            from atlas_ray import _ray_runtime

            _ray_runtime.connect(cluster.address, dashboard=False)
            spec = spec_for(1, fs)
            unit = spec.units[0]
            rows_built = len(fs.build(unit.start, unit.end, store))  # fills the featureset cache
            print(f"featureset: {rows_built} rows (one day of minute bars), cached", flush=True)
            for trials in sizes:
                row = one_search(trials, fs, store, temp / "experiments", cluster, slots, clock,
                                 args.profile is not None)
                if args.profile is not None:
                    shutil.copy(temp / f"driver_{trials}.prof", f"{args.profile}.{trials}")
                rows.append(row)
                phases = ", ".join(f"{k.removeprefix('time_').removesuffix('_s')} {v:.0f}"
                                   for k, v in row["phases"].items())
                print(
                    f"{trials} trials: wall {row['wall_s']:.1f} s; in-trial {row['in_trial_s']:.0f} s "
                    f"({phases}; {row['epochs']} steps, {row['stopped']} stopped by ASHA); after the first "
                    f"{slots} ended, per trial: wall {row['steady_wall_ms']:.0f} ms, of which outside "
                    f"training {row['steady_outside_ms']:.0f} ms, driver CPU {row['per_trial_ms']:.1f} ms "
                    f"(atlas_ray's callbacks {row['callbacks_ms']:.1f} ms, Tune's state saves "
                    f"{row['state_save_ms']:.1f} ms), GCS CPU {row['gcs_cpu_ms']:.1f} ms; "
                    f"machine memory peak {row['memory_peak_gib']:.1f} GiB",
                    flush=True,
                )
                print(f"  callbacks (s, calls): {row['callbacks']}", flush=True)
                for problem in row["problems"]:
                    print(f"error: {trials} trials: {problem}", file=sys.stderr)
        clock.restore()
        largest = rows[-1]
        report_s, report_gib, report_rc = report(largest["experiment"], temp / "report")
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    if args.profile is not None:
        print_profile(Path(f"{args.profile}.{max(sizes)}"))
    first, last = rows[0], rows[-1]
    growth = last["per_trial_ms"] / first["per_trial_ms"]  # the driver's CPU per trial
    print(f"per trial, after the first {slots} trials ended (start-up behind):")
    print("  driver CPU (per_trial_ms): "
          + ", ".join(f"{r['trials']}: {r['per_trial_ms']:.1f} ms" for r in rows)
          + f"; growth {last['trials']}/{first['trials']}: {growth:.2f} (target <= {TARGET})")
    for key, what in (("callbacks_ms", "  of which in atlas_ray's callbacks"),
                      ("state_save_ms", "  Tune's experiment-state saves (wall)"),
                      ("gcs_cpu_ms", "  GCS CPU"),
                      ("steady_outside_ms", "  wall outside training (wall - in-trial / slots)")):
        print(f"{what}: " + ", ".join(f"{r['trials']}: {r[key]:.1f} ms" for r in rows)
              + f"; growth {last[key] / max(first[key], 1e-9):.2f}")
    print("whole search, start-up included: driver CPU per trial "
          + ", ".join(f"{r['trials']}: {r['whole_cpu_ms']:.1f} ms" for r in rows)
          + "; (wall - in-trial / slots) / N "
          + ", ".join(f"{r['trials']}: {r['outside_wall_ms']:.0f} ms" for r in rows))
    print("driver CPU per added trial (whole searches; the fixed costs cancel): "
          + ", ".join(f"{a['trials']}->{b['trials']}: "
                      f"{1000 * (b['driver_cpu_s'] - a['driver_cpu_s']) / (b['trials'] - a['trials']):.1f} ms"
                      for a, b in itertools.pairwise(rows)))
    print(f"report over {last['trials']} trials: {report_s:.1f} s (target < {REPORT_TARGET_S:.0f} s), "
          f"peak {report_gib:.2f} GiB (target < {REPORT_TARGET_GIB:.0f} GiB), exit {report_rc}")
    keyed = {f"per_trial_ms_{r['trials']}": round(r["per_trial_ms"], 2) for r in rows}
    print(
        json.dumps(
            {
                **keyed,
                "growth": round(growth, 3),
                "steady_outside_ms": {str(r["trials"]): round(r["steady_outside_ms"], 1) for r in rows},
                "outside_wall_ms": {str(r["trials"]): round(r["outside_wall_ms"], 1) for r in rows},
                "whole_cpu_ms": {str(r["trials"]): round(r["whole_cpu_ms"], 2) for r in rows},
                "gcs_cpu_ms": {str(r["trials"]): round(r["gcs_cpu_ms"], 2) for r in rows},
                "callbacks_ms": {str(r["trials"]): round(r["callbacks_ms"], 2) for r in rows},
                "state_save_ms": {str(r["trials"]): round(r["state_save_ms"], 2) for r in rows},
                "wall_s": {str(r["trials"]): round(r["wall_s"], 1) for r in rows},
                "nodes": args.nodes,
                "node_cpus": NODE_CPUS,
                "trial_cpus": TRIAL_CPUS,
                "memory_peak_gib": round(max(r["memory_peak_gib"] for r in rows), 2),
                "report_s": round(report_s, 2),
                "report_peak_gib": round(report_gib, 3),
                "ratio": round(growth, 3),
                "target": TARGET,
            }
        )
    )
    if any(r["problems"] for r in rows) or report_rc:
        sys.exit(1)


if __name__ == "__main__":
    main()
