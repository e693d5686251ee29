"""Reshape each sample; drops any mask."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np

from .. import validation
from .._typing import Array, BoolArray, DTypeLike, JSONDict, TensorShape
from ..ops import reshape_backward, reshape_forward
from ..registry import register_layer
from .base import KerasOptions, Layer, TensorSpec, format_shape

__all__ = ["Reshape"]


@register_layer
class Reshape(Layer):
    """Reshape each sample to ``target_shape`` (one entry may be -1). Drops any mask."""

    base_name = "reshape"
    keras_name = "Reshape"
    keras_options = KerasOptions(copied=("target_shape",))

    def __init__(self, target_shape: Sequence[int], name: str | None = None,
                 dtype: DTypeLike | None = None, trainable: bool = True) -> None:
        super().__init__(name=name, dtype=dtype, trainable=trainable)
        target_shape = tuple(int(d) for d in target_shape)
        if sum(d == -1 for d in target_shape) > 1 or any(d == 0 or d < -1 for d in target_shape):
            raise ValueError(f"Reshape {self.name!r}: target_shape must hold positive ints and "
                             f"at most one -1, got {target_shape}")
        self.target_shape = target_shape

    @classmethod
    def examples(cls) -> list[JSONDict]:
        return [{"config": {"target_shape": (12,)}, "inputs": [(3, 4)]},
                {"config": {"target_shape": (2, -1)}, "inputs": [(3, 4)]}]

    def output_specs(self, input_specs: Sequence[TensorSpec], call_kwargs: Mapping[str, Any]
                     ) -> list[TensorSpec]:
        shape = input_specs[0][0]
        if any(d is None for d in shape):
            if -1 in self.target_shape:
                raise ValueError(f"Reshape {self.name!r}: cannot infer -1 from input shape "
                                 f"{format_shape((None,) + shape)}")
            return [(self.target_shape, False)]
        size = int(np.prod(cast(tuple[int, ...], shape)))    # (no None: checked above)
        known = int(np.prod([d for d in self.target_shape if d != -1]))
        if -1 in self.target_shape:
            if size % known:
                raise ValueError(f"Reshape {self.name!r}: cannot reshape "
                                 f"{format_shape((None,) + shape)} to {self.target_shape}")
            out = tuple(size // known if d == -1 else d for d in self.target_shape)
        else:
            out = self.target_shape
            if known != size:
                raise ValueError(f"Reshape {self.name!r}: input of shape "
                                 f"{format_shape((None,) + shape)} ({size} values per sample) "
                                 f"cannot become {self.target_shape} ({known} values)")
        return [(out, False)]

    def _check_input_shapes(self, shapes: list[TensorShape]) -> None:
        pass

    def forward(self, inputs: Sequence[Array], masks: Sequence[BoolArray | None],
                training: bool = False, rng: np.random.Generator | None = None, **kw: Any
                ) -> tuple[list[Array], list[BoolArray | None], Any]:
        validation.check_reshape_input(self, inputs[0], self.target_shape)   # free dims (None)
        y, cache = reshape_forward(inputs[0], self.target_shape)
        return [y], [None], cache

    def backward(self, d_outputs: Sequence[Array | None], cache: Any,
                 d_logits: Array | None = None, extras: dict[str, Any] | None = None,
                 input_grads: Sequence[bool] | None = None
                 ) -> tuple[list[Array | None], dict[str, Array]]:
        # (one output: the graph calls backward only when it has a gradient)
        return [reshape_backward(cast(Array, d_outputs[0]), cache)], {}

    def get_config(self) -> JSONDict:
        config = super().get_config()
        config.pop("trainable")
        config["target_shape"] = list(self.target_shape)
        return config
