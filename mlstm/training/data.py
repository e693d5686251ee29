"""Inputs and targets as the model's arrays: by position, list or name, shapes checked.

Float inputs and targets are cast to the model's dtype and must be finite. An integer
input (``Input(dtype="int32")``: token ids), or a float input read only as ids
(``Input((None,))`` into an Embedding, :func:`mlstm.validation.token_id_inputs`), is not a
float sequence: it takes integer arrays (or floats holding whole numbers), is cast to its
own dtype, and every layer it
feeds may check its values (``Embedding.check_ids``: ids in [0, input_dim)), so that a bad
id is named by its position in the user's array. Targets of a loss that takes class ids
(``loss.sparse_targets``) are shaped by the loss (``loss.target_shapes``) and checked by it
(``loss.validate_targets``).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import validation
from ..layers.base import format_shape as _format_shape
from .weights import missing_labels

if TYPE_CHECKING:
    from .._typing import Array, BoolArray, Shape

    #: A tensor's shape without the batch axis, None for a free dimension (time).
    TensorShape = tuple[int | None, ...]
    from ..layers.base import SymbolicTensor

if TYPE_CHECKING:
    from .host import TrainerHost as _Host
else:           # the declarations are for mypy; at run time a mixin is a plain class
    _Host = object

__all__ = ["DataMixin"]


def _hint_for(hint: Callable[[Shape, TensorShape], str],
              shape: TensorShape) -> Callable[[Shape], str]:
    """``hint(given shape)``: the loss's ``target_hint`` with the output's shape bound."""
    return lambda given: hint(given, shape)


class DataMixin(_Host):
    """Standardize ``x`` and ``y`` (part of :class:`Trainer`)."""

    # ------------------------------------------------------------------ data
    def _standardize(self, data: Any, role: str, tensors: Sequence[SymbolicTensor],
                     names: Sequence[str], shapes: Sequence[Sequence[TensorShape]] | None = None,
                     hints: Sequence[Callable[[Shape], str] | None] | None = None,
                     labelled: list[BoolArray | None] | None = None) -> list[Array]:
        """Arrays for ``tensors`` from an array, a list or a dict by name; shapes checked
        (against ``shapes``, one list of accepted shapes per tensor, when given; ``hints``
        may add words to a refusal: one ``hint(given shape) -> str`` or None per tensor).

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
        out: list[Array] = []
        # token ids: integer inputs, and float inputs read only as ids (decided by the graph)
        ids = validation.token_id_inputs(self) if role == "inputs" else [False] * n
        shapes = shapes or [[tuple(t.shape)] for t in tensors]
        hints = hints or [None] * len(tensors)
        for name, t, a, accepted, hint, is_ids in zip(names, tensors, arrays, shapes, hints,
                                                      ids):
            a = validation.as_real_array(a, f"{role} {name!r}")
            candidates = [(None,) + tuple(shape) for shape in accepted]
            if not any(a.ndim == len(expected) and all(e is None or e == d for e, d in
                                                       zip(expected[1:], a.shape[1:]))
                       for expected in candidates):
                expected = candidates[0]
                raise ValueError(f"{role} {name!r} expects shape " +
                                 " or ".join(_format_shape(c) for c in candidates) +
                                 f", got {a.shape}" + validation.rank_hint(a.shape, expected) +
                                 (hint(a.shape) if hint is not None else "") +
                                 (f"; it feeds {validation.feeds(self, t)}" if role == "inputs"
                                  else f"; it is the target of the output of "
                                       f"{type(t.node.layer).__name__} {t.node.layer.name!r}"))
            if any(d == 0 for d in a.shape):
                raise ValueError(f"{role} {name!r} is empty: shape {a.shape}")
            if is_ids:
                out.append(self._integer_input(t, a, f"{role} {name!r}"))
                continue
            if labelled is not None:
                a, present = missing_labels(a, f"{role} {name!r}")
                labelled.append(present)
            out.append(validation.cast_finite(a, t.dtype, f"{role} {name!r}"))
        sizes = {a.shape[0] for a in out}
        if len(sizes) > 1:
            raise ValueError(f"{role}: batch sizes differ: " +
                             ", ".join(f"{nm} has {a.shape[0]}" for nm, a in zip(names, out)))
        return out

    def _inputs(self, x: Any) -> list[Array]:
        return self._standardize(x, "inputs", self.inputs, self.input_names)

    def _integer_input(self, tensor: SymbolicTensor, a: Array, label: str) -> Array:
        """Token ids for an input that holds them (an integer input, or a float one read
        only as ids): whole numbers only, within the input's dtype, cast to it
        (:func:`mlstm.validation.as_token_ids`); then each layer it feeds checks them
        (``check_ids``), naming the position in the whole array."""
        ids = validation.as_token_ids(a, tensor.dtype, label)
        for node in self.nodes:
            check = getattr(node.layer, "check_ids", None)
            if check is not None and any(t is tensor for t in node.inputs):
                check(ids, label)
        return ids

    def _target_shapes(self,
                       ) -> tuple[list[list[TensorShape]], list[Callable[[Shape], str] | None]]:
        """Accepted target shapes per output: the output's own, or what its loss says (class
        ids: ``loss.target_shapes``); and the loss's words on a wrong shape
        (``loss.target_hint``), if any."""
        shapes: list[list[TensorShape]] = []
        hints: list[Callable[[Shape], str] | None] = []
        for t, loss in zip(self.outputs, self._losses):
            rule = getattr(loss, "target_shapes", None)
            shapes.append(rule(tuple(t.shape)) if rule is not None else [tuple(t.shape)])
            hint = getattr(loss, "target_hint", None)
            hints.append(None if hint is None else _hint_for(hint, tuple(t.shape)))
        return shapes, hints

    def _targets(self, y: Any, batch_size: int,
                 labelled: list[BoolArray | None] | None = None) -> list[Array]:
        ys = self._standardize(y, "targets", self.outputs, self.output_names,
                               *self._target_shapes(), labelled=labelled)
        if ys[0].shape[0] != batch_size:
            raise ValueError(f"targets have {ys[0].shape[0]} samples, inputs have {batch_size}")
        validation.check_targets(self, ys)
        for t, name, loss, y in zip(self.outputs, self.output_names, self._losses, ys):
            check = getattr(loss, "validate_targets", None)
            if check is not None:
                check(y, tuple(t.shape), f"targets {name!r}")
        return ys

