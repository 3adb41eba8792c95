"""``python -m atlas_ray.serve EXPERIMENT (--trial ID | --best [--metric NAME]) [--name NAME]
[--feed FEED] [--redis URL] [--address ADDR] [--store ROOT] [--speed X] [--grace S]
[--http-host HOST] [--http-token-file FILE] [--metrics-port PORT]``: a trial live on Ray Serve, its
predictions in redis.

A user mistake (no such experiment or trial, an incomplete model directory, a bad feed, redis not
answering, an HTTP host beyond 127.0.0.1 without a token) prints one ``error:`` line and exits 2
before anything starts.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from atlas_ray._cli import run_cli

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m atlas_ray.serve",
        description="Deploy a trained trial on Ray Serve; its predictions go to redis on every new bar.",
    )
    parser.add_argument("experiment", help="the experiment directory or URI, e.g. experiments/june")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--trial", help="the trial id to serve")
    which.add_argument("--best", action="store_true", help="serve the trial with the best validation metric")
    parser.add_argument("--metric", help="with --best: the validation metric (default the experiment's)")
    parser.add_argument(
        "--name", help="the live name: redis keys atlas:pred:NAME (default the experiment's name)"
    )
    parser.add_argument(
        "--feed",
        default="http",
        help="replay:START/END, store: or store:START, gds:mysql://USER@HOST/DB, or http (default: bars "
        "POSTed over HTTP)",
    )
    parser.add_argument("--redis", help="redis URL (default $REDIS_URL or redis://127.0.0.1:6379/0)")
    parser.add_argument("--address", help="join a running Ray cluster ('auto' or host:port)")
    parser.add_argument("--store", help="market-data store root (default $ATLAS_STORE or ./atlas_store)")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="replay speed: 1 real time, 0 as fast as possible"
    )
    parser.add_argument("--poll", type=float, default=5.0, help="store: / gds: feed poll interval in seconds")
    parser.add_argument(
        "--grace",
        type=float,
        help="store: / gds: also close a bar built from finer bars or trades this many seconds after its "
        "end by the wall clock (default: only once a later finer bar or trade is stored)",
    )
    parser.add_argument(
        "--http-host",
        default="127.0.0.1",
        help="Serve's HTTP proxy host (default 127.0.0.1; any other needs a token: $ATLAS_HTTP_TOKEN or "
        "--http-token-file)",
    )
    parser.add_argument(
        "--http-token-file",
        help="a file whose first line is the bearer token every HTTP request must carry "
        "(default $ATLAS_HTTP_TOKEN; required beyond 127.0.0.1)",
    )
    parser.add_argument("--http-port", type=int, default=8000, help="Serve's HTTP proxy port (default 8000)")
    parser.add_argument("--status-every", type=float, default=60.0, help="seconds between status lines")
    parser.add_argument("--gryphon-key", action="store_true", help="also write the key ML_PREDICTION")
    parser.add_argument("--buffer", type=int, default=10_000, help="predictions held while redis is down")
    parser.add_argument(
        "--metrics-port",
        type=int,
        help="the local Ray's metrics export port on 127.0.0.1 (Prometheus text at /metrics; default: one "
        "Ray chooses, printed at start)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from atlas_ray.serve._app import ServeOptions, serve_main

    return serve_main(
        ServeOptions(
            experiment=args.experiment,
            trial=args.trial,
            best=args.best,
            metric=args.metric,
            name=args.name,
            feed=args.feed,
            redis=args.redis,
            address=args.address,
            store=args.store,
            speed=args.speed,
            poll=args.poll,
            http_host=args.http_host,
            http_port=args.http_port,
            status_every=args.status_every,
            gryphon_key=args.gryphon_key,
            buffer=args.buffer,
            grace=args.grace,
            http_token_file=args.http_token_file,
            metrics_port=args.metrics_port,
        )
    )


if __name__ == "__main__":
    sys.exit(run_cli(main))
