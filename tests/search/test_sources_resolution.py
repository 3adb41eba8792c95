"""A model coarser than the store's bars: june's featureset at 5 minutes and at 1 hour, on the store of
1-minute bars (``minute_store``).

The reported failure first: the store holds no ``bars_5m`` or ``bars_1h`` at all (what the search's
data check used to look for), yet the build resamples them from ``bars_1m``. Validation now asks the
source rule (``featurestore._features._sources``), as the build does: both validate and build, and the
built frame records that its bars were resampled from the 1-minute bars.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from atlas_ray.featurestore import Feature, FeatureLabelSet, MarketStore
from atlas_ray.featurestore._features._sources import SOURCES_ATTR, Sources
from atlas_ray.search import WorkSpec
from atlas_ray.search._spec_loader import load_spec
from atlas_ray.search._validate import validate
from tests.conftest import ROOT


def _june() -> WorkSpec:
    return load_spec(ROOT / "specs" / "june.py")


def _at(fls: FeatureLabelSet, step: str) -> FeatureLabelSet:
    """``fls`` with every feature and label at ``step`` (``five_min``, ``hour``) instead of one_min."""

    def moved(item: Feature) -> Feature:
        return Feature.from_name(item.name.replace("one_min()", f"{step}()"))

    return dataclasses.replace(
        fls, features=[moved(f) for f in fls.features], labels=[moved(label) for label in fls.labels]
    )


@pytest.mark.parametrize(("step", "short"), [("five_min", "5m"), ("hour", "1h")])
def test_a_coarser_june_validates_and_builds_on_minute_bars(
    minute_store: MarketStore, step: str, short: str
) -> None:
    spec = _june()
    (unit,) = spec.units
    coarse = _at(unit.featureset, step)
    assert {f.resolution.value for f in coarse.columns} == {step}
    # what the old check looked for: stored bars at the feature's own resolution, of which there are none
    assert minute_store.dates("coinbase", "btc_usd", f"bars_{short}") == []

    validate(dataclasses.replace(spec, units=[dataclasses.replace(unit, featureset=coarse)]), minute_store)

    frame = coarse.build(unit.start, unit.end, minute_store)
    assert len(frame) > 50 and list(frame.columns) == [c.name for c in coarse.columns]
    sources = Sources.from_json(frame.attrs[SOURCES_ATTR])
    assert {(s.exchange, s.kind, s.read) for s in sources.series} == {
        ("coinbase", "bars", "bars_1m"),
        ("kraken", "bars", "bars_1m"),
    }
    # the coarse bars are the store's own resampled bars: a one-bar log return equals theirs
    resolution = coarse.resolution
    end = pd.Timestamp(unit.end, tz="UTC") + resolution.offset  # (the last row's label reads one past)
    bars = minute_store.bars("coinbase", "btc_usd", resolution, unit.start, end)
    start = pd.Timestamp(unit.start, tz="UTC")
    close = bars["close"].reindex(pd.date_range(start, end, freq=resolution.freq))
    expected = np.log(close / close.shift(1))
    label = next(c for c in frame.columns if "lookforward" in c)
    assert label.startswith("LogReturns().coinbase()")
    one_bar = expected.shift(-1).reindex(frame.index)
    gaps = frame.attrs.get("label_gaps", {}).get(label, [])
    # (rows on a filled bar or whose label spans one are the fill's, not the store's)
    clean = ~np.isin(frame.index.asi8, gaps) & np.isfinite(one_bar.to_numpy())
    assert clean.mean() > 0.9
    np.testing.assert_allclose(frame[label].to_numpy()[clean], one_bar.to_numpy()[clean], rtol=1e-12)
