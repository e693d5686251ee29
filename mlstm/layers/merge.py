"""Concatenate several inputs along an axis; masks combine as Keras combines them."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np

from .. import validation
from .._typing import Array, BoolArray, DTypeLike, JSONDict, TensorShape
from ..ops import concatenate_backward, concatenate_forward
from ..registry import register_layer
from .base import KerasOptions, Layer, SymbolicTensor, TensorSpec, format_shape

__all__ = ["Concatenate", "concatenate"]


@register_layer
class Concatenate(Layer):
    """Concatenate several inputs along ``axis`` (any axis but the batch axis).

    A mask that travels with any input is combined as Keras does: each mask is broadcast
    to its input's shape (unmasked inputs count as all valid), the broadcast masks are
    concatenated along ``axis``, and a step is valid if any entry of its last axis is.
    """

    base_name = "concatenate"
    keras_name = "Concatenate"
    keras_options = KerasOptions(copied=("axis",))
    input_count = None

    def __init__(self, axis: int = -1, name: str | None = None, dtype: DTypeLike | None = None,
                 trainable: bool = True) -> None:
        super().__init__(name=name, dtype=dtype, trainable=trainable)
        if not isinstance(axis, (int, np.integer)) or axis == 0:
            raise ValueError(f"Concatenate {self.name!r}: axis must be a non-zero int "
                             f"(0 is the batch axis), got {axis!r}")
        self.axis = int(axis)

    @classmethod
    def examples(cls) -> list[JSONDict]:
        return [{"config": {}, "inputs": [(3, 4), (3, 2)]},
                {"config": {"axis": 1}, "inputs": [(2, 4), (3, 4)]}]

    def _input_specs(self, inputs: Sequence[SymbolicTensor], call_kwargs: Mapping[str, Any]
                     ) -> list[TensorSpec]:
        if len(inputs) < 2:
            raise ValueError(f"Concatenate {self.name!r} needs a list of at least 2 inputs, "
                             f"got {len(inputs)}")
        shapes = [t.shape for t in inputs]
        rank = len(shapes[0]) + 1
        axis = self.axis if self.axis > 0 else rank + self.axis
        if not 1 <= axis < rank:
            raise ValueError(f"Concatenate {self.name!r}: axis {self.axis} out of range for "
                             f"inputs of rank {rank}")
        for t, s in zip(inputs, shapes):
            if len(s) + 1 != rank or any(a != b for k, (a, b) in enumerate(zip(s, shapes[0]))
                                         if k != axis - 1):
                raise ValueError(
                    f"Concatenate {self.name!r}: inputs must match except on axis {self.axis}, "
                    f"got shapes {[format_shape((None,) + s) for s in shapes]}")
        self._axis_pos = axis
        return [(t.shape, t.has_mask) for t in inputs]

    def node_call_arguments(self, inputs: Sequence[Any]) -> tuple[list[Any], dict[str, Any]]:
        return [list(inputs)], {}                  # always called on a list

    def _check_input_shapes(self, shapes: list[TensorShape]) -> None:
        pass

    def output_specs(self, input_specs: Sequence[TensorSpec], call_kwargs: Mapping[str, Any]
                     ) -> list[TensorSpec]:
        shapes = [s for s, _ in input_specs]
        k = self._axis_pos - 1
        sizes = [s[k] for s in shapes]
        out = list(shapes[0])
        out[k] = None if any(d is None for d in sizes) else sum(cast(list[int], sizes))
        return [(tuple(out), any(m for _, m in input_specs))]

    def forward(self, inputs: Sequence[Array], masks: Sequence[BoolArray | None],
                training: bool = False, rng: np.random.Generator | None = None, **kw: Any
                ) -> tuple[list[Array], list[BoolArray | None], Any]:
        validation.check_concatenate_inputs(self, inputs, self.axis)   # free dims (None)
        y, cache = concatenate_forward(inputs, axis=self.axis)
        out_mask = None
        if any(m is not None for m in masks):
            full = []
            for x, m in zip(inputs, masks):
                if m is None:
                    full.append(np.ones(x.shape, dtype=bool))
                else:
                    full.append(np.broadcast_to(m.reshape(m.shape + (1,) * (x.ndim - m.ndim)),
                                                x.shape))
            out_mask = cast(BoolArray, np.concatenate(full, axis=self.axis).any(axis=-1))
        return [y], [out_mask], cache

    def backward(self, d_outputs: Sequence[Array | None], cache: Any,
                 d_logits: Array | None = None, extras: dict[str, Any] | None = None,
                 input_grads: Sequence[bool] | None = None
                 ) -> tuple[list[Array | None], dict[str, Array]]:
        d_inputs: list[Array | None] = list(concatenate_backward(cast(Array, d_outputs[0]), cache))
        return d_inputs, {}  # (one output: the graph calls backward only when it has a gradient)

    def get_config(self) -> JSONDict:
        config = super().get_config()
        config.pop("trainable")
        config["axis"] = self.axis
        return config


def concatenate(inputs: Sequence[SymbolicTensor], axis: int = -1, name: str | None = None
                ) -> SymbolicTensor:
    """Functional form: ``Concatenate(axis=axis, name=name)(inputs)``: one tensor."""
    merged: SymbolicTensor = Concatenate(axis=axis, name=name)(inputs)
    return merged
