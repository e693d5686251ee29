"""Repeat a vector along a new time axis (Keras' ``RepeatVector``).

Forward::

    y[:, t, :] = x          x: (N, D), y: (N, n, D), t = 0 .. n-1

Backward: every copy of ``x`` received its own gradient, so they add up::

    dx = Σ_t dy[:, t, :]
"""
from __future__ import annotations

import numpy as np

from .._typing import Cache, FloatArray

__all__ = ["repeat_vector_forward", "repeat_vector_backward"]


def repeat_vector_forward(x: FloatArray, n: int) -> tuple[FloatArray, Cache]:
    """``x`` (N, D) repeated ``n`` times: (N, n, D) (a new array, not a broadcast view).

    Returns ``(y, cache)``; the cache is empty (the backward pass needs no value).
    """
    y = np.repeat(x[:, None, :], n, axis=1)
    return y, {}


def repeat_vector_backward(d_y: FloatArray, cache: Cache) -> FloatArray:
    """dL/dx (N, D) from dL/dy (N, n, D): the sum over the repeated axis."""
    return d_y.sum(axis=1)
