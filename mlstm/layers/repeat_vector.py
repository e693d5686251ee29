"""RepeatVector: (N, D) -> (N, n, D), the bridge of encoder-decoder models."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np

from .._typing import Array, BoolArray, DTypeLike, JSONDict
from ..ops.repeat_vector import repeat_vector_backward, repeat_vector_forward
from ..registry import register_layer
from .base import KerasOptions, Layer, TensorSpec, format_shape

__all__ = ["RepeatVector"]


@register_layer
class RepeatVector(Layer):
    """Repeat each sample's vector ``n`` times along a new time axis (Keras semantics).

    Parameters
    ----------
    n : int
        The number of steps T of the output.

    Input (N, D), output (N, n, D); the math is in :mod:`mlstm.ops.repeat_vector`. The
    input of a ``RepeatVector`` is a vector and carries no mask, so the output has none.
    Typical use: an encoder LSTM's last output repeated as the input sequence of a decoder
    LSTM (``LSTM -> RepeatVector(T) -> LSTM(return_sequences=True) -> TimeDistributed(Dense)``).
    """

    base_name = "repeat_vector"
    keras_name = "RepeatVector"
    keras_options = KerasOptions(copied=("n",))

    def __init__(self, n: int, name: str | None = None, dtype: DTypeLike | None = None,
                 trainable: bool = True) -> None:
        super().__init__(name=name, dtype=dtype, trainable=trainable)
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n <= 0:
            raise ValueError(f"RepeatVector {self.name!r}: n must be a positive int, got {n!r}")
        self.n = int(n)

    @classmethod
    def examples(cls) -> list[JSONDict]:
        return [{"config": {"n": 3}, "inputs": [(4,)]},
                {"config": {"n": 1}, "inputs": [(2,)]}]

    def output_specs(self, input_specs: Sequence[TensorSpec], call_kwargs: Mapping[str, Any]
                     ) -> list[TensorSpec]:
        shape, _ = input_specs[0]
        if len(shape) != 1:
            raise ValueError(f"RepeatVector {self.name!r} expects input of shape (N, D), got "
                             f"{format_shape((None,) + shape)}")
        return [((self.n, shape[0]), False)]

    def forward(self, inputs: Sequence[Array], masks: Sequence[BoolArray | None],
                training: bool = False, rng: np.random.Generator | None = None, **kw: Any
                ) -> tuple[list[Array], list[BoolArray | None], Any]:
        y, cache = repeat_vector_forward(inputs[0], self.n)
        return [y], [None], cache

    def backward(self, d_outputs: Sequence[Array | None], cache: Any,
                 d_logits: Array | None = None, extras: dict[str, Any] | None = None,
                 input_grads: Sequence[bool] | None = None
                 ) -> tuple[list[Array | None], dict[str, Array]]:
        # (one output: the graph calls backward only when it has a gradient)
        return [repeat_vector_backward(cast(Array, d_outputs[0]), cache)], {}

    def get_config(self) -> JSONDict:
        config = super().get_config()
        config["n"] = self.n
        return config
