"""Softmax over the last axis, its backward pass, and the log-sum-exp the losses use.

Forward (stable: the largest entry of each row is subtracted first, so ``exp`` never
overflows and the row's largest term is exactly 1)::

    z = x - max_j x_j
    y = exp(z) / Σ_j exp(z_j)                         x, y: (..., C)

Backward. Softmax is not elementwise: every output depends on every input of its row, with
Jacobian ``∂y_i/∂x_k = y_i (δ_ik - y_k)``. The vector-Jacobian product needs only ``y``::

    dx_k = Σ_i dy_i y_i (δ_ik - y_k) = y_k (dy_k - Σ_i dy_i y_i)

one row-wise dot product, never the C × C Jacobian (``docs/classification.md``).
"""
from __future__ import annotations

import numpy as np

from .._typing import Cache, FloatArray

__all__ = ["softmax", "softmax_forward", "softmax_backward", "softmax_backward_from_output",
           "logsumexp", "log_softmax"]


def softmax(x: FloatArray, out: FloatArray | None = None) -> FloatArray:
    """``exp(x) / Σ exp(x)`` over the last axis, with the row maximum subtracted first.

    Parameters
    ----------
    x : ndarray (..., C)
    out : ndarray (..., C), optional
        Written in place when given (may be ``x`` itself).

    Returns
    -------
    ndarray (..., C), same dtype as ``x``; each row sums to 1.
    """
    shifted = np.subtract(x, np.max(x, axis=-1, keepdims=True), out=out)
    np.exp(shifted, out=shifted)
    shifted /= np.sum(shifted, axis=-1, keepdims=True)
    return shifted


def softmax_backward_from_output(d_y: FloatArray, y: FloatArray,
                                 out: FloatArray | None = None) -> FloatArray:
    """``dx = y ⊙ (dy - Σ_j dy_j y_j)`` from the output ``y`` (the vector-Jacobian product).

    Parameters
    ----------
    d_y, y : ndarray (..., C)
    out : ndarray (..., C), optional

    Returns
    -------
    ndarray (..., C)
    """
    dot = np.sum(d_y * y, axis=-1, keepdims=True)
    out = np.subtract(d_y, dot, out=out)
    return np.multiply(out, y, out=out)


def softmax_forward(x: FloatArray) -> tuple[FloatArray, Cache]:
    """Softmax of ``x`` (..., C) over the last axis: ``(y, cache)``."""
    y = softmax(x)
    return y, {"y": y}


def softmax_backward(d_y: FloatArray, cache: Cache) -> FloatArray:
    """Gradient of :func:`softmax_forward`: ``dx`` (..., C) from ``dy`` (..., C)."""
    return softmax_backward_from_output(d_y, cache["y"])


def logsumexp(x: FloatArray) -> FloatArray:
    """``log Σ_j exp(x_j)`` over the last axis, (..., C) -> (..., 1), without overflow."""
    top = np.max(x, axis=-1, keepdims=True)
    return top + np.log(np.sum(np.exp(x - top), axis=-1, keepdims=True))


def log_softmax(x: FloatArray) -> FloatArray:
    """``x - logsumexp(x)`` over the last axis: the log-probabilities, (..., C)."""
    return x - logsumexp(x)
