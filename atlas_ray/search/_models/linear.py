"""Linear regression and logistic regression: one dense layer with l1/l2 on its weights.

``linear``: ``y = X w + b`` trained on mse, for regression. ``logistic``: ``sigmoid(X w + b)`` for
binary labels, ``softmax(X W + b)`` (multinomial logistic regression) for multi-class labels. A
windowed input is flattened, so the model sees every lag of every feature.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from atlas_ray.featurestore import Task
from atlas_ray.search._models._skeleton import BuildContext, zoo_model
from atlas_ray.search._zoo_model import COMMON_PARAMETERS, float_rule

__all__ = ["LINEAR", "LOGISTIC"]

PARAMETERS = {
    **COMMON_PARAMETERS,
    "l1": float_rule(0.0, 0.0, doc="L1 penalty on the weights"),
    "l2": float_rule(0.0, 0.0, doc="L2 penalty on the weights"),
}


def default_space() -> dict[str, Any]:
    from ray import tune

    return {
        "l1": tune.choice([0.0, 1e-5, 1e-4, 1e-3]),
        "l2": tune.choice([0.0, 1e-5, 1e-4, 1e-3]),
        "learning_rate": tune.loguniform(1e-4, 1e-2),
        "batch_size": tune.choice([128, 256, 512]),
    }


def body(x: Any, config: Mapping[str, Any], context: BuildContext) -> Any:
    """None of its own: the (flattened) input goes straight to the output head, which carries the
    l1/l2 penalty (``_skeleton``)."""
    return x


LINEAR = zoo_model(
    name="linear",
    doc="Linear regression (one linear unit, mse) with l1/l2 on the weights.",
    windowed=False,
    tasks=frozenset({Task.REGRESSION}),
    parameters=PARAMETERS,
    space=default_space,
    body=body,
)

LOGISTIC = zoo_model(
    name="logistic",
    doc="Logistic regression (sigmoid for binary, softmax for multi-class) with l1/l2 on the weights.",
    windowed=False,
    tasks=frozenset({Task.BINARY, Task.MULTICLASS}),
    parameters=PARAMETERS,
    space=default_space,
    body=body,
)
