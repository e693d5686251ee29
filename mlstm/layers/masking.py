"""Masking: steps whose features all equal ``mask_value`` are masked for the layers after."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np

from .._typing import Array, BoolArray, DTypeLike, JSONDict
from ..registry import register_layer
from .base import KerasOptions, Layer, TensorSpec, format_shape

__all__ = ["Masking"]


@register_layer
class Masking(Layer):
    """Mask time steps whose features all equal ``mask_value``.

    Output: the input with masked steps set to 0 (as Keras); the mask (N, T) travels on
    to the layers that use it (LSTM) or pass it on (Dense, Activation, Concatenate).
    """

    base_name = "masking"
    keras_name = "Masking"
    keras_options = KerasOptions(copied=("mask_value",))

    def __init__(self, mask_value: float = 0.0, name: str | None = None,
                 dtype: DTypeLike | None = None, trainable: bool = True) -> None:
        super().__init__(name=name, dtype=dtype, trainable=trainable)
        self.mask_value = float(mask_value)      # also the answer to Layer.mask_value

    @classmethod
    def examples(cls) -> list[JSONDict]:
        return [{"config": {"mask_value": 0.0}, "inputs": [(4, 3)]}]

    def output_specs(self, input_specs: Sequence[TensorSpec], call_kwargs: Mapping[str, Any]
                     ) -> list[TensorSpec]:
        shape = input_specs[0][0]
        if len(shape) < 2:
            raise ValueError(f"Masking {self.name!r} expects input of shape (N, T, D), got "
                             f"{format_shape((None,) + shape)}")
        return [(shape, True)]

    def forward(self, inputs: Sequence[Array], masks: Sequence[BoolArray | None],
                training: bool = False, rng: np.random.Generator | None = None, **kw: Any
                ) -> tuple[list[Array], list[BoolArray | None], Any]:
        x = inputs[0]
        mask = np.any(x != self.mask_value, axis=-1)
        y = np.where(mask[..., None], x, 0).astype(x.dtype, copy=False)
        return [y], [mask], {"mask": mask}

    def backward(self, d_outputs: Sequence[Array | None], cache: Any,
                 d_logits: Array | None = None, extras: dict[str, Any] | None = None,
                 input_grads: Sequence[bool] | None = None
                 ) -> tuple[list[Array | None], dict[str, Array]]:
        # (one output: the graph calls backward only when it has a gradient)
        return [np.where(cache["mask"][..., None], cast(Array, d_outputs[0]), 0)], {}

    def get_config(self) -> JSONDict:
        config = super().get_config()
        config.pop("trainable")
        config["mask_value"] = self.mask_value
        return config
