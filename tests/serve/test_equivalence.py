"""The equivalence matrix: what a live model computes equals what its offline build computed, for every
feature class of the library, at 1m, 5m and 1h, through every feed.

For every feature of ``_feature_cases.CASES`` (the pinned sources ``from_bars`` / ``from_quotes`` of
``Midpoint`` and ``MidpointDiff`` included) at 1m, 5m and 1h, a featureset of that feature is decided
against its real store (``_sources.decide``, as a search records it), served as a ``ServedTrial`` whose
ResultsObject carries the decision and identity scaling (no model: the matrix checks feature rows), and
a ``LiveEngine`` is fed by each feed's own event producer:

* ``replay``: ``replay_ticks`` over the real store, bar by bar, each push declaring its bar complete;
* ``store``: ``store_pushes`` following a copy of the store that a writer thread fills while the feed
  follows it (bars in chunks that end inside coarse bars; quotes and book snapshots likewise);
* ``http``: the replay's pushes as the JSON body a client POSTs (``json.dumps(allow_nan=False)``), read
  back by ``_http.read_push`` and taken by the engine (``parse_event``) as the deployment takes them;
* ``gds``: ``gds_pushes`` reading a real MariaDB ``trade`` table that fills while it follows (four
  trades a real minute bar: open, high, low, close). The GDS feed hands over bars only, so it serves the
  features that read bars (``Volume``, ``VWAP``, ``SimpleReturns``, ``LogReturns``, ``Volatility``,
  ``Midpoint`` / ``MidpointDiff`` from bars, and those whose quotes fell back to bars: ``Midpoint``,
  ``InterExchangeSpread`` and ``FV`` on a store of bars); a featureset that recorded quotes or order
  books (``Bid``, ``Ask``, ``Spread``, the strengths, ``Midpoint`` from quotes, the arbitrage features)
  is refused at start-up (``required_series(..., only={"bars"})``) in one line naming the series.

Every bar the engine decides from the window's start on must carry the value the offline build
(``_build.compute_span`` by the same recorded sources: ``build_local`` before its NaN rows are dropped)
gives that bar, and a bar the build leaves NaN must not be predictable live; ``build_local``'s own rows
are checked to be among the live ones. Labels are not computed live: the two look-forward cases of
``CASES`` are the featuresets' labels here.

Predictions (the matrix's second layer: a real search served end to end, each redis entry equal to
the ResultsObject's prediction of that bar, ``_replay.check_entries``) live beside the searches they
need. Cell by cell (feed x resolution -> file::test):

* replay, 1m: ``test_engine.py::test_replayed_predictions_equal_the_offline_series`` (in process,
  three models) and ``test_cli.py::test_a_replay_from_the_command_line`` (the CLI, into redis);
* replay, 5m / 1h: ``test_follow_coarse.py::
  test_a_coarse_model_follows_a_finer_store_as_it_is_written[five|hourly]``;
* store and http, 1m / 5m / 1h: ``test_follow_coarse.py::
  test_a_coarse_model_follows_a_finer_store_as_it_is_written[minute|five|hourly]`` (one search, a
  trial a resolution, from the store's 1-minute bars; the store grows while ``store:`` follows it, and
  HTTP is POSTed through Serve's proxy);
* gds, 1m: ``test_follow_gds.py::test_a_live_model_on_a_filling_gds`` (and after a SIGKILL inside a
  bar: ``test_a_gds_feed_killed_inside_a_bar_neither_misses_nor_repeats_a_bar_after_a_restart``);
* gds, 5m / 1h: ``test_follow_coarse.py::test_a_coarse_model_follows_a_filling_gds[five|hourly]``
  (the same search's trials; a real MariaDB ``trade`` table filled with the store's minute bars as
  trades, in chunks ending inside coarse bars).

A trial the gds: feed cannot supply (a pair that is not two GDS currency codes, e.g. ``btc_usdt``) is
refused at start-up: ``test_sources_live.py::test_a_market_the_gds_feed_cannot_supply_is_refused``.

The same feeds, field for field, for bars: ``test_the_feeds_hand_over_the_offline_bars`` at 1m, 5m, 10m
and 1h from stores of every finer resolution. And the source rule: a ``store:`` / ``replay:`` feed reads
each series by the trial's recorded decision, also where the store later holds bars stored at the
model's resolution for the same period (``test_feeds_read_the_recorded_source``).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from atlas_ray.errors import AtlasError
from atlas_ray.experiment import ResultsObject, TrialIdentity, TrialStatus
from atlas_ray.featurestore import (
    Feature,
    FeatureLabelSet,
    LogReturns,
    MarketStore,
    MidpointDiff,
    Resolution,
    as_resolution,
)
from atlas_ray.featurestore._features._sources import SourcedMarket, Sources, decide, live_key
from atlas_ray.featurestore._featuresets._build import compute_span
from atlas_ray.featurestore._featuresets._prepared import Task
from atlas_ray.featurestore._gds._gds_schema import create_gds_tables, insert_trades, trade_rows
from atlas_ray.featurestore._gds._gds_testing import LocalMariaDB
from atlas_ray.featurestore._schema import bars_kind
from atlas_ray.serve import LiveEngine, parse_event, required_series
from atlas_ray.serve._app import _closed_history
from atlas_ray.serve._engine import PushOutcome
from atlas_ray.serve._feeds import (
    closed_through,
    gds_pushes,
    history_events,
    paced,
    replay_ticks,
    store_pushes,
)
from atlas_ray.serve._http import read_push
from atlas_ray.serve._trial import ServedTrial
from tests.featurestore._feature_cases import BOOK_WINDOW, CASES, MINUTE_WINDOW, Case, make_arb_store

pytestmark = pytest.mark.slow

RESOLUTIONS = ("1m", "5m", "1h")
_METHOD = {"1m": "one_min", "5m": "five_min", "10m": "ten_min", "1h": "hour"}
FEEDS = ("replay", "store", "http", "gds")
Push = dict[str, Any]


# ----------------------------------------------------------------------------------- the matrix
def at(feature: Feature, short: str) -> Feature:
    """``feature`` at another resolution, through its name (which round-trips)."""
    return Feature.from_name(feature.name.replace(".one_min()", f".{_METHOD[short]}()"))


SERVED_CASES = tuple(c for c in CASES if c.feature.horizon == 0)
LABEL_CASES = tuple(c for c in CASES if c.feature.horizon > 0)


def label_of(store: str, short: str) -> Feature:
    """The look-forward case of the store's data as the featureset's label."""
    base = LogReturns().coinbase().one_min().lookforward(1)
    if store != "minute":
        base = MidpointDiff().bitstamp().one_min().lookforward(2)
    assert any(c.feature == base for c in LABEL_CASES), base
    return at(base, short)


def window(store: str, short: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The bars compared: 8 hours around Coinbase's 4h38m gap (a day at 1h), or the 2015 book's hours."""
    if store != "minute":
        return BOOK_WINDOW
    if short == "1h":
        return pd.Timestamp("2023-03-04T00:00Z"), pd.Timestamp("2023-03-05T00:00Z")
    return MINUTE_WINDOW


