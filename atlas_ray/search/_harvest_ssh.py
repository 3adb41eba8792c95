"""The SSH side of the harvest: the ``ssh://`` URL, host-key policy and client keys (asyncssh).

Host keys: the host must be in ``known_hosts`` (default ``~/.ssh/known_hosts``); an unknown host is
refused unless ``accept_new_host`` (trust on first use: its key is appended to ``known_hosts``, and the
connection is then checked against that record); a changed host key is always refused. Client keys
come from ``key``, the SSH agent, or ``~/.ssh``; a passphrase or password is asked for without echo,
only on a terminal, and never printed.
"""

from __future__ import annotations

import asyncio
import functools
import getpass
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from atlas_ray.errors import AtlasError

with warnings.catch_warnings():
    # asyncssh still imports DSA, which cryptography >= 46 deprecates on import: noise for a user of
    # `harvest`, not a fault of theirs (the SSH code never offers or accepts DSA keys)
    warnings.filterwarnings("ignore", message="DSA is deprecated")
    import asyncssh

__all__ = [
    "CHUNK",
    "DEFAULT_KNOWN_HOSTS",
    "HarvestError",
    "HarvestOptions",
    "HarvestUnreachableError",
    "Target",
    "connect",
    "parse_target",
]

DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
CHUNK = 256 * 1024


class HarvestError(AtlasError):
    """The harvest cannot start: a bad URL, an unknown or changed host key, no accepted key, no
    experiment at the path. The command line exits with status 2."""


class HarvestUnreachableError(HarvestError):
    """The head cannot be reached (refused, no route, name unknown); ``--watch`` tries again."""


