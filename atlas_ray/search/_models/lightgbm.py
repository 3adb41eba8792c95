"""LightGBM gradient-boosted trees: classifier (binary, multi-class) and regressor, one zoo family.

``ModelSpec("gbm", "lightgbm", {...})`` searches it like any zoo model; its ``build`` gives the
boosters' LightGBM parameters (not a Keras model), which ``_trainable_trees`` trains fold by fold
under ASHA with boosting rounds as the resource: one Tune step is ``rounds_per_step`` rounds, so ASHA's
``max_t`` steps are at most ``max_t x rounds_per_step`` rounds. The number of rounds is therefore not a
hyperparameter (``num_boost_round`` / ``num_iterations`` / ``n_estimators`` are refused), and
LightGBM's own early stopping is never used (``early_stopping_round`` is refused): ASHA stops a trial.

Objective by task: ``binary`` (labels 0/1), ``multiclass`` with ``num_class`` (integer labels),
``regression`` (l2). Seeds: ``seed`` and ``data_random_seed`` (the bins) are the trial's seed; the
bagging, feature-fraction and extra-trees seeds of each step are drawn from the trial's seed, the fold
and the step (``_trainable_trees.step_parameters``); ``deterministic=True`` with ``force_row_wise``
(LightGBM otherwise picks row- or column-wise histograms by timing them, which may change the sums'
rounding), and ``num_threads`` is the trial's CPUs. A windowed input is flattened (every lag of every
feature is a column).

Bagging: ``bagging_fraction < 1`` bags every ``bagging_freq`` rounds (default 1, so a fraction below 1
takes effect without a second setting; ``bagging_freq=0`` turns bagging off).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from atlas_ray.featurestore import Task
from atlas_ray.search._zoo_model import (
    COMMON_PARAMETERS,
    ModelFamily,
    ZooModel,
    bool_rule,
    float_rule,
    int_rule,
)

__all__ = ["DEFAULT_ROUNDS_PER_STEP", "LIGHTGBM", "OBJECTIVES"]

DEFAULT_ROUNDS_PER_STEP = 25

OBJECTIVES = {Task.BINARY: "binary", Task.MULTICLASS: "multiclass", Task.REGRESSION: "regression"}

PARAMETERS = {
    "seed": COMMON_PARAMETERS["seed"],
    "position_threshold": COMMON_PARAMETERS["position_threshold"],  # read by the trial's backtest
    "rounds_per_step": int_rule(
        DEFAULT_ROUNDS_PER_STEP, 1, 100_000, doc="boosting rounds per Tune step (ASHA's unit of time)"
    ),
    "learning_rate": float_rule(0.1, 0.0, 1.0, low_open=True, doc="shrinkage of each tree"),
    "num_leaves": int_rule(31, 2, 131_072, doc="most leaves per tree"),
    "max_depth": int_rule(-1, -1, 64, doc="deepest a tree grows (-1 or 0: no limit)"),
    "min_data_in_leaf": int_rule(20, 1, 1_000_000, doc="fewest training rows in a leaf"),
    "min_sum_hessian_in_leaf": float_rule(1e-3, 0.0, doc="smallest hessian sum in a leaf"),
    "min_gain_to_split": float_rule(0.0, 0.0, doc="smallest gain a split must bring"),
    "feature_fraction": float_rule(1.0, 0.0, 1.0, low_open=True, doc="columns drawn for each tree"),
    "bagging_fraction": float_rule(1.0, 0.0, 1.0, low_open=True, doc="rows drawn for each bag"),
    "bagging_freq": int_rule(1, 0, 1_000_000, doc="bag every k rounds (0: no bagging)"),
    "lambda_l1": float_rule(0.0, 0.0, doc="L1 penalty on the leaf values"),
    "lambda_l2": float_rule(0.0, 0.0, doc="L2 penalty on the leaf values"),
    "max_bin": int_rule(255, 2, 65_535, doc="histogram bins per feature"),
    "extra_trees": bool_rule(False, doc="extremely randomised trees (one random threshold per feature)"),
}


def default_space() -> dict[str, Any]:
    from ray import tune

    return {
        "num_leaves": tune.choice([7, 15, 31, 63]),
        "learning_rate": tune.loguniform(1e-2, 2e-1),
        "min_data_in_leaf": tune.choice([20, 50, 100, 200]),
        "feature_fraction": tune.uniform(0.5, 1.0),
        "bagging_fraction": tune.uniform(0.5, 1.0),
        "lambda_l1": tune.choice([0.0, 1e-3, 1e-1]),
        "lambda_l2": tune.choice([0.0, 1e-3, 1e-1, 1.0]),
    }


def build(
    config: Mapping[str, Any],
    *,
    input_shape: tuple[int, ...],
    task: Task,
    n_classes: int,
    train_X: np.ndarray,
) -> dict[str, Any]:
    """The boosters' LightGBM parameters for ``task`` from a resolved ``config`` (the trial adds each
    step's seeds and its threads)."""
    params: dict[str, Any] = {
        "objective": OBJECTIVES[task],
        "num_leaves": int(config["num_leaves"]),
        "max_depth": int(config["max_depth"]),
        "learning_rate": float(config["learning_rate"]),
        "min_data_in_leaf": int(config["min_data_in_leaf"]),
        "min_sum_hessian_in_leaf": float(config["min_sum_hessian_in_leaf"]),
        "min_gain_to_split": float(config["min_gain_to_split"]),
        "feature_fraction": float(config["feature_fraction"]),
        "bagging_fraction": float(config["bagging_fraction"]),
        "bagging_freq": int(config["bagging_freq"]),
        "lambda_l1": float(config["lambda_l1"]),
        "lambda_l2": float(config["lambda_l2"]),
        "max_bin": int(config["max_bin"]),
        "extra_trees": bool(config["extra_trees"]),
        "seed": int(config["seed"]),
        "data_random_seed": int(config["seed"]),
        "deterministic": True,
        "force_row_wise": True,
        "feature_pre_filter": False,
        "metric": "None",  # the trial computes its own metrics, as Keras names them
        "verbosity": -1,
    }
    if task is Task.MULTICLASS:
        params["num_class"] = int(n_classes)
    return params


LIGHTGBM = ZooModel(
    name="lightgbm",
    doc="LightGBM gradient-boosted trees (classifier or regressor by task), boosting rounds as ASHA's "
    "resource.",
    windowed=False,
    tasks=frozenset(Task),
    parameters=PARAMETERS,
    space=default_space,
    builder=build,
    family=ModelFamily.LIGHTGBM,
)
