"""Masking: steps whose features all equal ``mask_value`` are masked for the layers after."""
from __future__ import annotations

import numpy as np

from ..registry import register_layer
from .base import KerasOptions, Layer, format_shape

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

    def __init__(self, mask_value=0.0, name=None, dtype=None, trainable=True):
        super().__init__(name=name, dtype=dtype, trainable=trainable)
        self.mask_value = float(mask_value)      # also the answer to Layer.mask_value

    @classmethod
    def examples(cls):
        return [{"config": {"mask_value": 0.0}, "inputs": [(4, 3)]}]

    def output_specs(self, input_specs, call_kwargs):
        shape = input_specs[0][0]
        if len(shape) < 2:
            raise ValueError(f"Masking {self.name!r} expects input of shape (N, T, D), got "
                             f"{format_shape((None,) + shape)}")
        return [(shape, True)]

    def forward(self, inputs, masks, **kw):
        x = inputs[0]
        mask = np.any(x != self.mask_value, axis=-1)
        y = np.where(mask[..., None], x, 0).astype(x.dtype, copy=False)
        return [y], [mask], {"mask": mask}

    def backward(self, d_outputs, cache, d_logits=None, extras=None, input_grads=None):
        return [np.where(cache["mask"][..., None], d_outputs[0], 0)], {}

    def get_config(self):
        config = super().get_config()
        config.pop("trainable")
        config["mask_value"] = self.mask_value
        return config
