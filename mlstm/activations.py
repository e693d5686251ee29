"""Activation components: the registered answer to "what does activation X do?".

The math of each activation lives in :mod:`mlstm.ops.activations` (forward, and the
derivative written through the output). A component adds what the rest of mlstm asks
about an activation: its Keras name, whether it is elementwise and how its backward pass
goes (:meth:`ActivationFunction.backward`), and how to tell, from an activated value, that
the pre-activation was saturated (``|z| > threshold``), without keeping ``z``:

=========  ===================================================
sigmoid    σ(z) < σ(-thr) or σ(z) > σ(thr)       (σ monotone)
tanh       |tanh z| > tanh(thr)
linear     |z| > thr
relu       no saturating side: None
softmax    per row: the largest logit exceeds every other by more than thr,
           i.e. y_max > e^thr · y_second (row-wise, shape (..., ) without C)
=========  ===================================================

>>> get("sigmoid").saturated(np.array([0.5, 0.9999]), 5.0)
array([False,  True])
"""
from __future__ import annotations

from typing import cast

import numpy as np

from ._typing import BoolArray, FloatArray

from .ops import activations as ops_activations
from .registry import ACTIVATIONS, register_activation

__all__ = ["ActivationFunction", "Sigmoid", "Tanh", "Relu", "Linear", "Softmax", "get"]


class ActivationFunction:
    """One elementwise activation; subclasses name it and say how it saturates."""

    #: The name in configs (``Dense(activation=...)``) and in Keras.
    #: (set by the registry on every registered subclass; the methods below run on those)
    registered_name: str | None = None
    #: Whether ``y_i`` depends on ``x_i`` alone (softmax: on the whole last axis).
    elementwise = True

    def forward(self, x: FloatArray, out: FloatArray | None = None) -> FloatArray:
        """``y = f(x)``."""
        return ops_activations.activate(cast(str, self.registered_name), x, out=out)

    def derivative_from_output(self, y: FloatArray, out: FloatArray | None = None
                               ) -> FloatArray:
        """``f'(x)`` written through ``y = f(x)`` (elementwise activations only)."""
        return ops_activations.derivative_from_output(cast(str, self.registered_name), y, out=out)

    def backward(self, d_y: FloatArray, y: FloatArray) -> FloatArray:
        """``dL/dx`` from ``dL/dy`` and ``y = f(x)`` (the vector-Jacobian product)."""
        return ops_activations.activation_backward(cast(str, self.registered_name), d_y, y)

    def saturated(self, y: FloatArray, threshold: float) -> BoolArray | None:
        """Boolean ``|z| > threshold`` from ``y = f(z)``, or None when f never saturates."""
        return None

    def __repr__(self) -> str:
        return f"<activation {self.registered_name!r}>"


@register_activation(name="sigmoid")
class Sigmoid(ActivationFunction):
    """``σ(z) = 1 / (1 + e^-z)``."""

    def saturated(self, y: FloatArray, threshold: float) -> BoolArray:
        low = 1.0 / (1.0 + np.exp(threshold))
        return (y < low) | (y > 1.0 - low)


@register_activation(name="tanh")
class Tanh(ActivationFunction):
    """``tanh z``."""

    def saturated(self, y: FloatArray, threshold: float) -> BoolArray:
        return np.abs(y) > np.tanh(threshold)


@register_activation(name="relu")
class Relu(ActivationFunction):
    """``max(z, 0)``: no saturating side (its dead side is a different finding)."""


@register_activation(name="linear")
class Linear(ActivationFunction):
    """``z``: "saturated" means beyond the threshold itself."""

    def saturated(self, y: FloatArray, threshold: float) -> BoolArray:
        return np.abs(y) > threshold


@register_activation(name="softmax")
class Softmax(ActivationFunction):
    """``exp(z) / Σ_j exp(z_j)`` over the last axis (:mod:`mlstm.ops.softmax`).

    Not elementwise: :meth:`backward` is ``y ⊙ (dy - Σ_j dy_j y_j)``, and
    :meth:`derivative_from_output` refuses. On a softmax head, categorical and sparse
    categorical cross-entropy are computed from the logits, as Keras does.
    """

    elementwise = False

    def saturated(self, y: FloatArray, threshold: float) -> BoolArray:
        """Per row (shape ``y.shape[:-1]``): the top logit leads the runner-up by more than
        ``threshold``, i.e. ``y_max > e^threshold · y_second``; the gradient reaching the
        logits of such a row through the probabilities is then below ~e^-threshold. A single
        unit is always saturated (its output is the constant 1)."""
        if y.shape[-1] < 2:
            return np.ones(y.shape[:-1], dtype=bool)
        top_two = np.partition(y, y.shape[-1] - 2, axis=-1)[..., -2:]
        return top_two[..., 1] > np.exp(threshold) * top_two[..., 0]


def get(name: str | None) -> ActivationFunction:
    """The activation component for ``name`` (None means linear)."""
    return ACTIVATIONS.get(ops_activations.get_activation(name, last_axis=True))()
