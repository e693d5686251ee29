"""Mean squared error: ``mean_D (p - t)^2``, gradient ``2 (p - t) / D``."""
from __future__ import annotations

import numpy as np

from .._typing import Array, ArrayLike, FloatArray
from ..registry import register_loss
from .base import Loss

__all__ = ["MeanSquaredError", "mean_squared_error"]


@register_loss(aliases=("mse", "mean_squared_error"))
class MeanSquaredError(Loss):
    """``mean((y_pred - y_true)^2, axis=-1)``."""

    name = "mean_squared_error"
    keras_name = "MeanSquaredError"
    keras_function = "mean_squared_error"

    def call(self, y_true: Array, y_pred: FloatArray) -> FloatArray:
        return np.mean(np.square(y_pred - y_true), axis=-1)

    def gradient(self, y_true: Array, y_pred: FloatArray) -> FloatArray:
        return (2.0 / y_pred.shape[-1]) * (y_pred - y_true)


def mean_squared_error(y_true: ArrayLike, y_pred: ArrayLike) -> FloatArray:
    """Per-sample MSE values, ``mean((y_pred - y_true)^2, axis=-1)``."""
    return MeanSquaredError().call(np.asarray(y_true), np.asarray(y_pred))
