#!/usr/bin/env bash
# Set up and run the main job: ingest the sample market data into ./atlas_store, run the June search
# (specs/june.py) into ./experiments, and write the comparison report into ./reports/june.
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
