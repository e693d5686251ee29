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

``softmax`` (over the last axis, :mod:`mlstm.ops.softmax`) is the one activation that is
not elementwise: its backward pass is a vector-Jacobian product, ``dx = y ⊙ (dy - Σ dy y)``,
not ``dy ⊙ f'(x)``. It lives in :data:`LAST_AXIS_ACTIVATIONS`, is accepted only where the
caller asks for it (``get_activation(name, last_axis=True)``: Dense and Activation, not the
LSTM's gates), and :func:`activation_backward` applies either rule.

``sigmoid`` is :func:`scipy.special.expit`, which is stable for any finite input (no
overflow warning at x = -1e4) and keeps float32 as float32.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import expit

from .._typing import FloatArray

from .softmax import softmax, softmax_backward_from_output

__all__ = ["ACTIVATIONS", "LAST_AXIS_ACTIVATIONS", "get_activation", "activate",
           "derivative_from_output", "activation_backward", "sigmoid", "tanh", "relu",
           "linear", "softmax"]


def sigmoid(x: FloatArray, out: FloatArray | None = None) -> FloatArray:
    """Logistic sigmoid ``1 / (1 + exp(-x))``, overflow-free (scipy.special.expit)."""
    return expit(x, out=out)


def tanh(x: FloatArray, out: FloatArray | None = None) -> FloatArray:
    """Hyperbolic tangent."""
    return np.tanh(x, out=out)


def relu(x: FloatArray, out: FloatArray | None = None) -> FloatArray:
    """Rectified linear unit ``max(x, 0)``."""
    return np.maximum(x, 0, out=out)


def linear(x: FloatArray, out: FloatArray | None = None) -> FloatArray:
    """Identity; copies into ``out`` when given."""
    if out is None:
        return x
    if out is not x:
        np.copyto(out, x)
    return out


def _d_sigmoid(y: FloatArray, out: FloatArray | None = None) -> FloatArray:
    # y (1 - y), written so that no temporary the size of y is allocated when out is given
    out = np.subtract(1, y, out=out)
    return np.multiply(out, y, out=out)


def _d_tanh(y: FloatArray, out: FloatArray | None = None) -> FloatArray:
    out = np.multiply(y, y, out=out)
    return np.subtract(1, out, out=out)


def _d_relu(y: FloatArray, out: FloatArray | None = None) -> FloatArray:
    if out is None:
        return (y > 0).astype(y.dtype)
    return np.greater(y, 0, out=out)


def _d_linear(y: FloatArray, out: FloatArray | None = None) -> FloatArray:
    if out is None:
        return np.ones_like(y)
    out[...] = 1
    return out


#: name -> (forward(x, out=None), derivative_from_output(y, out=None))
ACTIVATIONS: dict[str, tuple[Callable[..., FloatArray], Callable[..., FloatArray]]] = {
    "linear": (linear, _d_linear),
    "sigmoid": (sigmoid, _d_sigmoid),
    "tanh": (tanh, _d_tanh),
    "relu": (relu, _d_relu),
}


#: name -> (forward(x, out=None), backward_from_output(d_y, y, out=None)): activations of
#: the whole last axis, whose backward pass is not ``d_y * f'(x)``.
LAST_AXIS_ACTIVATIONS: dict[str, tuple[Callable[..., FloatArray],
                                       Callable[..., FloatArray]]] = {
    "softmax": (softmax, softmax_backward_from_output),
}


def get_activation(name: Any, last_axis: bool = False) -> str:
    """Return the canonical activation name, accepting ``None`` for ``"linear"``.

    Parameters
    ----------
    name : str or None
    last_axis : bool
        Also accept the activations of the whole last axis (softmax); only a layer whose
        backward pass uses :func:`activation_backward` (Dense, Activation) asks for them.

    Raises
    ------
    ValueError
        For an unknown name, or softmax where it is not supported; the message lists the
        valid names.
    """
    if name is None:
        return "linear"
    valid = sorted(ACTIVATIONS) + (sorted(LAST_AXIS_ACTIVATIONS) if last_axis else [])
    if isinstance(name, str) and name in LAST_AXIS_ACTIVATIONS and not last_axis:
        raise ValueError(f"Activation {name!r} acts on the whole last axis and is supported "
                         f"on Dense and Activation only; valid activations here are {valid} "
                         "(or None for linear)")
    if not isinstance(name, str) or name not in valid:
        raise ValueError(
            f"Unknown activation {name!r}; valid activations are {valid} (or None for linear)")
    return name


def activate(name: str, x: FloatArray, out: FloatArray | None = None) -> FloatArray:
    """Apply activation ``name`` to ``x`` (into ``out`` when given)."""
    table = LAST_AXIS_ACTIVATIONS if name in LAST_AXIS_ACTIVATIONS else ACTIVATIONS
    return table[name][0](x, out=out)


def derivative_from_output(name: str, y: FloatArray, out: FloatArray | None = None
                           ) -> FloatArray:
    """Derivative ``f'(x)`` of elementwise activation ``name`` expressed through its output
    ``y = f(x)``. Softmax has no elementwise derivative: use :func:`activation_backward`."""
    if name in LAST_AXIS_ACTIVATIONS:
        raise TypeError(f"activation {name!r} is not elementwise: its backward pass is "
                        "activation_backward(name, d_y, y), not d_y * derivative_from_output")
    return ACTIVATIONS[name][1](y, out=out)


def activation_backward(name: str, d_y: FloatArray, y: FloatArray) -> FloatArray:
    """``dL/dx`` from ``dL/dy`` and the output ``y = f(x)``: ``d_y ⊙ f'(x)`` for an
    elementwise activation, ``y ⊙ (d_y - Σ_j d_y_j y_j)`` for softmax. Shapes (..., O)."""
    if name in LAST_AXIS_ACTIVATIONS:
        return LAST_AXIS_ACTIVATIONS[name][1](d_y, y)
    if name == "linear":
        return d_y.copy()
    return d_y * ACTIVATIONS[name][1](y)
