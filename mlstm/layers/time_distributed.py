"""TimeDistributed: one layer applied to every step of a sequence, with the same weights.

Keras 3.15 (``keras/src/layers/rnn/time_distributed.py``) calls the wrapped layer on each
time slice ``x[:, t]`` and stacks the results. The slices are independent, so mlstm folds
time into the batch instead: (N, T, ...) -> (N·T, ...), one call of the wrapped layer,
and back to (N, T, ...). The values are those of the per-step calls; the weight gradients
are sums over all N·T rows, i.e. over steps and samples, as the chain rule through the
shared weights says.

Masks pass through unchanged (the output carries the input's mask; Keras passes the mask to
the wrapped layer only when its ``call`` takes one, which no layer mlstm wraps here does).
A wrapped layer that draws random numbers (Dropout) draws for all N·T rows at once: one
independent draw per step, as Keras' per-step calls make.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._typing import Array, BoolArray, DTypeLike, JSONDict, TensorShape
from ..registry import register_layer
from .base import KerasOptions, Layer, SymbolicTensor, TensorSpec
from .memory import ActivationBytes, CallShapes
from .wrapper import Wrapper, call_backward, wrapped_layer

__all__ = ["TimeDistributed"]


@register_layer
class TimeDistributed(Wrapper):
    """Apply ``layer`` to every time step: (N, T, ...) -> (N, T, ...'), one set of weights.

    Parameters
    ----------
    layer : Layer or dict
        A registered layer with one input and one output that works on one step, (N, ...)
        to (N, ...') (Dense at least; Activation, Dropout, ...), unbuilt; or its config
        ``{"class_name": ..., "config": {...}}``.

    Weights: those of ``layer``, named ``"<layer name>/<weight>"`` (Keras:
    ``time_distributed/dense/kernel``).
    """

    base_name = "time_distributed"
    keras_name = "TimeDistributed"
    keras_options = KerasOptions(wrapped={"layer": "layer"})

    def __init__(self, layer: Layer | Mapping[str, Any], name: str | None = None,
                 dtype: DTypeLike | None = None, trainable: bool = True,
                 seed: int | None = None) -> None:
        super().__init__(name=name, dtype=dtype, trainable=trainable, seed=seed)
        self.layer = wrapped_layer(self._label, "layer", layer)
        if self.layer.input_count != 1:
            raise ValueError(f"{self._label}: the wrapped layer must take one input, "
                             f"{type(self.layer).__name__} takes "
                             f"{self.layer.input_count or 'several'}")
        self._adopt([self.layer])

    @classmethod
    def examples(cls) -> list[JSONDict]:
        return [{"config": {"layer": {"class_name": "Dense",
                                      "config": {"units": 2, "activation": "tanh"}}},
                 "inputs": [(3, 4)]},
                {"config": {"layer": {"class_name": "Dense",
                                      "config": {"units": 3, "activation": "sigmoid",
                                                 "name": "head"}}},
                 "inputs": [(2, 5)]}]

    def _input_specs(self, inputs: Sequence[SymbolicTensor], call_kwargs: Mapping[str, Any]
                     ) -> list[TensorSpec]:
        specs = super()._input_specs(inputs, call_kwargs)
        shape = specs[0][0]
        if len(shape) < 2:
            raise ValueError(f"{self._label} expects input of shape (N, T, ...) with at least "
                             f"3 axes, got {self._shape_text(shape)}")
        return specs

    def _check_input_shapes(self, shapes: list[TensorShape]) -> None:
        self.layer._check_input_shapes([shapes[0][1:]])

    def build(self, input_shapes: Sequence[TensorShape]) -> None:
        self._step_specs = self.build_wrapped(self.layer, [(input_shapes[0][1:], False)])
        if len(self._step_specs) != 1:
            raise ValueError(f"{self._label}: the wrapped layer must have one output, "
                             f"{type(self.layer).__name__} has {len(self._step_specs)}")
        self.weight_order()

    def output_specs(self, input_specs: Sequence[TensorSpec], call_kwargs: Mapping[str, Any]
                     ) -> list[TensorSpec]:
        (shape, has_mask), = input_specs
        step_shape = self.layer.output_specs([(shape[1:], False)], {})[0][0]
        return [((shape[0],) + tuple(step_shape), has_mask)]

    def forward(self, inputs: Sequence[Array], masks: Sequence[BoolArray | None],
                training: bool = False, rng: np.random.Generator | None = None, **kw: Any
                ) -> tuple[list[Array], list[BoolArray | None], Any]:
        x = inputs[0]
        N, T = x.shape[:2]
        rows = x.reshape((N * T,) + x.shape[2:])
        (step_rng,) = self.wrapped_rngs(rng)
        outputs, _, cache = self.layer.forward([rows], [None], training=training, rng=step_rng)
        y = outputs[0]
        return ([y.reshape((N, T) + y.shape[1:])], [masks[0]],
                {"layer": cache, "x_shape": x.shape, "rows_out": y})

    def backward(self, d_outputs: Sequence[Array | None], cache: Any,
                 d_logits: Array | None = None, extras: dict[str, Any] | None = None,
                 input_grads: Sequence[bool] | None = None
                 ) -> tuple[list[Array | None], dict[str, Array]]:
        d_y = d_outputs[0]
        N, T = cache["x_shape"][:2]
        d_rows = None if d_y is None else d_y.reshape((N * T,) + d_y.shape[2:])
        layer_extras: dict[str, Any] | None = {} if extras is not None else None
        d_inputs, d_params = call_backward(self.layer, [d_rows], cache["layer"],
                                           [cache["rows_out"]], extras=layer_extras,
                                           input_grads=input_grads)
        if extras is not None:
            extras["layer"] = layer_extras
        d_x = d_inputs[0]
        d_x = None if d_x is None else d_x.reshape(cache["x_shape"])
        return [d_x], self.prefixed(self.layer, d_params)

    def activation_bytes(self, call: CallShapes) -> ActivationBytes:
        """The wrapped layer's, on N·T rows of one step each; the rows are a copy of the
        input when it is not contiguous (an LSTM's sequence is a transposed view), kept
        in the wrapped layer's cache; and a copy of the output gradient at backward."""
        (shape,), (out,) = call.inputs, call.outputs
        inner = self.layer.activation_bytes(call._replace(
            inputs=[shape[1:]], outputs=[out[1:]], masked=[False],
            batch_size=call.batch_size * shape[0]))
        return ActivationBytes(inner.kept + call.nbytes(shape), inner.forward,
                               inner.backward + call.nbytes(out),
                               f"{self._label} (on N·T rows): {inner.note}")

    # ----------------------------------------------------------------- questions asked
    # No output_activation: Keras stacks the per-step outputs into a new tensor that does
    # not carry the logits of a sigmoid Dense inside (checked: BCE on
    # TimeDistributed(Dense(1, "sigmoid")) clips probabilities, 16.118 where the logits
    # would give 30), so losses take probabilities here, as in Keras.

    def activation_inputs(self, cache: Any) -> list[tuple[str, Array]]:
        return self.layer.activation_inputs(cache["layer"])

    def get_config(self) -> JSONDict:
        config = super().get_config()
        config["layer"] = self.layer_config(self.layer)
        return config
