"""Trials land on the nodes that have what they asked for: a real search on a multi-node cluster (a head
without CPUs for trials, a plain worker, a worker advertising a GPU and one advertising 4 TPU chips),
each trial's node read back from its ResultsObject's attempt log. The plain worker is free the whole
time: a trial whose GPU or TPU request got lost on the way would be free to land there."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from atlas_ray.search import TrialStatus, load_experiment, load_results
from tests.cluster.conftest import search_cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_trials_run_on_nodes_with_their_resources(local_cluster, minute_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cluster = local_cluster()
    cluster.add("plain", num_cpus=1)
    cluster.add("gpu", num_cpus=1, num_gpus=1)
    cluster.add("tpu", num_cpus=1, resources={"TPU": 4})
    spec = tmp_path / "placed.py"
    spec.write_text(
        textwrap.dedent(
            """
            from atlas_ray.search import ModelSpec, Resources
            from tests.search import search_specs

            SPACE = {"hidden_units": [3], "learning_rate": 3e-3, "batch_size": 256, "dropout": 0.0}
            MODELS = [
                ModelSpec("on_gpu", "dnn", SPACE, num_samples=2, resources=Resources(cpu=1, gpu=1)),
                ModelSpec("on_tpu", "dnn", SPACE, num_samples=2, resources=Resources(cpu=1, tpu=4)),
            ]
            SPEC = search_specs.spec("placed", MODELS, max_t=2, grace_period=2)
            """
        )
    )
    storage = tmp_path / "experiments"
    search = search_cli(spec, storage, minute_store.root, cluster.address)
    output, _ = search.communicate(timeout=540)
    text = output.decode()
    assert search.returncode == 0, text[-4000:]
    # 4 nodes and the spec's max_failures=0: the search says a lost node's trials would not be retried
    assert "note: 4 nodes and max_failures=0: a trial on a node that goes away fails for good" in text

    experiment = storage / "placed"
    assert load_experiment(experiment).status == "finished"
    results = load_results(experiment)
    assert sorted(r.identity.model for r in results) == ["on_gpu"] * 2 + ["on_tpu"] * 2
    names = cluster.names()
    for result in results:
        assert result.status is TrialStatus.COMPLETED, (result.trial_id, result.error)
        assert len(result.attempts) == 1, result.attempts  # nothing failed: one attempt each
        attempt = result.attempts[0]
        assert attempt["restored_from_epoch"] == 0 and attempt["node_ip"] == "127.0.0.1"
        node = names.get(attempt["node_id"])
        wanted = {"on_gpu": "gpu", "on_tpu": "tpu"}[result.identity.model]
        assert node == wanted, (result.identity.model, node, attempt)
        # the devices record (``_devices``) names the same node and what the trial asked for
        devices = result.devices or {}
        assert devices.get("node_id") == attempt["node_id"], devices
        asked = {"on_gpu": ("gpu", 1.0), "on_tpu": ("tpu", 4)}[result.identity.model]
        assert devices["asked"][asked[0]] == asked[1], devices
