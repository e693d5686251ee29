"""Per-output sample weights, class weights and missing labels, as per-entry arrays.

Every output's loss is a mean over its loss entries: one per sample (shape ``(N,)``) or one
per sample and step for a sequence output (``(N, T)``), i.e. the target's shape without its
last axis. Whatever the user gives is turned here into one array of that shape per output:

``sample_weight``
    An array (every output gets it; for several outputs it must be one number per sample,
    as in Keras), a list in output order, or a dict by output name (outputs left out are
    not weighted). Per output: ``(N,)`` (one weight per sample; for a sequence output,
    applied at each of its steps: Keras refuses this shape there and asks for ``(N, 1)``),
    ``(N, 1)``, or the entries' shape ``(N, T)``. Finite and >= 0.
``class_weight``
    One output: ``{class: weight}`` (Keras' meaning). Several outputs, where Keras refuses:
    ``{output name: {class: weight}}``, which means exactly ``sample_weight[name] =
    class_weight[name][label]``. The label of an entry is, as in Keras, the argmax of the
    target over its last axis, or the rounded target when that axis has size 1; classes
    not listed weigh 1.
missing labels (``missing_targets="mask"``)
    A target row (the last axis) that is entirely NaN is a missing label: the entry is
    left out of that output's loss, gradient and metrics, as a Keras mask leaves out a
    padded step (the mean runs over the labelled entries). A row that is only partly NaN
    is an error; so is NaN without the option.

The reduction with weights is Keras' (:func:`mlstm.losses.reduce_output_loss`): ``Σ w·l / N``
(not divided by Σ w), and with a mask or missing labels ``Σ w·l·m / Σ m``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from .. import validation

if TYPE_CHECKING:
    from .._typing import Array, ArrayLike, BoolArray, DTypeLike, FloatArray, IntArray, Shape
    from ..model_protocol import TrainableModel

__all__ = ["Arrays", "sample_weights", "class_weights", "missing_labels"]


class Arrays:
    """A data set as the model sees it: inputs, targets and, per output, the entry weights
    and the labelled entries (None: all weigh 1 / all labelled).

    Attributes
    ----------
    xs : list of ndarray, one per input (N, ...)
    ys : list of ndarray, one per output (N, ..., D)
    weights : list of (ndarray (N,) or (N, T)) or None
    labelled : list of (bool ndarray (N,) or (N, T)) or None
    count_labels : bool
        Missing labels are on (``labelled`` was given, even as all None): losses average
        over labelled entries and the logs count them.
    """

    def __init__(self, xs: Sequence[Array], ys: Sequence[Array],
                 weights: Sequence[FloatArray | None] | None = None,
                 labelled: Sequence[BoolArray | None] | None = None) -> None:
        self.xs, self.ys = list(xs), list(ys)
        self.weights: list[FloatArray | None] = (list(weights) if weights is not None
                                                 else [None] * len(self.ys))
        self.count_labels = labelled is not None
        self.labelled: list[BoolArray | None] = (list(labelled) if labelled is not None
                                                 else [None] * len(self.ys))

    @property
    def n(self) -> int:
        return self.xs[0].shape[0]

    def take(self, index: IntArray | slice) -> Arrays:
        """The samples at ``index`` (an index array or a slice)."""
        def pick(arrays: list[Any]) -> list[Any]:
            return [None if a is None else a[index] for a in arrays]
        return Arrays(pick(self.xs), pick(self.ys), pick(self.weights),
                      pick(self.labelled) if self.count_labels else None)

    def split(self, at: int) -> tuple[Arrays, Arrays]:
        """``(first at samples, the rest)``."""
        return self.take(slice(0, at)), self.take(slice(at, None))


def _entry_shape(y: Array) -> Shape:
    return y.shape[:-1]


def _weights_for_output(given: ArrayLike, y: Array, dtype: DTypeLike,
                        label: str) -> FloatArray:
    """One output's weights as an array of its entries' shape (N,) or (N, T)."""
    w: FloatArray = validation.as_real_array(given, label)
    w = validation.cast_finite(w, dtype, label)
    shape = _entry_shape(y)
    n = shape[0]
    if w.shape == shape:
        pass
    elif w.shape in ((n,), (n, 1)):
        w = w.reshape((n,) + (1,) * (len(shape) - 1)) * np.ones(shape, dtype)
    else:
        accepted = sorted({(n,), (n, 1), shape})
        raise ValueError(f"{label} has shape {w.shape}; it must be one of {accepted} "
                         f"(one weight per sample" + (", or one per sample and step"
                                                      if len(shape) > 1 else "") + ")")
    if np.any(w < 0):
        raise ValueError(f"{label} holds negative weights (first at index "
                         f"{list(np.argwhere(w < 0)[0])}); weights must be >= 0")
    return w


def sample_weights(model: TrainableModel, sample_weight: Any, ys: Sequence[Array],
                   label: str = "sample_weight") -> list[FloatArray | None]:
    """Per-output entry weights from ``sample_weight`` (see the module docstring).

    Returns
    -------
    list of (ndarray or None), one per output
    """
    names, n_out = model.output_names, len(model.outputs)
    if sample_weight is None:
        return [None] * n_out
    if isinstance(sample_weight, dict):
        unknown = sorted(set(sample_weight) - set(names))
        if unknown:
            raise ValueError(f"{label}: unknown output names {unknown}; outputs are {names}")
        per_output = [sample_weight.get(name) for name in names]
    elif isinstance(sample_weight, (list, tuple)) and n_out > 1:
        if len(sample_weight) != n_out:
            raise ValueError(f"{label}: got {len(sample_weight)} entries for {n_out} outputs "
                             f"{names}; pass one array (or None) per output, or a dict by "
                             "output name")
        per_output = list(sample_weight)
    else:
        shared = validation.as_real_array(sample_weight, label)
        if n_out > 1 and not (shared.ndim == 1 or (shared.ndim == 2 and shared.shape[1] == 1)):
            raise ValueError(f"{label}: one array for {n_out} outputs must hold one weight per "
                             f"sample, shape (N,), got {shared.shape}; pass a list or a dict by "
                             "output name for per-output (or per-step) weights")
        per_output = [shared] * n_out
    out: list[FloatArray | None] = []
    for name, w, y, t in zip(names, per_output, ys, model.outputs):
        out.append(None if w is None else _weights_for_output(
            w, y, t.dtype, f"{label} for output {name!r}" if n_out > 1 else label))
    return out


def _check_class_dict(spec: object, label: str) -> dict[int, float]:
    if not isinstance(spec, dict):
        raise TypeError(f"{label} must be a dict {{class index: weight}}, got "
                        f"{type(spec).__name__}")
    out: dict[int, float] = {}
    for key, value in spec.items():
        if isinstance(key, bool) or not isinstance(key, (int, np.integer)):
            raise ValueError(f"{label}: class keys must be ints (class indices), got {key!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer,
                                                                 np.floating)) \
                or not np.isfinite(value) or value < 0:
            raise ValueError(f"{label}: the weight of class {key} must be a finite number "
                             f">= 0, got {value!r}")
        out[int(key)] = float(value)
    return out


def class_labels(y: Array) -> IntArray:
    """Keras' class of each entry: the argmax over the last axis, or the rounded target
    when that axis has size 1. Shape ``y.shape[:-1]``."""
    if y.shape[-1] != 1:
        return np.argmax(y, axis=-1)
    return np.round(y[..., 0]).astype(np.int64)


def class_weights(model: TrainableModel, class_weight: Mapping[Any, Any] | None,
                  ys: Sequence[Array]) -> list[FloatArray | None]:
    """Per-output entry weights from ``class_weight`` (see the module docstring)."""
    names, n_out = model.output_names, len(model.outputs)
    if class_weight is None:
        return [None] * n_out
    if not isinstance(class_weight, dict):
        raise TypeError(f"class_weight must be a dict, got {type(class_weight).__name__}")
    by_name = bool(class_weight) and all(isinstance(k, str) for k in class_weight)
    if by_name:
        unknown = sorted(set(class_weight) - set(names))
        if unknown:
            raise ValueError(f"class_weight: unknown output names {unknown}; outputs are "
                             f"{names}")
        per_output = [class_weight.get(name) for name in names]
    elif n_out == 1:
        per_output = [class_weight]
    else:
        raise ValueError(f"class_weight for a model with {n_out} outputs {names} must be a "
                         "dict by output name, {output: {class: weight}} (Keras refuses "
                         "class_weight for several outputs; in mlstm it means "
                         "sample_weight[output] = class_weight[output][label])")
    out: list[FloatArray | None] = []
    for name, spec, y, t in zip(names, per_output, ys, model.outputs):
        if spec is None:
            out.append(None)
            continue
        table = _check_class_dict(spec, f"class_weight for output {name!r}")
        labels = class_labels(y)
        weights = np.ones(labels.shape, dtype=t.dtype)
        for cls, weight in table.items():
            weights[labels == cls] = weight
        out.append(weights)
    return out


def missing_labels(a: Array, label: str) -> tuple[Array, BoolArray | None]:
    """``(a with its missing rows filled, labelled entries or None)`` for one target array.

    A missing label is a row (the last axis) of NaN. Its entries are filled with the first
    labelled row (any in-range value would do: they weigh 0), so that range checks and the
    loss stay finite. None when every entry is labelled.
    """
    if not np.issubdtype(a.dtype, np.floating):
        return a, None
    nan = np.isnan(a)
    if not nan.any():
        return a, None
    missing = cast("BoolArray", nan.all(axis=-1))     # an array: targets have a last axis
    partial = nan.any(axis=-1) & ~missing
    if partial.any():
        where = [int(i) for i in np.argwhere(partial)[0]]
        raise ValueError(f"{label}: the row at {where} is partly NaN; a missing label is a "
                         "whole row of NaN over the last axis")
    labelled = ~missing
    filled = a.copy()
    filled[missing] = a[labelled][0] if labelled.any() else 0.0
    return filled, labelled
