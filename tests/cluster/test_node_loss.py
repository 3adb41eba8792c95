"""Node loss and a whole-cluster restart during a real search on a multi-node Ray cluster (a head without
CPUs for trials and two 1-CPU workers, every node on 127.0.0.1), the search run as the user runs it:
``python -m atlas_ray.search SPEC --address HEAD``.

- A worker is killed while one of its trials is past its first checkpoint: the search completes, that
  trial is retried on the other worker from its checkpoint (its attempt log says where and from which
  epoch), and every trial's ResultsObject is there exactly once.
- Every node (and the driver) is killed mid-search; a new cluster and ``--resume`` finish the search:
  nothing lost or duplicated, trials that had finished are not trained again (their files untouched),
  and the trial that was running goes on from its checkpoint on the new cluster.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from atlas_ray.search import TrialStatus, load_experiment, load_results
from tests.cluster.conftest import LocalCluster, search_cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

TRIALS = 3
MAX_T = 8
RUNG = 2  # ASHA's one rung below max_t (grace 2, reduction factor 4): the one checkpoint a trial makes
JUST_PAST = RUNG + 2  # a trial is caught at most this far: 4 epochs still to go, so it cannot finish while
# the test stops its node or cluster (CI once caught one at epoch 7, which finished before the stop)


SLOW = {"hidden_units": [8], "learning_rate": 1e-3, "batch_size": 16, "dropout": 0.0}
SAME_THREE = f'[ModelSpec("dnn", "dnn", {SLOW!r}, num_samples={TRIALS})]'
# A quick, poor trial first, then two slow good ones: on two workers the quick one finishes while the
# first slow one is just past its checkpoint, whatever the machine's speed, and ASHA stops neither slow
# one at the rung (each is better than the quick one there). Three like trials ran two at a time in step,
# so whether one finished while another was mid-way was down to timing.
QUICK_THEN_SLOW = (
    '[ModelSpec("quick", "dnn", {"hidden_units": [8], "learning_rate": 1e-5, "batch_size": 256, '
    f'"dropout": 0.0}}, num_samples=1), ModelSpec("dnn", "dnn", {SLOW!r}, num_samples={TRIALS - 1})]'
)


def write_spec(path: Path, name: str, models: str = SAME_THREE) -> Path:
    """3 small DNN trials (``models``) on a week of real minute bars; small batches so an epoch takes a
    while."""
    path.write_text(
        textwrap.dedent(
            f"""
            from atlas_ray.search import ModelSpec
            from tests.search import search_specs

            MODELS = {models}
            SPEC = search_specs.spec(
                "{name}", MODELS, start="2023-03-01", end="2023-03-08", max_t={MAX_T},
                grace_period={RUNG}, reduction_factor=4, max_failures=1,
            )
            """
        )
    )
    return path


def two_worker_cluster(local_cluster) -> LocalCluster:  # type: ignore[no-untyped-def]
    cluster: LocalCluster = local_cluster()
    cluster.add("worker_a", num_cpus=1)
    cluster.add("worker_b", num_cpus=1)
    return cluster


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # not there yet, or being replaced
        return None


def settled(experiment: Path) -> dict[str, str]:
    """trial id -> the status in its result.json."""
    found = {}
    for path in experiment.glob("trials/*/result.json"):
        document = read_json(path)
        if document is not None:
            found[path.parent.name] = document["status"]
    return found


def reported_epochs(experiment: Path) -> dict[str, int]:
    """trial id -> the last epoch it reported to Tune (Tune's own per-trial result log)."""
    found = {}
    for path in experiment.glob("*-*-*/result.json"):
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        for line in reversed(lines):
            try:
                found[path.parent.name.rsplit("-", 1)[-1]] = int(json.loads(line)["training_iteration"])
                break
            except (ValueError, KeyError):
                continue
    return found


def running_past_checkpoint(experiment: Path, nodes: dict[str, str]) -> dict[str, str]:
    """trial id -> the node (test's name) of every trial still running on one of ``nodes`` (id ->
    name) that reported an epoch just after its checkpoint (at most ``JUST_PAST``), so it has several
    epochs to go."""
    statuses = settled(experiment)
    found = {}
    for trial_id, epoch in reported_epochs(experiment).items():
        attempts = read_json(experiment / "trials" / trial_id / ".attempts.json") or []
        if not attempts or statuses.get(trial_id) != TrialStatus.RUNNING.value:
            continue
        node = nodes.get(attempts[-1]["node_id"])
        if node is not None and RUNG < epoch <= JUST_PAST:
            found[trial_id] = node
    return found


def wait_for(condition, search: subprocess.Popen[bytes], what: str, timeout: float = 500) -> Any:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if search.poll() is not None:
            output = search.stdout.read().decode() if search.stdout else ""
            pytest.fail(f"the search ended before {what}:\n{output[-4000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def end(search: subprocess.Popen[bytes]) -> None:
    """SIGKILL the search and everything it started."""
    if search.poll() is None:
        os.killpg(search.pid, signal.SIGKILL)
    search.wait()


def assert_every_trial_once(experiment: Path) -> list[Any]:
    """The experiment finished with TRIALS trials, each with one ResultsObject and one Tune trial."""
    record = load_experiment(experiment)
    assert record.status == "finished" and len(record.trial_ids) == TRIALS
    on_disk = sorted(p.name for p in (experiment / "trials").iterdir() if p.is_dir())
    assert on_disk == sorted(record.trial_ids)
    tune_dirs = sorted(p.name.rsplit("-", 1)[-1] for p in experiment.glob("*-*-*") if p.is_dir())
    assert tune_dirs == sorted(record.trial_ids)
    results = load_results(experiment)
    assert sorted(r.trial_id for r in results) == sorted(record.trial_ids)
    for result in results:
        assert result.status in (TrialStatus.COMPLETED, TrialStatus.STOPPED), (result.trial_id, result.error)
        assert list(result.curves["epoch"]) == list(range(1, result.epochs + 1))
        assert result.epochs in (RUNG, MAX_T)
    return results


def test_a_lost_worker_s_trial_resumes_from_its_checkpoint_on_another_node(  # type: ignore[no-untyped-def]
    local_cluster, minute_store, tmp_path: Path
) -> None:
    cluster = two_worker_cluster(local_cluster)
    workers = {cluster.node_id(name): name for name in ("worker_a", "worker_b")}
    spec = write_spec(tmp_path / "node_loss.py", "node_loss")
    storage = tmp_path / "experiments"
    experiment = storage / "node_loss"
    search = search_cli(spec, storage, minute_store.root, cluster.address)
    try:
        running = wait_for(
            lambda: running_past_checkpoint(experiment, workers),
            search,
            "a trial past its checkpoint on a worker",
        )
        lost_trial, lost_node = sorted(running.items())[0]
        lost_id = cluster.node_id(lost_node)
        cluster.remove(lost_node)
        output, _ = search.communicate(timeout=600)
    finally:
        end(search)
    text = output.decode()
    assert search.returncode == 0, text[-4000:]
    assert f"trial {lost_trial} (dnn) failed (retrying, 1 of 1)" in text
    assert "max_failures=0" not in text  # the spec allows a retry: no note about lost nodes

    results = {r.trial_id: r for r in assert_every_trial_once(experiment)}
    retried = results[lost_trial]
    assert retried.status is TrialStatus.COMPLETED and retried.epochs == MAX_T
    first, second = retried.attempts  # two attempts: the lost one and the retry
    assert first["node_id"] == lost_id and first["restored_from_epoch"] == 0
    (survivor,) = set(workers) - {lost_id}
    assert second["node_id"] == survivor and second["restored_from_epoch"] == RUNG
    for trial_id, result in results.items():
        if trial_id != lost_trial:
            assert [a["restored_from_epoch"] for a in result.attempts] == [0]


def test_a_new_cluster_resumes_a_search_whose_cluster_was_stopped(  # type: ignore[no-untyped-def]
    local_cluster, minute_store, tmp_path: Path
) -> None:
    cluster = two_worker_cluster(local_cluster)
    first_nodes = {cluster.node_id(name): name for name in ("worker_a", "worker_b")}
    spec = write_spec(tmp_path / "restart.py", "restart", QUICK_THEN_SLOW)
    storage = tmp_path / "experiments"
    experiment = storage / "restart"
    search = search_cli(spec, storage, minute_store.root, cluster.address)
    final = {TrialStatus.COMPLETED.value, TrialStatus.STOPPED.value}
    try:

        def finished_and_running() -> tuple[list[str], dict[str, str]] | None:
            done = [t for t, status in settled(experiment).items() if status in final]
            running = running_past_checkpoint(experiment, first_nodes)
            return (done, running) if done and running else None

        wait_for(finished_and_running, search, "a finished trial and one past its checkpoint")
        cluster.stop()  # every node at once, then the driver: the whole cluster is gone
    finally:
        end(search)
    assert load_experiment(experiment).status == "running"
    done = sorted(t for t, status in settled(experiment).items() if status in final)
    interrupted = sorted(t for t, status in settled(experiment).items() if status not in final)
    assert interrupted, settled(experiment)  # the trial caught past its checkpoint had not finished
    files = {
        path: (path.read_bytes(), path.stat().st_mtime_ns)
        for trial_id in done
        for path in (experiment / "trials" / trial_id).iterdir()
    }

    second = two_worker_cluster(local_cluster)
    second_nodes = {second.node_id(name): name for name in ("worker_a", "worker_b")}
    resumed = search_cli(spec, storage, minute_store.root, second.address, "--resume")
    try:
        output, _ = resumed.communicate(timeout=600)
    finally:
        end(resumed)
    text = output.decode()
    assert resumed.returncode == 0, text[-4000:]
    assert f"continuing the unfinished experiment {experiment}" in text

    results = {r.trial_id: r for r in assert_every_trial_once(experiment)}
    for path, (data, mtime) in files.items():  # finished trials: not trained again, not rewritten
        assert path.read_bytes() == data and path.stat().st_mtime_ns == mtime, path
    for trial_id in done:
        assert len(results[trial_id].attempts) == 1
    went_on = [
        results[t].attempts[-1] for t in interrupted if results[t].attempts[-1]["restored_from_epoch"] > 0
    ]
    assert went_on, [results[t].attempts for t in interrupted]  # the running one went on from its checkpoint
    for attempt in went_on:
        assert attempt["restored_from_epoch"] == RUNG and attempt["node_id"] in second_nodes
