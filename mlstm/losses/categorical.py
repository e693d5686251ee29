"""Categorical cross-entropy, on probabilities or from the logits of a softmax head.

With C classes on the last axis, targets t (one-hot, or any distribution), label
smoothing s and ε = 1e-7 (Keras' ``categorical_crossentropy``, TensorFlow backend):

=============================  =========================================================
smoothed targets               t' = t (1 - s) + s / C
on probabilities p             q = p / Σ_j p_j,  q̂ = clip(q, ε, 1 - ε)
                               ℓ = -Σ_j t'_j log q̂_j
                               g_j = -t'_j / q̂_j inside the clip, 0 outside;
                               ∂ℓ/∂p_k = (g_k - Σ_j g_j q_j) / Σ_j p_j
from logits a                  ℓ = Σ_j t'_j (lse(a) - a_j),  lse(a) = log Σ_j e^{a_j}
                               ∂ℓ/∂a_k = softmax(a)_k Σ_j t'_j - t'_k    (= p - t' when
                               the targets sum to 1, as one-hot and smoothed ones do)
=============================  =========================================================

On a softmax head (``Dense(activation="softmax")`` or ``Activation("softmax")``) the loss
is computed from the logits whatever ``from_logits`` says, as Keras' TensorFlow backend
does (it reads the logits the softmax cached on its output). Derivation:
``docs/classification.md``. For targets whose rows do not sum to 1, Keras' gradient from
logits is TensorFlow's ``softmax(a) - t'``, not the derivative above; mlstm keeps the
derivative (:meth:`CategoricalCrossentropy.tensorflow_gradient_logits`, docs/losses.md).
"""
from __future__ import annotations

import warnings

from typing import Any

import numpy as np

from .. import validation
from .._typing import Array, ArrayLike, FloatArray, JSONDict
from ..ops.softmax import logsumexp, softmax
from ..registry import register_loss
from .base import EPSILON, Loss
from .options import refuse_unknown_options

__all__ = ["CategoricalCrossentropy", "categorical_crossentropy", "check_axis"]


def check_axis(axis: Any, loss_name: str) -> int:
    """``axis`` must be -1: mlstm's losses reduce the last axis (the classes of a Dense)."""
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or axis != -1:
        raise ValueError(f"{loss_name}: axis={axis!r} is not supported; mlstm computes the "
                         "cross-entropy over the last axis only (axis=-1), where a Dense or "
                         "softmax puts the classes")
    return -1