def history(fls: FeatureLabelSet) -> pd.Timedelta:
    """What the serve command warms a model with (``_app._history``), plus a bar."""
    before = max(f.halo[0] for f in fls.features)
    return (before + 2 * fls.fill_limit + 5) * fls.resolution.offset


def served_for(fls: FeatureLabelSet, sources: Sources) -> ServedTrial:
    """A ServedTrial for feature rows only: the featureset's definition, its recorded sources (the real
    decision) and identity scaling, no model."""
    names = tuple(fls.feature_names)
    result = ResultsObject(
        identity=TrialIdentity("equivalence", "equivalence", "unit", "none", "t0", {}, 0),
        status=TrialStatus.COMPLETED,
        task=Task.REGRESSION,
        classes=(),
        features=names,
        label=fls.label_names[0],
        metrics={},
        predictions=pd.DataFrame(),
        curves=pd.DataFrame(),
        epochs=0,
        scaling={"mean": dict.fromkeys(names, 0.0), "std": dict.fromkeys(names, 1.0)},
        featureset=fls.definition(),
        sources=sources.to_json(),
    )
    return ServedTrial("equivalence", "equivalence", result, fls, sources)


class RowRecorder(LiveEngine):
    """A ``LiveEngine`` that keeps the (identity-scaled) feature rows of every bar it decides: the rows
    its model would be given. Every push is ``warm`` (there is no model to predict with)."""

    def __init__(self, served: ServedTrial, series: list[tuple[str, str, str]]) -> None:
        super().__init__(served, None, series=series)
        self.rows: list[tuple[pd.DatetimeIndex, np.ndarray]] = []

    def _scaled_rows(
        self, first: int, last: int, outcome: PushOutcome | None = None, *, warm: bool = False
    ) -> tuple[pd.DatetimeIndex, np.ndarray]:
        index, values = super()._scaled_rows(first, last, outcome, warm=warm)
        if outcome is not None:
            self.rows.append((index, values))
        return index, values

    def take(self, events: list[dict[str, Any]], through: int | None = None) -> None:
        outcome = self.push(events, through=through, warm=True)
        assert outcome.rejected == [], outcome.rejected[:3]

    def frame(self) -> pd.DataFrame:
        index = pd.DatetimeIndex(np.concatenate([i.asi8 for i, _ in self.rows])).tz_localize("UTC")
        values = np.concatenate([v for _, v in self.rows], axis=0)
        frame = pd.DataFrame(values, index=index, columns=self.names)
        assert frame.index.is_unique and frame.index.is_monotonic_increasing, "a bar decided twice"
        return frame


