"""The Jane Street TPU notebook's Conv1D residual network, on the real minute bars of March 2023.

Question: will Coinbase BTC-USD's next one-minute log return be up or down (binary, cut at the
training part's median), from windows of the last 20 rows of the june features (log returns over 1,
5, 15 and 60 minutes on Coinbase and Kraken, volume, volatility and the midpoint spread). A window
never spans a day boundary or a data gap (the featureset's windowing rule).

The network: normalisation adapted on training data only, gaussian noise, two conv blocks with batch
norm and a skip connection, and a dense head (``conv1d_resnet`` in the zoo). On a TPU host give each
trial chips with ``Resources(cpu=..., tpu=4)``; on GPUs a fraction, ``Resources(cpu=1, gpu=0.25)``.

Run: ``python -m atlas_ray.search specs/jane_street.py --store ROOT``.
"""

from ray import tune

from atlas_ray.featurestore import (
    FeatureLabelSet,
    InterExchangeSpread,
    LogReturns,
    Midpoint,
    Percentiles,
    TimeSplit,
    Volatility,
    Volume,
)
from atlas_ray.search import ASHA, Mode, ModelSpec, Resources, WorkSpec, WorkUnit

WINDOW = 20
LOOKBACKS = (1, 5, 15, 60)

FEATURES = [
    *(LogReturns().coinbase().one_min().lookback(n) for n in LOOKBACKS),
    *(LogReturns().kraken().one_min().lookback(n) for n in LOOKBACKS),
    Volume().coinbase().one_min(),
    Volume().kraken().one_min(),
    Volatility().coinbase().one_min().window(30),
    InterExchangeSpread(Midpoint().coinbase().one_min(), Midpoint().kraken().one_min()),
]

UP_OR_DOWN = FeatureLabelSet(
    FEATURES,
    [LogReturns().coinbase().one_min().lookforward(1)],
    fill_limit=5,
    scaling="zscore",
    categories=Percentiles((50.0,)),
    window=WINDOW,
)

SPEC = WorkSpec(
    name="jane_street",
    units=[
        WorkUnit(
            "btc_up_down_windows",
            featureset=UP_OR_DOWN,
            start="2023-03-01",
            end="2023-03-08",
            split=TimeSplit(train=0.7, validation=0.15, test=0.15),
            models=[
                ModelSpec(
                    "conv1d_resnet",
                    "conv1d_resnet",
                    {"learning_rate": tune.loguniform(3e-4, 3e-3), "batch_size": 256},
                    num_samples=4,
                )
            ],
        )
    ],
    scheduler=ASHA(max_t=6, grace_period=2, reduction_factor=3, metric="val_auc", mode=Mode.MAX),
    resources=Resources(cpu=1),
    max_failures=1,
    seed=2020,
)
