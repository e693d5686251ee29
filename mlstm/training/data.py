"""Inputs and targets as the model's arrays: by position, list or name, shapes checked."""
from __future__ import annotations

from .. import validation
from ..layers.base import format_shape as _format_shape
from .weights import missing_labels

__all__ = ["DataMixin"]


class DataMixin:
    """Standardize ``x`` and ``y`` (part of :class:`Trainer`)."""

    # ------------------------------------------------------------------ data
    def _standardize(self, data, role, tensors, names, labelled=None):
        """Arrays for ``tensors`` from an array, a list or a dict by name; shapes checked.

        ``labelled``: a list to receive, per array, its labelled entries (None: all), the
        missing labels (rows of NaN) being filled (``missing_targets="mask"``).
        """
        n = len(tensors)
        if isinstance(data, dict):
            missing = [nm for nm in names if nm not in data]
            unknown = sorted(set(data) - set(names))
            if missing or unknown:
                raise ValueError(f"{role}: dict keys must be {names}; missing {missing}, "
                                 f"unknown {unknown}")
            arrays = [data[nm] for nm in names]
        elif isinstance(data, (list, tuple)):
            if n == 1 and len(data) != 1:
                arrays = [data]
            else:
                arrays = list(data)
            if len(arrays) != n:
                raise ValueError(f"{role}: the model has {n} {role} {names}, got {len(arrays)} "
                                 "arrays")
        else:
            if n != 1:
                raise ValueError(f"{role}: the model has {n} {role} {names}; pass a list of "
                                 f"{n} arrays or a dict by name, got a single "
                                 f"{type(data).__name__}")
            arrays = [data]
        out = []
        for name, t, a in zip(names, tensors, arrays):
            a = validation.as_real_array(a, f"{role} {name!r}")
            expected = (None,) + tuple(t.shape)
            if a.ndim != len(expected) or any(e is not None and e != d
                                              for e, d in zip(expected[1:], a.shape[1:])):
                raise ValueError(f"{role} {name!r} expects shape {_format_shape(expected)}, got "
                                 f"{a.shape}" + validation.rank_hint(a.shape, expected) +
                                 (f"; it feeds {validation.feeds(self, t)}" if role == "inputs"
                                  else f"; it is the target of the output of "
                                       f"{type(t.node.layer).__name__} {t.node.layer.name!r}"))
            if any(d == 0 for d in a.shape):
                raise ValueError(f"{role} {name!r} is empty: shape {a.shape}")
            if labelled is not None:
                a, present = missing_labels(a, f"{role} {name!r}")
                labelled.append(present)
            out.append(validation.cast_finite(a, t.dtype, f"{role} {name!r}"))
        sizes = {a.shape[0] for a in out}
        if len(sizes) > 1:
            raise ValueError(f"{role}: batch sizes differ: " +
                             ", ".join(f"{nm} has {a.shape[0]}" for nm, a in zip(names, out)))
        return out

    def _inputs(self, x):
        return self._standardize(x, "inputs", self.inputs, self.input_names)

    def _targets(self, y, batch_size, labelled=None):
        ys = self._standardize(y, "targets", self.outputs, self.output_names, labelled)
        if ys[0].shape[0] != batch_size:
            raise ValueError(f"targets have {ys[0].shape[0]} samples, inputs have {batch_size}")
        validation.check_targets(self, ys)
        return ys

