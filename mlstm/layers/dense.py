"""The Dense layer: ``y = act(x W + b)`` on the last axis (per step on (N, T, D) input)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np

from .. import initializers
from .._typing import Array, BoolArray, DTypeLike, JSONDict, TensorShape
from ..initializers import Initializer
from ..ops import dense_backward, dense_forward, get_activation
from ..ops.per_sample import per_sample_outer_norms
from ..registry import register_layer
from .base import KerasOptions, Layer, SymbolicTensor, TensorSpec, format_shape

__all__ = ["Dense"]


@register_layer
class Dense(Layer):
    """Fully connected layer on the last axis; on (N, T, D) input it applies per step.

    Parameters
    ----------
    units : int
        O, the output size.
    activation : {None, "linear", "sigmoid", "tanh", "relu", "softmax"}
        ``"softmax"`` acts on the last axis (the O units of each sample, or of each step).
    use_bias : bool
    kernel_initializer, bias_initializer : str

    Weights: ``kernel`` (D, O), ``bias`` (O,). A sigmoid Dense is a "sigmoid head": binary
    cross-entropy on its output is computed from its logits, as Keras does; a softmax Dense
    is a "softmax head", where categorical and sparse categorical cross-entropy are.
    """

    param_names = ("kernel", "bias")
    base_name = "dense"
    keras_name = "Dense"
    keras_options = KerasOptions(
        copied=("units", "activation", "use_bias"),
        fixed={"kernel_regularizer": None, "bias_regularizer": None,
               "activity_regularizer": None, "kernel_constraint": None,
               "bias_constraint": None, "lora_rank": None, "lora_alpha": None,
               "quantization_config": None},
        initializers=("kernel_initializer", "bias_initializer"))

    def __init__(self, units: int, activation: str | None = None, use_bias: bool = True,
                 kernel_initializer: str | Initializer = "glorot_uniform", bias_initializer: str | Initializer = "zeros",
                 name: str | None = None, dtype: DTypeLike | None = None, trainable: bool = True,
                 seed: int | None = None) -> None:
        super().__init__(name=name, dtype=dtype, trainable=trainable, seed=seed)
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units <= 0:
            raise ValueError(f"Dense {self.name!r}: units must be a positive int, got {units!r}")
        self.units = int(units)
        self.activation = get_activation(activation, last_axis=True)
        self.use_bias = bool(use_bias)
        initializers.get_initializer(kernel_initializer)
        initializers.get_initializer(bias_initializer)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer

    @classmethod
    def examples(cls) -> list[JSONDict]:
        return [{"config": {"units": 2, "activation": "tanh"}, "inputs": [(3, 4)]},
                {"config": {"units": 3, "activation": "sigmoid"}, "inputs": [(4,)]},
                {"config": {"units": 1, "use_bias": False}, "inputs": [(5,)]},
                {"config": {"units": 4, "activation": "softmax"}, "inputs": [(3,)]},
                {"config": {"units": 3, "activation": "softmax"}, "inputs": [(2, 4)]}]

    def _input_specs(self, inputs: Sequence[SymbolicTensor], call_kwargs: Mapping[str, Any]
                     ) -> list[TensorSpec]:
        specs = super()._input_specs(inputs, call_kwargs)
        shape = specs[0][0]
        if len(shape) < 1 or shape[-1] is None:
            raise ValueError(f"Dense {self.name!r} needs a known last axis, got input of shape "
                             f"{format_shape((None,) + shape)}")
        return specs

    def _check_input_shapes(self, shapes: list[TensorShape]) -> None:
        if shapes[0][-1] != self._built_shapes[0][-1]:
            raise ValueError(f"Dense {self.name!r} expects input of shape (..., "
                             f"{self._built_shapes[0][-1]}), got "
                             f"{format_shape((None,) + shapes[0])}")

    def build(self, input_shapes: Sequence[TensorShape]) -> None:
        D = cast(int, input_shapes[0][-1])                   # (known: checked by _input_specs)
        rng = self._rng()
        self._add_param("kernel", (D, self.units), self.kernel_initializer, rng)
        if self.use_bias:
            self._add_param("bias", (self.units,), self.bias_initializer, rng)

    def output_specs(self, input_specs: Sequence[TensorSpec], call_kwargs: Mapping[str, Any]
                     ) -> list[TensorSpec]:
        shape, has_mask = input_specs[0]
        return [(shape[:-1] + (self.units,), has_mask)]

    def forward(self, inputs: Sequence[Array], masks: Sequence[BoolArray | None],
                training: bool = False, rng: np.random.Generator | None = None, **kw: Any
                ) -> tuple[list[Array], list[BoolArray | None], Any]:
        y, cache = dense_forward(inputs[0], self.params["kernel"], self.params.get("bias"),
                                 self.activation)
        return [y], [masks[0]], cache

    def backward(self, d_outputs: Sequence[Array | None], cache: Any,
                 d_logits: Array | None = None, extras: dict[str, Any] | None = None,
                 input_grads: Sequence[bool] | None = None
                 ) -> tuple[list[Array | None], dict[str, Array]]:
        grads = dense_backward(d_outputs[0], cache, d_logits=d_logits)
        if extras is not None:
            extras["d_logits"] = grads["d_logits"]
        return [grads["x"]], {k: grads[k] for k in self.param_names if k in grads}

    # ----------------------------------------------------------------- questions asked
    def output_activation(self, index: int = 0) -> str | None:
        return self.activation if self.activation != "linear" else None

    def logits(self, cache: Any, index: int = 0) -> Array | None:
        return cache["logits"]

    def per_sample_grad_norms(self, cache: Any, extras: Mapping[str, Any]
                              ) -> dict[str, Array] | None:
        """From dL/da (N, ..., O): ``kernel`` sums x_s ⊗ da_s over the steps s of a
        sequence input, ``bias`` da_s."""
        x, d_logits = cache["x"], extras["d_logits"]
        N, D, O = x.shape[0], x.shape[-1], d_logits.shape[-1]
        x_steps = x.reshape(N, -1, D).transpose(1, 0, 2)           # (S, N, D)
        d_steps = d_logits.reshape(N, -1, O).transpose(1, 0, 2)    # (S, N, O)
        norms = {"kernel": per_sample_outer_norms(x_steps, d_steps)}
        if "bias" in self.params:
            norms["bias"] = np.linalg.norm(d_steps.sum(axis=0), axis=1)
        return norms

    def activation_inputs(self, cache: Any) -> list[tuple[str, Array]]:
        return [(self.activation, cache["logits"].ravel())]

    def describe_weight_entry(self, weight: str, index: tuple[int, ...]) -> str:
        return f"output unit {index[-1]}"

    def get_config(self) -> JSONDict:
        config = super().get_config()
        config.update(units=self.units, activation=self.activation, use_bias=self.use_bias,
                      kernel_initializer=self.kernel_initializer,
                      bias_initializer=self.bias_initializer)
        return config
