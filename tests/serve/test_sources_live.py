"""A served trial reads the sources its training build recorded, whatever the store holds now.

``served_experiment`` is a real search on the real Coinbase and Kraken minute bars of March 2023 (a
store of bars only); its features include ``InterExchangeSpread(Midpoint coinbase, Midpoint kraken)``,
which fell back to the bars' midpoint. Then real Coinbase quotes are ingested into a copy of that
store (LEAN's quote bars of 2018-04-04, another date than the trial's range).

The reported failure first: decided again from the store (what serving did), the Coinbase midpoint
reads quotes, and the trial's own range has none. With the recorded decision the feeds supply bars,
an uncached rebuild of the training range equals the frame the trial was trained on, ``finalize``
rebuilds it by the recorded sources, and a store or feed that cannot supply a recorded decision is one
``error:`` line and exit status 2.
"""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from atlas_ray._cli import run_cli
from atlas_ray.errors import AtlasError
from atlas_ray.experiment import read_result
from atlas_ray.featurestore import MarketStore
from atlas_ray.featurestore._features._sources import SOURCES_ATTR, Sources
from atlas_ray.search._finalize import finalize
from atlas_ray.serve.__main__ import main
from atlas_ray.serve._engine import required_series
from atlas_ray.serve._feeds import gds_unservable
from atlas_ray.serve._trial import find_trial
from tests.serve._replay import trial_of
from tests.serve.conftest import END, START, serve_spec

pytestmark = pytest.mark.slow  # serves a finished real search: not in scripts/test.sh --quick

QUOTES = "lean_coinbase_btcusd/20180404_quote.zip"


@pytest.fixture
def store_with_quotes(minute_store: MarketStore, data_dir: Path, tmp_path: Path) -> MarketStore:
    """A copy of the bars-only store the trials were trained on, plus real Coinbase quotes of 2018."""
    root = tmp_path / "store"
    shutil.copytree(str(minute_store.root), root, ignore=shutil.ignore_patterns("_featuresets"))
    store = MarketStore(root)
    store.ingest(data_dir / QUOTES, exchange="coinbase", pair="btc_usd")
    return store


def test_the_recorded_sources_are_read_live_and_offline(
    served_experiment: Path, minute_store: MarketStore, store_with_quotes: MarketStore, tmp_path: Path
) -> None:
    trial = trial_of(served_experiment, "logistic")
    served = find_trial(str(served_experiment), trial=trial)
    result = read_result(str(served_experiment / "trials" / trial))
    assert result.sources is not None and served.sources is not None
    assert served.sources == Sources.from_json(dict(result.sources))
    assert served.sources.get("coinbase", "btc_usd", "quotes") is None  # fell back to bars in training
    bars = [("coinbase", "btc_usd", "bars_1m"), ("kraken", "btc_usd", "bars_1m")]

    # the failure as reported: decided again from the store now (a trial without recorded sources)
    undecided = dataclasses.replace(served, sources=None)
    assert ("coinbase", "btc_usd", "quotes") in required_series(undecided, store_with_quotes)

    # by the recorded sources: bars, from every feed
    assert sorted(required_series(served, store_with_quotes)) == bars
    assert sorted(required_series(served, None)) == bars
    assert sorted(required_series(served, None, only=frozenset({"bars"}))) == bars

    # an uncached rebuild of the training range, by the recorded sources, equals the training frame
    fls = served.featureset
    trained = fls.build(START, END, minute_store)
    assert trained.attrs[SOURCES_ATTR] == dict(result.sources)
    rebuilt = fls.build(START, END, store_with_quotes, cache=False, sources=result.sources)
    pd.testing.assert_frame_equal(rebuilt, trained)
    decided_again = fls.build(START, END, store_with_quotes, cache=False)  # the rule: March holds no quotes
    pd.testing.assert_frame_equal(decided_again, trained)

    # finalize rebuilds the trial's unit by its recorded sources on the store with quotes
    copy = tmp_path / "experiment"
    shutil.copytree(served_experiment, copy)
    opening = finalize(str(copy), top=1, spec=serve_spec(), store=store_with_quotes, out=io.StringIO())
    assert opening.opening == 1 and len(opening.trials) == 1


def _record_quotes(experiment: Path, trial: str, tmp_path: Path) -> Path:
    """A copy of the experiment whose trial recorded quotes for Coinbase (as a store with quotes in the
    training range would have decided)."""
    copy = tmp_path / "quoted"
    shutil.copytree(experiment, copy)
    path = copy / "trials" / trial / "result.json"
    document = json.loads(path.read_text())
    sources = document["sources"]
    sources["series"].append({"exchange": "coinbase", "pair": "btc_usd", "kind": "quotes", "read": "quotes"})
    path.write_text(json.dumps(document))
    return copy


