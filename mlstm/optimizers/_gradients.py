"""Gradients as the optimizer step sees them: arrays, or an Embedding table's occurrences.

A gradient is an ndarray, or a :class:`mlstm.ops.embedding.SparseRowsGradient`: one row per
token occurrence, the form in which Keras' TensorFlow backend hands an Embedding table's
gradient to its optimizers (``tf.IndexedSlices``). This module is the one place that tells
them apart:

* the clipping transforms act on the occurrences, as ``tf.clip_by_norm`` and
  ``tf.clip_by_value`` do on IndexedSlices; global_clipnorm measures the occurrences and
  returns the sum, dense (Keras' ``v * scale`` densifies);
* the rules take their terms through :func:`gradient_sum` (the linear terms: Keras' sparse
  ⊙ dense ops densify the slices first, which sums them), :func:`gradient_squares` and
  :func:`gradient_magnitudes` (``ops.square`` and ``ops.abs`` act on each slice, before
  the sum).

Each rule was confirmed against Keras 3.15 in float64 (tests/test_sparse_embedding_updates.py;
docs/optimizers.md, "Embedding tables").
"""
from __future__ import annotations

from typing import Mapping, Union

import numpy as np
from numpy.typing import NDArray

from ..ops.embedding import SparseRowsGradient

#: A parameter's gradient: an array, or an Embedding table's per-occurrence rows.
Gradient = Union[NDArray[np.floating], SparseRowsGradient]

__all__ = ["gradient_sum", "gradient_squares", "gradient_magnitudes", "clip_by_norm",
           "clip_by_global_norm", "clip_by_value", "with_sparse_rows"]


def gradient_sum(g: Gradient) -> NDArray[np.floating]:
    """The gradient as an array: ``g`` itself, or the per-id sum of the occurrences."""
    return g.dense() if isinstance(g, SparseRowsGradient) else g


def gradient_squares(g: Gradient) -> NDArray[np.floating]:
    """``g²`` (a new array); per occurrence, summed per id, for a :class:`SparseRowsGradient`
    (Keras squares each slice of an IndexedSlices before the sum)."""
    return g.squares() if isinstance(g, SparseRowsGradient) else np.square(g)


def gradient_magnitudes(g: Gradient) -> NDArray[np.floating]:
    """``|g|`` (a new array); per occurrence, summed per id, for a :class:`SparseRowsGradient`."""
    return g.magnitudes() if isinstance(g, SparseRowsGradient) else np.abs(g)


# The squared norm of a SparseRowsGradient is Σ over occurrences of g_i², summed here as
# Σ over the table of gradient_squares(g): where no id repeats, that is np.square(sum)
# summed in the same order, bit for bit, so the rows change nothing.
def _entries(g: Gradient) -> NDArray[np.floating]:
    """What clipping acts on: the array, or the occurrences' rows (as tf.clip_by_* do)."""
    return g.rows if isinstance(g, SparseRowsGradient) else g


def _with_entries(g: Gradient, entries: NDArray[np.floating]) -> Gradient:
    return g.with_rows(entries) if isinstance(g, SparseRowsGradient) else entries


# --------------------------------------------------------------------------- transforms
def clip_by_norm(grads: Mapping[str, Gradient], clipnorm: float) -> dict[str, Gradient]:
    """Each gradient scaled to an L2 norm of at most ``clipnorm`` (new arrays). The norm of
    a :class:`SparseRowsGradient` is that of its occurrences (``tf.clip_by_norm``)."""
    out = {}
    for name, g in grads.items():
        e = _entries(g)
        norm = np.sqrt(np.sum(gradient_squares(g)))
        out[name] = _with_entries(g, e * e.dtype.type(clipnorm)
                                  / max(norm, e.dtype.type(clipnorm)))
    return out


def clip_by_global_norm(grads: Mapping[str, Gradient], global_clipnorm: float
                        ) -> dict[str, NDArray[np.floating]]:
    """All gradients scaled together so that their joint L2 norm is at most ``global_clipnorm``.

    A :class:`SparseRowsGradient` counts in the norm by its occurrences and comes out dense
    (its sum, scaled), always: Keras multiplies every gradient by the scale, and an
    IndexedSlices times a tensor is a dense tensor.
    """
    norm = np.sqrt(sum(float(np.sum(gradient_squares(g.astype(np.float64))))
                       for g in grads.values()))
    dense = {name: gradient_sum(g) for name, g in grads.items()}
    if norm > global_clipnorm:
        scale = global_clipnorm / norm
        return {name: g * g.dtype.type(scale) for name, g in dense.items()}
    return dense


def clip_by_value(grads: Mapping[str, Gradient], clipvalue: float) -> dict[str, Gradient]:
    """Every gradient entry clipped to [-clipvalue, clipvalue] (new arrays); every
    occurrence, for a :class:`SparseRowsGradient` (``tf.clip_by_value``)."""
    return {name: _with_entries(g, np.clip(_entries(g), -clipvalue, clipvalue))
            for name, g in grads.items()}


def with_sparse_rows(label: str, grads: Mapping[str, NDArray[np.floating]],
                     sparse_grads: Mapping[str, SparseRowsGradient] | None
                     ) -> Mapping[str, Gradient]:
    """``grads`` with the entries of ``sparse_grads`` in their place (each carrying the dense
    array it replaces as its sum), after checking they belong together."""
    if not sparse_grads:
        return grads
    merged: dict[str, Gradient] = dict(grads)
    for name, rows in sparse_grads.items():
        if not isinstance(rows, SparseRowsGradient):
            raise TypeError(f"{label}: sparse_grads[{name!r}] must be a SparseRowsGradient "
                            f"(mlstm.ops.embedding), got {type(rows).__name__}")
        if name not in grads:
            raise ValueError(f"{label}: sparse_grads names {name!r}, which has no dense "
                             "gradient in grads (give both: grads holds their sum)")
        if rows.shape != grads[name].shape:
            raise ValueError(f"{label}: sparse_grads[{name!r}] is for a table of shape "
                             f"{rows.shape}, its gradient has shape {grads[name].shape}")
        merged[name] = rows.with_dense(grads[name])
    return merged
