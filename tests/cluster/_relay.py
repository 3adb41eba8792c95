"""``ProxyCommand`` for the test's SSH servers: relay stdin / stdout to HOST:PORT (test use only).

Ray's cluster launcher reaches every node on SSH's port 22 and has no port setting; its
``auth.ssh_proxy_command`` (OpenSSH's ``ProxyCommand``) is the way to another port:
``python _relay.py %h PORT``.
"""

from __future__ import annotations

import os
import socket
import sys
import threading


def _pump_stdin(sock: socket.socket) -> None:
    while chunk := os.read(0, 65536):
        sock.sendall(chunk)
    sock.shutdown(socket.SHUT_WR)


def main() -> int:
    host, port = sys.argv[1], int(sys.argv[2])
    sock = socket.create_connection((host, port))
    threading.Thread(target=_pump_stdin, args=(sock,), daemon=True).start()
    while chunk := sock.recv(65536):
        os.write(1, chunk)
    return 0


if __name__ == "__main__":
    sys.exit(main())
