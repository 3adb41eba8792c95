"""A relative ``--store`` and ``--storage`` mean the driver's directories on every node: a search run
from another working directory than the Ray workers' writes and reads where the driver meant."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from atlas_ray.featurestore import MarketStore
from atlas_ray.search import TrialStatus, load_results, run
from tests.search import search_specs

pytestmark = pytest.mark.slow


def test_a_search_with_relative_paths_from_another_directory_writes_where_the_driver_meant(
    ray_cluster: None, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)

    @ray.remote
    def working_directory() -> str:
        return os.getcwd()

    worker_cwd = Path(ray.get(working_directory.remote()))
    # What makes the test able to fail: a worker resolving "store" itself would look elsewhere.
    assert worker_cwd.resolve() != work.resolve()
    strays = [worker_cwd / "store", worker_cwd / "experiments" / "relative"]
    before = [path.exists() for path in strays]

    # A fresh store at a relative path (no cached featureset).
    store = MarketStore("store")
    for name, exchange in (("coinbase_btcusd.parquet", "coinbase"), ("kraken_btcusd.parquet", "kraken")):
        store.ingest(data_dir / "minute_bars_2023-03" / name, exchange=exchange, pair="btc_usd")

    @ray.remote
    def partitions(store: MarketStore) -> int:
        return len(store.partitions())

    # the store travels to a worker by its root: the worker reads the driver's store
    assert ray.get(partitions.remote(MarketStore("store"))) == len(store.partitions()) > 0
    spec = search_specs.spec("relative", [search_specs.small_dnn(num_samples=1)], max_t=1)
    out = io.StringIO()
    experiment = run(spec, storage="experiments", store=MarketStore("store"), spec_path="relative.py",
                     out=out)

    assert experiment == str(work / "experiments" / "relative")
    results = load_results(experiment)
    assert len(results) == 1 and results[0].status is TrialStatus.COMPLETED, out.getvalue()
    trial = work / "experiments" / "relative" / "trials" / results[0].trial_id
    assert (trial / "result.json").is_file() and (trial / "model.keras").is_file()
    assert any((work / "store" / "_featuresets").glob("*.parquet"))  # the cache, in the driver's store
    assert [path.exists() for path in strays] == before  # nothing written where the workers stand
