"""A real MariaDB to try the GDS ingest on (tests, benchmarks): the machine's at 127.0.0.1:3306 when
``root`` logs in there without a password, else a private ``mariadbd`` on a free 127.0.0.1 port with a
throw-away data directory, stopped and removed afterwards (``ATLAS_TEST_MARIADB=start`` forces that).
Needs Debian's ``mariadb-server`` (``mariadbd``, ``mariadb-install-db``) for the private server.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql

__all__ = ["LocalMariaDB", "local_mariadb"]


@dataclass(frozen=True)
class LocalMariaDB:
    """A MariaDB server on ``host``:``port`` where ``root`` logs in without a password."""

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


@contextlib.contextmanager
def local_mariadb(start_timeout: float = 60.0) -> Iterator[LocalMariaDB]:
    """The machine's MariaDB, else a private one for the duration of the block (see the module)."""
    if os.environ.get("ATLAS_TEST_MARIADB") != "start" and _answers("127.0.0.1", 3306):
        yield LocalMariaDB("127.0.0.1", 3306)
        return
    server = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
    install = shutil.which("mariadb-install-db")
    if install is None or not Path(server).exists():
        raise RuntimeError(
            "No MariaDB answers on 127.0.0.1:3306 and none is installed to start: "
            "apt-get install mariadb-server (see scripts/services.sh)"
        )
    datadir = Path(tempfile.mkdtemp(prefix="atlas-mariadb-"))
    user = ["--user=root"] if os.geteuid() == 0 else []
    process: subprocess.Popen[bytes] | None = None
    try:
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
        deadline = time.monotonic() + start_timeout
        while not _answers("127.0.0.1", port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mariadbd did not start on 127.0.0.1:{port} (exit {process.poll()})")
            time.sleep(0.2)
        yield LocalMariaDB("127.0.0.1", port)
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(datadir, ignore_errors=True)
