"""Dense (fully connected) layer, applied to the last axis.

Forward::

    a = x W + b          x: (..., D), W: (D, O), b: (O,)
    y = act(a)

Backward (``dy`` the gradient with respect to y, or ``da`` given directly when the loss
was computed from the logits ``a``, as Keras does for BCE on a sigmoid head)::

    da = dy ⊙ act'(a)    (from y, see activations.py; for softmax y ⊙ (dy - Σ dy y))
    dW = x^T da          (all leading axes flattened: one GEMM)
    db = Σ da
    dx = da W^T
"""
from __future__ import annotations

import numpy as np

from .._typing import Cache, FloatArray
from .activations import activate, activation_backward

__all__ = ["dense_forward", "dense_backward"]


def dense_forward(x: FloatArray, kernel: FloatArray, bias: FloatArray | None = None,
                  activation: str = "linear") -> tuple[FloatArray, Cache]:
    """Affine map on the last axis followed by an activation.

    Parameters
    ----------
    x : ndarray (..., D)
    kernel : ndarray (D, O)
    bias : ndarray (O,) or None
    activation : str

    Returns
    -------
    y : ndarray (..., O)
    cache : dict
        Holds ``logits`` (the pre-activation a), used for BCE from logits.
    """
    logits = x @ kernel
    if bias is not None:
        logits += bias
    y = logits if activation == "linear" else activate(activation, logits)
    cache = dict(x=x, kernel=kernel, use_bias=bias is not None, logits=logits, y=y,
                 activation=activation)
    return y, cache


def dense_backward(d_y: FloatArray | None, cache: Cache, d_logits: FloatArray | None = None
                   ) -> dict[str, FloatArray]:
    """Gradients of :func:`dense_forward`.

    Parameters
    ----------
    d_y : ndarray (..., O) or None
        Gradient with respect to the output y.
    cache : dict
    d_logits : ndarray (..., O) or None
        Gradient with respect to the pre-activation, added after the activation's
        derivative (a loss computed from the logits).

    Returns
    -------
    dict with ``x``, ``kernel``, ``bias`` (when used) and ``d_logits`` (da, per sample).
    """
    x, kernel = cache["x"], cache["kernel"]
    if d_y is not None:
        d_a = activation_backward(cache["activation"], d_y, cache["y"])
        if d_logits is not None:
            d_a += d_logits
    elif d_logits is not None:
        d_a = d_logits
    else:
        d_a = np.zeros_like(cache["logits"])
    D, O = kernel.shape
    d_a_flat = d_a.reshape(-1, O)
    grads = {
        "kernel": x.reshape(-1, D).T @ d_a_flat,
        "x": d_a @ kernel.T,
        "d_logits": d_a,
    }
    if cache["use_bias"]:
        grads["bias"] = d_a_flat.sum(axis=0)
    return grads
