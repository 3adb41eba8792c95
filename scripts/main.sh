#!/usr/bin/env bash
# Set up and run the main job: ingest the sample market data into ./atlas_store, run the June search
# (specs/june.py) into ./experiments, write the comparison report into ./reports/june, and replay a day
# through the best model on Ray Serve into redis (predictions under atlas:pred:june).
# Safe to run again: ingest skips rows already stored, the search continues an unfinished experiment
# and for a finished one says so (nothing trained), and the report is rewritten.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
DATA=${ATLAS_DATA:-../shared/data}
STORE=${ATLAS_STORE:-./atlas_store}
PY=.venv/bin/python
$PY -m atlas_ray.featurestore ingest "$DATA/minute_bars_2023-03/coinbase_btcusd.parquet" \
    --exchange coinbase --pair btc_usd --store "$STORE"
$PY -m atlas_ray.featurestore ingest "$DATA/minute_bars_2023-03/kraken_btcusd.parquet" \
    --exchange kraken --pair btc_usd --store "$STORE"
$PY -m atlas_ray.featurestore show --store "$STORE"
$PY -m atlas_ray.search specs/june.py --store "$STORE" --storage ./experiments
$PY -m atlas_ray.report ./experiments/june --out ./reports/june
# The loop closed: the best trial live on Ray Serve, replaying 8 March from the store into redis
# ($REDIS_URL, default redis://127.0.0.1:6379/0) as fast as it goes, under the name june.
if $PY -c "import os, redis; redis.Redis.from_url(os.environ.get('REDIS_URL', 'redis://127.0.0.1:6379/0'), socket_connect_timeout=2).ping()" 2>/dev/null; then
  $PY -m atlas_ray.serve ./experiments/june --best --name june --store "$STORE" \
      --feed replay:2023-03-08/2023-03-09 --speed 0 --http-port 8765 --status-every 30
else
  echo "redis does not answer at \${REDIS_URL:-redis://127.0.0.1:6379/0}: skipped the live replay" \
       "(start redis-server, then: $PY -m atlas_ray.serve ./experiments/june --best --feed replay:2023-03-08/2023-03-09 --speed 0)"
fi
