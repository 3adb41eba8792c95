"""The HTTP feed's door: who may call it, and what a request body must be.

* **Token.** On 127.0.0.1 (any loopback address, or ``localhost``) the HTTP feed is open to the
  machine's own processes. Beyond it (``--http-host`` anything else, ``0.0.0.0`` included) it requires a
  bearer token on every route (``POST bars``, ``GET health``, ``GET stats``, unknown paths alike):
  ``Authorization: Bearer TOKEN``. The token comes from ``$ATLAS_HTTP_TOKEN`` or from the file
  ``--http-token-file`` names (its first line); without one the command refuses to start. A token
  given is enforced on loopback too. It is never printed, and it never leaves the driver: the
  deployment holds its SHA-256 digest and compares digests in constant time (``hmac.compare_digest``).
  A request without the token, or with another one, gets 401.
* **Body.** ``read_push`` turns a body into a push (an event, a list of events, or
  ``{"events": [...], "through": ...}``) or refuses it with ``BadBodyError`` (the deployment answers 400):
  not JSON, nested too deep for the decoder, the wrong shape, a ``through`` that is not a time. Each
  event is then taken or refused (counted, by reason) by the engine (``_events.parse_event``), so no
  body gets a 500.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from atlas_ray.errors import AtlasError
from atlas_ray.serve._events import EventError, parse_mark

__all__ = [
    "TOKEN_ENV",
    "BadBodyError",
    "authorized",
    "http_token",
    "is_loopback",
    "read_push",
    "token_digest",
]

TOKEN_ENV = "ATLAS_HTTP_TOKEN"


class BadBodyError(ValueError):
    """A request body that is not a push; the message says why (answered with 400)."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is reached only from this machine."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def http_token(
    host: str, token_file: str | None = None, environ: Mapping[str, str] | None = None
) -> str | None:
    """The bearer token the HTTP feed requires: from ``token_file`` (its first line), else from
    ``$ATLAS_HTTP_TOKEN``; None when neither gives one and ``host`` is a loopback address. ``AtlasError``
    (one line, never the token) for an unreadable or empty file, or for a host beyond loopback without
    a token."""
    env = os.environ if environ is None else environ
    token: str | None = None
    if token_file is not None:
        try:
            lines = Path(token_file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise AtlasError(
                f"--http-token-file {token_file}: cannot be read ({type(error).__name__})"
            ) from None
        token = lines[0].strip() if lines else ""
        if not token:
            raise AtlasError(f"--http-token-file {token_file}: the file holds no token on its first line")
    elif env.get(TOKEN_ENV, "").strip():
        token = env[TOKEN_ENV].strip()
    if token is None and not is_loopback(host):
        raise AtlasError(
            f"--http-host {host} is reachable beyond this machine: the HTTP feed then needs a bearer "
            f"token (set ${TOKEN_ENV} or pass --http-token-file FILE), or bind it to 127.0.0.1"
        )
    return token


def token_digest(token: str) -> str:
    """The SHA-256 hex digest of ``token`` (what the deployment keeps)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def authorized(header: str | None, digest: str | None) -> bool:
    """Whether a request with the ``Authorization`` header ``header`` may pass: always when no token is
    required (``digest`` None), else when it is ``Bearer TOKEN`` with the token of ``digest``."""
    if digest is None:
        return True
    if not header:
        return False
    scheme, _, presented = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return False
    return hmac.compare_digest(token_digest(presented.strip()), digest)


def read_push(body: bytes) -> dict[str, Any]:
    """The push in a POSTed body: ``{"events": [...], "through": ns or None}``; ``BadBodyError`` otherwise."""
    try:
        decoded = json.loads(body)
    except RecursionError:
        raise BadBodyError("the body is nested too deep to be read") from None
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError is a ValueError
        raise BadBodyError(f"the body is not JSON: {str(error)[:200]}") from None
    if isinstance(decoded, list):
        decoded = {"events": decoded}
    elif isinstance(decoded, dict) and "events" not in decoded:
        decoded = {"events": [decoded]}
    if not isinstance(decoded, dict) or not isinstance(decoded.get("events"), list):
        raise BadBodyError("send an event, a list of events or {'events': [...]}")
    through = decoded.get("through")
    if through is not None:
        try:
            through = parse_mark(through)
        except EventError as error:
            raise BadBodyError(str(error)) from None
    return {"events": decoded["events"], "through": through}
