"""The store, a search's ``--storage`` and the report on an object store, over its real protocol: an
S3-compatible server (moto's server mode) on 127.0.0.1, reached through pyarrow's S3 filesystem.

The endpoint travels in the URIs' query (``?endpoint_override=...&scheme=http``), credentials in the
environment, as a user points atlas_ray at MinIO or any S3-compatible store (see ``atlas_ray._storage``).
The search runs as the command a user types, in its own process with its own local Ray (its workers
need the credentials in their environment, which the session's Ray started earlier does not have),
with the market store and the experiment both in the bucket and nothing on the local disk but the
report.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from atlas_ray import _atomic, _storage
from atlas_ray.featurestore import MarketStore
from atlas_ray.report import load_experiment_for_report
from atlas_ray.search import TrialStatus, load_experiment, load_results
from atlas_ray.search._manifest import read_manifest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "atlas"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",  # never ask 169.254.169.254 for credentials
}


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 (a free port) with one bucket; yields its ``host:port``."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"{host}:{port}"
    admin = pafs.S3FileSystem(
        endpoint_override=endpoint,
        scheme="http",
        access_key="testing",
        secret_key="testing",
        region="us-east-1",
        allow_bucket_creation=True,
    )
    admin.create_dir(BUCKET)
    try:
        yield endpoint
    finally:
        server.stop()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)


def uri(endpoint: str, path: str) -> str:
    return f"s3://{BUCKET}/{path}?endpoint_override={endpoint}&scheme=http&region=us-east-1"


def objects(endpoint: str, prefix: str) -> list[str]:
    fs, base = _storage.filesystem(uri(endpoint, prefix))
    selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
    return sorted(i.path for i in fs.get_file_info(selector) if i.type == pafs.FileType.File)


def test_atomic_writes_on_the_bucket_never_show_half_a_file(s3: str, aws: None) -> None:
    fs, base = _storage.filesystem(uri(s3, "atomic"))
    path = f"{base}/result.json"
    _atomic.write_text(fs, path, '{"old": true}')
    seen: list[bytes] = []

    def interrupted(stream: pa.NativeFile) -> None:
        stream.write(b'{"new": ')
        with fs.open_input_stream(path) as reader:  # what a reader sees while the file is half made
            seen.append(reader.read())
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _atomic.write_with(fs, path, interrupted)
    assert seen == [b'{"old": true}']
    with fs.open_input_stream(path) as reader:
        assert reader.read() == b'{"old": true}'
    _atomic.write_text(fs, path, '{"new": true}')
    with fs.open_input_stream(path) as reader:
        assert reader.read() == b'{"new": true}'
    # a new object whose write fails half way does not appear (pyarrow's own output stream, closed by
    # the `with` an exception leaves, would complete the upload and publish the half)
    fresh = f"{base}/fresh.json"
    with pytest.raises(KeyboardInterrupt):
        _atomic.write_with(fs, fresh, interrupted)
    assert fs.get_file_info(fresh).type == pafs.FileType.NotFound
    # one object, no temporary copies left beside it (nothing is renamed on a bucket)
    assert objects(s3, "atomic") == [path]


def test_a_store_in_the_bucket_holds_the_real_bars(
    s3: str, aws: None, data_dir: Path, minute_store: MarketStore
) -> None:
    store = MarketStore(uri(s3, "store"))
    for name, exchange in (("coinbase_btcusd.parquet", "coinbase"), ("kraken_btcusd.parquet", "kraken")):
        store.ingest(data_dir / "minute_bars_2023-03" / name, exchange=exchange, pair="btc_usd")
    assert store.root == uri(s3, "store")
    for exchange in ("coinbase", "kraken"):
        stored = store.bars(exchange, "btc_usd", "1m", "2023-03-01", "2023-03-04")
        local = minute_store.bars(exchange, "btc_usd", "1m", "2023-03-01", "2023-03-04")
        assert len(stored) > 4000
        pd.testing.assert_frame_equal(stored, local)
    keys = objects(s3, "store")
    assert f"{BUCKET}/store/exchange=coinbase/pair=btc_usd/kind=bars_1m/date=2023-03-01/data.parquet" in keys
    assert any("/_reports/" in key for key in keys)  # the ingest reports kept beside the data
    assert not [key for key in keys if key.endswith(".tmp")]
    # the endpoint from the environment instead (AWS_ENDPOINT_URL, as every AWS SDK reads it): a plain URI
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ENDPOINT_URL", f"http://{s3}")
        plain = MarketStore(f"s3://{BUCKET}/store")
        pd.testing.assert_frame_equal(
            plain.bars("kraken", "btc_usd", "1m", "2023-03-01", "2023-03-02"),
            minute_store.bars("kraken", "btc_usd", "1m", "2023-03-01", "2023-03-02"),
        )
    # ingesting again adds nothing
    again = store.ingest(
        data_dir / "minute_bars_2023-03" / "kraken_btcusd.parquet", exchange="kraken", pair="btc_usd"
    )
    assert again.rows_written == 0


def test_a_second_writer_of_a_series_in_the_bucket_is_refused_in_one_line(
    s3: str, aws: None, data_dir: Path
) -> None:
    """A bucket has no locks: a writer holds a lease object while it writes (``atlas_ray._locks``)."""
    import json
    import time

    store = MarketStore(uri(s3, "leased"))
    bars = data_dir / "minute_bars_2023-03" / "kraken_btcusd.parquet"
    store.ingest(bars, exchange="kraken", pair="btc_usd")
    assert not [key for key in objects(s3, "leased") if key.endswith(".lease")]  # given back when done
    # Another writer, on another machine, is writing the series now.
    fs, base = _storage.filesystem(uri(s3, "leased"))
    lease = f"{base}/_locks/exchange=kraken/pair=btc_usd/kind=bars_1m.lease"
    holder = {
        "owner": "elsewhere",
        "host": "node-2",
        "pid": 77,
        "since": time.time(),
        "expires": time.time() + 60,
    }
    _atomic.write_text(fs, lease, json.dumps(holder))
    before = {key for key in objects(s3, "leased") if "/_locks/" not in key}
    flags = ["--exchange", "kraken", "--pair", "btc_usd", "--store", uri(s3, "leased")]
    done = subprocess.run(
        [sys.executable, "-m", "atlas_ray.featurestore", "ingest", str(bars), *flags],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **CREDENTIALS},
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "kraken/btc_usd bars_1m: another writer (pid 77 on node-2 since " in lines[0]
    assert "holds its lease" in lines[0] and "one writer at a time" in lines[0]
    assert {key for key in objects(s3, "leased") if "/_locks/" not in key} == before


SPEC = """
    from tests.search import search_specs
    SPEC = search_specs.spec("s3june", [search_specs.small_dnn(num_samples=2)], max_t=2)
    """


def test_a_search_writes_its_experiment_to_the_bucket_and_the_report_reads_it_back(
    s3: str, aws: None, tmp_path: Path
) -> None:
    """``python -m atlas_ray.search SPEC --store s3://... --storage s3://...`` then
    ``python -m atlas_ray.report s3://...``; run after the store test (same module, same bucket)."""
    if not objects(s3, "store"):
        pytest.fail("the store test must run first: the bucket holds no store")
    spec = tmp_path / "s3june.py"
    spec.write_text(textwrap.dedent(SPEC))
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, **CREDENTIALS, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    storage = uri(s3, "experiments")
    search = subprocess.run(
        [
            sys.executable,
            "-m",
            "atlas_ray.search",
            str(spec),
            "--store",
            uri(s3, "store"),
            "--storage",
            storage,
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert search.returncode == 0, search.stderr[-3000:] + search.stdout[-3000:]

    experiment = _storage.join(storage, "s3june")
    record = load_experiment(experiment)
    assert record.status == "finished" and len(record.trial_ids) == 2
    results = load_results(experiment)
    assert sorted(r.trial_id for r in results) == sorted(record.trial_ids)
    for result in results:
        assert result.status in (TrialStatus.COMPLETED, TrialStatus.STOPPED), result.error
        assert not result.predictions.empty and not result.curves.empty
        manifest = read_manifest(_storage.join(experiment, "trials", result.trial_id))
        assert manifest is not None and {"result.json", "model.keras"} <= set(manifest.files)
    keys = objects(s3, "experiments/s3june")
    assert f"{BUCKET}/experiments/s3june/experiment.json" in keys
    assert any(key.endswith("/model.keras") for key in keys)
    assert any("/checkpoint_" in key or "tuner.pkl" in key or "experiment_state" in key for key in keys)
    assert not [key for key in keys if key.endswith(".tmp")]
    assert list(work.iterdir()) == []  # nothing on the local disk: store and experiment are in the bucket
    # Tune finds its own state in the bucket where --resume would look for it
    from ray import tune

    from atlas_ray.search._runner import _tune_storage

    parent, fs = _tune_storage(storage)
    assert parent == f"{BUCKET}/experiments" and isinstance(fs, pafs.S3FileSystem)
    assert tune.Tuner.can_restore(f"{parent}/s3june", storage_filesystem=fs)
    # the same command again reads the finished experiment from the bucket and trains nothing
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "atlas_ray.search",
            str(spec),
            "--store",
            uri(s3, "store"),
            "--storage",
            storage,
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"the experiment {experiment} is already finished (2 trials" in again.stdout

    out = tmp_path / "report"
    report = subprocess.run(
        [sys.executable, "-m", "atlas_ray.report", experiment, "--out", str(out), "--top", "1"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert report.returncode == 0, report.stderr[-3000:]
    assert f"s3june: 2 trials read from {experiment}" in report.stdout
    page = (out / "index.html").read_text()
    assert all(r.trial_id in page for r in results)
    assert load_experiment_for_report(experiment).missing == ()


def test_a_bucket_that_does_not_exist_is_one_line(s3: str, aws: None, tmp_path: Path) -> None:
    env = {**os.environ, **CREDENTIALS, "PYTHONPATH": str(ROOT)}
    missing = f"s3://nobucket/exp?endpoint_override={s3}&scheme=http&region=us-east-1"
    done = subprocess.run(
        [sys.executable, "-m", "atlas_ray.report", missing],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "s3://nobucket/exp" in done.stderr
