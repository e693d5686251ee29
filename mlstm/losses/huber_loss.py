"""Huber loss: quadratic for errors up to ``delta``, linear beyond.

With e = p - t and δ = ``delta`` (Keras' ``huber``)::

    ℓ = mean_D h(e),   h(e) = e² / 2          if |e| <= δ
                             δ |e| - δ² / 2    otherwise
    ∂ℓ/∂p = h'(e) / D, h'(e) = e              if |e| <= δ
                             δ sign(e)         otherwise

h and h' are continuous at |e| = δ (both branches give δ²/2 and ±δ there).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .._typing import Array, ArrayLike, FloatArray, JSONDict
from ..registry import register_loss
from .base import Loss
from .options import refuse_unknown_options

__all__ = ["Huber", "huber"]


@register_loss(aliases=("huber", "huber_loss"))
class Huber(Loss):
    """Huber loss, Keras' ``huber``.

    Parameters
    ----------
    delta : float > 0
        Where the loss turns from quadratic to linear.
    """

    name = "huber_loss"
    keras_name = "Huber"
    keras_function = "huber"

    def __init__(self, delta: float = 1.0, **unsupported: Any) -> None:
        refuse_unknown_options(type(self), unsupported)
        if (isinstance(delta, bool) or not isinstance(delta, (int, float, np.number))
                or not np.isfinite(delta) or delta <= 0):
            raise ValueError(f"Huber: delta must be a positive finite number, got {delta!r}")
        self.delta = float(delta)

    @classmethod
    def examples(cls) -> list[JSONDict]:
        """Configurations the component tests check (tests/test_components.py): errors
        drawn from N(0, 2) fall on both sides of delta = 0.5."""
        return [{}, {"delta": 0.5}]

    def call(self, y_true: Array, y_pred: FloatArray) -> FloatArray:
        """Per-sample values ``mean_D h(p - t)``: (N, ..., D) -> (N, ...)."""
        error = y_pred - y_true
        size = np.abs(error)
        delta = y_pred.dtype.type(self.delta)
        return np.mean(np.where(size <= delta, 0.5 * np.square(error),
                                delta * size - 0.5 * delta * delta), axis=-1)

    def gradient(self, y_true: Array, y_pred: FloatArray) -> FloatArray:
        """``h'(p - t) / D``: ``e`` inside ``|e| <= delta``, ``delta sign(e)`` outside."""
        error = y_pred - y_true
        delta = y_pred.dtype.type(self.delta)
        return np.where(np.abs(error) <= delta, error, delta * np.sign(error)) / y_pred.shape[-1]

    def get_config(self) -> JSONDict:
        return {"name": self.name, "delta": self.delta}


def huber(y_true: ArrayLike, y_pred: ArrayLike, delta: float = 1.0) -> FloatArray:
    """Per-sample Huber values, ``mean(h(y_pred - y_true), axis=-1)``."""
    return Huber(delta).call(np.asarray(y_true), np.asarray(y_pred))