@dataclass(frozen=True)
class Target:
    """Where the experiment is: ``ssh://[USER@]HOST[:PORT]/PATH``. ``path`` is what SFTP is given: an
    absolute path, or a path relative to the remote home for ``ssh://host/~/PATH``."""

    host: str
    path: str
    port: int = 22
    user: str | None = None

    @property
    def host_port(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        user = f"{self.user}@" if self.user else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        path = self.path if self.path.startswith("/") else f"/~/{self.path}"
        return f"ssh://{user}{host}:{self.port}{path}"


def parse_target(url: str) -> Target:
    """Parse ``ssh://[USER@]HOST[:PORT]/PATH``; a password in the URL is refused (never printed)."""
    parts = urlsplit(url)
    if parts.scheme != "ssh":  # the text is not shown: it could hold a password
        raise HarvestError(
            "the experiment is not an ssh:// URL; give ssh://USER@HOST[:PORT]/PATH/TO/EXPERIMENT "
            "(scp's USER@HOST:PATH is not accepted)"
        )
    if parts.password is not None:
        raise HarvestError(
            "the URL holds a password: remove it (keys come from --key, the SSH agent or ~/.ssh, "
            "and a password is asked for without echo)"
        )
    safe = f"ssh://{parts.hostname or ''}{parts.path}"
    try:
        port = parts.port or 22
    except ValueError as error:
        raise HarvestError(f"{safe}: the port is not a number from 1 to 65535 ({error})") from error
    if not parts.hostname:
        raise HarvestError(f"{url!r} names no host; give ssh://USER@HOST[:PORT]/PATH/TO/EXPERIMENT")
    path = parts.path.rstrip("/")
    if path.startswith("/~/"):
        path = path[3:]
    if not path or path in ("/", "/~"):
        raise HarvestError(f"{safe} names no experiment path; give ssh://HOST/PATH/TO/EXPERIMENT")
    if parts.query or parts.fragment:
        raise HarvestError(f"{safe}: remove the '?' or '#' part of the URL")
    return Target(host=parts.hostname, port=port, path=path, user=parts.username or None)


@dataclass(frozen=True)
class HarvestOptions:
    """Where to put the experiment and how to connect."""

    to: str
    key: str | None = None
    known_hosts: str = DEFAULT_KNOWN_HOSTS
    accept_new_host: bool = False
    models: bool = False
    chunk_size: int = CHUNK

    def __post_init__(self) -> None:
        if self.chunk_size < 1:
            raise ValueError(f"The value of `chunk_size` is {self.chunk_size}, but must be `chunk_size >= 1`")


def _say(line: str) -> None:
    print(line, file=sys.stderr)


class _Client(asyncssh.SSHClient):
    """Asks for a password on a terminal only, without echo, at most three times."""

    def __init__(self, prompt: str) -> None:
        self._prompt = prompt
        self._asked = 0

    async def password_auth_requested(self) -> str | None:  # type: ignore[override]
        if not sys.stdin.isatty() or self._asked >= 3:
            return None
        self._asked += 1
        return await asyncio.to_thread(getpass.getpass, self._prompt)


def _known_hosts_path(options: HarvestOptions) -> str:
    return os.path.abspath(os.path.expanduser(options.known_hosts))


def _host_pattern(target: Target) -> str:
    return target.host if target.port == 22 else f"[{target.host}]:{target.port}"


def _is_known(known_hosts: str, target: Target, addr: str) -> bool:
    """Whether ``known_hosts`` holds any key (or CA) for the host, by name or address."""
    if not os.path.isfile(known_hosts):
        return False
    try:
        matched = asyncssh.match_known_hosts(known_hosts, target.host, addr, target.port)
    except (ValueError, OSError) as error:
        raise HarvestError(f"{known_hosts} cannot be read as a known_hosts file ({error})") from error
    return bool(matched[0] or matched[1])


def _record_host_key(known_hosts: str, target: Target, key: asyncssh.SSHKey) -> None:
    """Append the host's key to ``known_hosts`` (created 0600 in a 0700 folder when missing)."""
    folder = os.path.dirname(known_hosts)
    if not os.path.isdir(folder):
        os.makedirs(folder, mode=0o700, exist_ok=True)
    algorithm, blob = key.export_public_key("openssh").decode().split()[:2]
    line = f"{_host_pattern(target)} {algorithm} {blob}\n"
    fd = os.open(known_hosts, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as handle:
        if handle.tell() > 0:
            with open(known_hosts, "rb") as existing:
                existing.seek(-1, os.SEEK_END)
                if existing.read(1) != b"\n":
                    handle.write("\n")
        handle.write(line)


def _client_keys(options: HarvestOptions) -> Any:
    """``client_keys`` for asyncssh: the ``--key`` file (its passphrase asked for on a terminal), or
    ``()`` for asyncssh's defaults (the agent and ~/.ssh/id_*)."""
    if options.key is None:
        return ()
    path = os.path.abspath(os.path.expanduser(options.key))
    try:
        return [_read_key(path, os.stat(path).st_mtime_ns, options.key)]
    except OSError as error:
        raise HarvestError(f"--key {options.key}: cannot be read ({error.strerror or error})") from error


@functools.lru_cache(maxsize=8)
def _read_key(path: str, mtime_ns: int, shown: str) -> asyncssh.SSHKey:
    """The private key at ``path`` (its passphrase asked for once, on a terminal); cached by path and
    modification time so that ``--watch`` asks only once."""
    try:
        return asyncssh.read_private_key(path)
    except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as error:
        if "assphrase" not in str(error):
            raise HarvestError(f"--key {shown}: not a private key ({error})") from error
    if not sys.stdin.isatty():
        raise HarvestError(
            f"--key {shown} is encrypted and there is no terminal to ask for its passphrase; "
            "load it into ssh-agent instead"
        )
    passphrase = getpass.getpass(f"passphrase for {shown}: ")
    try:
        return asyncssh.read_private_key(path, passphrase)
    except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as error:
        raise HarvestError(f"--key {shown}: the passphrase does not open it") from error


async def _resolve(target: Target) -> str:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(target.host, target.port)
    except OSError as error:
        raise HarvestUnreachableError(f"cannot resolve {target.host} ({error})") from error
    return str(infos[0][4][0])


async def connect(
    target: Target, options: HarvestOptions, *, say: Callable[[str], None] = _say
) -> asyncssh.SSHClientConnection:
    """An SSH connection to ``target`` whose host key ``known_hosts`` vouches for (see the module)."""
    known_hosts = _known_hosts_path(options)
    addr = await _resolve(target)
    if not _is_known(known_hosts, target, addr):
        if not options.accept_new_host:
            raise HarvestError(
                f"host {target.host_port} is unknown: no key for it in {known_hosts}; refused. Check its "
                "key fingerprint with the head's owner, then run again with --accept-new-host to trust it"
            )
        try:
            key = await asyncssh.get_server_host_key(target.host, target.port, config=None)
        except (OSError, asyncssh.Error) as error:
            raise HarvestUnreachableError(f"cannot reach {target.host_port} ({error})") from error
        if key is None:
            raise HarvestError(f"{target.host_port} presented no host key; refused")
        _record_host_key(known_hosts, target, key)
        say(f"trusted new host {target.host_port} ({key.get_fingerprint()}), recorded in {known_hosts}")
    user = target.user or getpass.getuser()
    try:
        return await asyncssh.connect(
            target.host,
            target.port,
            username=user,
            known_hosts=known_hosts,
            client_keys=_client_keys(options),
            client_factory=lambda: _Client(f"{user}@{target.host}'s password: "),
            config=None,
        )
    except asyncssh.HostKeyNotVerifiable as error:
        raise HarvestError(
            f"the host key of {target.host_port} does not match the one recorded in {known_hosts}: it "
            "changed (a reinstalled head, or someone in between); refused. Remove the old entry only if "
            "you know why it changed"
        ) from error
    except asyncssh.PermissionDenied as error:
        raise HarvestError(
            f"{user}@{target.host_port} accepted none of the keys (--key, the SSH agent, ~/.ssh) and no "
            "password; give --key FILE"
        ) from error
    except (OSError, asyncssh.Error) as error:
        raise HarvestUnreachableError(f"cannot connect to {target.host_port} ({error})") from error
