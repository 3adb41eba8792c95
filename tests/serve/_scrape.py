"""Reading a live model's metrics as a desk would: a scrape of Ray's metrics export endpoint
(Prometheus text, parsed with prometheus_client's own parser, which Ray ships with), and a real
Prometheus server (Debian's ``prometheus``) pointed at Ray's service-discovery file.

Ray exports what a replica recorded after its metrics agent's report interval (10 s by default), so
``wait_for_metrics`` polls until the scrape shows what is expected, for a bounded time, and fails
naming every figure that differs."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from atlas_ray.serve._metrics import (
    BARS_IN,
    BUFFERED,
    EVENTS_REFUSED,
    FRESHNESS_MS,
    LATENCY_MS,
    MODEL_VERSION,
    PREDICTIONS,
    PREDICTIONS_DROPPED,
    PREDICTIONS_REFUSED,
    PREDICTIONS_REPEATED,
    PREDICTIONS_SKIPPED,
    PREDICTIONS_WRITTEN,
    UNPREDICTABLE,
    MetricDef,
    scraped_name,
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(address: str) -> Samples:
    """Every sample at ``http://ADDRESS/metrics``: (name, labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): float(sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, definition: MetricDef, deployment: str, **tags: str) -> float:
    """``definition``'s value for ``deployment`` (a histogram: its count); 0 when never recorded (Ray
    exports a counter only once it was incremented)."""
    name = scraped_name(definition)
    wanted = {("deployment", deployment), *tags.items()}
    found = [v for (n, labels), v in samples.items() if n == name and wanted <= labels]
    return sum(found)


def expected_from_stats(
    stats: Mapping[str, Any],
) -> dict[tuple[MetricDef, tuple[tuple[str, str], ...]], float]:
    """What the scrape must show for a deployment whose own counts (``LiveModel.stats``) are ``stats``:
    every count equal, each histogram's count equal to the predictions written, the live version."""
    expected: dict[tuple[MetricDef, tuple[tuple[str, str], ...]], float] = {
        (BARS_IN, ()): stats["events"],
        (PREDICTIONS, ()): stats["predictions"],
        (PREDICTIONS_WRITTEN, ()): stats["written"],
        (PREDICTIONS_REPEATED, ()): stats["repeated"],
        (PREDICTIONS_REFUSED, ()): stats["refused"],
        (PREDICTIONS_DROPPED, ()): stats["dropped"],
        (PREDICTIONS_SKIPPED, ()): stats["skipped"],
        (BUFFERED, ()): stats["buffered"],
        (LATENCY_MS, ()): stats["written"],
        (FRESHNESS_MS, ()): stats["written"],
        (MODEL_VERSION, (("trial", stats["trial"]),)): stats["version"],
        (EVENTS_REFUSED, ()): stats["rejected"],
        (UNPREDICTABLE, ()): stats["unpredictable"],
    }
    for reason, count in stats["rejected_by_reason"].items():
        expected[(EVENTS_REFUSED, (("reason", reason),))] = count
    for reason, count in stats["unpredictable_by_reason"].items():
        expected[(UNPREDICTABLE, (("reason", reason),))] = count
    return expected


def wait_for_metrics(
    read: Callable[[], Samples],
    deployment: str,
    expected: Mapping[tuple[MetricDef, tuple[tuple[str, str], ...]], float],
    timeout: float = 90.0,
) -> Samples:
    """Poll ``read()`` until every expected figure of ``deployment`` shows; the last samples."""
    deadline = time.monotonic() + timeout
    while True:
        samples = read()
        differ = {
            f"{scraped_name(d)}{dict(tags)}": (value(samples, d, deployment, **dict(tags)), want)
            for (d, tags), want in expected.items()
            if value(samples, d, deployment, **dict(tags)) != want
        }
        if not differ:
            return samples
        if time.monotonic() > deadline:
            pytest.fail(
                f"the metrics of {deployment} did not reach the deployment's counts in {timeout:.0f} s "
                f"(scraped, expected): {differ}"
            )
        time.sleep(1.0)


@contextmanager
def prometheus(discovery_file: str, directory: Path, port: int) -> Iterator[Callable[[], Samples]]:
    """A real Prometheus (Debian's ``prometheus``) on 127.0.0.1:``port`` scraping every second the
    targets in Ray's service-discovery file; yields a reader of the newest value of every series it
    holds (``/api/v1/query``)."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed (scripts/services.sh installs Debian's prometheus)")
    config = directory / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: ray\n    file_sd_configs:\n"
        f"      - files: ['{discovery_file}']\n        refresh_interval: 1s\n"
    )
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def read() -> Samples:
        query = urllib.parse.quote('{__name__=~"ray_atlas_live_.*"}')
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/api/v1/query?query={query}", timeout=10
            ) as r:
                answer = json.loads(r.read())
        except OSError:
            return {}  # not listening yet
        out: Samples = {}
        for series in answer["data"]["result"]:
            labels = dict(series["metric"])
            name = labels.pop("__name__")
            out[(name, frozenset(labels.items()))] = float(series["value"][1])
        return out

    try:
        yield read
    finally:
        process.terminate()
        process.wait(30)
