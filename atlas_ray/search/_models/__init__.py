"""The zoo's model families, one module each; ``MODELS`` lists them for ``atlas_ray.search._zoo.ZOO``.

Modules import Keras only inside ``build``, so reading the zoo (names, parameters, spaces) is cheap.
"""

from __future__ import annotations

from atlas_ray.search._models.conv_resnet import CONV1D_RESNET
from atlas_ray.search._models.dnn import DNN
from atlas_ray.search._models.lightgbm import LIGHTGBM
from atlas_ray.search._models.linear import LINEAR, LOGISTIC
from atlas_ray.search._models.recurrent import GRU, LSTM

__all__ = ["MODELS"]

MODELS = (LINEAR, LOGISTIC, DNN, LSTM, GRU, CONV1D_RESNET, LIGHTGBM)
