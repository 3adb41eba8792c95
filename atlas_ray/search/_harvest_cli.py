"""``python -m atlas_ray.search harvest ssh://USER@HOST[:PORT]/PATH [--to DIR] [--key FILE]
[--known-hosts FILE] [--accept-new-host] [--models] [--watch SECONDS]``: bring an experiment home.

Exit status: 0 when everything the remote has gathered is here and verified (trials the search is
still gathering are listed as pending); 1 when a file was refused (corrupted on the remote) or the
connection was lost (run the same command again to continue); 2 for a user mistake (a bad URL, an
unknown or changed host key, no accepted key, no experiment at the path), with one ``error:`` line.
``--watch N`` harvests every N seconds until the remote experiment has finished and all of it is here.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Sequence
from typing import TextIO

from atlas_ray.search._harvest import (
    DEFAULT_KNOWN_HOSTS,
    HarvestIncompleteError,
    HarvestOptions,
    HarvestReport,
    HarvestUnreachableError,
    Target,
    harvest,
    parse_target,
)

__all__ = ["TerminalProgress", "main"]

PARTLY_DONE_EXIT = 1


def _positive(text: str) -> float:
    rule = f"--watch is {text!r}, but must be a number of seconds > 0"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(rule) from None
    if not value > 0:
        raise argparse.ArgumentTypeError(rule)
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m atlas_ray.search harvest",
        description="Copy an experiment's ResultsObjects from a head node over SFTP, verified against "
        "the checksum manifests the search writes; only what is missing or changed.",
    )
    parser.add_argument(
        "url", help="ssh://USER@HOST[:PORT]/PATH/TO/EXPERIMENT (ssh://HOST/~/PATH: from the home)"
    )
    parser.add_argument("--to", default=None, help="local experiment directory (default ./experiments/NAME)")
    parser.add_argument("--key", default=None, help="private key file (default: the SSH agent and ~/.ssh)")
    parser.add_argument(
        "--known-hosts", default=DEFAULT_KNOWN_HOSTS, help=f"known_hosts file (default {DEFAULT_KNOWN_HOSTS})"
    )
    parser.add_argument(
        "--accept-new-host", action="store_true", help="trust an unknown host's key and record it (TOFU)"
    )
    parser.add_argument("--models", action="store_true", help="copy the trained models (model.keras) too")
    parser.add_argument(
        "--watch",
        type=_positive,
        default=None,
        metavar="SECONDS",
        help="harvest every SECONDS while the remote search runs; stop when it has finished",
    )
    return parser


class TerminalProgress:
    """A one-line progress bar (files and bytes) redrawn on ``stream``; silent when it is no terminal."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self._stream = stream
        self._width = width
        self._active = stream.isatty()
        self._files = self._bytes = self._files_done = self._bytes_done = 0
        self._drawn = 0.0

    def start(self, files: int, nbytes: int) -> None:
        self._files, self._bytes, self._files_done, self._bytes_done = files, nbytes, 0, 0
        if files:
            self._draw(force=True)

    def advance(self, nbytes: int) -> None:
        self._bytes_done += nbytes
        self._draw()

    def file_done(self) -> None:
        self._files_done += 1
        self._draw(force=True)

    def finish(self) -> None:
        if self._active and self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = 0.0

    def line(self) -> str:
        """The bar as text, e.g. ``[#####-----] 3/12 files  1.2/4.8 MB``."""
        fraction = self._bytes_done / self._bytes if self._bytes else 1.0
        filled = round(min(fraction, 1.0) * self._width)
        return (
            f"[{'#' * filled}{'-' * (self._width - filled)}] {self._files_done}/{self._files} files  "
            f"{_size(self._bytes_done)}/{_size(self._bytes)}"
        )

    def _draw(self, force: bool = False) -> None:
        if not self._active:
            return
        moment = time.monotonic()
        if not force and moment - self._drawn < 0.1:
            return
        self._drawn = moment
        self._stream.write("\r" + self.line())
        self._stream.flush()


def _size(nbytes: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} B"


def _summary(target: Target, to: str, report: HarvestReport) -> str:
    pending = f", {len(report.missing)} not here yet" if report.missing else ""
    return (
        f"harvested {target.url} into {to}: {report.files_copied} files copied "
        f"({_size(report.bytes_copied)}), "
        f"{report.files_present} already here; {report.trials} trials complete{pending}; "
        f"remote search {report.remote_status}"
    )


def _tell(target: Target, to: str, report: HarvestReport) -> int:
    """Print the round's summary and what is missing; the exit status it deserves."""
    print(_summary(target, to, report))
    for trial_id, why in report.missing.items():
        print(f"not here yet: trial {trial_id}: {why}", file=sys.stderr)
    for line in report.corrupt:
        print(f"error: {line}", file=sys.stderr)
    return PARTLY_DONE_EXIT if report.corrupt else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    target = parse_target(args.url)
    to = args.to or os.path.join("experiments", target.path.rstrip("/").rsplit("/", 1)[-1])
    options = HarvestOptions(
        to=to,
        key=args.key,
        known_hosts=args.known_hosts,
        accept_new_host=args.accept_new_host,
        models=args.models,
    )
    progress = TerminalProgress(sys.stderr)
    rounds = 0
    while True:
        rounds += 1
        try:
            report = asyncio.run(harvest(target, options, progress=progress))
        except HarvestIncompleteError as error:
            print(f"error: {error}", file=sys.stderr)
            if args.watch is None:
                return PARTLY_DONE_EXIT
        except HarvestUnreachableError as error:
            if args.watch is None or rounds == 1:
                raise
            print(f"error: {error}; trying again in {args.watch:g} s", file=sys.stderr)
        else:
            status = _tell(target, to, report)
            if args.watch is None or report.finished:
                return status
        # the host key and the options were accepted once: later rounds do not trust anew
        options = HarvestOptions(
            to=options.to, key=options.key, known_hosts=options.known_hosts, models=options.models
        )
        time.sleep(args.watch)
