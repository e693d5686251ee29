"""Shape-only ops: concatenation and reshape. Their backward passes route gradients.

Concatenate along ``axis``: ``y = [x_1 | x_2 | ...]``; backward splits ``dy`` at the same
offsets. Reshape: ``y = x.reshape(N, *shape)``; backward reshapes ``dy`` back.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._typing import Cache, FloatArray

__all__ = ["concatenate_forward", "concatenate_backward", "reshape_forward", "reshape_backward"]


def concatenate_forward(xs: Sequence[FloatArray], axis: int = -1) -> tuple[FloatArray, Cache]:
    """Concatenate arrays ``xs`` (same shape except on ``axis``) along ``axis``.

    Returns ``(y, cache)``; ``cache`` holds the split offsets.
    """
    y = np.concatenate(xs, axis=axis)
    sizes = [x.shape[axis] for x in xs]
    return y, dict(axis=axis, offsets=np.cumsum(sizes)[:-1])


def concatenate_backward(d_y: FloatArray, cache: Cache) -> list[FloatArray]:
    """Split ``d_y`` back into the gradients of the concatenated inputs (a list)."""
    return np.split(d_y, cache["offsets"], axis=cache["axis"])


def reshape_forward(x: FloatArray, target_shape: Sequence[int]) -> tuple[FloatArray, Cache]:
    """Reshape ``x`` (N, ...) to (N, *target_shape); ``-1`` allowed once, as in Keras."""
    return x.reshape((x.shape[0],) + tuple(target_shape)), dict(input_shape=x.shape)


def reshape_backward(d_y: FloatArray, cache: Cache) -> FloatArray:
    """Reshape ``d_y`` back to the input's shape."""
    return d_y.reshape(cache["input_shape"])
