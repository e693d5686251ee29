"""The source of a graph: :class:`InputLayer` and the :func:`Input` placeholder."""
from __future__ import annotations

import numpy as np

from ..registry import register_layer
from .base import KerasOptions, Layer, Node, SymbolicTensor, check_dtype

__all__ = ["InputLayer", "Input", "input_dtype", "ID_DTYPES"]

#: Integer input dtypes: token ids, for an Embedding.
ID_DTYPES = ("int32", "int64")


def input_dtype(dtype):
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

    def __init__(self, shape, name=None, dtype="float32"):
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
    def examples(cls):
        return []                       # every model has inputs: tested through the others

    def __call__(self, inputs, **call_kwargs):
        raise TypeError(f"InputLayer {self.name!r} is not called on tensors; use mlstm.Input")

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    def forward(self, inputs, masks, **kw):
        return inputs, [None], {}

    def backward(self, d_outputs, cache, d_logits=None, extras=None, input_grads=None):
        return [], {}


def Input(shape, name=None, dtype="float32"):
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
