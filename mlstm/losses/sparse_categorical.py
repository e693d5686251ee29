"""Sparse categorical cross-entropy: integer class ids as targets.

Targets y hold one class id per sample (or per sample and step): shape (N,) or (N, 1) for
predictions (N, C), (N, T) or (N, T, 1) for (N, T, C), as Keras accepts them. With
ε = 1e-7 (Keras' ``sparse_categorical_crossentropy``, TensorFlow backend):

=============================  =========================================================
on probabilities p             p̂ = clip(p, ε, 1 - ε);  TensorFlow takes log p̂ as logits:
                               ℓ = log Σ_j p̂_j - log p̂_y
                               ∂ℓ/∂p_k = (1 / Σ_j p̂_j - [k = y] / p̂_k) inside the clip,
                               0 outside
from logits a                  ℓ = lse(a) - a_y;  ∂ℓ/∂a = softmax(a) - onehot(y)
=============================  =========================================================

For a softmax output Σ p̂ = 1 up to the clip, so ℓ = -log p̂_y. On a softmax head the loss
is computed from the logits, as Keras does. Class ids must be whole numbers in [0, C): an id
outside is refused naming its position (TensorFlow refuses it too, at every position,
masked steps included), and so is a fractional one (Keras would truncate it silently).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import validation
from .._typing import Array, ArrayLike, BoolArray, FloatArray, IntArray, JSONDict
from ..ops.softmax import logsumexp, softmax
from ..registry import register_loss
from .base import EPSILON, Loss, reduce_output_loss
from .categorical import check_axis
from .options import refuse_unknown_options

__all__ = ["SparseCategoricalCrossentropy", "sparse_categorical_crossentropy", "class_ids"]


def class_ids(y_true: ArrayLike, pred_shape: Sequence[int], label: str) -> IntArray:
    """Integer class ids (N, ...) from targets (N, ...) or (N, ..., 1) for predictions
    ``pred_shape`` (N, ..., C), checked.

    Raises
    ------
    ValueError
        Naming the first offending position: a shape that does not fit, a fractional id, or
        an id outside [0, C).
    """
    y_true = np.asarray(y_true)
    pred_shape = tuple(pred_shape)
    if y_true.ndim == len(pred_shape) and y_true.ndim > 1 and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    if y_true.shape != pred_shape[:-1]:
        hint = _one_hot_hint(y_true.shape, pred_shape)
        raise ValueError(f"{label}: sparse categorical cross-entropy takes one class id per "
                         f"prediction row: targets of shape {pred_shape[:-1]} or "
                         f"{pred_shape[:-1] + (1,)} for predictions {pred_shape}, got "
                         f"{y_true.shape}{hint}")
    n_classes = pred_shape[-1]
    if y_true.dtype.kind in "fc":
        fractional = y_true != np.floor(y_true)
        if fractional.any():
            index = _first(fractional)
            raise ValueError(f"{label}: class ids must be whole numbers, got "
                             f"{float(y_true[index])!r} at {_where(index)} (Keras would "
                             "truncate it silently)")
    outside = (y_true < 0) | (y_true >= n_classes)
    if outside.any():
        index = _first(outside)
        raise ValueError(f"{label}: class id {int(y_true[index])} at {_where(index)} is "
                         f"outside [0, {n_classes}) for predictions of {n_classes} classes "
                         f"({int(np.count_nonzero(outside))} outside in all)")
    return y_true.astype(np.intp)


def _one_hot_hint(given: Sequence[int | None], pred_shape: Sequence[int | None]) -> str:
    if tuple(given[1:]) != tuple(pred_shape[1:]):
        return ""
    return (" (one-hot targets? use categorical_crossentropy, or pass the class ids "
            "y.argmax(axis=-1))")


def _first(flags: BoolArray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(flags)), flags.shape))


def _where(index: tuple[int, ...]) -> str:
    words = f"sample {index[0]}" + (f", step {index[1]}" if len(index) == 2 else "")
    return f"index {list(index)} ({words})" if len(index) <= 2 else f"index {list(index)}"


def _picked(values: FloatArray, ids: IntArray) -> FloatArray:
    """``values[..., ids]`` row by row: (N, ..., C), (N, ...) -> (N, ...)."""
    return np.take_along_axis(values, ids[..., None], axis=-1)[..., 0]


@register_loss(aliases=("sparse_categorical_crossentropy",))
class SparseCategoricalCrossentropy(Loss):
    """Sparse categorical cross-entropy, Keras' ``sparse_categorical_crossentropy``.

    Parameters
    ----------
    from_logits : bool
        ``y_pred`` holds logits rather than probabilities.
    ignore_class : None
        Only None is supported (mask padded steps instead: ``Embedding(mask_zero=True)`` or
        ``Masking``).
    axis : int
        Only -1 (the last axis) is supported.

    ``call(y_true, y_pred)``: y_true (N, ...) or (N, ..., 1) class ids, y_pred (N, ..., C)
    -> (N, ...).
    """

    name = "sparse_categorical_crossentropy"
    logits_activation = "softmax"
    keras_name = "SparseCategoricalCrossentropy"
    keras_function = "sparse_categorical_crossentropy"
    #: Targets are class ids, one per prediction row, not arrays shaped like the prediction
    #: (the training data checks and the component tests read this).
    sparse_targets = True

    def __init__(self, from_logits: bool = False, ignore_class: int | None = None, axis: int = -1,
                 **unsupported: Any) -> None:
        refuse_unknown_options(type(self), unsupported)
        self.from_logits = bool(from_logits)
        if ignore_class is not None:
            raise ValueError(f"SparseCategoricalCrossentropy: ignore_class={ignore_class!r} is "
                             "not supported (only None); mask the padded steps instead "
                             "(Embedding(mask_zero=True) or Masking): a masked step's loss "
                             "is left out of the mean")
        self.ignore_class = None
        self.axis = check_axis(axis, "SparseCategoricalCrossentropy")

    @classmethod
    def examples(cls) -> list[JSONDict]:
        """Configurations the component tests check (tests/test_components.py)."""
        return [{}, {"from_logits": True}]

    @staticmethod
    def target_shapes(output_shape: Sequence[int | None]) -> list[tuple[int | None, ...]]:
        """The target shapes accepted for an output of ``output_shape`` (batch axis
        excluded): ``(..., )`` and ``(..., 1)`` without the class axis."""
        return [tuple(output_shape[:-1]), tuple(output_shape[:-1]) + (1,)]

    @staticmethod
    def target_hint(given_shape: Sequence[int | None], output_shape: Sequence[int | None]
                    ) -> str:
        """Words for targets of ``given_shape`` (batch axis included) that do not fit an
        output of ``output_shape``: one-hot targets get the fix."""
        return _one_hot_hint(given_shape, (None,) + tuple(output_shape))

    def validate_targets(self, y_true: Array, output_shape: Sequence[int], label: str) -> None:
        """Check a whole target array (N, ...) for an output of ``output_shape`` (batch axis
        excluded): ValueError naming the first bad class id."""
        class_ids(y_true, (y_true.shape[0],) + tuple(output_shape), label)

    def call(self, y_true: Array, y_pred: FloatArray) -> FloatArray:
        """Per-sample values ``log Σ p̂ - log p̂_y``: (N, ..., C) -> (N, ...)."""
        if self.from_logits:
            return self.call_logits(y_true, y_pred)
        ids = class_ids(y_true, y_pred.shape, f"loss {self.name!r}: y_true")
        eps = y_pred.dtype.type(EPSILON)
        clipped = np.clip(y_pred, eps, 1 - eps)
        return np.log(np.sum(clipped, axis=-1)) - np.log(_picked(clipped, ids))

    def gradient(self, y_true: Array, y_pred: FloatArray) -> FloatArray:
        """``∂ℓ/∂p_k = 1/Σp̂ - [k = y]/p̂_k`` inside the clip, 0 outside."""
        if self.from_logits:
            return self.gradient_logits(y_true, y_pred)
        ids = class_ids(y_true, y_pred.shape, f"loss {self.name!r}: y_true")
        eps = y_pred.dtype.type(EPSILON)
        clipped = np.clip(y_pred, eps, 1 - eps)
        grad = np.broadcast_to(1 / np.sum(clipped, axis=-1, keepdims=True),
                               y_pred.shape).copy()
        np.put_along_axis(grad, ids[..., None],
                          _picked(grad, ids)[..., None] - 1 / _picked(clipped, ids)[..., None],
                          axis=-1)
        inside = (y_pred >= eps) & (y_pred <= 1 - eps)    # tf.clip_by_value passes these
        return np.where(inside, grad, 0).astype(y_pred.dtype, copy=False)

    def call_logits(self, y_true: Array, logits: FloatArray) -> FloatArray:
        """Per-sample values from the logits a: ``lse(a) - a_y``."""
        ids = class_ids(y_true, logits.shape, f"loss {self.name!r}: y_true")
        return logsumexp(logits)[..., 0] - _picked(logits, ids)

    def gradient_logits(self, y_true: Array, logits: FloatArray) -> FloatArray:
        """``∂ℓ/∂a = softmax(a) - onehot(y)``."""
        ids = class_ids(y_true, logits.shape, f"loss {self.name!r}: y_true")
        grad = softmax(logits)
        np.put_along_axis(grad, ids[..., None], _picked(grad, ids)[..., None] - 1, axis=-1)
        return grad

    def __call__(self, y_true: ArrayLike, y_pred: ArrayLike, mask: BoolArray | None = None
                 ) -> float:
        """The reduced loss value (Keras' ``loss_fn(y_true, y_pred)``); y_true holds ids."""
        label = f"loss {self.name!r}"
        y_pred = validation.as_real_array(y_pred, f"{label}: y_pred")
        if not np.issubdtype(y_pred.dtype, np.floating):
            y_pred = y_pred.astype(np.float32)
        if y_pred.ndim < 2:
            raise ValueError(f"{label}: y_pred must be (N, ..., C), got shape {y_pred.shape}")
        y_true = validation.as_real_array(y_true, f"{label}: y_true")
        validation.check_finite(y_pred, f"{label}: y_pred")
        validation.check_finite(y_true, f"{label}: y_true")
        return reduce_output_loss(self, y_true, y_pred, mask)[0]

    def get_config(self) -> JSONDict:
        return {"name": self.name, "from_logits": self.from_logits,
                "ignore_class": self.ignore_class, "axis": self.axis}


def sparse_categorical_crossentropy(y_true: ArrayLike, y_pred: ArrayLike,
                                    from_logits: bool = False) -> FloatArray:
    """Per-sample sparse categorical cross-entropy values: ids (N, ...), (N, ..., C) -> (N, ...)."""
    loss = SparseCategoricalCrossentropy(from_logits)
    y_pred = np.asarray(y_pred)
    if not np.issubdtype(y_pred.dtype, np.floating):
        y_pred = y_pred.astype(np.float32)
    return loss.call(np.asarray(y_true), y_pred)
