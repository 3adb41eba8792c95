"""The Gryphon Data Service into the store, against a real MariaDB filled with real market data:
bitFlyer executions as GDS ``trade`` rows, Bitstamp order books (rebuilt from the order events) as GDS
``orderbook`` rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from atlas_ray._cli import run_cli
from atlas_ray.errors import IngestError
from atlas_ray.featurestore import MarketStore
from atlas_ray.featurestore.__main__ import main
from atlas_ray.featurestore._formats import read_source
from atlas_ray.featurestore._gds._gds import GdsRound, follow, follow_bars, ingest_gds, new_bars
from atlas_ray.featurestore._gds._gds_schema import (
    GDS_TABLES,
    book_rows,
    create_gds_tables,
    insert_books,
    insert_trades,
    trade_rows,
)
from atlas_ray.featurestore._gds._gds_testing import LocalMariaDB as MariaDB
from atlas_ray.featurestore._gds._gds_url import parse_gds_url
from atlas_ray.featurestore._gds._gds_watermark import StateFile, Watermark
from atlas_ray.featurestore._store._ingest import validate
from atlas_ray.featurestore._store._orderbook import book_snapshots

pytestmark = pytest.mark.slow  # starts MariaDB: not in scripts/test.sh --quick

ROOT = Path(__file__).resolve().parents[2]
TRADES = 12_000
SNAPSHOTS = 120


# ----------------------------------------------------------------------------------------- data
@pytest.fixture(scope="module")
def bitflyer_trades(data_dir: Path) -> pd.DataFrame:
    """The first real bitFlyer executions of 2018-01-21, as the store holds trades."""
    source = read_source(data_dir / "bitflyer_2018-01" / "bitflyer.execution.20180121.BTC_JPY.csv.gz")
    frame, _ = validate(source)
    return frame.iloc[:TRADES][["timestamp", "price", "size", "side", "trade_id"]].reset_index(drop=True)


@pytest.fixture(scope="module")
def bitstamp_book(data_dir: Path) -> pd.DataFrame:
    """Real Bitstamp order books: the first snapshots rebuilt from the 2015-05-01 order events."""
    source = read_source(data_dir / "bitstamp_orders_2015-05-01" / "orders.csv.xz")
    events, _ = validate(source)
    book = book_snapshots(events)
    times = np.sort(book["timestamp"].unique())[:SNAPSHOTS]
    return book.loc[book["timestamp"].isin(times)].reset_index(drop=True)


def _trades_rows(trades: pd.DataFrame) -> list[tuple[Any, ...]]:
    return trade_rows(trades, exchange="BITFLYER_BTC_JPY", volume_currency="BTC", price_currency="JPY")


@pytest.fixture
def gds(mariadb: MariaDB, gds_database: str) -> Iterator[Any]:
    """A connection to an empty GDS-schema database."""
    connection = mariadb.connect(gds_database)
    create_gds_tables(connection)
    yield connection
    connection.close()


def _stored(store: MarketStore) -> dict[str, pd.DataFrame]:
    return {
        "trades": store.read("bitflyer", "btc_jpy", "trades").reset_index(),
        "bars": store.bars("bitflyer", "btc_jpy", "1m"),
        "book": store.book("bitstamp", "btc_usd").reset_index(),
        "quotes": store.quotes("bitstamp", "btc_usd").reset_index(),
    }


# -------------------------------------------------------------------------------- follow, restart
class _Follower:
    """``follow`` in a thread, keeping every round."""

    def __init__(self, store: MarketStore, url: str) -> None:
        self.stop = threading.Event()
        self.rounds: list[GdsRound] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(store, url), daemon=True)
        self._thread.start()

    def _run(self, store: MarketStore, url: str) -> None:
        try:
            for round in follow(store, url, interval=0.05, stop=self.stop):
                self.rounds.append(round)
        except BaseException as error:  # handed to the test thread
            self.error = error

    def read(self, table: str) -> int:
        return sum(r.rows_read for rnd in self.rounds for r in rnd.reports if r.file == f"gds:{table}")

    def wait(self, trades: int, books: int, timeout: float = 30.0) -> None:
        """Until ``trades`` / ``books`` rows have been read, then two rounds more (a row read twice
        would show there)."""
        deadline = time.monotonic() + timeout
        while self.read("trade") < trades or self.read("orderbook") < books:
            assert self.error is None, self.error
            assert time.monotonic() < deadline, (self.read("trade"), self.read("orderbook"), trades, books)
            time.sleep(0.02)
        seen = len(self.rounds)
        while len(self.rounds) < seen + 2:
            assert self.error is None, self.error
            assert time.monotonic() < deadline
            time.sleep(0.02)

    def close(self) -> None:
        self.stop.set()
        self._thread.join(timeout=30)
        assert not self._thread.is_alive()
        assert self.error is None, self.error


def _unique_second(trades: pd.DataFrame) -> int:
    """A trade in the middle of the slice that is alone in its second (GDS keeps whole seconds), so
    where a late commit lands among trades of one second cannot change a bar."""
    seconds = pd.DatetimeIndex(trades["timestamp"]).floor("s")
    counts = seconds.value_counts()
    alone = np.flatnonzero(seconds.isin(counts.index[counts == 1]))
    return int(alone[len(alone) // 2])


def _fill_while_following(
    store: MarketStore,
    url: str,
    gds: Any,
    held: Any,
    late: tuple[Any, ...],
    trades: list[tuple[Any, ...]],
    chunks: list[list[int]],
    books: list[tuple[Any, ...]],
    followers: list[_Follower],
) -> None:
    """Insert the rows in batches while ``follow`` runs, with one late commit and one restart."""
    followers.append(_Follower(store, url))
    insert_trades(gds, [trades[i] for i in chunks[0]])
    insert_books(gds, books[:50])
    # A row whose id is handed out now but which commits only after later rows: the watermark keeps
    # the hole and the row is read once it commits.
    with held.cursor() as cursor:
        cursor.execute(
            "INSERT INTO trade (unique_id, exchange, `timestamp`, time_created, exchange_trade_id, source,"
            " price, price_currency, volume, volume_currency) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            late,
        )
        cursor.execute("SELECT LAST_INSERT_ID()")
        late_id = int(cursor.fetchone()[0])
    insert_trades(gds, [trades[i] for i in chunks[1]])
    followers[0].wait(len(chunks[0]) + len(chunks[1]), 50)
    followers[0].close()
    marks = StateFile(store.root, parse_gds_url(url).key, "").load()
    assert any(low <= late_id <= high for low, high in marks["trade"]["*"].holes)

    # Restart: a new follower goes on from the watermark kept in the store.
    followers.append(_Follower(store, url))
    held.commit()
    insert_trades(gds, [trades[i] for i in chunks[2]])
    insert_books(gds, books[50:])
    insert_trades(gds, [trades[i] for i in chunks[3]])
    followers[1].wait(len(trades) + 1 - followers[0].read("trade"), len(books) - 50)
    followers[1].close()


@pytest.mark.slow
def test_follow_while_gds_fills_equals_one_shot_ingest(
    mariadb: MariaDB,
    gds_database: str,
    gds: Any,
    bitflyer_trades: pd.DataFrame,
    bitstamp_book: pd.DataFrame,
    tmp_path: Path,
) -> None:
    url = mariadb.url(gds_database)
    trades = _trades_rows(bitflyer_trades)
    late = trades.pop(_unique_second(bitflyer_trades))
    chunks = [list(c) for c in np.array_split(np.arange(len(trades)), 4)]
    books = book_rows(bitstamp_book, exchange="BITSTAMP_BTC_USD")
    store = MarketStore(tmp_path / "followed")

    held = mariadb.connect(gds_database)
    followers: list[_Follower] = []
    try:
        _fill_while_following(store, url, gds, held, late, trades, chunks, books, followers)
    finally:
        held.close()  # an open transaction would block dropping the database
        for follower in followers:
            follower.stop.set()
    first, second = followers

    # Every GDS row read exactly once over both runs, none rejected.
    rounds = first.rounds + second.rounds
    assert first.read("trade") + second.read("trade") == len(trades) + 1
    assert first.read("orderbook") + second.read("orderbook") == len(books)
    assert all(r.rows_rejected == 0 for rnd in rounds for r in rnd.reports)
    written = [r.written for rnd in rounds for r in rnd.reports]
    assert sum(w.get("trades", 0) for w in written) == TRADES
    assert sum(w.get("book", 0) for w in written) == len(bitstamp_book)

    # The store ends equal to a one-shot ingest of the same rows into a new store.
    once = MarketStore(tmp_path / "once")
    round = ingest_gds(once, url)
    assert round.rows_read == len(trades) + 1 + len(books)
    followed, expected = _stored(store), _stored(once)
    for kind, frame in expected.items():
        pd.testing.assert_frame_equal(followed[kind], frame, obj=kind)
    # ... and equal to the real data that went in.
    assert len(expected["trades"]) == TRADES
    pd.testing.assert_frame_equal(
        expected["book"].sort_values(["timestamp", "side", "level"], ignore_index=True),
        bitstamp_book.sort_values(["timestamp", "side", "level"], ignore_index=True)[list(expected["book"])],
        check_dtype=False,
    )

    # What the live model gets: each round's new trades, and the closed bars they touched.
    new = pd.concat([t for rnd in rounds for t in rnd.trades.values()])
    assert len(new) == TRADES
    last = next(rnd for rnd in reversed(rounds) if rnd.trades)
    bars = new_bars(store, last, "1m")[("bitflyer", "btc_jpy")]
    stored_bars = expected["bars"]
    assert len(bars) >= 1 and bars.index[-1] == stored_bars.index[-2]
    pd.testing.assert_frame_equal(bars, stored_bars.loc[bars.index])


def test_follow_bars_gives_each_closed_bar_once(
    mariadb: MariaDB, gds_database: str, gds: Any, bitflyer_trades: pd.DataFrame, tmp_path: Path
) -> None:
    rows = _trades_rows(bitflyer_trades.iloc[:3000])
    store, stop = MarketStore(tmp_path / "store"), threading.Event()
    given: list[pd.DataFrame] = []
    feed = follow_bars(store, mariadb.url(gds_database), interval=0.05, stop=stop)
    for part in np.array_split(np.arange(len(rows)), 3):
        insert_trades(gds, [rows[i] for i in part])
        for bars in next(feed).values():  # a round after each batch
            given.append(bars)
    stop.set()
    feed.close()
    got = pd.concat(given)
    stored = store.bars("bitflyer", "btc_jpy", "1m")
    assert got.index.is_unique and len(got) == len(stored) - 1  # all but the bar still open
    pd.testing.assert_frame_equal(got, stored.iloc[:-1])


# ----------------------------------------------------------------------------- lost connection
def test_lost_connection_mid_read_resumes_from_the_watermark(
    mariadb: MariaDB, gds_database: str, gds: Any, bitflyer_trades: pd.DataFrame, tmp_path: Path
) -> None:
    rows = _trades_rows(bitflyer_trades.iloc[:5000])
    insert_trades(gds, rows)
    admin = mariadb.connect(autocommit=True)
    killed: list[int] = []

    def kill_the_reader(report: object) -> None:
        if killed:
            return
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND ID NOT IN (%s, %s)",
                (gds_database, admin.thread_id(), gds.thread_id()),
            )
            for (reader,) in cursor.fetchall():
                cursor.execute(f"KILL CONNECTION {int(reader)}")
                killed.append(int(reader))

    store = MarketStore(tmp_path / "store")
    round = ingest_gds(store, mariadb.url(gds_database), trade_batch=1000, progress=kill_the_reader)
    admin.close()
    assert len(killed) == 1
    assert round.reconnects == 1
    (report,) = [r for r in round.reports if r.file == "gds:trade"]
    assert report.rows_read == 5000 and report.rows_written == 5000 and report.rows_rejected == 0
    assert len(store.read("bitflyer", "btc_jpy", "trades")) == 5000


# ---------------------------------------------------------------------------- what rows become
def test_rows_map_to_store_names_and_bad_rows_are_counted(
    mariadb: MariaDB, gds_database: str, gds: Any, bitflyer_trades: pd.DataFrame, tmp_path: Path
) -> None:
    rows = _trades_rows(bitflyer_trades.iloc[:100])
    bad_price = (*rows[10][:6], "-5", *rows[10][7:])
    no_currency = (*rows[11][:7], None, *rows[11][8:])
    rows[10], rows[11] = bad_price, no_currency
    legacy = [(*row[:1], "BITFLYER", *row[2:]) for row in _trades_rows(bitflyer_trades.iloc[100:110])]
    insert_trades(gds, rows + legacy)
    good = json.dumps([["100.5", "1.0", ""], ["100.5", "2.0", ""], ["99", "0.5", ""]])
    asks = json.dumps([["101", "0.25", ""], ["-1", "3", ""]])
    insert_books(
        gds,
        [
            (uuid.uuid4().hex, "KRAKEN_BTC_EUR", "2018-01-21 00:00:00", "2018-01-21 00:00:00", good, asks),
            (uuid.uuid4().hex, "KRAKEN_BTC_EUR", "2018-01-21 00:00:01", "2018-01-21 00:00:01", "{bad", asks),
        ],
    )
    store = MarketStore(tmp_path / "store")
    round = ingest_gds(store, mariadb.url(gds_database))
    assert round.skipped == 1
    trades = {(r.exchange, r.pair): r for r in round.reports if r.file == "gds:trade"}
    assert set(trades) == {("bitflyer", "btc_jpy")}  # BITFLYER_BTC_JPY and BITFLYER, BTC in JPY
    assert trades["bitflyer", "btc_jpy"].rows_read == 109
    assert trades["bitflyer", "btc_jpy"].rejected["bad_price"] == 1
    assert trades["bitflyer", "btc_jpy"].rows_written == 108
    (book,) = [r for r in round.reports if r.file == "gds:orderbook"]
    assert (book.exchange, book.pair, book.rows_read) == ("kraken", "btc_eur", 2)
    assert book.rejected["unparseable"] == 1 and book.rejected["bad_price"] == 1
    stored = store.book("kraken", "btc_eur").reset_index()
    assert stored[["side", "level", "price", "size"]].values.tolist() == [
        ["bid", 0, 100.5, 3.0],
        ["bid", 1, 99.0, 0.5],
        ["ask", 0, 101.0, 0.25],
    ]
    assert store.quotes("kraken", "btc_eur").iloc[0].tolist() == [100.5, 3.0, 101.0, 0.25]


def test_exchange_choice_keeps_its_own_watermark(
    mariadb: MariaDB,
    gds_database: str,
    gds: Any,
    bitflyer_trades: pd.DataFrame,
    bitstamp_book: pd.DataFrame,
    tmp_path: Path,
) -> None:
    insert_trades(gds, _trades_rows(bitflyer_trades.iloc[:300]))
    insert_books(gds, book_rows(bitstamp_book, exchange="BITSTAMP_BTC_USD")[:5])
    url, store = mariadb.url(gds_database), MarketStore(tmp_path / "store")
    only_book = ingest_gds(store, url, exchanges=["bitstamp"], trade_batch=100, book_batch=2)
    assert {r.exchange for r in only_book.reports} == {"bitstamp"} and only_book.rows_read == 5
    assert store.exchanges() == ["bitstamp"]
    everything = ingest_gds(store, url)
    assert everything.rows_read == 305
    assert len(store.read("bitflyer", "btc_jpy", "trades")) == 300


# ------------------------------------------------------------------------------------ the CLI
def test_cli_password_from_env_or_option_file_never_printed(
    mariadb: MariaDB, gds_database: str, gds: Any, bitflyer_trades: pd.DataFrame, tmp_path: Path
) -> None:
    insert_trades(gds, _trades_rows(bitflyer_trades.iloc[:200]))
    user, password = f"atlas_{uuid.uuid4().hex[:8]}", f"Pw-{uuid.uuid4().hex[:12]}"
    admin = mariadb.connect(autocommit=True)
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
        cursor.execute(f"GRANT SELECT ON {gds_database}.* TO '{user}'@'%'")
    try:
        store = tmp_path / "store"
        env = {**os.environ, "ATLAS_GDS_URL": mariadb.url(gds_database, user, password)}
        first = subprocess.run(
            [sys.executable, "-m", "atlas_ray.featurestore", "ingest", "--gds", "--store", str(store)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=120,
            check=False,
        )
        assert first.returncode == 0, first.stderr
        assert password not in first.stdout + first.stderr
        assert "gds:trade: gds_trade -> bitflyer/btc_jpy trades" in first.stdout
        assert "read 200, written 200" in first.stdout
        options = tmp_path / "my.cnf"
        options.write_text(f'[client]\nuser = {user}\npassword = "{password}"\n')
        again = subprocess.run(
            [
                sys.executable,
                "-m",
                "atlas_ray.featurestore",
                "ingest",
                mariadb.url(gds_database).replace("root@", ""),
                "--gds",
                "--gds-option-file",
                str(options),
                "--store",
                str(store),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
            check=False,
        )
        assert again.returncode == 0, again.stderr
        assert again.stdout.strip() == (
            f"gds mysql://{user}:***@{mariadb.host}:{mariadb.port}/{gds_database}: "
            "nothing new past the watermark"
        )
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP USER '{user}'@'%'")
        admin.close()


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = run_cli(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://root:Secret-77@127.0.0.1/x", "has the scheme 'http', but must be mysql://"),
        ("mysql://root:Secret-77@127.0.0.1:1/x", "cannot connect to 127.0.0.1:1 (Connection refused)"),
        ("mysql://root:Secret-77@127.0.0.1:{port}/{db}", "access denied for user 'root'"),
        ("mysql://root@127.0.0.1:{port}/no_such_gds_db_x", "the database 'no_such_gds_db_x' does not"),
        ("mysql://root@127.0.0.1:{port}/{db}", "the table 'orderbook' is missing"),
    ],
)
def test_cli_mistakes_are_one_line_exit_2_without_the_password(
    mariadb: MariaDB,
    gds_database: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    url: str,
    expected: str,
) -> None:
    with mariadb.connect(gds_database) as connection, connection.cursor() as cursor:
        cursor.execute(GDS_TABLES[0])  # only ``trade``
    store = tmp_path / "store"
    target = url.format(port=mariadb.port, db=gds_database)
    code, out, err = _cli(capsys, "ingest", target, "--gds", "--store", str(store))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: gds")
    assert expected in err
    assert "Secret-77" not in err
    assert not store.exists()


def test_cli_without_url_or_pair(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATLAS_GDS_URL", raising=False)
    code, _, err = _cli(capsys, "ingest", "--gds")
    assert code == 2 and "no database given" in err
    # Without --pair a file is ingested if it names its pair (``_file_market``); this one is missing.
    code, _, err = _cli(capsys, "ingest", "some.csv", "--exchange", "x")
    assert code == 2 and err == "error: ingest: some.csv: no such file\n"


def test_order_book_without_a_pair_names_the_row(
    mariadb: MariaDB, gds_database: str, gds: Any, tmp_path: Path
) -> None:
    book = json.dumps([["100", "1", ""]])
    insert_books(
        gds, [(uuid.uuid4().hex, "BITSTAMP", "2018-01-21 00:00:00", "2018-01-21 00:00:00", book, book)]
    )
    store = MarketStore(tmp_path / "store")
    with pytest.raises(IngestError, match=r"orderbook row 1: the exchange 'BITSTAMP' names no pair"):
        ingest_gds(store, mariadb.url(gds_database))
    round = ingest_gds(store, mariadb.url(gds_database), pair="btc_usd")
    assert [(r.exchange, r.pair, r.rows_written) for r in round.reports] == [("bitstamp", "btc_usd", 3)]


# ------------------------------------------------------------------------- URL and watermark
def test_url_parts_password_sources_and_masking(tmp_path: Path) -> None:
    url = parse_gds_url("mysql://gryphon:p%40ss@db.example:3307/gds")
    assert (url.user, url.password, url.host, url.port, url.database) == (
        "gryphon",
        "p@ss",
        "db.example",
        3307,
        "gds",
    )
    assert url.masked == "mysql://gryphon:***@db.example:3307/gds"
    assert "p@ss" not in repr(url)
    from_env = parse_gds_url(None, environ={"ATLAS_GDS_URL": "mysql://u:envpw@h/d"})
    assert (from_env.password, from_env.port) == ("envpw", 3306)
    options = tmp_path / "my.cnf"
    options.write_text("[client]\nuser=filed\npassword='from file'\nport=3310\n")
    from_file = parse_gds_url("mysql://h/d", option_file=options)
    assert (from_file.user, from_file.password, from_file.port) == ("filed", "from file", 3310)
    with pytest.raises(IngestError, match=r"names no database") as error:
        parse_gds_url("mysql://u:hidden@h")
    assert "hidden" not in str(error.value) and "u:***@h" in str(error.value)
    with pytest.raises(IngestError, match="no \\[client\\] section"):
        (tmp_path / "bad.cnf").write_text("[mysqld]\nport=1\n")
        parse_gds_url("mysql://h/d", option_file=tmp_path / "bad.cnf")


def test_watermark_holes_wait_for_late_commits_then_settle() -> None:
    mark = Watermark().advance([1, 2, 3, 5, 6, 9], now=100.0, settle=60.0)
    assert (mark.high, mark.holes) == (9, ((4, 4), (7, 8)))
    assert mark.where("id") == ("(id > %s OR id BETWEEN %s AND %s OR id BETWEEN %s AND %s)", [9, 4, 4, 7, 8])
    mark = mark.advance([4, 10], now=130.0, settle=60.0)  # 4 committed late
    assert (mark.high, mark.holes) == (10, ((7, 8),))
    mark = mark.settle(now=161.0, settle=60.0)  # 7 and 8 never came: given up
    assert (mark.high, mark.holes, mark.marks) == (10, (), ())
    assert Watermark.from_json(json.loads(json.dumps(mark.to_json())), "x") == mark


def test_readers_beside_a_file_ingest_lose_no_row_and_keep_both_watermarks(
    mariadb: MariaDB,
    gds_database: str,
    gds: Any,
    bitflyer_trades: pd.DataFrame,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    """Two GDS readers (all exchanges, and bitflyer alone) and a file ingest write one day's trades at
    once: every row of both sources is kept, and each reader's watermark is its own (before the
    writer lock, a reader's page and the file's rows overwrote each other while the watermark moved on)."""
    from_gds = bitflyer_trades.iloc[:3000]
    insert_trades(gds, _trades_rows(from_gds))
    raw = pd.read_csv(
        data_dir / "bitflyer_2018-01" / "bitflyer.execution.20180121.BTC_JPY.csv.gz",
        dtype=str,
        keep_default_na=False,
        nrows=TRADES,
    )
    raw = raw.loc[~raw["id"].isin(from_gds["trade_id"]) & (raw["exec_date"] != "")].iloc[:3000]
    files = []
    for index in range(10):
        files.append(tmp_path / f"executions_{index}.csv.gz")
        raw.iloc[index * 300 : (index + 1) * 300].to_csv(files[-1], index=False)
    store = MarketStore(tmp_path / "store")
    url = mariadb.url(gds_database)
    ingest = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "atlas_ray.featurestore",
            "ingest",
            *map(str, files),
            "--store",
            str(store.root),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    errors: list[BaseException] = []

    def read(exchanges: list[str] | None) -> None:
        try:
            ingest_gds(store, url, exchanges=exchanges, trade_batch=100)
        except BaseException as error:  # handed to the test thread
            errors.append(error)

    readers = [threading.Thread(target=read, args=(choice,)) for choice in (None, ["bitflyer"])]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(timeout=300)
    _, err = ingest.communicate(timeout=300)
    assert ingest.returncode == 0, err
    assert errors == []
    stored = store.read("bitflyer", "btc_jpy", "trades")
    assert stored["trade_id"].is_unique
    assert set(stored["trade_id"]) == set(from_gds["trade_id"]) | set(raw["id"])
    marks = StateFile(store.root, parse_gds_url(url).key, "").load()["trade"]
    assert set(marks) == {"*", "bitflyer"}
    assert marks["*"].high == marks["bitflyer"].high > 0
