"""Elementwise activations and their derivatives.

Every activation is stored with the derivative written *in terms of its output*
``y = f(x)``, because the backward passes of LSTM and Dense keep the activated values
(the gates) and not the pre-activations:

=========  ====================  ===========================
name       forward  y = f(x)     derivative  f'(x) from y
=========  ====================  ===========================
linear     x                     1
sigmoid    1 / (1 + e^-x)        y (1 - y)
tanh       tanh(x)               1 - y^2
relu       max(x, 0)             [y > 0]
=========  ====================  ===========================

``sigmoid`` is :func:`scipy.special.expit`, which is stable for any finite input (no
overflow warning at x = -1e4) and keeps float32 as float32.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit

__all__ = ["ACTIVATIONS", "get_activation", "activate", "derivative_from_output",
           "sigmoid", "tanh", "relu", "linear"]


def sigmoid(x, out=None):
    """Logistic sigmoid ``1 / (1 + exp(-x))``, overflow-free (scipy.special.expit)."""
    return expit(x, out=out)


def tanh(x, out=None):
    """Hyperbolic tangent."""
    return np.tanh(x, out=out)


def relu(x, out=None):
    """Rectified linear unit ``max(x, 0)``."""
    return np.maximum(x, 0, out=out)


def linear(x, out=None):
    """Identity; copies into ``out`` when given."""
    if out is None:
        return x
    if out is not x:
        np.copyto(out, x)
    return out


def _d_sigmoid(y, out=None):
    # y (1 - y), written so that no temporary the size of y is allocated when out is given
    out = np.subtract(1, y, out=out)
    return np.multiply(out, y, out=out)


def _d_tanh(y, out=None):
    out = np.multiply(y, y, out=out)
    return np.subtract(1, out, out=out)


def _d_relu(y, out=None):
    if out is None:
        return (y > 0).astype(y.dtype)
    return np.greater(y, 0, out=out)


def _d_linear(y, out=None):
    if out is None:
        return np.ones_like(y)
    out[...] = 1
    return out


#: name -> (forward(x, out=None), derivative_from_output(y, out=None))
ACTIVATIONS = {
    "linear": (linear, _d_linear),
    "sigmoid": (sigmoid, _d_sigmoid),
    "tanh": (tanh, _d_tanh),
    "relu": (relu, _d_relu),
}


def get_activation(name):
    """Return the canonical activation name, accepting ``None`` for ``"linear"``.

    Raises
    ------
    ValueError
        For an unknown name; the message lists the valid names.
    """
    if name is None:
        return "linear"
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(
            f"Unknown activation {name!r}; valid activations are "
            f"{sorted(ACTIVATIONS)} (or None for linear)")
    return name


def activate(name, x, out=None):
    """Apply activation ``name`` to ``x`` (into ``out`` when given)."""
    return ACTIVATIONS[name][0](x, out=out)


def derivative_from_output(name, y, out=None):
    """Derivative ``f'(x)`` of activation ``name`` expressed through its output ``y = f(x)``."""
    return ACTIVATIONS[name][1](y, out=out)
