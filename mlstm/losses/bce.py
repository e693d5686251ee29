"""Binary cross-entropy, on probabilities (clipped) or from the logits of a sigmoid head.

=============================  =========================================================
on probabilities p             -mean_D [t log p̂ + (1-t) log(1-p̂)], p̂ = clip(p, ε, 1-ε);
                               dp = -(t/p̂ - (1-t)/(1-p̂)) / D inside the clip, 0 outside
from logits x                  mean_D [max(x,0) - x t + log(1 + e^-|x|)]; dx = (σ(x) - t) / D
=============================  =========================================================

When the output is a sigmoid of logits (a ``Dense(activation="sigmoid")`` or
``Activation("sigmoid")`` output), binary cross-entropy is computed from those logits, as
Keras does; the clipped formula would be wrong (and its gradient zero) on a saturated head.
"""
from __future__ import annotations

import numpy as np

from .. import validation
from .._typing import Array, ArrayLike, FloatArray, JSONDict
from ..ops.activations import sigmoid
from ..registry import register_loss
from .base import EPSILON, Loss

__all__ = ["BinaryCrossentropy", "binary_crossentropy"]


@register_loss(aliases=("binary_crossentropy", "bce"))
class BinaryCrossentropy(Loss):
    """Binary cross-entropy, Keras' ``binary_crossentropy``.

    Parameters
    ----------
    from_logits : bool
        ``y_pred`` holds logits rather than probabilities.
    label_smoothing : float
        Targets become ``t (1 - s) + s / 2``.
    invalid_targets : {"raise", "warn", "ignore"}
        What to do with targets outside [0, 1] (which make the loss unbounded below);
        checked by :func:`mlstm.validation.check_target_range`.

    On a sigmoid head the logits are used whatever ``from_logits`` says (Keras does the
    same, warning when ``from_logits=True`` since the output is not logits).
    """

    name = "binary_crossentropy"
    logits_activation = "sigmoid"
    keras_name = "BinaryCrossentropy"
    keras_function = "binary_crossentropy"
    target_range = (0.0, 1.0)

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0,
                 invalid_targets: str = "raise") -> None:
        self.from_logits = bool(from_logits)
        if not 0.0 <= float(label_smoothing) <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)
        self.invalid_targets = validation.check_choice(
            invalid_targets, validation.POLICIES, "BinaryCrossentropy: invalid_targets")

    def _smooth(self, y_true: Array) -> Array:
        if self.label_smoothing:
            return y_true * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        return y_true

    def call(self, y_true: Array, y_pred: FloatArray) -> FloatArray:
        if self.from_logits:
            return self.call_logits(y_true, y_pred)
        t = self._smooth(y_true)
        eps = y_pred.dtype.type(EPSILON)
        p = np.clip(y_pred, eps, 1 - eps)
        return -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p), axis=-1)

    def gradient(self, y_true: Array, y_pred: FloatArray) -> FloatArray:
        if self.from_logits:
            return self.gradient_logits(y_true, y_pred)
        t = self._smooth(y_true)
        eps = y_pred.dtype.type(EPSILON)
        p = np.clip(y_pred, eps, 1 - eps)
        inside = (y_pred >= eps) & (y_pred <= 1 - eps)   # tf.clip_by_value passes these
        grad = -(t / p - (1 - t) / (1 - p)) / y_pred.shape[-1]
        return np.where(inside, grad, 0).astype(y_pred.dtype, copy=False)

    def call_logits(self, y_true: Array, logits: FloatArray) -> FloatArray:
        """Per-sample values from the logits a: ``mean_O(max(a, 0) - a t + log(1 + e^-|a|))``."""
        t = self._smooth(y_true)
        # max(x, 0) - x t + log(1 + e^-|x|): finite for any finite x (tf's formula).
        return np.mean(np.maximum(logits, 0) - logits * t + np.log1p(np.exp(-np.abs(logits))),
                       axis=-1)

    def gradient_logits(self, y_true: Array, logits: FloatArray) -> FloatArray:
        """``∂ values / ∂ a = (σ(a) - t) / O``, shaped like ``logits`` (N, ..., O)."""
        # σ(x) - t, written as the derivative of the formula above (TensorFlow's gradient):
        # for x >= 0 it is (1 - t) - σ(-x), so σ(x) ≈ 1 does not cancel against t = 1
        # (exact at x = 40: -4.2e-18, not 0).
        t = self._smooth(y_true)
        tail = sigmoid(-np.abs(logits))                     # σ(-|x|), never rounds to 1
        return np.where(logits >= 0, (1 - t) - tail, tail - t) / logits.shape[-1]

    def get_config(self) -> JSONDict:
        return {"name": self.name, "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing,
                "invalid_targets": self.invalid_targets}


def binary_crossentropy(y_true: ArrayLike, y_pred: ArrayLike, from_logits: bool = False
                        ) -> FloatArray:
    """Per-sample binary cross-entropy values (probabilities clipped to [ε, 1-ε])."""
    return BinaryCrossentropy(from_logits).call(np.asarray(y_true), np.asarray(y_pred))