def check_rows(engine: RowRecorder, fls: FeatureLabelSet, store: MarketStore, sources: Sources,
               lo: pd.Timestamp, hi: pd.Timestamp, *, tail: int) -> int:  # fmt: skip
    """The engine's rows of ``[lo, done]`` against the offline build's over the same bars; ``tail``: how
    many of the last bars a feed may leave undecided (a forming coarse bar). Returns the bars compared."""
    assert engine.done is not None, "the engine decided no bar"
    done = pd.Timestamp(engine.done, tz="UTC")
    step = fls.resolution.offset
    assert done >= hi - (tail + 1) * step, f"decided only up to {done} of [{lo}, {hi})"
    end = min(hi, done + step)
    live = engine.frame()
    live = live[(live.index >= lo) & (live.index < end)]
    offline = compute_span(fls, store, lo, end, sources)[list(engine.names)]
    valid = offline.notna().all(axis=1)
    expected = offline[valid].astype("float32")
    assert live.index.equals(expected.index), (
        f"live rows without an offline value: {list(live.index.difference(expected.index)[:5])}; "
        f"offline rows not decided live: {list(expected.index.difference(live.index)[:5])}"
    )
    np.testing.assert_array_equal(live.to_numpy(), expected.to_numpy())
    built = fls.build_local(lo, end, store, sources=sources)
    assert built.index.isin(live.index).all()
    return int(valid.sum())


# ------------------------------------------------------------------------------------- stores
@pytest.fixture(scope="module")
def stores(minute_store: MarketStore, book_store: MarketStore, tmp_path_factory: pytest.TempPathFactory
           ) -> dict[str, MarketStore]:  # fmt: skip
    return {
        "minute": minute_store,
        "book": book_store,
        "arb": make_arb_store(book_store, str(tmp_path_factory.mktemp("arb"))),
    }


FILL_LIMIT = 5
"""Every featureset's ``fill_limit`` (the default): the ``gds:`` feed's ``lag``, as the command passes it."""


def featureset(case: Case, short: str) -> FeatureLabelSet:
    fls = FeatureLabelSet([at(case.feature, short)], [label_of(case.store, short)])
    assert fls.fill_limit == FILL_LIMIT
    return fls


