"""The live metrics' declarations (``atlas_ray.serve._metrics``): names a Prometheus scrape keeps, the
deployment tag on every one, and histogram boundaries that hold a live minute feed and a fast replay.
The metrics on a real Ray are scraped in ``test_follow_store.py`` and ``test_live.py``."""

from __future__ import annotations

import itertools
import re

import pytest

from atlas_ray.serve import _metrics
from atlas_ray.serve._metrics import ALL, DEPLOYMENT, FRESHNESS_MS, LATENCY_MS, Kind, MetricDef, scraped_name

PROMETHEUS_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


def test_every_metric_is_declared_once_with_a_name_prometheus_keeps() -> None:
    declared = [v for v in vars(_metrics).values() if isinstance(v, MetricDef)]
    assert set(declared) == set(ALL) and len({d.name for d in ALL}) == len(ALL)
    for definition in ALL:
        assert PROMETHEUS_NAME.match(definition.name) and definition.name.startswith("atlas_live_")
        assert definition.tags[0] == DEPLOYMENT and definition.description
    assert scraped_name(_metrics.PREDICTIONS_WRITTEN) == "ray_atlas_live_predictions_written_total"
    assert scraped_name(LATENCY_MS) == "ray_atlas_live_latency_ms_count"


def test_boundaries_hold_a_live_bar_a_replay_queue_and_a_polled_store() -> None:
    for definition in (LATENCY_MS, FRESHNESS_MS):
        bounds = definition.boundaries
        assert all(0 < a < b for a, b in itertools.pairwise(bounds))
    latency = LATENCY_MS.boundaries
    assert latency[0] <= 1 and sum(b <= 20 for b in latency) >= 6  # a live bar: a few ms, finely
    assert 500 in latency and latency[-1] >= 60_000  # a replay's push of 64 bars; redis away
    freshness = FRESHNESS_MS.boundaries
    assert freshness[0] <= 10 and {5_000, 60_000} <= set(freshness)  # HTTP at the close; store: polls


def test_a_declaration_without_the_deployment_tag_or_with_stray_boundaries_is_refused() -> None:
    with pytest.raises(ValueError, match="must start with 'deployment'"):
        MetricDef("atlas_live_x", Kind.COUNTER, "x", ("reason",))
    with pytest.raises(ValueError, match="boundaries only for a histogram"):
        MetricDef("atlas_live_x", Kind.COUNTER, "x", boundaries=(1.0,))
    with pytest.raises(ValueError, match="boundaries only for a histogram"):
        MetricDef("atlas_live_x", Kind.HISTOGRAM, "x")