def test_a_store_or_feed_without_the_recorded_quotes_is_refused(
    served_experiment: Path,
    minute_store: MarketStore,
    store_with_quotes: MarketStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    trial = trial_of(served_experiment, "logistic")
    quoted = _record_quotes(served_experiment, trial, tmp_path)
    served = find_trial(str(quoted), trial=trial)
    assert ("coinbase", "btc_usd", "quotes") in required_series(served, store_with_quotes)
    with pytest.raises(AtlasError, match=r"holds no quotes for coinbase btc_usd"):
        required_series(served, minute_store)
    with pytest.raises(AtlasError, match=r"reads quotes for coinbase btc_usd .* supplies bars only"):
        required_series(served, None, only=frozenset({"bars"}))

    redis = "redis://127.0.0.1:1/0"  # (never reached: the refusal comes first)
    for feed, store in (("store:", minute_store.root), ("gds:mysql://gryphon@127.0.0.1/gds", tmp_path / "s")):
        argv = [str(quoted), "--trial", trial, "--feed", feed, "--store", str(store), "--redis", redis]
        assert run_cli(main, argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: "), err
        assert "quotes for coinbase btc_usd" in err[0]


def test_a_live_market_that_also_holds_quotes_leaves_the_trial_on_its_bars(
    served_experiment: Path, minute_store: MarketStore
) -> None:
    """A live market shared with another model (a swap from one that reads Coinbase quotes) declares
    quotes too; this trial recorded bars for its Coinbase midpoint and keeps computing from them: its
    predictions equal the ResultsObject's, none goes missing for want of a quote."""
    from atlas_ray.search import load_model
    from atlas_ray.serve import LiveEngine
    from tests.serve._replay import REPLAY_END, REPLAY_START, compare, replay

    served = find_trial(str(served_experiment), trial=trial_of(served_experiment, "logistic"))
    series = [*required_series(served, minute_store), ("coinbase", "btc_usd", "quotes")]
    engine = LiveEngine(served, load_model(served.result), series=series)
    predictions = replay(engine, minute_store, REPLAY_START, REPLAY_END)
    offline = served.result.predictions
    offline = offline[(offline.timestamp >= REPLAY_START) & (offline.timestamp < REPLAY_END)]
    joined = compare(predictions, offline, served.result.classes)
    assert len(joined) == len(offline) > 100
    assert joined["max_diff"].max() < 1e-5


def test_a_market_the_gds_feed_cannot_supply_is_refused(
    served_experiment: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """GDS names a trade's pair by its volume and price currencies, each at most 3 characters (its
    ``trade`` table's ``VARCHAR(3)``): a trial that read ``btc_usdt`` would wait on the gds: feed for
    bars that never come. It is refused at start-up, in one line naming the series."""
    trial = trial_of(served_experiment, "logistic")
    copy = tmp_path / "tether"
    shutil.copytree(served_experiment, copy)
    path = copy / "trials" / trial / "result.json"
    document = json.loads(path.read_text().replace("btc_usd", "btc_usdt"))  # its sources and scaling
    fls, scaling = document["featureset"], document["scaling"]

    def tether(name: str) -> str:
        for exchange in ("coinbase", "kraken"):
            name = name.replace(f".{exchange}()", f'.{exchange}().pair("btc_usdt")')
        return name

    for key in ("features", "labels"):  # and every feature and label of its featureset
        fls[key] = [tether(f) for f in fls[key]]
    for key in ("mean", "std"):
        scaling[key] = {tether(f): value for f, value in scaling[key].items()}
    path.write_text(json.dumps(document))
    served = find_trial(str(copy), trial=trial)
    assert ("coinbase", "btc_usdt", "bars_1m") in required_series(served, None, only=frozenset({"bars"}))
    redis = "redis://127.0.0.1:1/0"  # (never reached: the refusal comes first)
    argv = [str(copy), "--trial", trial, "--feed", "gds:mysql://gryphon@127.0.0.1/gds",
            "--store", str(tmp_path / "s"), "--redis", redis]  # fmt: skip
    assert run_cli(main, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert "coinbase btc_usdt, kraken btc_usdt" in err[0] and "gds: feed cannot supply" in err[0], err
    # the same trial's own market (btc_usd) passes the check; the feed goes on to GDS
    assert gds_unservable([("coinbase", "btc_usd", "bars_1m"), ("kraken", "eth_btc", "trades")]) == []
    assert gds_unservable([("x", "usdt_usd", "bars_1m"), ("x", "a_b_c", "bars_1m")]) == [
        ("x", "usdt_usd", "bars_1m"),
        ("x", "a_b_c", "bars_1m"),
    ]
