"""A plain NumPy loss function, differentiated numerically (the last resort)."""
from __future__ import annotations

import numpy as np

from .base import Loss

__all__ = ["FunctionLoss"]


class FunctionLoss(Loss):
    """Wrap a plain function ``fn(y_true, y_pred) -> values`` (NumPy arrays in and out).

    The gradient is taken by central differences in float64 (two evaluations per entry of
    ``y_pred``), so it is slow and approximate; a :class:`Loss` subclass with ``gradient``
    is exact. A warning says so when the loss is compiled.

    Like Keras, the function sees one output's ``y_true`` and ``y_pred`` of shape (N, ...):
    ``y_true[0]`` is the first *sample*, not the first output.
    """

    def __init__(self, fn, name=None):
        if not callable(fn):
            raise TypeError(f"loss must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "custom_loss")

    def call(self, y_true, y_pred):
        values = np.asarray(self.fn(y_true, y_pred))
        if not np.issubdtype(values.dtype, np.floating):
            values = values.astype(y_pred.dtype)
        return values

    def gradient(self, y_true, y_pred):
        y_true64 = np.asarray(y_true, dtype=np.float64)
        y_pred64 = np.array(y_pred, dtype=np.float64)
        grad = np.empty_like(y_pred64)
        flat_pred, flat_grad = y_pred64.reshape(-1), grad.reshape(-1)
        for k in range(flat_pred.size):
            original = flat_pred[k]
            step = 1e-6 * max(1.0, abs(original))
            flat_pred[k] = original + step
            plus = np.sum(self.fn(y_true64, y_pred64))
            flat_pred[k] = original - step
            minus = np.sum(self.fn(y_true64, y_pred64))
            flat_pred[k] = original
            flat_grad[k] = (plus - minus) / (2 * step)
        return grad.astype(y_pred.dtype)

    def get_config(self):
        return {"name": self.name, "function": getattr(self.fn, "__qualname__", repr(self.fn))}
