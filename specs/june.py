"""The Atlas June 2017 search, on the real minute bars of March 2023.

Question: the direction of Coinbase BTC-USD's next one-minute log return, in 3 classes (down / flat /
up) cut at the 33.3rd and 66.7th percentiles of the *training* part's returns, from Coinbase and Kraken
features: log returns over 1, 5, 15 and 60 minutes on both exchanges, both exchanges' volume, Coinbase's
30-minute volatility and the Coinbase / Kraken midpoint spread.

Evaluation: walk-forward over 3 folds (expanding training windows, the purge the label's horizon):
each trial trains one model per fold and ASHA decides on the mean validation loss over the folds;
the last 15% of the week is a sealed test block that no trial sees until
``python -m atlas_ray.search finalize experiments/june --top 5``.

Models: DNNs with hidden layers [3], [6], [3, 3] and [6, 6] (a grid, 5 draws of learning rate and
l1 / l2 each) and a logistic model (4 draws): 24 trials, ASHA over at most 16 epochs (rungs at 1, 4
and 16 epochs, reduction factor 4: about a quarter of the full budget's epochs, see
benchmarks/bench_asha.py). Sized to finish on a 2-core machine within 10 minutes: one week of
bars (about 9,700 rows), batches of 256 rows.

Run: ``python -m atlas_ray.search specs/june.py --store ROOT`` (the store holds coinbase and kraken
``btc_usd`` 1-minute bars; the spec names exchanges and dates only).
"""

from ray import tune

from atlas_ray.featurestore import (
    FeatureLabelSet,
    InterExchangeSpread,
    LogReturns,
    Midpoint,
    Percentiles,
    Volatility,
    Volume,
    WalkForward,
)
from atlas_ray.search import ASHA, Mode, ModelSpec, Resources, WorkSpec, WorkUnit

LOOKBACKS = (1, 5, 15, 60)

FEATURES = [
    *(LogReturns().coinbase().one_min().lookback(n) for n in LOOKBACKS),
    *(LogReturns().kraken().one_min().lookback(n) for n in LOOKBACKS),
    Volume().coinbase().one_min(),
    Volume().kraken().one_min(),
    Volatility().coinbase().one_min().window(30),
    InterExchangeSpread(Midpoint().coinbase().one_min(), Midpoint().kraken().one_min()),
]

DIRECTION = FeatureLabelSet(
    FEATURES,
    [LogReturns().coinbase().one_min().lookforward(1)],
    fill_limit=5,
    scaling="zscore",
    categories=Percentiles((33.3, 66.7)),
)

REGULARISATION = {"l1": tune.choice([0.0, 1e-5]), "l2": tune.choice([0.0, 1e-4])}

SPEC = WorkSpec(
    name="june",
    units=[
        WorkUnit(
            "btc_direction",
            featureset=DIRECTION,
            start="2023-03-01",
            end="2023-03-08",
            split=WalkForward(folds=3, test=0.15),
            models=[
                ModelSpec(
                    "dnn",
                    "dnn",
                    {
                        "hidden_units": tune.grid_search([[3], [6], [3, 3], [6, 6]]),
                        "activation": "relu",
                        "dropout": 0.0,
                        "batch_norm": False,
                        "learning_rate": tune.loguniform(1e-3, 3e-2),
                        "batch_size": 256,
                        **REGULARISATION,
                    },
                    num_samples=5,
                ),
                ModelSpec(
                    "logistic",
                    "logistic",
                    {"learning_rate": tune.loguniform(1e-3, 3e-2), "batch_size": 256, **REGULARISATION},
                    num_samples=4,
                ),
            ],
        )
    ],
    scheduler=ASHA(max_t=16, grace_period=1, reduction_factor=4, metric="val_loss", mode=Mode.MIN),
    resources=Resources(cpu=1),
    max_failures=1,
    seed=2017,
)
