"""What the feeds hand a live model is the offline bars, field for field, each bar once and only closed.

Ray-free: the feeds' own generators (``store_pushes``, ``gds_pushes``) on real data. A writer thread
appends the real Coinbase and Kraken minute bars of March 2023 to a store while the ``store:`` feed
follows it, at every resolution the feature library has (1m, 5m, 10m, 1h); real bitFlyer executions
go into a real MariaDB's GDS ``trade`` table while the ``gds:`` feed follows it. Every bar event, read
back by ``parse_event`` as the engine reads it, must equal the bar an offline build reads from the
finished store (open, high, low, close, volume, vwap, trades), and no bar may come twice or early.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from atlas_ray.featurestore import MarketStore, Resolution, as_resolution
from atlas_ray.featurestore._formats import read_source
from atlas_ray.featurestore._gds._gds import ingest_gds
from atlas_ray.featurestore._gds._gds_schema import create_gds_tables, insert_trades, trade_rows
from atlas_ray.featurestore._gds._gds_testing import LocalMariaDB
from atlas_ray.featurestore._schema import BAR_COLUMNS, bars_kind
from atlas_ray.featurestore._store._ingest import validate
from atlas_ray.serve import parse_event
from atlas_ray.serve._feeds import gds_pushes, series_events, store_pushes

T0 = pd.Timestamp("2023-03-02T06:00Z")
MARKETS = (("coinbase", "btc_usd"), ("kraken", "btc_usd"))


def as_bars(events: list[dict[str, object]], resolution: Resolution) -> dict[tuple[str, str], pd.DataFrame]:
    """Bar events as the engine takes them (``parse_event``), one frame of ``BAR_COLUMNS`` per market."""
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for item in events:
        event = parse_event(item, resolution)
        assert event.kind == bars_kind(resolution), event
        row = {"timestamp": event.time, **{c: event.rows[c][0] for c in BAR_COLUMNS}}
        rows.setdefault((event.exchange, event.pair), []).append(row)
    return {
        market: pd.DataFrame(found).set_index("timestamp").astype({"trades": "int64"})
        for market, found in rows.items()
    }


def same_bars(live: pd.DataFrame, offline: pd.DataFrame) -> None:
    assert live.index.is_unique, live.index[live.index.duplicated()]
    assert live.index.equals(offline.index), (
        live.index.difference(offline.index),
        offline.index.difference(live.index),
    )
    for column in BAR_COLUMNS:
        np.testing.assert_array_equal(live[column].to_numpy(), offline[column].to_numpy(), err_msg=column)


# ---------------------------------------------------------------------------------- store: feed
def write_bars(
    source: MarketStore, target: MarketStore, lo: pd.Timestamp, hi: pd.Timestamp, stored: Resolution
) -> None:
    """The real bars of ``[lo, hi)`` at resolution ``stored`` (from the minutes) into ``target``."""
    for exchange, pair in MARKETS:
        bars = source.bars(exchange, pair, stored, lo, hi)
        if len(bars):
            target.write(bars, exchange=exchange, pair=pair, kind=bars_kind(stored))


@pytest.mark.parametrize(
    ("stored", "short", "span", "chunk"),
    [
        ("1m", "1m", "30min", "7min"),
        ("1m", "5m", "90min", "7min"),
        ("1m", "10m", "2h", "13min"),
        ("1m", "1h", "5h", "37min"),
        ("5m", "10m", "2h", "15min"),
        ("5m", "1h", "5h", "35min"),
        ("10m", "1h", "5h", "50min"),
    ],
)
def test_the_store_feed_hands_over_each_closed_bar_once_equal_to_the_offline_bars(
    minute_store: MarketStore, tmp_path: Path, stored: str, short: str, span: str, chunk: str
) -> None:
    resolution, fine = as_resolution(short), as_resolution(stored)
    end = T0 + pd.Timedelta(span)
    store = MarketStore(tmp_path / "growing")
    write_bars(minute_store, store, T0 - pd.Timedelta("2h"), T0, fine)  # the history before the feed starts
    series = [(exchange, pair, bars_kind(resolution)) for exchange, pair in MARKETS]
    stop = threading.Event()
    written = threading.Event()

    def writer() -> None:  # appends real bars while the feed follows, in chunks that end inside bars
        cut = T0
        while cut < end:
            step = min(cut + pd.Timedelta(chunk), end)
            write_bars(minute_store, store, cut, step, fine)
            cut = step
            time.sleep(0.05)
        written.set()

    events: list[dict[str, object]] = []
    seen_after_writer = 0
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for push in store_pushes(store, series, resolution, T0, poll=0.02, stop=stop):
            events.extend(push)
            if written.is_set():
                seen_after_writer += 1
                if seen_after_writer >= 2:  # one whole look after the last write
                    stop.set()
    finally:
        stop.set()
        thread.join()
    live = as_bars(events, resolution)
    for exchange, pair in MARKETS:
        offline = store.bars(exchange, pair, resolution, T0, end)  # the finished store, read offline
        # the bar holding the last finer bar written is closed only if that bar is its last one
        last = store.read(exchange, pair, bars_kind(fine), T0, end).index[-1]
        if short != stored and last + fine.offset < end:
            offline = offline.iloc[:-1]
        same_bars(live[(exchange, pair)], offline)
    assert len(live[("kraken", "btc_usd")]) == pd.Timedelta(span) // resolution.offset


def test_series_events_carry_every_bar_field(minute_store: MarketStore) -> None:
    for short in ("1m", "5m", "10m", "1h"):
        resolution = as_resolution(short)
        key = ("binance", "btc_usdt", bars_kind(resolution))
        events = [e for _, e in series_events(minute_store, key, resolution, T0, T0 + pd.Timedelta("3h"))]
        offline = minute_store.bars("binance", "btc_usdt", resolution, T0, T0 + pd.Timedelta("3h"))
        assert offline["vwap"].notna().all() and (offline["trades"] > 0).all()  # binance knows both
        same_bars(as_bars(events, resolution)[("binance", "btc_usdt")], offline)


# ------------------------------------------------------------------------------------ gds: feed
@pytest.fixture(scope="module")
def executions(data_dir: Path) -> pd.DataFrame:
    """The first 6,000 real bitFlyer executions of 2018-01-21 (about 40 minutes), as the store holds them."""
    source = read_source(data_dir / "bitflyer_2018-01" / "bitflyer.execution.20180121.BTC_JPY.csv.gz")
    frame, _ = validate(source)
    return frame.iloc[:6000][["timestamp", "price", "size", "side", "trade_id"]].reset_index(drop=True)


def gds_rows(trades: pd.DataFrame) -> list[tuple[Any, ...]]:
    return trade_rows(trades, exchange="BITFLYER_BTC_JPY", volume_currency="BTC", price_currency="JPY")


@pytest.mark.parametrize("short", ["1m", "5m"])
def test_the_gds_feed_hands_over_the_bars_of_its_trades_with_vwap_and_counts(
    mariadb: LocalMariaDB, gds_database: str, executions: pd.DataFrame, tmp_path: Path, short: str
) -> None:
    resolution = as_resolution(short)
    connection = mariadb.connect(gds_database)
    create_gds_tables(connection)
    rows = gds_rows(executions)
    url = mariadb.url(gds_database)
    store = MarketStore(tmp_path / "live")
    series = [("bitflyer", "btc_jpy", bars_kind(resolution))]
    stop = threading.Event()
    pushes: list[dict[str, Any]] = []

    def follow() -> None:
        for push in gds_pushes(store, series, url, resolution, pd.Timedelta("30min"), poll=0.05, stop=stop):
            pushes.append(push)

    thread = threading.Thread(target=follow)
    thread.start()
    try:
        for part in np.array_split(np.arange(len(rows)), 5):  # the table fills while the feed reads it
            insert_trades(connection, [rows[i] for i in part])
            time.sleep(0.3)
        offline_store = MarketStore(tmp_path / "offline")
        ingest_gds(offline_store, url)  # the offline bars: the same GDS trades, read once
        offline = offline_store.bars("bitflyer", "btc_jpy", resolution).iloc[:-1]  # the last bar still forms
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            live_events = [e for p in pushes if not p.get("warm") for e in p["events"]]
            if len(live_events) >= len(offline):
                break
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(timeout=60)
        connection.close()
    assert not thread.is_alive()
    assert pushes[0].get("warm") and all(not p.get("warm") for p in pushes[1:])
    live = as_bars([e for p in pushes[1:] for e in p["events"]], resolution)[("bitflyer", "btc_jpy")]
    assert offline["vwap"].notna().all() and (offline["trades"] > 0).all()
    same_bars(live, offline)


def test_a_bar_whose_last_minute_never_comes_closes_by_the_wall_clock_with_a_grace(
    minute_store: MarketStore, tmp_path: Path
) -> None:
    """Coinbase stores no minute in which nothing traded: 2023-03-04 21:59 is missing, so the 5-minute bar
    of 21:55 closes by the data only once 22:00 is stored. With ``grace`` the wall clock closes it."""
    resolution = as_resolution("5m")
    lo, cut = pd.Timestamp("2023-03-04T21:00Z"), pd.Timestamp("2023-03-04T22:00Z")
    assert (
        pd.Timestamp("2023-03-04T21:59Z")
        not in minute_store.read("coinbase", "btc_usd", "bars_1m", lo, cut).index
    )
    series = [("coinbase", "btc_usd", "bars_5m")]
    offline = minute_store.bars("coinbase", "btc_usd", resolution, lo, cut)
    assert offline.index[-1] == pd.Timestamp("2023-03-04T21:55Z")
    for grace, bars in ((None, len(offline) - 1), (pd.Timedelta("30s"), len(offline))):
        store = MarketStore(tmp_path / f"store_{grace is None}")
        store.write(minute_store.read("coinbase", "btc_usd", "bars_1m", lo, cut), exchange="coinbase",
                    pair="btc_usd", kind="bars_1m")  # fmt: skip
        stop = threading.Event()
        feed = store_pushes(store, series, resolution, lo, poll=0.01, stop=stop, grace=grace)
        events = next(feed) + next(feed)
        stop.set()
        live = as_bars(events, resolution)[("coinbase", "btc_usd")]
        same_bars(live, offline.iloc[:bars])


def test_a_store_feed_stopped_inside_a_coarse_bar_goes_on_after_the_last_bar_it_gave(
    minute_store: MarketStore, tmp_path: Path
) -> None:
    """Stopped while the 5-minute bar of 06:10 forms (06:10 .. 06:12 stored), restarted after the last
    bar handed over (as the command restarts after the newest prediction in redis): 06:10 comes once,
    whole, and nothing before it comes again."""
    resolution = as_resolution("5m")
    store = MarketStore(tmp_path / "growing")
    write_bars(minute_store, store, T0 - pd.Timedelta("1h"), T0 + pd.Timedelta("13min"), as_resolution("1m"))
    series = [(exchange, pair, bars_kind(resolution)) for exchange, pair in MARKETS]
    stop = threading.Event()
    before = next(store_pushes(store, series, resolution, T0, poll=0.01, stop=stop))
    stop.set()
    last = max(parse_event(e, resolution).stamp for e in before)
    assert pd.Timestamp(last, tz="UTC") == T0 + pd.Timedelta("5min")  # 06:10 is forming: held back
    write_bars(
        minute_store, store, T0 + pd.Timedelta("13min"), T0 + pd.Timedelta("31min"), as_resolution("1m")
    )
    restart = pd.Timestamp(last, tz="UTC") + resolution.offset
    after = next(store_pushes(store, series, resolution, restart, poll=0.01, stop=threading.Event()))
    live = as_bars(before + after, resolution)
    for exchange, pair in MARKETS:
        same_bars(
            live[(exchange, pair)],
            minute_store.bars(exchange, pair, resolution, T0, T0 + pd.Timedelta("30min")),
        )