# ---------------------------------------------------------------------------- the store: feed
@dataclass
class Followed:
    """What a ``store:`` feed handed over while a writer filled a copy of the store."""

    store: MarketStore
    warm: list[dict[str, Any]]  # the serve command's warm push when the feed started
    pushes: list[list[dict[str, Any]]]


def _copy_rows(source: MarketStore, target: MarketStore, lo: pd.Timestamp, hi: pd.Timestamp) -> None:
    for exchange in source.exchanges():
        for pair in source.pairs(exchange):
            for kind in source.kinds(exchange, pair):
                frame = source.read(exchange, pair, kind, lo, hi)
                if len(frame):
                    target.write(frame, exchange=exchange, pair=pair, kind=kind)


def follow_store(source: MarketStore, root: Path, sources: Sources, lo: pd.Timestamp,
                 hi: pd.Timestamp, warm_from: pd.Timestamp) -> Followed:  # fmt: skip
    """``store_pushes`` (every series ``sources`` decides, read by it) from ``lo`` while a writer
    thread copies ``source``'s rows of ``[lo, hi + a bar)`` into ``root`` in chunks of 37 minutes."""
    store = MarketStore(root)
    _copy_rows(source, store, warm_from, lo)
    resolution = sources.resolution
    series = list(dict.fromkeys(live_key(s, resolution) for s in sources.series))
    end = hi + resolution.offset
    stop, written = threading.Event(), threading.Event()

    # an ingest writes every series of a chunk before the feed looks again (one lock): a series that
    # lags the others by more than ``fill_limit`` bars is a gap to the engine (README, Decisions)
    lock = threading.Lock()

    def writer() -> None:
        cut = lo
        while cut < end:
            step = min(cut + pd.Timedelta("37min"), end)
            with lock:
                _copy_rows(source, store, cut, step)
            cut = step
            time.sleep(0.02)
        written.set()

    feed = SourcedMarket(store, resolution, sources)
    marks = {key: closed_through(feed, key, resolution) for key in series}
    held = [key for key in series if marks[key] is not None]  # (the 2015 book starts with the window)
    warm = _closed_history(feed, held, resolution, warm_from, lo, [marks[k] for k in held])  # as the app
    pushes: list[list[dict[str, Any]]] = []
    thread = threading.Thread(target=writer)
    thread.start()
    looks_after = 0
    try:
        looks = store_pushes(feed, series, resolution, lo, poll=0.01, stop=stop)
        while True:
            with lock:
                push = next(looks, None)
            if push is None:
                break
            pushes.append(push)
            if written.is_set():
                looks_after += 1
                if looks_after >= 2:
                    stop.set()
    finally:
        stop.set()
        thread.join()
    return Followed(store, warm, pushes)


def union_sources(store: MarketStore, name: str, short: str) -> Sources:
    """One decision over every served case of ``name``'s store (each series decided alone, so this is
    every case's decision of that series)."""
    lo, hi = window(name, short)
    columns = [at(c.feature, short) for c in SERVED_CASES if c.store == name] + [label_of(name, short)]
    return decide(store, columns, lo, hi, as_resolution(short))


