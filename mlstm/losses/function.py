"""A plain NumPy loss function, differentiated numerically (the last resort).

The derivative with respect to each entry p of the prediction uses the five-point stencil
in float64::

    D(h) = (8 [f(p+h) - f(p-h)] - [f(p+2h) - f(p-2h)]) / (12 h)

whose truncation error is (h⁴/30) f⁽⁵⁾ and rounding error about ε |f| / h (ε = 2.2e-16).
The step is chosen for the entry's scale: it starts at ``h = ε^(1/5) · max(|p|, ε^(1/5))``
(ε^(1/5) ≈ 7e-4 balances the two errors for a function of unit scale; relative to |p| so
that a probability of 1e-3 is not stepped across 0), and is divided by 4 while successive
estimates keep getting closer; the estimate closest to its coarser neighbour is kept. A
step that makes the loss non-finite (log of a negative probability) is skipped the same
way. Each step is rounded so that p + h - p is exactly h.

Measured against exact gradients (tests/test_more_losses.py, relative to the largest
entry): MSE 7.0e-10, MSE at |p| ~ 1e3 3.3e-10, categorical cross-entropy on softmax
outputs 6.1e-11 (1.7e-11 with probabilities down to 1e-4), binary cross-entropy with p in
[0.001, 0.999] 2.6e-11, Huber 2.3e-9. The previous fixed two-point step 1e-6 · max(1, |p|)
gave 6.0e-10, 6.9e-8, 1.5e-10 (1.8e-5), 1.0e-9 and 3.5e-9 on the same arrays. A function
that computes in float32 is refused: its differences would be noise at the percent level.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._typing import Array, Float64Array, FloatArray, JSONDict
from .base import Loss

__all__ = ["FunctionLoss", "relative_step", "derivative"]

#: ε^(1/5) for float64: the step that balances the stencil's truncation and rounding errors.
STEP_SCALE = float(np.finfo(np.float64).eps) ** 0.2
#: How many times the step may be divided by 4 (7e-4 · |p| down to 5e-7 · |p|).
MAX_REFINEMENTS = 5


def relative_step(value: float) -> float:
    """The first step for an entry: ``ε^(1/5) · max(|value|, ε^(1/5))``, made exactly
    representable against ``value``."""
    h = STEP_SCALE * max(abs(float(value)), STEP_SCALE)
    return (value + h) - value


def derivative(total: Callable[[], float], flat: Float64Array, k: int) -> float | None:
    """d total() / d flat[k] by the five-point stencil, the step refined by 4 while the
    estimates converge (``flat`` is changed in place and restored)."""
    original = flat[k]

    def stencil(h: float) -> float:
        values: list[float] = []
        for delta in (h, -h, 2 * h, -2 * h):
            flat[k] = original + delta
            values.append(total())
        flat[k] = original
        plus, minus, plus2, minus2 = values
        # differences first: exact zero when the loss does not move
        return (8 * (plus - minus) - (plus2 - minus2)) / (12 * h)

    h = relative_step(original)
    previous: float | None = None
    best: float | None = None
    best_change = np.inf
    for _ in range(MAX_REFINEMENTS + 1):
        estimate = stencil(h)
        if np.isfinite(estimate):
            if previous is not None:
                change = abs(estimate - previous)
                if change >= best_change:         # rounding has taken over
                    break
                best, best_change = estimate, change
            previous = estimate
        h = (original + h / 4) - original
    return best if best is not None else previous


class FunctionLoss(Loss):
    """Wrap a plain function ``fn(y_true, y_pred) -> values`` (NumPy arrays in and out).

    The gradient is taken numerically in float64 (five-point stencil, 8-24 evaluations per
    entry of ``y_pred``, the step refined for the entry's scale; see the module docstring):
    accurate to ~1e-9 for a smooth loss, but slow. A :class:`Loss` subclass with ``gradient`` is exact and fast. A warning
    says so when the loss is compiled. A function that computes in lower precision than it
    is given (float32 values for float64 arrays) is refused: its differences would be noise.

    Like Keras, the function sees one output's ``y_true`` and ``y_pred`` of shape (N, ...):
    ``y_true[0]`` is the first *sample*, not the first output.
    """

    def __init__(self, fn: Callable[[Any, Any], Any], name: str | None = None) -> None:
        if not callable(fn):
            raise TypeError(f"loss must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.name = name or str(getattr(fn, "__name__", "custom_loss"))

    def _values(self, y_true: Array, y_pred: FloatArray) -> FloatArray:
        values = np.asarray(self.fn(y_true, y_pred))
        if not np.issubdtype(values.dtype, np.floating):
            return values.astype(y_pred.dtype)
        if values.dtype.itemsize < y_pred.dtype.itemsize:
            raise TypeError(f"loss {self.name!r} returned {values.dtype} values for "
                            f"{y_pred.dtype} predictions: it computes in lower precision "
                            "than it is given, so its numerical gradient would be noise "
                            "(percent-level errors). Compute in the dtype of y_pred, or "
                            "subclass mlstm.losses.Loss with an exact gradient()")
        return values

    def call(self, y_true: Array, y_pred: FloatArray) -> FloatArray:
        return self._values(y_true, y_pred)

    def gradient(self, y_true: Array, y_pred: FloatArray) -> FloatArray:
        y_true64 = np.asarray(y_true, dtype=np.float64)
        y_pred64 = np.array(y_pred, dtype=np.float64)
        grad = np.empty_like(y_pred64)
        flat_pred, flat_grad = y_pred64.reshape(-1), grad.reshape(-1)

        def total() -> float:
            with np.errstate(all="ignore"):       # a step may leave the loss's domain
                return float(np.sum(self._values(y_true64, y_pred64), dtype=np.float64))

        for k in range(flat_pred.size):
            value = derivative(total, flat_pred, k)
            if value is None:
                raise ValueError(f"loss {self.name!r} is not finite around y_pred entry "
                                 f"{np.unravel_index(k, y_pred64.shape)}: no numerical "
                                 "derivative")
            flat_grad[k] = value
        return grad.astype(y_pred.dtype)

    def get_config(self) -> JSONDict:
        return {"name": self.name, "function": getattr(self.fn, "__qualname__", repr(self.fn))}
