"""Batch normalization over the feature axis (the last), as Keras 3.15 computes it.

Every axis but the last is a reduction axis: for x of shape (N, D) the statistics are over
the N rows, for (N, T, D) over the N·T steps. With rows r = 1..M and weights w_r (1, or
the time mask where a mask travels with the input)::

    c   = M                          (no mask)
    c   = Σ_r w_r + 1e-7             (mask: Keras adds backend.epsilon() to the count)
    μ   = Σ_r w_r x_r / c
    v   = Σ_r w_r (x_r - μ)² / c     (the biased variance)

Training uses (μ, v) of the batch; inference the moving statistics. Then, in TensorFlow's
order (``tf.nn.batch_normalization``)::

    s   = γ / sqrt(v + ε)            (1 / sqrt(v + ε) without scale)
    y   = x s + (β - μ s)            (every row, masked ones too: only the statistics skip them)

and in training the moving statistics move (done by the layer, not here)::

    μ_moving ← μ_moving · momentum + μ · (1 - momentum)       (the same for v)

Backward, with x̂_r = (x_r - μ) / sqrt(v + ε) and dy the output gradient::

    dβ  = Σ_r dy_r                   dγ = Σ_r dy_r x̂_r
    dx_r = dy_r s                                                  (inference: all of it)
         + w_r dμ / c + w_r dv · 2 (x_r - μ) / c                   (training)
    dv  = -½ γ (v + ε)^(-3/2) Σ_r dy_r (x_r - μ)
    dμ  = -s Σ_r dy_r + dv · ∂v/∂μ,   ∂v/∂μ = -2 Σ_r w_r (x_r - μ) / c

Without a mask ∂v/∂μ is 0 (Σ (x_r - μ) = 0) and TensorFlow's ``moments`` stops the gradient
there; with one it is ``-2 · 1e-7 · Σ w x / c²``, tiny but what Keras' autodiff computes,
so it is kept.
"""
from __future__ import annotations

import numpy as np

from .._typing import BoolArray, Cache, FloatArray

__all__ = ["MASK_COUNT_EPSILON", "batch_statistics", "batch_norm_forward",
           "batch_norm_backward", "moving_average"]

#: Keras' ``backend.epsilon()``, added to the count of valid steps in the masked statistics.
MASK_COUNT_EPSILON = 1e-7


def batch_statistics(x: FloatArray, mask: BoolArray | None = None
                     ) -> tuple[FloatArray, FloatArray]:
    """``(mean, variance)`` (D,) over every axis of ``x`` (N, ..., D) but the last.

    ``mask`` (N, T) bool for x (N, T, D): only valid steps count (see the module docstring).
    """
    D = x.shape[-1]
    rows = x.reshape(-1, D)
    if mask is None:
        mean = rows.mean(axis=0)
        variance = np.square(rows - mean).mean(axis=0)
        return mean, variance
    valid = mask.reshape(-1, 1)
    count = x.dtype.type(np.count_nonzero(valid)) + x.dtype.type(MASK_COUNT_EPSILON)
    mean = np.where(valid, rows, 0).sum(axis=0) / count
    variance = np.square(np.where(valid, rows - mean, 0)).sum(axis=0) / count
    return mean, variance


def batch_norm_forward(x: FloatArray, mean: FloatArray, variance: FloatArray,
                       gamma: FloatArray | None = None, beta: FloatArray | None = None,
                       epsilon: float = 1e-3, mask: BoolArray | None = None,
                       batch_stats: bool = False) -> tuple[FloatArray, Cache]:
    """Normalize ``x`` (N, ..., D) with ``mean`` and ``variance`` (D,), then scale and shift.

    Parameters
    ----------
    x : ndarray (N, ..., D)
    mean, variance : ndarray (D,)
        The batch's (from :func:`batch_statistics`) or the moving statistics.
    gamma, beta : ndarray (D,) or None
        Scale and offset (None: ``scale=False`` / ``center=False``).
    epsilon : float
    mask : ndarray of bool (N, T) or None
        The mask the batch statistics were computed with (for the backward pass).
    batch_stats : bool
        Whether ``mean``/``variance`` are the batch's (then the backward pass goes through
        them) or constants (the moving statistics).

    Returns
    -------
    y : ndarray like x
    cache : dict
    """
    dtype = x.dtype.type
    inv = dtype(1) / np.sqrt(variance + dtype(epsilon))     # TensorFlow: rsqrt(v + ε)
    scale = inv if gamma is None else inv * gamma
    shift = -mean * scale if beta is None else beta - mean * scale
    y = x * scale + shift
    cache = dict(x=x, mean=mean.copy(), inv=inv, scale=scale, gamma=gamma,
                 use_beta=beta is not None, mask=mask, batch_stats=batch_stats)
    return y, cache


def batch_norm_backward(d_y: FloatArray, cache: Cache) -> dict[str, FloatArray]:
    """Gradients of :func:`batch_norm_forward` (through the batch statistics when it used
    them): dict with ``x`` and, when used, ``gamma`` and ``beta``."""
    x, mean, inv, scale = cache["x"], cache["mean"], cache["inv"], cache["scale"]
    D = x.shape[-1]
    rows, d_rows = x.reshape(-1, D), d_y.reshape(-1, D)
    centered = rows - mean
    grads: dict[str, FloatArray] = {}
    if cache["use_beta"]:
        grads["beta"] = d_rows.sum(axis=0)
    if cache["gamma"] is not None:
        grads["gamma"] = (d_rows * centered).sum(axis=0) * inv
    d_x = d_rows * scale
    if cache["batch_stats"]:
        gamma = cache["gamma"]
        mask = cache["mask"]
        # dv = -½ γ (v + ε)^(-3/2) Σ dy (x - μ);  (v + ε)^(-3/2) = inv³
        d_var = (d_rows * centered).sum(axis=0) * (-0.5 * inv ** 3)
        if gamma is not None:
            d_var = d_var * gamma
        d_mean = -scale * d_rows.sum(axis=0)
        if mask is None:
            count = x.dtype.type(rows.shape[0])
            d_x = d_x + (d_mean + d_var * 2 * centered) / count
        else:
            valid = mask.reshape(-1, 1)
            count = x.dtype.type(np.count_nonzero(valid)) + x.dtype.type(MASK_COUNT_EPSILON)
            weighted = np.where(valid, centered, 0)
            d_mean = d_mean + d_var * (-2 * weighted.sum(axis=0) / count)
            d_x = d_x + np.where(valid, d_mean + d_var * 2 * centered, 0) / count
    grads["x"] = d_x.reshape(x.shape)
    return grads


def moving_average(moving: FloatArray, value: FloatArray, momentum: float) -> FloatArray:
    """``moving · momentum + value · (1 - momentum)`` in ``moving``'s dtype (Keras: the
    Python floats become constants of the variable's dtype). Returns a new array."""
    dtype = moving.dtype.type
    return moving * dtype(momentum) + value.astype(moving.dtype) * dtype(1.0 - momentum)
