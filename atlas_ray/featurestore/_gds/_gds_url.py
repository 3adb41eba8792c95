"""Where a Gryphon Data Service (GDS) database is and how to log in: ``mysql://USER:PASS@HOST[:PORT]/DB``.

The URL comes from the command line, else from ``$ATLAS_GDS_URL``. A part the URL leaves out (the
password above all: a password on a command line shows in the process list and the shell history) comes
from an option file in the MySQL client's format (``~/.my.cnf`` style, its ``[client]`` section: ``user``,
``password``, ``host``, ``port``, ``database``) when one is given; the user defaults to the login name
and the port to 3306.

The password is never printed: ``GdsUrl.masked`` (``mysql://USER:***@HOST:PORT/DB``) is the only form
any message shows, and ``repr`` leaves the password out.
"""

from __future__ import annotations

import configparser
import getpass
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from atlas_ray.errors import IngestError

__all__ = ["ENV_URL", "GdsUrl", "mask_url", "parse_gds_url"]

ENV_URL = "ATLAS_GDS_URL"
DEFAULT_PORT = 3306
_SCHEMES = ("mysql", "mariadb")
_SECRET = re.compile(r"(//[^/@:]*:)[^@/]*@")


@dataclass(frozen=True)
class GdsUrl:
    """A parsed GDS location; ``password`` stays out of ``repr`` and of every message."""

    user: str
    host: str
    port: int
    database: str
    password: str = field(default="", repr=False)

    @property
    def masked(self) -> str:
        """The URL as messages show it: ``mysql://USER:***@HOST:PORT/DB`` (no ``:***`` without one)."""
        secret = ":***" if self.password else ""
        return f"mysql://{self.user}{secret}@{self.host}:{self.port}/{self.database}"

    @property
    def key(self) -> str:
        """A file-name-safe name of the database (no user, no password): ``HOST_PORT_DB``."""
        return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{self.host}_{self.port}_{self.database}")


def mask_url(text: str) -> str:
    """``text`` with any ``//USER:PASSWORD@`` password replaced by ``***`` (for text not yet parsed)."""
    return _SECRET.sub(r"\1***@", text)


def parse_gds_url(
    url: str | None,
    *,
    option_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> GdsUrl:
    """The GDS location from ``url`` (else ``$ATLAS_GDS_URL``), parts it lacks from ``option_file``."""
    env = os.environ if environ is None else environ
    text = url if url else env.get(ENV_URL, "")
    if not text:
        raise IngestError(f"gds: no database given: pass mysql://USER:PASS@HOST[:PORT]/DB or set ${ENV_URL}")
    shown = mask_url(text)
    parts = urlsplit(text)
    if parts.scheme.lower() not in _SCHEMES:
        raise IngestError(
            f"gds: the URL {shown!r} has the scheme {parts.scheme!r}, but must be mysql://USER:PASS@HOST[:PORT]/DB"
        )
    try:
        port = parts.port
    except ValueError:
        raise IngestError(f"gds: the URL {shown!r} has a port that is not a number in 1..65535") from None
    if parts.query or parts.fragment:
        raise IngestError(
            f"gds: the URL {shown!r} has a '?' or '#' part, but must be mysql://USER:PASS@HOST/DB"
        )
    options = _read_option_file(option_file) if option_file is not None else {}
    database = unquote(parts.path.lstrip("/")) or options.get("database", "")
    if not database or "/" in database:
        raise IngestError(f"gds: the URL {shown!r} names no database, but must end in /DB (one name)")
    host = parts.hostname or options.get("host", "")
    if not host:
        raise IngestError(f"gds: the URL {shown!r} names no host, but must be mysql://USER:PASS@HOST/DB")
    user = unquote(parts.username) if parts.username else options.get("user") or getpass.getuser()
    password = unquote(parts.password) if parts.password is not None else options.get("password", "")
    if port is None:
        port = _option_port(options, option_file) if "port" in options else DEFAULT_PORT
    return GdsUrl(user=user, host=host, port=port, database=database, password=password)


def _read_option_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """The ``[client]`` section of a MySQL option file (values unquoted)."""
    file = Path(path).expanduser()
    parser = configparser.ConfigParser(allow_no_value=True, interpolation=None, strict=False)
    try:
        with file.open(encoding="utf-8") as handle:
            parser.read_file(handle)
    except OSError as error:
        raise IngestError(f"gds: option file {file}: cannot be read ({error.strerror or error})") from None
    except configparser.Error as error:
        first = str(error).splitlines()[0]
        raise IngestError(f"gds: option file {file}: not an option file ({mask_url(first)})") from None
    if not parser.has_section("client"):
        raise IngestError(f"gds: option file {file}: has no [client] section, but must (like ~/.my.cnf)")
    values = {}
    for key, value in parser.items("client"):
        text = (value or "").strip()
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
            text = text[1:-1]
        values[key.replace("-", "_")] = text
    return values


def _option_port(options: Mapping[str, str], path: str | os.PathLike[str] | None) -> int:
    text = options["port"]
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise IngestError(f"gds: option file {path}: port is {text!r}, but must be a number in 1..65535")
    return int(text)
