"""A throwaway SSH server standing in for one machine of an on-premise cluster (test use only).

    python -m tests.cluster._sshd --listen 127.0.0.1 --port P --host-key F --client-key F.pub --home D \
        --ready-file R

It accepts only the given client key, runs each session's command with ``bash -c`` in a real local
shell (``HOME`` = ``--home``, a plain system ``PATH`` and ``SSH_CONNECTION`` set as OpenSSH sets it),
pipes stdin / stdout / stderr byte for byte (rsync's protocol goes through it), and allows local
port forwarding to loopback addresses only (``ray dashboard``). Once listening it creates
``--ready-file`` (written aside and renamed into place): readiness has a channel of its own, so nothing
a dependency prints (a deprecation warning on import, say) can decide whether the server started.

The test starts it under ``unshare --pid --fork --mount-proc`` with a folder of its own bound over the
user's home (in that mount namespace only): a process table and a home of its own stand in for the
machine, so the ``ray stop`` that ``ray up`` / ``ray down`` run on a node sees (and stops) only that
node's Ray, never another Ray on this computer, what the launcher copies to ``~`` lands in the
node's folder (OpenSSH finds ``~/ray_bootstrap_key.pem`` through the user's passwd home, not
``$HOME``), and whatever the node started dies with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from typing import Any

import asyncssh

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class _Server(asyncssh.SSHServer):
    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn

    def connection_requested(
        self, dest_host: str, dest_port: int, orig_host: str, orig_port: int
    ) -> bool:
        # local port forwarding (ssh -L), as `ray dashboard` asks: loopback destinations only
        return dest_host in ("localhost", "127.0.0.1") or dest_host.startswith("127.")


def _environment(process: asyncssh.SSHServerProcess[bytes], home: str) -> dict[str, str]:
    peer = process.get_extra_info("peername") or ("", 0)
    local = process.get_extra_info("sockname") or ("", 0)
    env = {
        "HOME": home,
        "USER": os.environ.get("USER", "root"),
        "LOGNAME": os.environ.get("USER", "root"),
        "SHELL": "/bin/bash",
        "PATH": SYSTEM_PATH,
        "LANG": "C.UTF-8",
        "SSH_CONNECTION": f"{peer[0]} {peer[1]} {local[0]} {local[1]}",
    }
    term = process.term_type
    if term:
        env["TERM"] = term
    return env


async def _copy_out(source: asyncio.StreamReader, sink: asyncssh.SSHWriter[bytes]) -> None:
    while chunk := await source.read(65536):
        sink.write(chunk)
        await sink.drain()


async def _copy_in(source: asyncssh.SSHReader[bytes], sink: asyncio.StreamWriter) -> None:
    try:
        while chunk := await source.read(65536):
            sink.write(chunk)
            await sink.drain()
    except (asyncssh.Error, ConnectionError, BrokenPipeError):
        pass
    finally:
        if not sink.is_closing():
            sink.close()


async def _hang_up_when_closed(
    process: asyncssh.SSHServerProcess[bytes], child: asyncio.subprocess.Process
) -> None:
    """The client went away (``ray dashboard`` stopped): SIGHUP to the session, as sshd does."""
    await process.channel.wait_closed()
    if child.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGHUP)


async def _session(process: asyncssh.SSHServerProcess[bytes], home: str) -> None:
    command = process.command
    argv = ["/bin/bash", "-c", command] if command else ["/bin/bash", "--login"]
    child = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=home,
        env=_environment(process, home),
        start_new_session=True,
    )
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    feeding = asyncio.ensure_future(_copy_in(process.stdin, child.stdin))
    hangup = asyncio.ensure_future(_hang_up_when_closed(process, child))
    # every byte of output reaches the client before the exit status
    await asyncio.gather(
        _copy_out(child.stdout, process.stdout), _copy_out(child.stderr, process.stderr)
    )
    status = await child.wait()
    feeding.cancel()
    hangup.cancel()
    process.exit(status if status >= 0 else 128 - status)


async def _serve(args: argparse.Namespace) -> None:
    os.makedirs(args.home, exist_ok=True)

    async def session(process: asyncssh.SSHServerProcess[Any]) -> None:
        await _session(process, args.home)

    server = await asyncssh.create_server(
        _Server,
        args.listen,
        args.port,
        server_host_keys=[args.host_key],
        authorized_client_keys=args.client_key,
        process_factory=session,
        encoding=None,
        line_editor=False,
        allow_pty=True,
        agent_forwarding=False,
        x11_forwarding=False,
    )
    _announce_ready(args.ready_file, f"{args.listen}:{args.port}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


def _announce_ready(path: str, where: str) -> None:
    aside = f"{path}.{os.getpid()}.tmp"
    with open(aside, "w") as out:
        out.write(where + "\n")
    os.replace(aside, path)


def _init(server: int) -> int:
    """PID 1 of the namespace: reap every orphan (Ray's daemons re-parent here) until the server
    exits; SIGTERM / SIGINT go to the server. When PID 1 exits the kernel kills the whole namespace."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: os.kill(server, signum))
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return 0
        except InterruptedError:  # pragma: no cover - PEP 475 retries
            continue
        if pid == server:
            return os.waitstatus_to_exitcode(status)


def main(argv: list[str] | None = None) -> int:
    if os.getpid() == 1:
        child = os.fork()
        if child:
            return _init(child)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host-key", required=True)
    parser.add_argument("--client-key", required=True, help="the accepted public key (OpenSSH format)")
    parser.add_argument("--home", required=True)
    parser.add_argument("--ready-file", required=True, help="created once the server listens")
    asyncio.run(_serve(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