@register_loss(aliases=("categorical_crossentropy",))
class CategoricalCrossentropy(Loss):
    """Categorical cross-entropy, Keras' ``categorical_crossentropy``.

    Parameters
    ----------
    from_logits : bool
        ``y_pred`` holds logits rather than probabilities.
    label_smoothing : float in [0, 1]
        Targets become ``t (1 - s) + s / C``.
    axis : int
        Only -1 (the last axis) is supported.
    invalid_targets : {"raise", "warn", "ignore"}
        What to do with targets outside [0, 1] (which make the loss unbounded below).

    ``call(y_true, y_pred)`` maps (N, ..., C) to (N, ...). A softmax over one unit (C = 1)
    is the constant 1, so the loss cannot learn; Keras warns, and so does mlstm.
    """

    name = "categorical_crossentropy"
    logits_activation = "softmax"
    keras_name = "CategoricalCrossentropy"
    keras_function = "categorical_crossentropy"
    target_range = (0.0, 1.0)

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 invalid_targets: str = "raise", **unsupported: Any) -> None:
        refuse_unknown_options(type(self), unsupported)
        self.from_logits = bool(from_logits)
        if not 0.0 <= float(label_smoothing) <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)
        self.axis = check_axis(axis, "CategoricalCrossentropy")
        self.invalid_targets = validation.check_choice(
            invalid_targets, validation.POLICIES, "CategoricalCrossentropy: invalid_targets")

    @classmethod
    def examples(cls) -> list[JSONDict]:
        """Configurations the component tests check (tests/test_components.py)."""
        return [{}, {"label_smoothing": 0.1}, {"from_logits": True}]

    def _smooth(self, y_true: Array, n_classes: int) -> Array:
        if n_classes == 1:
            warnings.warn(f"loss {self.name!r}: y_pred has a single class (shape (..., 1)); a "
                          "softmax over one unit is the constant 1 and this loss cannot "
                          "train it. Use binary_crossentropy on a sigmoid head for two "
                          "classes", stacklevel=4)
        if self.label_smoothing:
            return y_true * (1.0 - self.label_smoothing) + self.label_smoothing / n_classes
        return y_true

    def call(self, y_true: Array, y_pred: FloatArray) -> FloatArray:
        """Per-sample values ``-Σ_j t'_j log clip(p_j / Σp, ε, 1-ε)``: (N, ..., C) -> (N, ...)."""
        if self.from_logits:
            return self.call_logits(y_true, y_pred)
        t = self._smooth(y_true, y_pred.shape[-1])
        eps = y_pred.dtype.type(EPSILON)
        q = y_pred / np.sum(y_pred, axis=-1, keepdims=True)
        return -np.sum(t * np.log(np.clip(q, eps, 1 - eps)), axis=-1)

    def gradient(self, y_true: Array, y_pred: FloatArray) -> FloatArray:
        """``∂ℓ/∂p_k = (g_k - Σ_j g_j q_j) / Σp``, ``g_j = -t'_j / q̂_j`` inside the clip."""
        if self.from_logits:
            return self.gradient_logits(y_true, y_pred)
        t = self._smooth(y_true, y_pred.shape[-1])
        eps = y_pred.dtype.type(EPSILON)
        total = np.sum(y_pred, axis=-1, keepdims=True)
        q = y_pred / total
        inside = (q >= eps) & (q <= 1 - eps)          # tf.clip_by_value passes these
        g = np.where(inside, -t / np.clip(q, eps, 1 - eps), 0)
        # through the normalization q = p / Σp: ∂q_j/∂p_k = (δ_jk - q_j) / Σp
        grad = (g - np.sum(g * q, axis=-1, keepdims=True)) / total
        return grad.astype(y_pred.dtype, copy=False)

    def call_logits(self, y_true: Array, logits: FloatArray) -> FloatArray:
        """Per-sample values from the logits a: ``Σ_j t'_j (lse(a) - a_j)``."""
        t = self._smooth(y_true, logits.shape[-1])
        return np.sum(t * (logsumexp(logits) - logits), axis=-1)

    def gradient_logits(self, y_true: Array, logits: FloatArray) -> FloatArray:
        """``∂ℓ/∂a = softmax(a) Σ_j t'_j - t'`` (``p - t'`` for targets that sum to 1)."""
        t = self._smooth(y_true, logits.shape[-1])
        return softmax(logits) * np.sum(t, axis=-1, keepdims=True) - t

    def tensorflow_gradient_logits(self, y_true: Array, logits: Array) -> Array:
        """``softmax(a) - t'``: the gradient Keras' TensorFlow backend takes, not mlstm's.

        Keras computes CCE from logits (``from_logits=True``, or on a softmax head) with
        ``tf.nn.softmax_cross_entropy_with_logits``, whose registered gradient is
        ``softmax(a) - t'``. That is the derivative of the loss only when the targets sum
        to 1; for rows that do not (multi-hot or empty rows) the derivative is
        :meth:`gradient_logits`, ``softmax(a) Σ_j t'_j - t'``, which mlstm trains with
        (it is the gradient of the loss mlstm and Keras both report). The two differ by
        ``softmax(a) (Σ_j t'_j - 1)`` per row. Not used in training: ``crosscheck`` uses it
        to show that this is the whole difference from Keras (docs/losses.md).
        """
        t = self._smooth(y_true, logits.shape[-1])
        return softmax(logits) - t

    def get_config(self) -> JSONDict:
        return {"name": self.name, "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis,
                "invalid_targets": self.invalid_targets}


def categorical_crossentropy(y_true: ArrayLike, y_pred: ArrayLike, from_logits: bool = False,
                             label_smoothing: float = 0.0) -> FloatArray:
    """Per-sample categorical cross-entropy values, (N, ..., C) -> (N, ...)."""
    loss = CategoricalCrossentropy(from_logits, label_smoothing)
    y_true, y_pred = validation.loss_arrays(loss, y_true, y_pred)
    return loss.call(y_true, y_pred)
