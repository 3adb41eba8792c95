"""Shared command-line plumbing: a user mistake becomes one line on stderr and exit status 2."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from atlas_ray.errors import AtlasError

USER_ERROR_EXIT = 2


def run_cli(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Run ``main(argv)``; turn an ``AtlasError`` into ``error: <message>`` and exit status 2."""
    try:
        return main(argv)
    except AtlasError as error:
        message = " ".join(str(error).split())
        print(f"error: {message}", file=sys.stderr)
        return USER_ERROR_EXIT
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
