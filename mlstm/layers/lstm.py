"""The LSTM layer (Keras semantics); the math is in :mod:`mlstm.ops.lstm`.

Besides running the op, the layer answers what the rest of mlstm asks of a recurrent
layer: its per-sample gradient norms (from dL/dz of every step), dL/dh through time, its
valid steps, how saturated each gate was, and which gate block a weight column belongs to.

Dropout (``dropout``, ``recurrent_dropout``) follows Keras 3.15: masks drawn once per call
from the generator the model gives the layer in training (``fit(seed=...)``); with
``recurrent_dropout = 0`` one input mask (N, D) shared by the gates (the ordinary LSTM on
x ⊙ m), otherwise four input and four recurrent masks, one per gate
(:mod:`mlstm.ops.recurrent_dropout`). Without a generator, or at inference, nothing is
dropped.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np

from .. import initializers, parallel
from .._typing import Array, BoolArray, DTypeLike, FloatArray, IntArray, JSONDict, TensorShape
from ..initializers import Initializer
from ..activations import get as get_activation_component
from ..ops import get_activation, lstm_backward, lstm_forward
from ..ops import lstm as lstm_ops
from ..ops.dropout import dropout_mask
from ..ops.per_sample import per_sample_outer_norms
from ..ops.recurrent_dropout import lstm_gate_dropout_backward, lstm_gate_dropout_forward
from ..registry import register_layer
from .base import KerasOptions, Layer, SymbolicTensor, TensorSpec, format_shape
from .dropout import check_rate
from .memory import ActivationBytes, CallShapes

__all__ = ["LSTM", "GATES", "gate_block"]

#: Gate blocks of the kernel, recurrent kernel and bias columns, in Keras' order.
GATES = ("i", "f", "c", "o")


def gate_block(column: int, units: int) -> tuple[str, int]:
    """Gate block of a column of an LSTM kernel, recurrent kernel or bias.

    >>> gate_block(5, units=2)
    ('c', 1)

    Returns
    -------
    (gate, unit) : (str, int)
        ``gate`` in ``GATES`` (Keras order i, f, c, o), ``unit`` in [0, H).
    """
    return GATES[column // units], column % units


@register_layer
class LSTM(Layer):
    """Long short-term memory layer, Keras semantics (see :mod:`mlstm.ops.lstm`).

    Parameters
    ----------
    units : int
        H, the size of the hidden state.
    activation : str
        φ, applied to the candidate and the cell output (``"tanh"``).
    recurrent_activation : str
        σ, the gate activation (``"sigmoid"``).
    use_bias : bool
    unit_forget_bias : bool
        Initialize the forget block of the bias to 1.
    return_sequences : bool
        Output (N, T, H) instead of the last output (N, H).
    return_state : bool
        Also return the final states ``h`` and ``c`` (N, H): the call returns a list.
    go_backwards : bool
        Process time in reverse; a returned sequence stays in processing order.
    kernel_initializer, recurrent_initializer, bias_initializer : str
        Keras defaults ``"glorot_uniform"``, ``"orthogonal"``, ``"zeros"``.
    dropout, recurrent_dropout : float in [0, 1)
        Dropout of the inputs and of the recurrent state in training (see the module
        docstring); masks come from the model's seeded stream.

    Call with ``initial_state=[h0, c0]`` (symbolic tensors of shape (N, H)) to start
    from given states. Weights: ``kernel`` (D, 4H), ``recurrent_kernel`` (H, 4H),
    ``bias`` (4H,), gate blocks in the order i, f, c, o.
    """

    param_names = ("kernel", "recurrent_kernel", "bias")
    base_name = "lstm"
    recurrent = True
    keras_name = "LSTM"
    keras_options = KerasOptions(
        copied=("units", "activation", "recurrent_activation", "use_bias", "unit_forget_bias",
                "return_sequences", "return_state", "go_backwards", "dropout",
                "recurrent_dropout"),
        fixed={"stateful": False, "zero_output_for_mask": False, "kernel_regularizer": None,
               "recurrent_regularizer": None, "bias_regularizer": None,
               "activity_regularizer": None, "kernel_constraint": None,
               "recurrent_constraint": None, "bias_constraint": None},
        initializers=("kernel_initializer", "recurrent_initializer", "bias_initializer"),
        # Keras' dropout seed (mlstm's masks come from fit's seed); unrolling and cuDNN:
        # the same arithmetic
        ignored=("seed", "unroll", "use_cudnn"),
        dropout_rates=("dropout", "recurrent_dropout"),
        reasons={"stateful": "a stateful LSTM carries its last state into the next batch, "
                             "and an mlstm model is a function of its inputs and weights "
                             "alone; pass the state explicitly (return_state=True, "
                             "initial_state=[h, c])"})

    def __init__(self, units: int, activation: str | None = "tanh",
                 recurrent_activation: str | None = "sigmoid", use_bias: bool = True,
                 unit_forget_bias: bool = True, return_sequences: bool = False,
                 return_state: bool = False, go_backwards: bool = False,
                 kernel_initializer: str | Initializer = "glorot_uniform",
                 recurrent_initializer: str | Initializer = "orthogonal", bias_initializer: str | Initializer = "zeros",
                 dropout: float = 0.0, recurrent_dropout: float = 0.0, name: str | None = None,
                 dtype: DTypeLike | None = None, trainable: bool = True,
                 seed: int | None = None) -> None:
        super().__init__(name=name, dtype=dtype, trainable=trainable, seed=seed)
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units <= 0:
            raise ValueError(f"LSTM {self.name!r}: units must be a positive int, got {units!r}")
        # Keras' cell applies a rate only when 0 < rate < 1 (a rate of 1 is ignored on the
        # CPU path and drops everything on the cuDNN one): mlstm takes [0, 1)
        self.dropout = check_rate(self, "dropout", dropout, allow_one=False)
        self.recurrent_dropout = check_rate(self, "recurrent_dropout", recurrent_dropout,
                                            allow_one=False)
        self.units = int(units)
        self.activation = get_activation(activation)
        self.recurrent_activation = get_activation(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        for init in (kernel_initializer, recurrent_initializer, bias_initializer):
            initializers.get_initializer(init)
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.bias_initializer = bias_initializer

    def _input_specs(self, inputs: Sequence[SymbolicTensor], call_kwargs: Mapping[str, Any]
                     ) -> list[TensorSpec]:
        initial_state = call_kwargs.get("initial_state")
        if len(inputs) != 1:
            raise ValueError(f"LSTM {self.name!r} takes one input sequence, got {len(inputs)}; "
                             "pass states as initial_state=[h0, c0]")
        x = inputs[0]
        if len(x.shape) != 2:
            raise ValueError(f"LSTM {self.name!r} expects input of shape (N, T, D), got "
                             f"{format_shape((None,) + x.shape)}")
        if x.shape[1] is None:
            raise ValueError(f"LSTM {self.name!r}: the feature size D must be known")
        specs: list[TensorSpec] = [(x.shape, x.has_mask)]
        if initial_state is not None:
            if not isinstance(initial_state, (list, tuple)) or len(initial_state) != 2:
                raise ValueError(f"LSTM {self.name!r}: initial_state must be [h0, c0]")
            for label, s in zip(("h0", "c0"), initial_state):
                if not isinstance(s, SymbolicTensor):
                    raise TypeError(f"LSTM {self.name!r}: initial_state {label} must be a "
                                    f"symbolic tensor, got {type(s).__name__}")
                if s.shape != (self.units,):
                    raise ValueError(f"LSTM {self.name!r}: initial_state {label} must have shape "
                                     f"(N, {self.units}), got {format_shape((None,) + s.shape)}")
                specs.append((s.shape, False))
        return specs

    @classmethod
    def examples(cls) -> list[JSONDict]:
        return [{"config": {"units": 3}, "inputs": [(4, 3)]},
                {"config": {"units": 2, "return_sequences": True, "go_backwards": True},
                 "inputs": [(4, 3)]},
                {"config": {"units": 2, "return_state": True, "activation": "relu"},
                 "inputs": [(3, 2)]},
                {"config": {"units": 2, "dropout": 0.3, "recurrent_dropout": 0.2},
                 "inputs": [(3, 2)]}]

    @property
    def uses_rng(self) -> bool:  # type: ignore[override]  # (read-only here: from the options)
        return self.dropout > 0 or self.recurrent_dropout > 0

    def node_call_arguments(self, inputs: Sequence[Any]) -> tuple[list[Any], dict[str, Any]]:
        if len(inputs) == 3:                       # x, h0, c0
            return [inputs[0]], {"initial_state": list(inputs[1:])}
        return [inputs[0]], {}

    def _node_inputs(self, inputs: list[SymbolicTensor], call_kwargs: dict[str, Any]
                     ) -> list[SymbolicTensor]:
        initial_state = call_kwargs.pop("initial_state", None)
        return list(inputs) + (list(initial_state) if initial_state is not None else [])

    def _check_input_shapes(self, shapes: list[TensorShape]) -> None:
        if shapes[0][1] != self._built_shapes[0][1]:
            raise ValueError(f"LSTM {self.name!r} expects input of shape "
                             f"(N, T, {self._built_shapes[0][1]}), got "
                             f"{format_shape((None,) + shapes[0])}")

    def build(self, input_shapes: Sequence[TensorShape]) -> None:
        D, H = cast(int, input_shapes[0][1]), self.units     # (D known: _input_specs)
        rng = self._rng()
        self._add_param("kernel", (D, 4 * H), self.kernel_initializer, rng)
        self._add_param("recurrent_kernel", (H, 4 * H), self.recurrent_initializer, rng)
        if self.use_bias:
            self._add_param("bias", (4 * H,), self.bias_initializer, rng)
            if self.unit_forget_bias:
                self.params["bias"][H:2 * H] = 1

    def output_specs(self, input_specs: Sequence[TensorSpec], call_kwargs: Mapping[str, Any]
                     ) -> list[TensorSpec]:
        (T, _), has_mask = input_specs[0]
        H = self.units
        out: list[TensorSpec] = [((T, H), has_mask) if self.return_sequences else ((H,), False)]
        if self.return_state:
            out += [((H,), False), ((H,), False)]
        return out

    def forward(self, inputs: Sequence[Array], masks: Sequence[BoolArray | None],
                training: bool = False, rng: np.random.Generator | None = None, **kw: Any
                ) -> tuple[list[Array], list[BoolArray | None], Any]:
        x = inputs[0]
        h0, c0 = (inputs[1], inputs[2]) if len(inputs) == 3 else (None, None)
        weights = (self.params["kernel"], self.params["recurrent_kernel"],
                   self.params.get("bias"))
        options: dict[str, Any] = dict(h0=h0, c0=c0, mask=masks[0], go_backwards=self.go_backwards,
                       activation=self.activation,
                       recurrent_activation=self.recurrent_activation)
        input_mask = None
        if not (training and rng is not None and self.uses_rng):
            (seq, h_last, c_last), cache = lstm_forward(x, *weights, **options)
        elif self.recurrent_dropout == 0:
            # one input mask per sequence, shared by the gates: the LSTM on x ⊙ m
            N, _, D = x.shape
            input_mask = dropout_mask(rng, self.dropout, (N, 1, D), x.dtype)
            (seq, h_last, c_last), cache = lstm_forward(x * input_mask, *weights, **options)
        else:
            # Keras' implementation=1: four input masks (when dropout > 0) and four
            # recurrent masks per sequence, one per gate
            N, _, D = x.shape
            gate_input_masks = (dropout_mask(rng, self.dropout, (4, N, D), x.dtype)
                                if self.dropout > 0 else None)
            recurrent_masks = dropout_mask(rng, self.recurrent_dropout, (4, N, self.units),
                                           x.dtype)
            (seq, h_last, c_last), cache = lstm_gate_dropout_forward(
                x, *weights, input_masks=gate_input_masks, recurrent_masks=recurrent_masks,
                **options)
            cache["gate_dropout"] = True
        cache["input_dropout_mask"] = input_mask
        cache["has_initial_state"] = h0 is not None
        outputs = [seq if self.return_sequences else seq[:, -1]]
        out_masks = [masks[0] if self.return_sequences else None]
        if self.return_state:
            outputs += [h_last, c_last]
            out_masks += [None, None]
        return outputs, out_masks, cache

    def activation_bytes(self, call: CallShapes) -> ActivationBytes:
        """What :func:`~mlstm.ops.lstm.lstm_forward` keeps for backward (activated gates,
        4·N·T·H; hidden and cell states, 2·N·(T+1)·H; with a mask the outputs, N·T·H; with
        input dropout in training the dropped input, N·T·D) and, in training, the arrays
        of the backward pass the buffer pool keeps with them (dL/dh of every step, N·T·H;
        dz of a chunk of steps; the local factors of a block). Training with recurrent
        dropout runs :func:`~mlstm.ops.recurrent_dropout.lstm_gate_dropout_forward`, which
        keeps the pre-activations as well and allocates dz of every step."""
        (T, D), H, N, s = call.inputs[0], self.units, call.batch_size, call.itemsize
        step, row = N * H * s, N * 4 * H * s                 # one (N, H), one (N, 4H)
        gate_dropout = call.training and self.recurrent_dropout > 0
        # + the one-tanh gate constants (three (N, 4H)), kept with the pooled arrays
        kept = (8 if gate_dropout else 4) * T * step + 2 * (T + 1) * step + 3 * row
        terms = "8·N·T·H gates and pre-activations" if gate_dropout else "4·N·T·H gate values"
        if call.masked[0] or gate_dropout:
            kept += T * step + T * N                         # the outputs apart; the mask
        if call.training and self.dropout > 0 and not gate_dropout:
            kept += N * T * D * s                            # x ⊙ mask
        weights = self.count_params() * s
        # [x, 1]; per-step scratch; the weights folded for the one-tanh gates, [W; b]
        forward = T * N * (D + 1) * s + 12 * step + 2 * weights
        backward = 4 * step + 2 * weights                    # carries; dW scratch, Uᵀ
        if call.masked[0]:
            backward += 2 * T * N * s + 4 * step             # the mask as 1 - m and m
        if gate_dropout:
            forward += 4 * T * step + N * T * D * s          # the projection, x ⊙ m_g
            # dz, dL/dy, dL/dh of every step; a gate's dz and h ⊙ m_g, x ⊙ m_g and dx_g
            backward += 8 * T * step + 2 * N * T * D * s
        elif call.training:
            chunk = lstm_ops.steps_within(lstm_ops.GRADIENT_CHUNK_BYTES, T, N, H, f"f{s}")
            block = lstm_ops.steps_within(lstm_ops.LocalFactors.CACHE_BYTES, T, N, H, f"f{s}")
            kept += T * step + chunk * row + block * (row + 3 * step)
            if chunk < T and not call.concurrent and parallel.backward_helper_worth_it(N, H):
                kept += chunk * row          # the helper thread's second dz buffer
        pooled = call.training and not gate_dropout
        note = (f"LSTM {self.name!r} keeps {terms}, 2·N·(T+1)·H states"
                + (" and N·T·H step gradients" if pooled else "")
                + (" for backward" if call.training else "") + f" (N {N}, T {T}, H {H})")
        return ActivationBytes(kept, forward, backward, note)

    def step_elements(self, batch_size: int) -> int:
        # a step is the (N, 4H) gate row: one GEMM into it and the gate math over it
        return batch_size * 4 * self.units

    def backward(self, d_outputs: Sequence[Array | None], cache: Any,
                 d_logits: Array | None = None, extras: dict[str, Any] | None = None,
                 input_grads: Sequence[bool] | None = None
                 ) -> tuple[list[Array | None], dict[str, Array]]:
        # Without return_sequences, d_out (N, H) is the gradient of the last output only.
        d_out = d_outputs[0]
        d_h_last = d_outputs[1] if self.return_state else None
        d_c_last = d_outputs[2] if self.return_state else None
        need_x = input_grads is None or input_grads[0]
        # dz of every step only when someone inspects it (it is a third of the memory)
        backward = lstm_gate_dropout_backward if cache.get("gate_dropout") else lstm_backward
        grads = backward(d_out, d_h_last, d_c_last, cache, input_grad=need_x,
                         keep_d_gates=extras is not None)
        if grads["x"] is not None and cache["input_dropout_mask"] is not None:
            grads["x"] = grads["x"] * cache["input_dropout_mask"]       # d(x ⊙ m)/dx = m
        d_inputs = [grads["x"]]
        if cache["has_initial_state"]:
            d_inputs += [grads["h0"], grads["c0"]]
        if extras is not None:
            extras.update(d_h_steps=grads["d_h_steps"], d_gates=grads["d_gates"])
        return d_inputs, {k: grads[k] for k in self.param_names if k in grads}

    # ----------------------------------------------------------------- questions asked
    def per_sample_grad_norms(self, cache: Any, extras: Mapping[str, Any]
                              ) -> dict[str, Array] | None:
        """From dL/dz of every step (T, N, 4H): ``kernel`` sums x_t ⊗ dz_t over the steps,
        ``recurrent_kernel`` h_{t-1} ⊗ dz_t, ``bias`` dz_t. Masked steps carry the state
        without using the weights: their dz is already zero."""
        d_gates = extras["d_gates"]
        T = d_gates.shape[0]
        if cache.get("gate_dropout"):
            return self._gate_dropout_norms(cache, d_gates)
        norms = {"kernel": per_sample_outer_norms(cache["x_tm"], d_gates),
                 "recurrent_kernel": per_sample_outer_norms(cache["h_states"][:T], d_gates)}
        if "bias" in self.params:
            norms["bias"] = np.linalg.norm(d_gates.sum(axis=0), axis=1)
        return norms

    def _gate_dropout_norms(self, cache: Any, d_gates: FloatArray) -> dict[str, Array]:
        """Per-sample norms with a mask per gate: each gate's block of columns sums its own
        masked x_t ⊗ dz_t[g] (and h_{t-1}), and the blocks' squared norms add up."""
        H, T = self.units, d_gates.shape[0]
        squares: dict[str, float | Array] = {"kernel": 0.0, "recurrent_kernel": 0.0}
        for g in range(4):
            d_g = d_gates[..., g * H:(g + 1) * H]
            for key, rows, masks in (("kernel", cache["x_tm"], cache["input_masks"]),
                                     ("recurrent_kernel", cache["h_states"][:T],
                                      cache["recurrent_masks"])):
                masked = rows if masks is None else rows * masks[g]
                squares[key] = squares[key] + per_sample_outer_norms(masked, d_g) ** 2
        norms = {key: np.sqrt(value) for key, value in squares.items()}
        if "bias" in self.params:
            norms["bias"] = np.linalg.norm(d_gates.sum(axis=0), axis=1)
        return norms

    def time_step_grads(self, extras: Mapping[str, Any]) -> Array | None:
        return extras.get("d_h_steps")

    def step_mask(self, cache: Any) -> BoolArray | None:
        mask = cache["step_mask"]                        # (T, N, 1) or None
        return None if mask is None else mask[:, :, 0]

    def gate_saturation(self, cache: Any, threshold: float) -> dict[str, float] | None:
        gates, H, mask = cache["gates"], self.units, cache["step_mask"]
        fractions = {}
        for j, gate in enumerate(GATES):
            activation = self.activation if gate == "c" else self.recurrent_activation
            hit = get_activation_component(activation).saturated(
                gates[:, :, j * H:(j + 1) * H], threshold)
            if hit is None:
                fractions[gate] = float("nan")
            elif mask is None:
                fractions[gate] = float(np.mean(hit))
            else:
                valid = np.broadcast_to(mask, hit.shape)
                count = np.count_nonzero(valid)
                fractions[gate] = float(np.count_nonzero(hit & valid) / count) if count else 0.0
        return fractions

    def activation_inputs(self, cache: Any) -> list[tuple[str, Array]]:
        H = self.units
        T = cache["x_tm"].shape[0]
        z = cache.get("pre_activations")               # kept by the per-gate dropout op
        if z is None:
            # z_t = x_t W + h_{t-1} U + b, recomputed (the cache keeps activated gates)
            z = (cache["x_tm"] @ cache["kernel"]
                 + cache["h_states"][:T] @ cache["recurrent_kernel"])
            if cache["use_bias"]:
                z = z + self.params["bias"]
        gates = cache["gates"]
        c_new = (gates[..., H:2 * H] * cache["c_states"][:T]       # c'_t = f c_{t-1} + i g
                 + gates[..., :H] * gates[..., 2 * H:3 * H])
        valid = (np.ones(z.shape[:2] + (1,), dtype=bool) if cache["step_mask"] is None
                 else cache["step_mask"])
        gate_z = np.concatenate([z[..., :2 * H], z[..., 3 * H:]], axis=-1)
        candidate = z[..., 2 * H:3 * H]
        return [(self.activation, candidate[np.broadcast_to(valid, candidate.shape)]),
                (self.activation, c_new[np.broadcast_to(valid, c_new.shape)]),
                (self.recurrent_activation, gate_z[np.broadcast_to(valid, gate_z.shape)])]

    def describe_weight_entry(self, weight: str, index: tuple[int, ...]) -> str:
        gate, unit = gate_block(index[-1], self.units)
        H, k = self.units, GATES.index(gate)
        row = {"kernel": f", input feature {index[0]}",
               "recurrent_kernel": f", from h unit {index[0]}"}.get(weight, "")
        return (f"gate block {gate} (columns {k * H}:{(k + 1) * H} of {4 * H}), "
                f"unit {unit}{row}")

    def gate_columns(self, weight: str) -> dict[str, IntArray] | None:
        if weight not in ("kernel", "recurrent_kernel", "bias"):
            return None
        H = self.units
        return {gate: np.arange(k * H, (k + 1) * H) for k, gate in enumerate(GATES)}

    def get_config(self) -> JSONDict:
        config = super().get_config()
        config.update(units=self.units, activation=self.activation,
                      recurrent_activation=self.recurrent_activation, use_bias=self.use_bias,
                      unit_forget_bias=self.unit_forget_bias,
                      return_sequences=self.return_sequences, return_state=self.return_state,
                      go_backwards=self.go_backwards, dropout=self.dropout,
                      recurrent_dropout=self.recurrent_dropout,
                      kernel_initializer=self.kernel_initializer,
                      recurrent_initializer=self.recurrent_initializer,
                      bias_initializer=self.bias_initializer)
        return config