@pytest.fixture(scope="module")
def followed(stores: dict[str, MarketStore], tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[dict[tuple[str, str], Followed]]:  # fmt: skip
    """One ``store:`` run per store and resolution, made when first asked."""
    made: dict[tuple[str, str], Followed] = {}

    class Lazy(dict):  # type: ignore[type-arg]
        def __missing__(self, key: tuple[str, str]) -> Followed:
            name, short = key
            sources = union_sources(stores[name], name, short)
            lo, hi = window(name, short)
            warm_from = lo - pd.Timedelta("1D")
            root = tmp_path_factory.mktemp(f"follow_{name}_{short}")
            made[key] = follow_store(stores[name], root, sources, lo, hi, warm_from)
            self[key] = made[key]
            return made[key]

    yield Lazy()


# ------------------------------------------------------------------------------ the gds: feed
GDS_MARKETS = (("coinbase", "btc_usd", "COINBASE", "USD"), ("kraken", "btc_usd", "KRAKEN", "USD"))
"""Gryphon's ``trade`` table keeps three-letter currencies: Binance's BTC-USDT cannot be stored there, so
the features of the Binance case are checked through ``gds:`` on Kraken's market (``on_gds``)."""


def on_gds(feature: Feature) -> Feature:
    name = re.sub(r", Midpoint\(\)\.binance\(\)\.\w+\(\)", "", feature.name)  # FV of three: of two
    return Feature.from_name(name.replace(".binance()", ".kraken()"))


def trades_of(bars: pd.DataFrame) -> pd.DataFrame:
    """Four trades a real bar that rebuild it: open, high, low, close at +0, 15, 30, 45 s."""
    parts = []
    for k, column in enumerate(("open", "high", "low", "close")):
        parts.append(
            pd.DataFrame(
                {
                    "timestamp": bars.index + pd.Timedelta(seconds=15 * k),
                    "price": bars[column].to_numpy(),
                    "size": bars["volume"].to_numpy() / 4.0,
                    "trade_id": [f"{t.value}-{k}" for t in bars.index],
                }
            )
        )
    return pd.concat(parts).sort_values("timestamp", kind="stable").reset_index(drop=True)


def gds_fill(connection: object, source: MarketStore, lo: pd.Timestamp, hi: pd.Timestamp) -> None:
    """The trades of ``[lo, hi)`` in time order across the exchanges (as collectors fill the table: an
    exchange hours behind the other is a gap to the engine, see ``follow_store``), 37 minutes at a time."""
    cut = lo
    while cut < hi:
        step = min(cut + pd.Timedelta("37min"), hi)
        rows = []
        for exchange, pair, code, currency in GDS_MARKETS:
            bars = source.read(exchange, pair, "bars_1m", cut, step)
            bars = bars[bars["volume"] > 0]
            rows.extend(
                trade_rows(trades_of(bars), exchange=code, volume_currency="BTC", price_currency=currency)
            )
        rows.sort(key=lambda row: str(row[2]))  # the trade time
        insert_trades(connection, rows)
        cut = step


@dataclass
class GdsRun:
    store: MarketStore
    pushes: list[Push]


@pytest.fixture(scope="module")
def gds_runs(mariadb: LocalMariaDB, minute_store: MarketStore, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[dict[str, GdsRun]]:  # fmt: skip
    """Per resolution: a real GDS database that fills while ``gds_pushes`` follows it into a store."""
    import uuid

    admin = mariadb.connect(autocommit=True)
    databases: list[str] = []

    def run(short: str) -> GdsRun:
        resolution = as_resolution(short)
        lo, hi = window("minute", short)
        first = lo - pd.Timedelta("1D")
        name = f"atlas_eq_{uuid.uuid4().hex[:10]}"
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name}")
        databases.append(name)
        connection = mariadb.connect(name)
        store = MarketStore(tmp_path_factory.mktemp(f"gds_{short}"))
        series = [(e, p, bars_kind(resolution)) for e, p, _, _ in GDS_MARKETS]
        stop = threading.Event()
        pushes: list[Push] = []
        failed: list[BaseException] = []

        def follow() -> None:
            try:
                for push in gds_pushes(store, series, mariadb.url(name), resolution, pd.Timedelta("2h"),
                                       poll=0.05, stop=stop, lag=FILL_LIMIT):  # fmt: skip
                    pushes.append(push)
            except BaseException as error:  # said by the test, not lost in the thread
                failed.append(error)

        thread = threading.Thread(target=follow)
        try:
            create_gds_tables(connection)
            middle = lo + (hi - lo) / 2
            gds_fill(connection, minute_store, first, middle)
            thread.start()
            gds_fill(connection, minute_store, middle, hi + resolution.offset)  # fills while it follows
            last = (hi - resolution.offset).value
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not failed:
                stamps = [parse_event(e, resolution).stamp for p in list(pushes) for e in p["events"]]
                if stamps and max(stamps) >= last:
                    break
                time.sleep(0.1)
        finally:
            stop.set()
            if thread.is_alive():
                thread.join(timeout=60)
            connection.close()
        assert not thread.is_alive() and not failed, failed
        return GdsRun(store, pushes)

    class Lazy(dict):  # type: ignore[type-arg]
        def __missing__(self, short: str) -> GdsRun:
            self[short] = run(short)
            return self[short]  # type: ignore[no-any-return]

    try:
        yield Lazy()
    finally:
        with admin.cursor() as cursor:
            for name in databases:
                cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.close()


# -------------------------------------------------------------------------------- the pushes
def replay_pushes(source: Any, series: list[tuple[str, str, str]], resolution: Resolution,
                  lo: pd.Timestamp, hi: pd.Timestamp) -> Iterator[Push]:  # fmt: skip
    for push, _ in paced(replay_ticks(source, series, resolution, lo, hi), 0, chunk=1):
        yield push


def as_http(push: Push) -> Push:
    """The push as a client POSTs it and the deployment reads it."""
    body = json.dumps({"events": push["events"], "through": push.get("through")}, allow_nan=False)
    return read_push(body.encode())


def only(events: list[dict[str, Any]], series: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """The events of ``series`` (a feed run shared by several featuresets carries them all)."""
    wanted = set(series)
    out = []
    for event in events:
        kind = event["kind"]
        if kind == "bars":
            kind = bars_kind(as_resolution(str(event["resolution"])))
        if (event["exchange"], event["pair"], kind) in wanted:
            out.append(event)
    return out


# ------------------------------------------------------------------------------ the test itself
MATRIX = [
    pytest.param(case, short, feed, id=f"{feed}-{short}-{case.id}")
    for feed in FEEDS
    for short in RESOLUTIONS
    for case in SERVED_CASES
]


@pytest.mark.parametrize(("case", "short", "feed"), MATRIX)
def test_live_feature_rows_equal_the_offline_build(
    case: Case,
    short: str,
    feed: str,
    stores: dict[str, MarketStore],
    followed: dict[tuple[str, str], Followed],
    gds_runs: dict[str, GdsRun],
) -> None:
    fls = featureset(case, short)
    if feed == "gds" and case.store == "minute":
        fls = FeatureLabelSet([on_gds(f) for f in fls.features], list(fls.labels))
    resolution = fls.resolution
    store = stores[case.store]
    lo, hi = window(case.store, short)
    sources = decide(store, fls.columns, lo, hi, resolution)
    served = served_for(fls, sources)
    if feed == "gds":
        if any(s.kind != "bars" for s in sources.series if s in set(_feature_sources(fls, sources))):
            with pytest.raises(AtlasError) as refused:
                required_series(served, None, only=frozenset({"bars"}))
            message = str(refused.value)
            assert "\n" not in message and "supplies bars only" in message, message
            return
        run = gds_runs[short]
        store = run.store
        sources = decide(store, fls.columns, lo, hi, resolution)  # bars from the trades GDS gave
        assert {s.read for s in sources.series} == {"trades"}, sources.describe()
        served = served_for(fls, sources)
        series = required_series(served, None, only=frozenset({"bars"}))
        engine = RowRecorder(served, series)
        for push in run.pushes:
            engine.take(only(push["events"], series), push.get("through"))  # type: ignore[arg-type]
        compared = check_rows(engine, fls, store, sources, lo, hi, tail=1)
        assert compared > 0 or short == "1h"
        return
    series = required_series(served, store)
    engine = RowRecorder(served, series)
    market = SourcedMarket(store, resolution, sources)
    if feed == "store":
        run = followed[(case.store, short)]
        engine.take(only(run.warm, series), (lo - resolution.offset).value)
        for events in run.pushes:
            engine.take(only(events, series))
        tail = fls.fill_limit  # no push declares the last bars: "itbit" ends 7 minutes before bitstamp
    else:  # as ``_replay`` warms and replays
        warm = history_events(market, series, resolution, lo - history(fls), lo)
        engine.take(warm, (lo - resolution.offset).value)
        for push in replay_pushes(market, series, resolution, lo, hi):
            push = as_http(push) if feed == "http" else push
            engine.take(push["events"], push["through"])
        tail = 0
    compared = check_rows(engine, fls, store, sources, lo, hi, tail=tail)
    assert compared > 0 or (short == "1h" and case.store != "minute")


def _feature_sources(fls: FeatureLabelSet, sources: Sources) -> list[Any]:
    """The recorded sources the features (not the labels) read."""
    out = []
    for feature in fls.features:
        for requirement in feature.requirements():
            found = sources.choose(requirement)
            assert found is not None
            out.append(found)
    return out


# ------------------------------------------------------------------- the recorded source, live
class _Call:
    def __init__(self, function: Any) -> None:
        self.function = function

    def remote(self, *args: Any) -> Any:
        value = self.function(*args)

        class Done:
            def result(self) -> Any:
                return value

        return Done()


class EngineHandle:
    """The deployment's ``push`` and ``flush`` as the serve command's feed loops call them (through a
    handle), taken in process by a real engine."""

    def __init__(self, engine: RowRecorder) -> None:
        self.push = _Call(lambda push: engine.take(push["events"], push.get("through")))
        self.flush = _Call(lambda: None)


def vendor_bars(fine: pd.DataFrame, short: str) -> pd.DataFrame:
    """The same market's bars at ``short`` as an OHLCV-only vendor ships them: no VWAP, no trade count."""
    from atlas_ray.featurestore._store._bars import resample_bars

    coarse = resample_bars(fine, short)
    coarse["vwap"] = np.nan
    coarse["trades"] = -1
    return coarse


@pytest.mark.parametrize("feed", ["replay", "store"])
def test_feeds_read_the_recorded_source(
    minute_store: MarketStore, tmp_path: Path, feed: str
) -> None:
    """A 5-minute VWAP of Binance trained on its minute bars (recorded: bars from ``bars_1m``); later
    the store also holds 5-minute bars of the same period from an OHLCV-only vendor (no VWAP). The
    store's own bars rule would read those (VWAP NaN live, values offline); the serve command's replay
    and store feeds read the recorded source: every live row equals the training build's."""
    from atlas_ray.featurestore import VWAP
    from atlas_ray.serve._app import _follow_store, _recorded, _replay, _Stop
    from atlas_ray.serve._feeds import Feed

    short, resolution = "5m", as_resolution("5m")
    lo, hi = window("minute", short)
    store = MarketStore(tmp_path / "store")
    one = minute_store.read("binance", "btc_usdt", "bars_1m", lo - pd.Timedelta("1D"), hi)
    store.write(one[one.index < (hi if feed == "replay" else lo)], exchange="binance", pair="btc_usdt",
                kind="bars_1m")  # fmt: skip
    fls = FeatureLabelSet([VWAP().binance().five_min()], [LogReturns().binance().five_min().lookforward(1)])
    sources = decide(store, fls.columns, lo - pd.Timedelta("1D"), lo, resolution)  # the training range
    assert sources.get("binance", "btc_usdt", "bars") is not None
    assert {s.read for s in sources.series} == {"bars_1m"}
    served = served_for(fls, sources)
    series = required_series(served, store)
    assert series == [("binance", "btc_usdt", "bars_5m")]
    vendor = vendor_bars(one, short)
    engine = RowRecorder(served, series)
    if feed == "replay":
        store.write(vendor, exchange="binance", pair="btc_usdt", kind="bars_5m")  # stored later
        assert store.bars("binance", "btc_usdt", short, lo, hi)["vwap"].isna().all()  # the store's rule
        recorded = _recorded(served, store)
        assert isinstance(recorded, SourcedMarket)
        _replay(EngineHandle(engine), served, recorded, series, Feed("replay", lo, hi), 0, None, _Stop())
    else:
        stop = _Stop()
        thread = threading.Thread(
            target=_follow_store,
            args=(EngineHandle(engine), served, _recorded(served, store), series, Feed("store", lo), 0.01,
                  None, None, stop),
        )  # fmt: skip
        thread.start()
        try:
            cut = lo
            while cut < hi:  # the minute bars and the vendor's 5-minute bars arrive while it follows
                step = min(cut + pd.Timedelta("37min"), hi)
                part = one[(one.index >= cut) & (one.index < step)]
                store.write(part, exchange="binance", pair="btc_usdt", kind="bars_1m")
                coarse = vendor[(vendor.index >= cut.floor("5min")) & (vendor.index < step.floor("5min"))]
                if len(coarse):
                    store.write(coarse, exchange="binance", pair="btc_usdt", kind="bars_5m")
                cut = step
                time.sleep(0.05)
            deadline = time.monotonic() + 30
            while (engine.done or 0) < (hi - 2 * resolution.offset).value and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            stop.event.set()
            thread.join(30)
    offline = compute_span(fls, store, lo, hi, sources)
    assert offline[fls.feature_names[0]].notna().sum() > 50  # the recorded source has VWAP
    assert check_rows(engine, fls, store, sources, lo, hi, tail=1) > 50


# -------------------------------------------------------------------- bar events, field for field
FINER = [(stored, short) for short in ("1m", "5m", "10m", "1h") for stored in ("1m", "5m", "10m", "1h")
         if as_resolution(stored).seconds <= as_resolution(short).seconds
         and as_resolution(short).seconds % as_resolution(stored).seconds == 0]  # fmt: skip


@pytest.mark.parametrize("feed", ["replay", "http"])
@pytest.mark.parametrize(("stored", "short"), FINER)
def test_the_feeds_hand_over_the_offline_bars(
    minute_store: MarketStore, tmp_path: Path, stored: str, short: str, feed: str
) -> None:
    """The replay's bar events (and the same POSTed over HTTP), read as the engine reads them, are the
    bars the offline build reads from a store of ``stored`` bars, every field (the ``store:`` and
    ``gds:`` feeds: ``test_feed_bars``)."""
    from atlas_ray.featurestore._schema import BAR_COLUMNS

    resolution = as_resolution(short)
    lo, hi = pd.Timestamp("2023-03-04T12:00Z"), pd.Timestamp("2023-03-04T23:00Z")
    store = MarketStore(tmp_path / "store")
    for exchange, pair in (("coinbase", "btc_usd"), ("binance", "btc_usdt")):
        store.write(minute_store.bars(exchange, pair, stored, lo, hi), exchange=exchange, pair=pair,
                    kind=bars_kind(as_resolution(stored)))  # fmt: skip
    series = [("coinbase", "btc_usd", bars_kind(resolution)), ("binance", "btc_usdt", bars_kind(resolution))]
    events = []
    for push in replay_pushes(store, series, resolution, lo, hi):
        events.extend((as_http(push) if feed == "http" else push)["events"])
    for exchange, pair, _ in series:
        offline = store.bars(exchange, pair, resolution, lo, hi)
        rows = [parse_event(e, resolution) for e in events if e["exchange"] == exchange]
        assert [e.key for e in rows] == [(exchange, pair, bars_kind(resolution))] * len(rows)
        live = pd.DataFrame(
            {c: [e.rows[c][0] for e in rows] for c in BAR_COLUMNS},
            index=pd.DatetimeIndex([e.time for e in rows]),
        )
        assert len(offline) > 5 and live.index.equals(offline.index)
        for column in BAR_COLUMNS:
            np.testing.assert_array_equal(live[column].to_numpy("float64"),
                                          offline[column].to_numpy("float64"), err_msg=column)  # fmt: skip
