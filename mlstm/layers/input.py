"""The source of a graph: :class:`InputLayer` and the :func:`Input` placeholder."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._typing import Array, BoolArray, DTypeLike, JSONDict
from ..registry import register_layer
from .base import KerasOptions, Layer, Node, SymbolicTensor, check_dtype

__all__ = ["InputLayer", "Input", "input_dtype", "ID_DTYPES"]

#: Integer input dtypes: token ids, for an Embedding.
ID_DTYPES = ("int32", "int64")


def input_dtype(dtype: DTypeLike) -> str:
    """The dtype's name if it is float32, float64 (values) or int32, int64 (token ids);
    TypeError otherwise."""
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name in ID_DTYPES:
        return name
    try:
        return check_dtype(dtype)
    except TypeError:
        raise TypeError(f"Input dtype must be float32 or float64 (values) or int32 or int64 "
                        f"(token ids, for an Embedding), got {dtype!r}") from None


@register_layer
class InputLayer(Layer):
    """The source of a graph. Use :func:`Input`."""

    base_name = "input_layer"
    keras_name = "InputLayer"
    keras_options = KerasOptions()
    is_input = True
    input_count = 0

    def __init__(self, shape: Sequence[int | None], name: str | None = None,
                 dtype: DTypeLike = "float32") -> None:
        super().__init__(name=name)
        self.dtype = input_dtype(dtype)
        shape = tuple(shape)
        for d in shape:
            if d is not None and (not isinstance(d, (int, np.integer)) or d <= 0):
                raise ValueError(f"Input {self.name!r}: shape must hold positive ints or None, "
                                 f"got {shape}")
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.built = True
        node = Node(self, [])
        node.outputs = [SymbolicTensor(self.shape, self.dtype, node, 0, False)]
        self._inbound_nodes.append(node)

    @classmethod
    def examples(cls) -> list[JSONDict]:
        return []                       # every model has inputs: tested through the others

    def __call__(self, inputs: SymbolicTensor | Sequence[SymbolicTensor], **call_kwargs: Any
                 ) -> SymbolicTensor | list[SymbolicTensor]:
        raise TypeError(f"InputLayer {self.name!r} is not called on tensors; use mlstm.Input")

    def get_config(self) -> JSONDict:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    def forward(self, inputs: Sequence[Array], masks: Sequence[BoolArray | None],
                training: bool = False, rng: np.random.Generator | None = None, **kw: Any
                ) -> tuple[list[Array], list[BoolArray | None], Any]:
        return list(inputs), [None], {}

    def backward(self, d_outputs: Sequence[Array | None], cache: Any,
                 d_logits: Array | None = None, extras: dict[str, Any] | None = None,
                 input_grads: Sequence[bool] | None = None
                 ) -> tuple[list[Array | None], dict[str, Array]]:
        return [], {}


def Input(shape: Sequence[int | None], name: str | None = None, dtype: DTypeLike = "float32"
          ) -> SymbolicTensor:
    """A symbolic input of shape ``(N, *shape)``.

    Parameters
    ----------
    shape : tuple of int or None
        Shape without the batch axis, e.g. ``(T, D)``; ``(None, D)`` for any length.
    name : str, optional
    dtype : {"float32", "float64", "int32", "int64"}
        A float dtype flows to every layer fed by this input that has no dtype of its own.
        An integer input holds token ids: it feeds an Embedding (other layers refuse it),
        takes integer arrays (or floats holding whole numbers), gets no gradient, and is
        never perturbed by the gradient check. A float input read only by Embedding-like
        layers holds token ids too (the Keras guides' ``keras.Input(shape=(None,))``;
        Keras casts the ids inside Embedding): the same rules apply, decided from the
        graph (:func:`mlstm.validation.token_id_inputs`), and ids that are not whole
        numbers are refused where Keras would truncate them.
    """
    return InputLayer(shape, name=name, dtype=dtype)._inbound_nodes[0].outputs[0]
