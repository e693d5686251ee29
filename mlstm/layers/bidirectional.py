"""Bidirectional: a sequence layer run forward and backward in time, the outputs merged.

As Keras 3.15 (``keras/src/layers/rnn/bidirectional.py``): the layer given is copied twice,
as ``forward_<name>`` and, with ``go_backwards=True``, ``backward_<name>`` (or the
``backward_layer`` given is used). Both run on the same input with the same mask; the
backward direction's returned sequence, in its processing order, is flipped back to time
order; then ``merge_mode`` combines the two (:mod:`mlstm.ops.bidirectional`). With
``return_sequences``, masked steps are zero in both directions (Keras forces
``zero_output_for_mask = return_sequences`` on the two layers). ``return_state`` adds the
forward states then the backward states: ``[out, h_f, c_f, h_b, c_b]``.

The two directions are independent, forward and backward: when each has enough work per
step (``Layer.step_elements``, :data:`mlstm.parallel.MIN_STEP_ELEMENTS`) they run at the
same time, each on its own thread with a single-threaded BLAS, as the graph runs independent
LSTMs (:mod:`mlstm.parallel`). The results do not depend on it.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from .. import parallel
from .._typing import Array, BoolArray, DTypeLike, JSONDict, TensorShape
from ..ops.bidirectional import MERGE_MODES, merge_backward, merge_forward, zero_masked_steps
from ..registry import register_layer
from .base import KerasOptions, Layer, SymbolicTensor, TensorSpec
from .memory import ActivationBytes, CallShapes, concrete_shape
from .wrapper import Wrapper, call_backward, wrapped_layer

__all__ = ["Bidirectional"]

T = TypeVar("T")

_SEQUENCE_ATTRIBUTES = ("go_backwards", "return_sequences", "return_state")


def _removeprefix(text: str, prefix: str) -> str:
    return text[len(prefix):] if text.startswith(prefix) else text


@register_layer
class Bidirectional(Wrapper):
    """Run a sequence layer (LSTM) in both directions and merge the outputs (Keras semantics).

    Parameters
    ----------
    layer : Layer or dict
        A sequence layer with ``go_backwards``, ``return_sequences`` and ``return_state``
        options (LSTM), unbuilt, or its config ``{"class_name": ..., "config": {...}}``.
        It is copied: the copies hold the weights.
    merge_mode : {"concat", "sum", "ave", "mul", None}
        How the two outputs combine; None returns both (two outputs).
    backward_layer : Layer or dict, optional
        The backward direction (its ``go_backwards`` must differ from ``layer``'s, its
        ``return_sequences``, ``return_state`` and output shapes be the same); by default a
        copy of ``layer`` with ``go_backwards=True``.

    Output (N, T, 2H) for concat with ``return_sequences`` (time order, both directions),
    (N, 2H) without; (N, ..., H) for sum/ave/mul; two outputs for None. Weights: the forward layer's, then the
    backward layer's, named ``"forward_lstm/kernel"``, ... (Keras:
    ``bidirectional/forward_lstm/lstm_cell/kernel``).
    """

    base_name = "bidirectional"
    recurrent = True
    keras_name = "Bidirectional"
    keras_options = KerasOptions(
        copied=("merge_mode",),
        wrapped={"layer": "forward_layer", "backward_layer": "backward_layer"},
        # Keras' Bidirectional sets zero_output_for_mask = return_sequences on both layers
        wrapped_ignored=("zero_output_for_mask",))

    def __init__(self, layer: Layer | Mapping[str, Any], merge_mode: str | None = "concat",
                 backward_layer: Layer | Mapping[str, Any] | None = None,
                 name: str | None = None, dtype: DTypeLike | None = None, trainable: bool = True,
                 seed: int | None = None) -> None:
        super().__init__(name=name, dtype=dtype, trainable=trainable, seed=seed)
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"{self._label}: merge_mode must be one of {MERGE_MODES}, "
                             f"got {merge_mode!r}")
        self.merge_mode = merge_mode
        # Any: sequence layers, checked to have go_backwards, return_sequences, return_state
        layer = wrapped_layer(self._label, "layer", layer)
        self._check_sequence_layer("layer", layer)
        config = self.layer_config(layer)
        config["config"]["name"] = "forward_" + _removeprefix(layer.name, "forward_")
        forward: Any = wrapped_layer(self._label, "layer", config)
        if backward_layer is None:
            config = self.layer_config(layer)
            config["config"].update(go_backwards=True,
                                    name="backward_" + _removeprefix(layer.name, "backward_"))
            backward: Any = wrapped_layer(self._label, "backward_layer", config)
        else:
            backward = wrapped_layer(self._label, "backward_layer", backward_layer)
            self._check_sequence_layer("backward_layer", backward)
        if forward.go_backwards == backward.go_backwards:
            raise ValueError(f"{self._label}: the forward and backward layers must have "
                             f"different go_backwards, both have {forward.go_backwards}")
        for attribute in ("return_sequences", "return_state"):
            if getattr(forward, attribute) != getattr(backward, attribute):
                raise ValueError(f"{self._label}: the forward and backward layers must have "
                                 f"the same {attribute}, got {getattr(forward, attribute)} "
                                 f"and {getattr(backward, attribute)}")
        self.forward_layer, self.backward_layer = forward, backward
        self.return_sequences = bool(forward.return_sequences)
        self.return_state = bool(forward.return_state)
        self._adopt([forward, backward])

    def _check_sequence_layer(self, option: str, layer: Layer) -> None:
        missing = [a for a in _SEQUENCE_ATTRIBUTES if not hasattr(layer, a)]
        if missing or layer.input_count != 1:
            raise ValueError(f"{self._label}: {option} must be a sequence layer with "
                             f"{', '.join(_SEQUENCE_ATTRIBUTES)} (LSTM); "
                             f"{type(layer).__name__} is not")

    @classmethod
    def examples(cls) -> list[JSONDict]:
        lstm = {"class_name": "LSTM", "config": {"units": 2, "name": "lstm"}}
        seq = {"class_name": "LSTM", "config": {"units": 2, "return_sequences": True,
                                                "name": "lstm"}}
        state = {"class_name": "LSTM", "config": {"units": 2, "return_state": True,
                                                  "name": "lstm"}}
        backward = {"class_name": "LSTM", "config": {"units": 2, "go_backwards": True,
                                                     "return_sequences": True,
                                                     "activation": "relu", "name": "back"}}
        return [{"config": {"layer": lstm}, "inputs": [(4, 3)]},
                {"config": {"layer": seq, "merge_mode": "sum"}, "inputs": [(4, 3)]},
                {"config": {"layer": seq, "merge_mode": "mul"}, "inputs": [(3, 2)]},
                {"config": {"layer": lstm, "merge_mode": "ave"}, "inputs": [(3, 2)]},
                {"config": {"layer": seq, "merge_mode": None}, "inputs": [(3, 2)]},
                {"config": {"layer": state}, "inputs": [(3, 2)]},
                {"config": {"layer": seq, "backward_layer": backward}, "inputs": [(3, 2)]}]

    def _input_specs(self, inputs: Sequence[SymbolicTensor], call_kwargs: Mapping[str, Any]
                     ) -> list[TensorSpec]:
        if call_kwargs.get("initial_state") is not None:
            raise ValueError(f"{self._label}: initial_state is not supported by mlstm's "
                             "Bidirectional")
        return super()._input_specs(inputs, call_kwargs)

    def _check_input_shapes(self, shapes: list[TensorShape]) -> None:
        for layer in self.wrapped:
            layer._check_input_shapes(shapes)

    def build(self, input_shapes: Sequence[TensorShape]) -> None:
        spec = [(input_shapes[0], False)]
        out_f = self.build_wrapped(self.forward_layer, spec, seed_index=0)
        out_b = self.build_wrapped(self.backward_layer, spec, seed_index=1)
        if [s for s, _ in out_f] != [s for s, _ in out_b]:
            # Keras 3.15 takes the output shapes from the forward layer alone (and doubles
            # the last axis for concat): other backward shapes break its model at run time
            raise ValueError(f"{self._label}: the forward and backward layers must give "
                             f"outputs of the same shapes; the forward layer gives "
                             f"{[self._shape_text(s) for s, _ in out_f]}, the backward layer "
                             f"{[self._shape_text(s) for s, _ in out_b]}")
        self.weight_order()

    def output_specs(self, input_specs: Sequence[TensorSpec], call_kwargs: Mapping[str, Any]
                     ) -> list[TensorSpec]:
        spec = [(input_specs[0][0], input_specs[0][1])]
        out_f = self.forward_layer.output_specs(spec, {})
        out_b = self.backward_layer.output_specs(spec, {})
        (shape_f, mask_f), (shape_b, mask_b) = out_f[0], out_b[0]
        if self.merge_mode is None:
            outputs = [(shape_f, mask_f), (shape_b, mask_b)]
        elif self.merge_mode == "concat":
            outputs = [(shape_f[:-1] + (shape_f[-1] + shape_b[-1],), mask_f)]
        else:
            outputs = [(shape_f, mask_f)]
        return outputs + out_f[1:] + out_b[1:]

    # ----------------------------------------------------------------- run time
    def _concurrently(self, calls: Sequence[Callable[[], T]], batch_size: int) -> list[T]:
        """Run the two directions' calls, at the same time when both are worth a thread."""
        if min(layer.step_elements(batch_size) for layer in self.wrapped) \
                >= parallel.MIN_STEP_ELEMENTS:
            return parallel.run_concurrently(calls)
        return [call() for call in calls]

    def _processing_mask(self, layer: Any, mask: BoolArray | None) -> BoolArray | None:
        """The (N, T) mask in the order ``layer`` processed the steps."""
        return None if mask is None else (mask[:, ::-1] if layer.go_backwards else mask)

    def forward(self, inputs: Sequence[Array], masks: Sequence[BoolArray | None],
                training: bool = False, rng: np.random.Generator | None = None, **kw: Any
                ) -> tuple[list[Array], list[BoolArray | None], Any]:
        x, mask = inputs[0], masks[0]
        rngs = self.wrapped_rngs(rng)
        results = self._concurrently(
            [functools.partial(layer.forward, [x], [mask], training=training, rng=r)
             for layer, r in zip(self.wrapped, rngs)], len(x))
        (out_f, _, cache_f), (out_b, _, cache_b) = results
        y, r = out_f[0], out_b[0]
        if self.return_sequences:
            # masked steps are zero (zero_output_for_mask), then r back to time order
            y = zero_masked_steps(y, self._processing_mask(self.forward_layer, mask))
            r = zero_masked_steps(r, self._processing_mask(self.backward_layer, mask))[:, ::-1]
        merged, merge_cache = merge_forward(y, r, self.merge_mode)
        out_mask = mask if self.return_sequences else None
        outputs = merged + out_f[1:] + out_b[1:]
        out_masks = [out_mask] * len(merged) + [None] * (len(out_f) - 1 + len(out_b) - 1)
        cache = {"forward": cache_f, "backward": cache_b, "merge": merge_cache, "mask": mask,
                 "outputs_f": out_f, "outputs_b": out_b}
        return outputs, out_masks, cache

    def backward(self, d_outputs: Sequence[Array | None], cache: Any,
                 d_logits: Array | None = None, extras: dict[str, Any] | None = None,
                 input_grads: Sequence[bool] | None = None
                 ) -> tuple[list[Array | None], dict[str, Array]]:
        n_merged = 2 if self.merge_mode is None else 1
        d_y, d_r = merge_backward(d_outputs[:n_merged], cache["merge"])
        n_states = len(cache["outputs_f"]) - 1
        d_states_f = list(d_outputs[n_merged:n_merged + n_states])
        d_states_b = list(d_outputs[n_merged + n_states:])
        if self.return_sequences:
            mask = cache["mask"]
            if d_r is not None:
                d_r = d_r[:, ::-1]                              # back to processing order
            d_y = zero_masked_steps(d_y, self._processing_mask(self.forward_layer, mask))
            d_r = zero_masked_steps(d_r, self._processing_mask(self.backward_layer, mask))
        calls, used = [], []
        for layer, d_seq, d_states, key in ((self.forward_layer, d_y, d_states_f, "forward"),
                                            (self.backward_layer, d_r, d_states_b, "backward")):
            d_layer = [d_seq] + d_states
            if all(d is None for d in d_layer):
                continue                                 # nothing reaches this direction
            layer_extras: dict[str, Any] | None = {} if extras is not None else None
            calls.append(functools.partial(call_backward, layer, d_layer, cache[key],
                                           cache["outputs_" + key[0]], extras=layer_extras,
                                           input_grads=input_grads))
            used.append((layer, key, layer_extras))
        results = self._concurrently(calls, len(cache["outputs_f"][0]))
        d_x, d_params = None, {}
        for (layer, key, layer_extras), (d_inputs, grads) in zip(used, results):
            if d_inputs[0] is not None:
                d_x = d_inputs[0] if d_x is None else d_x + d_inputs[0]
            d_params.update(self.prefixed(layer, grads))
            if extras is not None:
                extras[key] = layer_extras
        return [d_x], d_params

    def step_elements(self, batch_size: int) -> int:
        return sum(layer.step_elements(batch_size) for layer in self.wrapped)

    def activation_bytes(self, call: CallShapes) -> ActivationBytes:
        """Both directions' (they may run at the same time), the merged output, and the
        masked copies and summed input gradients of the merge."""
        parts = []
        for layer in self.wrapped:
            outs = [concrete_shape(s)
                    for s, _ in layer.output_specs([(call.inputs[0], call.masked[0])], {})]
            parts.append(layer.activation_bytes(call._replace(outputs=outs, concurrent=True)))
        total = functools.reduce(ActivationBytes.plus, parts)
        sequence = call.nbytes(outs[0])
        merged = 0 if self.merge_mode is None else call.nbytes(call.outputs[0])
        masked = self.return_sequences and call.masked[0]
        forward = 2 * sequence if masked else 0            # zero_masked_steps' copies
        backward = 2 * call.nbytes(call.inputs[0]) + 2 * sequence * (1 + masked)
        return ActivationBytes(total.kept + merged, total.forward + forward,
                               total.backward + backward, f"{self._label}: {total.note}")

    # ----------------------------------------------------------------- questions asked
    def _directions(self) -> tuple[tuple[str, Layer], tuple[str, Layer]]:
        return (("forward", self.forward_layer), ("backward", self.backward_layer))

    def time_step_grads(self, extras: Mapping[str, Any]) -> dict[str, Array] | None:
        """dL/dh per step of each direction, ``{"forward": (T, N, H_f), "backward": (T, N,
        H_b)}``, each in its own processing order (step 0: the first step it ran; for the
        backward direction that is the last time step, see :meth:`time_step_directions`); a
        direction the backward pass did not reach is left out; None when neither was."""
        parts = {direction: layer.time_step_grads(extras[direction])
                 for direction, layer in self._directions() if direction in extras}
        found = {d: g for d, g in parts.items() if isinstance(g, np.ndarray)}
        return found or None

    def time_step_directions(self) -> dict[str, bool]:
        """``{"forward": False, "backward": True}`` (by default): whether each direction
        runs from the last time step to the first (its layer's ``go_backwards``)."""
        # getattr: a sequence layer, which __init__ checked to have go_backwards
        return {direction: bool(getattr(layer, "go_backwards"))
                for direction, layer in self._directions()}

    def step_mask(self, cache: Any) -> dict[str, BoolArray | None]:
        """``{"forward": (T, N), "backward": (T, N)}`` valid steps, each in its direction's
        processing order (None entries when every step is valid)."""
        found: dict[str, BoolArray | None] = {}
        for direction, layer in self._directions():
            mask = layer.step_mask(cache[direction])
            found[direction] = mask if not isinstance(mask, dict) else None
        return found

    def gate_saturation(self, cache: Any, threshold: float) -> dict[str, float] | None:
        fractions = [(layer.gate_saturation(cache[key], threshold), layer.units)
                     for layer, key in ((self.forward_layer, "forward"),
                                        (self.backward_layer, "backward"))]
        if any(f is None for f, _ in fractions):
            return None
        total = sum(units for _, units in fractions)
        return {gate: sum(f[gate] * units for f, units in fractions) / total
                for gate in fractions[0][0]}

    def activation_inputs(self, cache: Any) -> list[tuple[str, Array]]:
        return (self.forward_layer.activation_inputs(cache["forward"])
                + self.backward_layer.activation_inputs(cache["backward"]))

    def per_sample_grad_norms(self, cache: Any, extras: Mapping[str, Any]
                              ) -> dict[str, Array] | None:
        norms = {}
        for layer, key in ((self.forward_layer, "forward"), (self.backward_layer, "backward")):
            if key not in extras:
                return None
            part = layer.per_sample_grad_norms(cache[key], extras[key])
            if part is None:
                return None
            norms.update(self.prefixed(layer, part))
        return norms

    def get_config(self) -> JSONDict:
        config = super().get_config()
        config.update(layer=self.layer_config(self.forward_layer), merge_mode=self.merge_mode,
                      backward_layer=self.layer_config(self.backward_layer))
        return config
