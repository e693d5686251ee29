"""Metrics per output, as Keras computes them.

Each metric maps ``(y_true, y_pred)`` to per-sample values (mean over the last axis); over an
epoch the values are averaged over all samples (and valid steps, when the output is masked).

===================  ========================================================
mae                  mean_D |p - t|
mse                  mean_D (p - t)^2
binary_accuracy      mean_D [ (p > 0.5) == t ]      ("accuracy" is an alias)
===================  ========================================================
"""
from __future__ import annotations

import numpy as np

from .registry import METRICS, register_metric

__all__ = ["METRICS", "get", "mean_absolute_error", "mean_squared_error", "binary_accuracy",
           "register_metric"]


@register_metric(aliases=("mae",))
def mean_absolute_error(y_true, y_pred):
    """Per-sample ``mean_O |p - t|``: (N, ..., O) -> (N, ...)."""
    return np.mean(np.abs(y_pred - y_true), axis=-1)


@register_metric(aliases=("mse",))
def mean_squared_error(y_true, y_pred):
    """Per-sample ``mean_O (p - t)^2``: (N, ..., O) -> (N, ...)."""
    return np.mean(np.square(y_pred - y_true), axis=-1)


@register_metric(aliases=("accuracy", "acc"))
def binary_accuracy(y_true, y_pred, threshold=0.5):
    """Per-sample ``mean_O [(p > threshold) == t]``: (N, ..., O) -> (N, ...)."""
    return np.mean((y_pred > threshold).astype(y_pred.dtype) == y_true, axis=-1)


def get(name):
    """``(function, key)`` for a metric name; ``key`` is the name as given (Keras uses it in
    History). Unknown names raise ValueError listing the registered ones."""
    if not isinstance(name, str) or name not in METRICS:
        raise ValueError(f"Unknown metric {name!r}; valid metrics are "
                         f"{METRICS.names(aliases=True)}")
    return METRICS.get(name), name


def metric_sums(fn, y_true, y_pred, mask=None):
    """``(Σ w·values, Σ w)`` for one batch, ``w`` the mask (or 1): epoch means add these up."""
    values = np.asarray(fn(y_true, y_pred), dtype=np.float64)
    if mask is not None and mask.shape == values.shape:
        return float(np.sum(values * mask)), float(np.count_nonzero(mask))
    return float(np.sum(values)), float(values.size)
