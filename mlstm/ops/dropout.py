"""Inverted dropout, as Keras 3.15 computes it (TensorFlow's ``stateless_dropout``).

Forward, for a rate r in [0, 1] and a mask drawn once per call::

    keep = (u >= r),  u ~ Uniform[0, 1)  of the noise shape (broadcast to x's shape)
    m    = keep · s,  s = 1 / (1 - r)    (computed in x's dtype, as TensorFlow does)
    y    = x ⊙ m                          (r = 1: y = 0; r = 0: y = x)

Backward: the mask is a constant of the step, so ``dx = dy ⊙ m`` (summed over nothing:
``m`` broadcasts to ``x``'s shape, and so does ``dx``).

The scaling keeps the expected value: E[y] = x. At inference dropout is the identity.
The random numbers come from a ``numpy.random.Generator`` the caller owns (the model's
seeded stream during ``fit``), so the same seed gives the same masks, bit for bit.
"""
from __future__ import annotations

from typing import Any, cast

import numpy as np

from .._typing import Cache, DTypeLike, FloatArray, Shape

__all__ = ["dropout_scale", "dropout_mask", "dropout_forward", "dropout_backward"]


def dropout_scale(rate: float, dtype: DTypeLike) -> np.floating[Any]:
    """``1 / (1 - rate)`` computed in ``dtype`` (TensorFlow converts the rate to x's dtype
    before dividing); 0 for ``rate == 1`` (everything is dropped)."""
    scalar = cast("type[np.floating[Any]]", np.dtype(dtype).type)   # float32 or float64
    if rate >= 1:
        return scalar(0)
    return scalar(1) / (scalar(1) - scalar(rate))


def dropout_mask(rng: np.random.Generator, rate: float, shape: Shape, dtype: DTypeLike
                 ) -> FloatArray:
    """A dropout mask ``keep · 1/(1 - rate)`` of ``shape``, drawn from ``rng``.

    Parameters
    ----------
    rng : numpy.random.Generator
    rate : float in [0, 1]
        The fraction of entries dropped (each independently).
    shape : tuple of int
        The noise shape (1 on an axis where one draw is shared, e.g. the time axis of
        ``SpatialDropout1D``).
    dtype : float32 or float64

    Returns
    -------
    ndarray of ``shape`` and ``dtype``: 0 or ``1/(1 - rate)``.
    """
    keep = rng.random(shape) >= rate
    return keep.astype(dtype) * dropout_scale(rate, dtype)


def dropout_forward(x: FloatArray, mask: FloatArray | None) -> tuple[FloatArray, Cache]:
    """``y = x ⊙ mask`` (``mask`` broadcastable to ``x``; None: the identity, a copy-free
    pass-through). Returns ``(y, cache)``."""
    if mask is None:
        return x, {"mask": None}
    return x * mask, {"mask": mask}


def dropout_backward(d_y: FloatArray, cache: Cache) -> FloatArray:
    """``dx = dy ⊙ mask`` (the same mask as the forward pass)."""
    mask = cache["mask"]
    return d_y if mask is None else d_y * mask
