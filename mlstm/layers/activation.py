"""The Activation layer: an elementwise activation with no weights."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._typing import Array, BoolArray, DTypeLike, JSONDict
from ..ops import get_activation
from ..ops.activations import activate, activation_backward
from ..registry import register_layer
from .base import KerasOptions, Layer, TensorSpec

__all__ = ["Activation"]


@register_layer
class Activation(Layer):
    """Apply an activation: elementwise, or softmax over the last axis.

    A sigmoid here is a sigmoid head for binary cross-entropy too, and a softmax a softmax
    head for (sparse) categorical cross-entropy: those losses use its input as logits.
    """

    base_name = "activation"
    keras_name = "Activation"
    keras_options = KerasOptions(copied=("activation",))

    def __init__(self, activation: str | None, name: str | None = None,
                 dtype: DTypeLike | None = None, trainable: bool = True) -> None:
        super().__init__(name=name, dtype=dtype, trainable=trainable)
        self.activation = get_activation(activation, last_axis=True)

    @classmethod
    def examples(cls) -> list[JSONDict]:
        return [{"config": {"activation": "tanh"}, "inputs": [(3, 4)]},
                {"config": {"activation": "sigmoid"}, "inputs": [(4,)]},
                {"config": {"activation": "softmax"}, "inputs": [(3, 4)]}]

    def output_specs(self, input_specs: Sequence[TensorSpec], call_kwargs: Mapping[str, Any]
                     ) -> list[TensorSpec]:
        return [input_specs[0]]

    def forward(self, inputs: Sequence[Array], masks: Sequence[BoolArray | None],
                training: bool = False, rng: np.random.Generator | None = None, **kw: Any
                ) -> tuple[list[Array], list[BoolArray | None], Any]:
        x = inputs[0]
        y = activate(self.activation, x)
        if y is x:
            y = x.copy()
        return [y], [masks[0]], {"x": x, "y": y}

    def backward(self, d_outputs: Sequence[Array | None], cache: Any,
                 d_logits: Array | None = None, extras: dict[str, Any] | None = None,
                 input_grads: Sequence[bool] | None = None
                 ) -> tuple[list[Array | None], dict[str, Array]]:
        d_y = d_outputs[0]
        d_x = (np.zeros_like(cache["x"]) if d_y is None
               else activation_backward(self.activation, d_y, cache["y"]))
        if d_logits is not None:
            d_x = d_x + d_logits
        return [d_x], {}

    def output_activation(self, index: int = 0) -> str | None:
        return self.activation if self.activation != "linear" else None

    def logits(self, cache: Any, index: int = 0) -> Array | None:
        return cache["x"]

    def activation_inputs(self, cache: Any) -> list[tuple[str, Array]]:
        return [(self.activation, cache["x"].ravel())]

    def get_config(self) -> JSONDict:
        config = super().get_config()
        config.pop("trainable")
        config["activation"] = self.activation
        return config
