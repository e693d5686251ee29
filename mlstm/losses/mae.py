"""Mean absolute error: ``mean_D |p - t|``, gradient ``sign(p - t) / D`` (0 where p = t)."""
from __future__ import annotations

from typing import Any

import numpy as np

from .._typing import Array, ArrayLike, FloatArray
from ..registry import register_loss
from .base import Loss
from .options import refuse_unknown_options

__all__ = ["MeanAbsoluteError", "mean_absolute_error"]


@register_loss(aliases=("mae", "mean_absolute_error"))
class MeanAbsoluteError(Loss):
    """``mean(|y_pred - y_true|, axis=-1)``, Keras' ``mean_absolute_error``.

    |e| has no derivative at e = 0; the gradient there is the subgradient 0, which is what
    TensorFlow's gradient of ``abs`` gives (``sign(0) = 0``) and so what Keras trains with.
    """

    name = "mean_absolute_error"
    keras_name = "MeanAbsoluteError"
    keras_function = "mean_absolute_error"

    def __init__(self, **unsupported: Any) -> None:
        refuse_unknown_options(type(self), unsupported)

    def call(self, y_true: Array, y_pred: FloatArray) -> FloatArray:
        """Per-sample values ``mean_D |p - t|``: (N, ..., D) -> (N, ...)."""
        return np.mean(np.abs(y_pred - y_true), axis=-1)

    def gradient(self, y_true: Array, y_pred: FloatArray) -> FloatArray:
        """``sign(p - t) / D``, shaped like ``y_pred``; 0 where ``p = t``."""
        return np.sign(y_pred - y_true) / y_pred.shape[-1]


def mean_absolute_error(y_true: ArrayLike, y_pred: ArrayLike) -> FloatArray:
    """Per-sample MAE values, ``mean(|y_pred - y_true|, axis=-1)``."""
    return MeanAbsoluteError().call(np.asarray(y_true), np.asarray(y_pred))
