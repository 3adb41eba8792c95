"""A real MariaDB for the GDS tests: the machine's (127.0.0.1:3306, root without a password) when it
answers, else a private ``mariadbd`` started here on a free port with a throw-away data directory
(``ATLAS_TEST_MARIADB=start`` forces that). Each test database gets a unique name and is dropped after.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql
import pytest


@dataclass(frozen=True)
class MariaDB:
    """A MariaDB server on 127.0.0.1 where ``root`` logs in without a password."""

    host: str
    port: int

    def connect(self, database: str | None = None, **options: Any) -> Any:
        return pymysql.connect(
            host=self.host, port=self.port, user="root", password="", database=database, **options
        )

    def url(self, database: str, user: str = "root", password: str = "") -> str:
        secret = f":{password}" if password else ""
        return f"mysql://{user}{secret}@{self.host}:{self.port}/{database}"


def _answers(host: str, port: int) -> bool:
    try:
        pymysql.connect(host=host, port=port, user="root", password="", connect_timeout=3).close()
    except (pymysql.err.MySQLError, OSError):
        return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDB]:
    if os.environ.get("ATLAS_TEST_MARIADB") != "start" and _answers("127.0.0.1", 3306):
        yield MariaDB("127.0.0.1", 3306)
        return
    server, install = shutil.which("mariadbd") or "/usr/sbin/mariadbd", shutil.which("mariadb-install-db")
    if install is None or not Path(server).exists():
        pytest.fail("MariaDB is not installed: run `apt-get install mariadb-server` (scripts/services.sh)")
    datadir = Path(tempfile.mkdtemp(prefix="atlas-mariadb-"))
    user = ["--user=root"] if os.geteuid() == 0 else []
    subprocess.run(
        [
            install,
            "--no-defaults",
            f"--datadir={datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            *user,
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = _free_port()
    process = subprocess.Popen(
        [
            server,
            "--no-defaults",
            f"--datadir={datadir}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--socket={datadir}/mysqld.sock",
            f"--pid-file={datadir}/mysqld.pid",
            "--skip-log-bin",
            *user,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not _answers("127.0.0.1", port):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mariadbd did not start on 127.0.0.1:{port} (exit {process.poll()})")
            time.sleep(0.2)
        yield MariaDB("127.0.0.1", port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(datadir, ignore_errors=True)


@pytest.fixture
def gds_database(mariadb: MariaDB) -> Iterator[str]:
    """A new, empty database with a unique name (dropped at the end)."""
    name = f"atlas_gds_test_{uuid.uuid4().hex[:10]}"
    admin = mariadb.connect(autocommit=True)
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name}")
        yield name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.close()
