"""Metrics per output, as Keras computes them.

Each metric maps ``(y_true, y_pred)`` to per-sample values (per sample and step on a
sequence output); over an epoch the values are averaged over all samples (and valid steps,
when the output is masked).

===============================  ========================================================
mae                              mean_D |p - t|
mse                              mean_D (p - t)^2
binary_accuracy                  mean_D [ (p > 0.5) == t ]
categorical_accuracy             [argmax p == argmax t]           (one-hot targets)
sparse_categorical_accuracy      [argmax p == y]                  (class ids y)
top_k_categorical_accuracy       [t's class is among the k = 5 largest p] (ties count in)
accuracy, acc                    one of the three accuracies, chosen per output (below)
===============================  ========================================================

``"accuracy"`` is resolved per output as Keras 3.15 does it (``get_metric`` in
``keras/src/trainers/compile_utils.py``), from the shapes of the targets and the
prediction: binary accuracy when the prediction has one unit (N, ..., 1); sparse
categorical accuracy when the targets hold class ids (their rank is lower, or their last
axis is 1 while the prediction's is not); categorical accuracy otherwise. In mlstm targets
are shaped like the prediction except for a loss that takes class ids
(``SparseCategoricalCrossentropy``), so the rule reads: binary for a one-unit head (BCE),
sparse categorical for sparse CCE, categorical for CCE on several units (:func:`resolve`).
The History key stays the name given (``"accuracy"``, ``"acc"``), as in Keras.

``argmax`` takes the first of equal maxima (NumPy and TensorFlow agree).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._typing import Array, ArrayLike, BoolArray, FloatArray

from .registry import METRICS, register_metric

__all__ = ["METRICS", "get", "resolve", "mean_absolute_error", "mean_squared_error",
           "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
           "top_k_categorical_accuracy", "register_metric", "metric_sums"]

#: Names resolved per output (:func:`resolve`), compared without case as Keras does.
ACCURACY_NAMES = ("accuracy", "acc")


def _same_shape(name: str, y_true: Array, y_pred: Array) -> Array:
    """Keras' ``squeeze_or_expand_to_same_rank`` for elementwise metrics: a trailing axis of
    size 1 may be added to or dropped from the targets; any other mismatch is refused (NumPy
    would broadcast (N,) against (N, C) into nonsense)."""
    if y_true.ndim + 1 == y_pred.ndim and y_pred.shape[-1] == 1:
        y_true = y_true[..., None]
    elif y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    if y_true.shape != y_pred.shape:
        raise ValueError(f"metric {name!r}: targets of shape {y_true.shape} do not fit "
                         f"predictions of shape {y_pred.shape} (class ids need "
                         "sparse_categorical_accuracy)")
    return y_true


@register_metric(aliases=("mae", "MeanAbsoluteError"))
def mean_absolute_error(y_true: Array, y_pred: FloatArray) -> FloatArray:
    """Per-sample ``mean_O |p - t|``: (N, ..., O) -> (N, ...)."""
    y_true = _same_shape("mean_absolute_error", y_true, y_pred)
    return np.mean(np.abs(y_pred - y_true), axis=-1)


@register_metric(aliases=("mse", "MeanSquaredError"))
def mean_squared_error(y_true: Array, y_pred: FloatArray) -> FloatArray:
    """Per-sample ``mean_O (p - t)^2``: (N, ..., O) -> (N, ...)."""
    y_true = _same_shape("mean_squared_error", y_true, y_pred)
    return np.mean(np.square(y_pred - y_true), axis=-1)


@register_metric(aliases=("BinaryAccuracy",))
def binary_accuracy(y_true: Array, y_pred: FloatArray, threshold: float = 0.5) -> FloatArray:
    """Per-sample ``mean_O [(p > threshold) == t]``: (N, ..., O) -> (N, ...)."""
    y_true = _same_shape("binary_accuracy", y_true, y_pred)
    return np.mean((y_pred > threshold).astype(y_pred.dtype) == y_true, axis=-1)


@register_metric(aliases=("CategoricalAccuracy",))
def categorical_accuracy(y_true: Array, y_pred: FloatArray) -> FloatArray:
    """``[argmax_C p == argmax_C t]``: (N, ..., C) one-hot targets -> (N, ...)."""
    y_true = _same_shape("categorical_accuracy", y_true, y_pred)
    return (np.argmax(y_pred, axis=-1) == np.argmax(y_true, axis=-1)).astype(np.float64)


@register_metric(aliases=("SparseCategoricalAccuracy",))
def sparse_categorical_accuracy(y_true: Array, y_pred: FloatArray) -> FloatArray:
    """``[argmax_C p == y]``: class ids (N, ...) or (N, ..., 1), predictions (N, ..., C) ->
    (N, ...)."""
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    if y_true.shape != y_pred.shape[:-1]:
        raise ValueError(f"metric 'sparse_categorical_accuracy': targets of shape "
                         f"{y_true.shape} do not fit predictions of shape {y_pred.shape}: "
                         f"it takes one class id per row, shape {y_pred.shape[:-1]}")
    return (np.argmax(y_pred, axis=-1) == y_true).astype(np.float64)


@register_metric(aliases=("TopKCategoricalAccuracy",))
def top_k_categorical_accuracy(y_true: Array, y_pred: FloatArray, k: int = 5) -> FloatArray:
    """``[argmax t is among the k largest p]`` (TensorFlow's ``in_top_k``: classes tied with
    the k-th largest count as in; a non-finite row counts as a miss): (N, ..., C) -> (N, ...)."""
    y_true = _same_shape("top_k_categorical_accuracy", y_true, y_pred)
    target = np.argmax(y_true, axis=-1)
    score = np.take_along_axis(y_pred, target[..., None], axis=-1)
    ahead = np.sum(y_pred > score, axis=-1)
    finite = np.all(np.isfinite(y_pred), axis=-1)
    return ((ahead < k) & finite).astype(np.float64)


def resolve(name: Any, output_shape: Sequence[int | None], sparse_targets: bool = False) -> Any:
    """The metric ``"accuracy"``/``"acc"`` stands for on one output, as Keras chooses it.

    Parameters
    ----------
    name : str
    output_shape : tuple
        The prediction's shape without the batch axis.
    sparse_targets : bool
        The output's targets are class ids (its loss says so: ``loss.sparse_targets``).

    Returns
    -------
    str
        The registered metric's name (``name`` itself when it is not an accuracy alias).
    """
    if not isinstance(name, str) or name.lower() not in ACCURACY_NAMES:
        return name
    if output_shape and output_shape[-1] == 1:
        return "binary_accuracy"
    return "sparse_categorical_accuracy" if sparse_targets else "categorical_accuracy"


def get(name: Any, output_shape: Sequence[int | None] | None = None,
        sparse_targets: bool = False) -> tuple[Callable[..., FloatArray], str]:
    """``(function, key)`` for a metric name; ``key`` is the name as given (Keras uses it in
    History). ``"accuracy"`` needs the output's shape (see :func:`resolve`; binary accuracy
    when none is given). Unknown names raise ValueError listing the registered ones."""
    if isinstance(name, str) and name.lower() in ACCURACY_NAMES:
        return METRICS.get(resolve(name, output_shape or (1,), sparse_targets)), name
    if not isinstance(name, str) or name not in METRICS:
        raise ValueError(f"Unknown metric {name!r}; valid metrics are "
                         f"{sorted(METRICS.names(aliases=True) + list(ACCURACY_NAMES))}")
    return METRICS.get(name), name


def metric_sums(fn: Callable[[Array, FloatArray], ArrayLike], y_true: Array, y_pred: FloatArray,
                mask: BoolArray | None = None) -> tuple[float, float]:
    """``(Σ w·values, Σ w)`` for one batch, ``w`` the mask (or 1): epoch means add these up."""
    values = np.asarray(fn(y_true, y_pred), dtype=np.float64)
    if mask is not None and mask.shape == values.shape:
        return float(np.sum(values * mask)), float(np.count_nonzero(mask))
    return float(np.sum(values)), float(values.size)
