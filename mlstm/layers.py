"""Layers: named parameters, a config, shape checks, and calls into :mod:`mlstm.ops`.

A layer holds no math of its own. Calling a layer on symbolic tensors (from
:func:`Input`) records a node of the functional graph, exactly like Keras::

    x = Input(shape=(20, 8), name="x")
    h = LSTM(32, name="lstm_a")(x)
    y = Dense(1, activation="sigmoid", name="out")(h)

At run time :class:`mlstm.Model` calls each layer's :meth:`Layer.forward` with arrays and
masks, and :meth:`Layer.backward` with the gradients of its outputs.
"""
from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np

from . import initializers, validation
from .ops import (concatenate_backward, concatenate_forward, dense_backward, dense_forward,
                  get_activation, lstm_backward, lstm_forward, reshape_backward,
                  reshape_forward)
from .ops.activations import activate, derivative_from_output

__all__ = ["SymbolicTensor", "Node", "Layer", "InputLayer", "Input", "LSTM", "Dense",
           "Concatenate", "concatenate", "Reshape", "Masking", "Activation", "LAYERS"]

_name_counters = defaultdict(itertools.count)


def _unique_name(base):
    n = next(_name_counters[base])
    return base if n == 0 else f"{base}_{n}"


def _format_shape(shape):
    return "(" + ", ".join("N" if d is None and k == 0 else str(d)
                           for k, d in enumerate(shape)) + ("," if len(shape) == 1 else "") + ")"


def _check_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype.name


class SymbolicTensor:
    """A placeholder for an array flowing through the graph (Keras' ``KerasTensor``).

    Attributes
    ----------
    shape : tuple
        Shape without the batch axis; ``None`` for a free dimension (e.g. time).
    dtype : str
    node : Node
        The call that produced it.
    index : int
        Which output of that call.
    has_mask : bool
        Whether a time mask travels with it.
    """

    def __init__(self, shape, dtype, node, index, has_mask=False):
        self.shape = tuple(shape)
        self.dtype = dtype
        self.node = node
        self.index = index
        self.has_mask = has_mask

    @property
    def name(self):
        layer = self.node.layer
        if len(self.node.outputs) == 1:
            return layer.name
        return f"{layer.name}_{self.index}"

    def __repr__(self):
        return (f"<SymbolicTensor shape={_format_shape((None,) + self.shape)} "
                f"dtype={self.dtype} from={self.node.layer.name!r}>")


class Node:
    """One call of a layer: its input tensors, output tensors and call options."""

    def __init__(self, layer, inputs, call_kwargs=None):
        self.layer = layer
        self.inputs = list(inputs)
        self.call_kwargs = dict(call_kwargs or {})
        self.outputs = []


class Layer:
    """Base class. Subclasses define ``build``, ``output_specs``, ``forward``, ``backward``.

    Parameters
    ----------
    name : str, optional
        Unique within a model; generated from the class name when omitted.
    dtype : {"float32", "float64"}, optional
        Parameter and computation dtype; when omitted, that of the first input.
    trainable : bool
        Non-trainable layers get no optimizer updates (their gradients are still computed).
    seed : int, optional
        Seed for this layer's initializers; otherwise the shared stream
        (:func:`mlstm.set_random_seed`) is used.
    """

    #: Parameter names in ``get_weights`` order.
    param_names: tuple = ()
    #: Default base name for generated names.
    base_name = "layer"

    def __init__(self, name=None, dtype=None, trainable=True, seed=None):
        if name is not None and (not isinstance(name, str) or not name or "/" in name):
            raise ValueError(f"Layer name must be a non-empty string without '/', got {name!r}")
        self.name = name or _unique_name(self.base_name)
        self.dtype = None if dtype is None else _check_dtype(dtype)
        self.trainable = bool(trainable)
        self.seed = seed
        self.params = {}
        self.built = False
        self._inbound_nodes = []

    # ----------------------------------------------------------------- graph building
    def __call__(self, inputs, **call_kwargs):
        inputs_list = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        for k, t in enumerate(inputs_list):
            if not isinstance(t, SymbolicTensor):
                raise TypeError(
                    f"{type(self).__name__} {self.name!r} must be called on symbolic tensors "
                    f"(from mlstm.Input or another layer); input {k} is {type(t).__name__}")
        specs = self._input_specs(inputs_list, call_kwargs)
        if self.dtype is None:
            self.dtype = inputs_list[0].dtype
        if not self.built:
            self.build([s for s, _ in specs])
            self.built = True
        else:
            self._check_input_shapes([s for s, _ in specs])
        node = Node(self, self._node_inputs(inputs_list, call_kwargs), call_kwargs)
        out_specs = self.output_specs(specs, call_kwargs)
        node.outputs = [SymbolicTensor(shape, self.dtype, node, k, has_mask)
                        for k, (shape, has_mask) in enumerate(out_specs)]
        self._inbound_nodes.append(node)
        return node.outputs[0] if len(node.outputs) == 1 else list(node.outputs)

    def _input_specs(self, inputs, call_kwargs):
        if len(inputs) != 1:
            raise ValueError(f"{type(self).__name__} {self.name!r} takes one input, "
                             f"got {len(inputs)}")
        return [(inputs[0].shape, inputs[0].has_mask)]

    def _node_inputs(self, inputs, call_kwargs):
        return inputs

    def _check_input_shapes(self, shapes):
        if shapes != self._built_shapes:
            raise ValueError(
                f"{type(self).__name__} {self.name!r} was built for inputs of shape "
                f"{[_format_shape((None,) + s) for s in self._built_shapes]}, called on "
                f"{[_format_shape((None,) + s) for s in shapes]}")

    def build(self, input_shapes):
        """Create parameters for inputs of these shapes (batch axis excluded)."""
        self._built_shapes = list(input_shapes)

    def output_specs(self, input_specs, call_kwargs):
        """``[(shape, has_mask), ...]`` for each output, given ``[(shape, has_mask), ...]``."""
        raise NotImplementedError

    # ----------------------------------------------------------------- run time
    def forward(self, inputs, masks, **call_kwargs):
        """Arrays in, arrays out: ``(outputs, output_masks, cache)``, each a list/dict."""
        raise NotImplementedError

    def backward(self, d_outputs, cache, d_logits=None, extras=None, input_grads=None):
        """Gradients: ``(d_inputs, d_params)``.

        ``d_outputs`` has one entry per output, ``None`` where nothing flows back;
        ``d_logits`` is a gradient with respect to the final pre-activation (layers whose
        output is a sigmoid accept it; see :meth:`logits`). When ``extras`` is a dict, a
        layer may put intermediate gradients there for inspection (LSTM: ``d_h_steps``).
        ``input_grads`` has one bool per input, False where the caller does not need that
        input's gradient (None: all are needed); a layer may then return None for it and skip
        the work (an LSTM skips the (T·N, 4H) @ (4H, D) GEMM of dL/dx).
        """
        raise NotImplementedError

    def logits(self, cache):
        """The pre-activation of output 0 when that output is a sigmoid of it, else None."""
        return None

    def step_elements(self, batch_size):
        """Elements one sequential step of this layer computes for a batch, for the scheduler
        of independent layers (:mod:`mlstm.parallel`); 0 for layers not worth a thread."""
        return 0

    # ----------------------------------------------------------------- parameters
    def _rng(self):
        if self.seed is not None:
            return np.random.default_rng(self.seed)
        return initializers.default_rng()

    def _add_param(self, name, shape, initializer, rng):
        value = initializers.get_initializer(initializer)(tuple(shape), rng, dtype=self.dtype)
        self.params[name] = np.ascontiguousarray(value, dtype=self.dtype)

    def _weight_keys(self):
        """Local parameter names in ``get_weights`` order (Keras order)."""
        return [k for k in self.param_names if k in self.params]

    def get_weights(self):
        """Copies of the parameters, in ``param_names`` order (Keras order)."""
        return [self.params[k].copy() for k in self._weight_keys()]

    @property
    def weight_names(self):
        """Fully qualified names ``"layer/weight"`` in ``get_weights`` order."""
        return [f"{self.name}/{k}" for k in self._weight_keys()]

    def checked_weights(self, weights):
        """The arrays :meth:`set_weights` would assign, checked; nothing is changed.

        Raises TypeError/ValueError naming the layer and the weight for a wrong count,
        non-real values or a wrong shape.
        """
        keys = self._weight_keys()
        weights = validation.as_weight_list(weights, f"{type(self).__name__} {self.name!r} "
                                                     "set_weights")
        if len(weights) != len(keys):
            raise ValueError(f"{type(self).__name__} {self.name!r} has {len(keys)} weights "
                             f"{keys}, set_weights got {len(weights)}")
        checked = []
        for k, w in zip(keys, weights):
            label = f"{type(self).__name__} {self.name!r}: weight '{self.name}/{k}'"
            w = validation.as_real_array(w, label)
            if w.shape != self.params[k].shape:
                raise ValueError(f"{label} has shape {self.params[k].shape}, got {w.shape}")
            checked.append(w)
        return checked

    def _assign_weights(self, checked):
        for k, w in zip(self._weight_keys(), checked):
            self.params[k][...] = w

    def set_weights(self, weights):
        """Set the parameters from a list in ``get_weights`` order; shapes must match."""
        self._assign_weights(self.checked_weights(weights))

    def count_params(self):
        return int(sum(p.size for p in self.params.values()))

    def get_config(self):
        """JSON-serializable constructor arguments."""
        return {"name": self.name, "dtype": self.dtype, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"


# --------------------------------------------------------------------------- Input
class InputLayer(Layer):
    """The source of a graph. Use :func:`Input`."""

    base_name = "input_layer"

    def __init__(self, shape, name=None, dtype="float32"):
        super().__init__(name=name, dtype=_check_dtype(dtype))
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
    dtype : {"float32", "float64"}
        Flows to every layer fed by this input that has no dtype of its own.
    """
    return InputLayer(shape, name=name, dtype=dtype)._inbound_nodes[0].outputs[0]


# --------------------------------------------------------------------------- LSTM
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

    Call with ``initial_state=[h0, c0]`` (symbolic tensors of shape (N, H)) to start
    from given states. Weights: ``kernel`` (D, 4H), ``recurrent_kernel`` (H, 4H),
    ``bias`` (4H,), gate blocks in the order i, f, c, o.
    """

    param_names = ("kernel", "recurrent_kernel", "bias")
    base_name = "lstm"

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, unit_forget_bias=True, return_sequences=False,
                 return_state=False, go_backwards=False,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", name=None, dtype=None, trainable=True, seed=None):
        super().__init__(name=name, dtype=dtype, trainable=trainable, seed=seed)
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units <= 0:
            raise ValueError(f"LSTM {self.name!r}: units must be a positive int, got {units!r}")
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

    def _input_specs(self, inputs, call_kwargs):
        initial_state = call_kwargs.get("initial_state")
        if len(inputs) != 1:
            raise ValueError(f"LSTM {self.name!r} takes one input sequence, got {len(inputs)}; "
                             "pass states as initial_state=[h0, c0]")
        x = inputs[0]
        if len(x.shape) != 2:
            raise ValueError(f"LSTM {self.name!r} expects input of shape (N, T, D), got "
                             f"{_format_shape((None,) + x.shape)}")
        if x.shape[1] is None:
            raise ValueError(f"LSTM {self.name!r}: the feature size D must be known")
        specs = [(x.shape, x.has_mask)]
        if initial_state is not None:
            if not isinstance(initial_state, (list, tuple)) or len(initial_state) != 2:
                raise ValueError(f"LSTM {self.name!r}: initial_state must be [h0, c0]")
            for label, s in zip(("h0", "c0"), initial_state):
                if not isinstance(s, SymbolicTensor):
                    raise TypeError(f"LSTM {self.name!r}: initial_state {label} must be a "
                                    f"symbolic tensor, got {type(s).__name__}")
                if s.shape != (self.units,):
                    raise ValueError(f"LSTM {self.name!r}: initial_state {label} must have shape "
                                     f"(N, {self.units}), got {_format_shape((None,) + s.shape)}")
                specs.append((s.shape, False))
        return specs

    def _node_inputs(self, inputs, call_kwargs):
        initial_state = call_kwargs.pop("initial_state", None)
        return list(inputs) + (list(initial_state) if initial_state is not None else [])

    def _check_input_shapes(self, shapes):
        if shapes[0][1] != self._built_shapes[0][1]:
            raise ValueError(f"LSTM {self.name!r} expects input of shape "
                             f"(N, T, {self._built_shapes[0][1]}), got "
                             f"{_format_shape((None,) + shapes[0])}")

    def build(self, input_shapes):
        super().build(input_shapes[:1])
        D, H = input_shapes[0][1], self.units
        rng = self._rng()
        self._add_param("kernel", (D, 4 * H), self.kernel_initializer, rng)
        self._add_param("recurrent_kernel", (H, 4 * H), self.recurrent_initializer, rng)
        if self.use_bias:
            self._add_param("bias", (4 * H,), self.bias_initializer, rng)
            if self.unit_forget_bias:
                self.params["bias"][H:2 * H] = 1

    def output_specs(self, input_specs, call_kwargs):
        (T, _), has_mask = input_specs[0]
        H = self.units
        out = [((T, H), has_mask) if self.return_sequences else ((H,), False)]
        if self.return_state:
            out += [((H,), False), ((H,), False)]
        return out

    def forward(self, inputs, masks, **kw):
        x = inputs[0]
        h0, c0 = (inputs[1], inputs[2]) if len(inputs) == 3 else (None, None)
        (seq, h_last, c_last), cache = lstm_forward(
            x, self.params["kernel"], self.params["recurrent_kernel"], self.params.get("bias"),
            h0=h0, c0=c0, mask=masks[0], go_backwards=self.go_backwards,
            activation=self.activation, recurrent_activation=self.recurrent_activation)
        cache["has_initial_state"] = h0 is not None
        outputs = [seq if self.return_sequences else seq[:, -1]]
        out_masks = [masks[0] if self.return_sequences else None]
        if self.return_state:
            outputs += [h_last, c_last]
            out_masks += [None, None]
        return outputs, out_masks, cache

    def step_elements(self, batch_size):
        # a step is the (N, 4H) gate row: one GEMM into it and the gate math over it
        return batch_size * 4 * self.units

    def backward(self, d_outputs, cache, d_logits=None, extras=None, input_grads=None):
        # Without return_sequences, d_out (N, H) is the gradient of the last output only.
        d_out = d_outputs[0]
        d_h_last = d_outputs[1] if self.return_state else None
        d_c_last = d_outputs[2] if self.return_state else None
        need_x = input_grads is None or input_grads[0]
        # dz of every step only when someone inspects it (it is a third of the memory)
        grads = lstm_backward(d_out, d_h_last, d_c_last, cache, input_grad=need_x,
                              keep_d_gates=extras is not None)
        d_inputs = [grads["x"]]
        if cache["has_initial_state"]:
            d_inputs += [grads["h0"], grads["c0"]]
        if extras is not None:
            extras.update(d_h_steps=grads["d_h_steps"], d_gates=grads["d_gates"])
        return d_inputs, {k: grads[k] for k in self.param_names if k in grads}

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, activation=self.activation,
                      recurrent_activation=self.recurrent_activation, use_bias=self.use_bias,
                      unit_forget_bias=self.unit_forget_bias,
                      return_sequences=self.return_sequences, return_state=self.return_state,
                      go_backwards=self.go_backwards,
                      kernel_initializer=self.kernel_initializer,
                      recurrent_initializer=self.recurrent_initializer,
                      bias_initializer=self.bias_initializer)
        return config


# --------------------------------------------------------------------------- Dense
class Dense(Layer):
    """Fully connected layer on the last axis; on (N, T, D) input it applies per step.

    Parameters
    ----------
    units : int
        O, the output size.
    activation : {None, "linear", "sigmoid", "tanh", "relu"}
    use_bias : bool
    kernel_initializer, bias_initializer : str

    Weights: ``kernel`` (D, O), ``bias`` (O,). A sigmoid Dense is a "sigmoid head": binary
    cross-entropy on its output is computed from its logits, as Keras does.
    """

    param_names = ("kernel", "bias")
    base_name = "dense"

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 name=None, dtype=None, trainable=True, seed=None):
        super().__init__(name=name, dtype=dtype, trainable=trainable, seed=seed)
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units <= 0:
            raise ValueError(f"Dense {self.name!r}: units must be a positive int, got {units!r}")
        self.units = int(units)
        self.activation = get_activation(activation)
        self.use_bias = bool(use_bias)
        initializers.get_initializer(kernel_initializer)
        initializers.get_initializer(bias_initializer)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer

    def _input_specs(self, inputs, call_kwargs):
        specs = super()._input_specs(inputs, call_kwargs)
        shape = specs[0][0]
        if len(shape) < 1 or shape[-1] is None:
            raise ValueError(f"Dense {self.name!r} needs a known last axis, got input of shape "
                             f"{_format_shape((None,) + shape)}")
        return specs

    def _check_input_shapes(self, shapes):
        if shapes[0][-1] != self._built_shapes[0][-1]:
            raise ValueError(f"Dense {self.name!r} expects input of shape (..., "
                             f"{self._built_shapes[0][-1]}), got "
                             f"{_format_shape((None,) + shapes[0])}")

    def build(self, input_shapes):
        super().build(input_shapes)
        D = input_shapes[0][-1]
        rng = self._rng()
        self._add_param("kernel", (D, self.units), self.kernel_initializer, rng)
        if self.use_bias:
            self._add_param("bias", (self.units,), self.bias_initializer, rng)

    def output_specs(self, input_specs, call_kwargs):
        shape, has_mask = input_specs[0]
        return [(shape[:-1] + (self.units,), has_mask)]

    def forward(self, inputs, masks, **kw):
        y, cache = dense_forward(inputs[0], self.params["kernel"], self.params.get("bias"),
                                 self.activation)
        return [y], [masks[0]], cache

    def backward(self, d_outputs, cache, d_logits=None, extras=None, input_grads=None):
        grads = dense_backward(d_outputs[0], cache, d_logits=d_logits)
        if extras is not None:
            extras["d_logits"] = grads["d_logits"]
        return [grads["x"]], {k: grads[k] for k in self.param_names if k in grads}

    def logits(self, cache):
        return cache["logits"] if self.activation == "sigmoid" else None

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, activation=self.activation, use_bias=self.use_bias,
                      kernel_initializer=self.kernel_initializer,
                      bias_initializer=self.bias_initializer)
        return config


# --------------------------------------------------------------------------- Activation
class Activation(Layer):
    """Apply an activation elementwise; a sigmoid here is a sigmoid head for BCE too."""

    base_name = "activation"

    def __init__(self, activation, name=None, dtype=None, trainable=True):
        super().__init__(name=name, dtype=dtype, trainable=trainable)
        self.activation = get_activation(activation)

    def output_specs(self, input_specs, call_kwargs):
        return [input_specs[0]]

    def forward(self, inputs, masks, **kw):
        x = inputs[0]
        y = activate(self.activation, x)
        if y is x:
            y = x.copy()
        return [y], [masks[0]], {"x": x, "y": y}

    def backward(self, d_outputs, cache, d_logits=None, extras=None, input_grads=None):
        d_y = d_outputs[0]
        d_x = (np.zeros_like(cache["x"]) if d_y is None
               else d_y * derivative_from_output(self.activation, cache["y"]))
        if d_logits is not None:
            d_x = d_x + d_logits
        return [d_x], {}

    def logits(self, cache):
        return cache["x"] if self.activation == "sigmoid" else None

    def get_config(self):
        config = super().get_config()
        config.pop("trainable")
        config["activation"] = self.activation
        return config


# --------------------------------------------------------------------------- Concatenate
class Concatenate(Layer):
    """Concatenate several inputs along ``axis`` (any axis but the batch axis).

    A mask that travels with any input is combined as Keras does: each mask is broadcast
    to its input's shape (unmasked inputs count as all valid), the broadcast masks are
    concatenated along ``axis``, and a step is valid if any entry of its last axis is.
    """

    base_name = "concatenate"

    def __init__(self, axis=-1, name=None, dtype=None, trainable=True):
        super().__init__(name=name, dtype=dtype, trainable=trainable)
        if not isinstance(axis, (int, np.integer)) or axis == 0:
            raise ValueError(f"Concatenate {self.name!r}: axis must be a non-zero int "
                             f"(0 is the batch axis), got {axis!r}")
        self.axis = int(axis)

    def _input_specs(self, inputs, call_kwargs):
        if len(inputs) < 2:
            raise ValueError(f"Concatenate {self.name!r} needs a list of at least 2 inputs, "
                             f"got {len(inputs)}")
        shapes = [t.shape for t in inputs]
        rank = len(shapes[0]) + 1
        axis = self.axis if self.axis > 0 else rank + self.axis
        if not 1 <= axis < rank:
            raise ValueError(f"Concatenate {self.name!r}: axis {self.axis} out of range for "
                             f"inputs of rank {rank}")
        for t, s in zip(inputs, shapes):
            if len(s) + 1 != rank or any(a != b for k, (a, b) in enumerate(zip(s, shapes[0]))
                                         if k != axis - 1):
                raise ValueError(
                    f"Concatenate {self.name!r}: inputs must match except on axis {self.axis}, "
                    f"got shapes {[_format_shape((None,) + s) for s in shapes]}")
        self._axis_pos = axis
        return [(t.shape, t.has_mask) for t in inputs]

    def _check_input_shapes(self, shapes):
        pass

    def output_specs(self, input_specs, call_kwargs):
        shapes = [s for s, _ in input_specs]
        k = self._axis_pos - 1
        sizes = [s[k] for s in shapes]
        out = list(shapes[0])
        out[k] = None if any(d is None for d in sizes) else sum(sizes)
        return [(tuple(out), any(m for _, m in input_specs))]

    def forward(self, inputs, masks, **kw):
        validation.check_concatenate_inputs(self, inputs, self.axis)   # free dims (None)
        y, cache = concatenate_forward(inputs, axis=self.axis)
        out_mask = None
        if any(m is not None for m in masks):
            full = []
            for x, m in zip(inputs, masks):
                if m is None:
                    full.append(np.ones(x.shape, dtype=bool))
                else:
                    full.append(np.broadcast_to(m.reshape(m.shape + (1,) * (x.ndim - m.ndim)),
                                                x.shape))
            out_mask = np.concatenate(full, axis=self.axis).any(axis=-1)
        return [y], [out_mask], cache

    def backward(self, d_outputs, cache, d_logits=None, extras=None, input_grads=None):
        return concatenate_backward(d_outputs[0], cache), {}

    def get_config(self):
        config = super().get_config()
        config.pop("trainable")
        config["axis"] = self.axis
        return config


def concatenate(inputs, axis=-1, name=None):
    """Functional form: ``Concatenate(axis=axis, name=name)(inputs)``."""
    return Concatenate(axis=axis, name=name)(inputs)


# --------------------------------------------------------------------------- Reshape
class Reshape(Layer):
    """Reshape each sample to ``target_shape`` (one entry may be -1). Drops any mask."""

    base_name = "reshape"

    def __init__(self, target_shape, name=None, dtype=None, trainable=True):
        super().__init__(name=name, dtype=dtype, trainable=trainable)
        target_shape = tuple(int(d) for d in target_shape)
        if sum(d == -1 for d in target_shape) > 1 or any(d == 0 or d < -1 for d in target_shape):
            raise ValueError(f"Reshape {self.name!r}: target_shape must hold positive ints and "
                             f"at most one -1, got {target_shape}")
        self.target_shape = target_shape

    def output_specs(self, input_specs, call_kwargs):
        shape = input_specs[0][0]
        if any(d is None for d in shape):
            if -1 in self.target_shape:
                raise ValueError(f"Reshape {self.name!r}: cannot infer -1 from input shape "
                                 f"{_format_shape((None,) + shape)}")
            return [(self.target_shape, False)]
        size = int(np.prod(shape))
        known = int(np.prod([d for d in self.target_shape if d != -1]))
        if -1 in self.target_shape:
            if size % known:
                raise ValueError(f"Reshape {self.name!r}: cannot reshape "
                                 f"{_format_shape((None,) + shape)} to {self.target_shape}")
            out = tuple(size // known if d == -1 else d for d in self.target_shape)
        else:
            out = self.target_shape
            if known != size:
                raise ValueError(f"Reshape {self.name!r}: input of shape "
                                 f"{_format_shape((None,) + shape)} ({size} values per sample) "
                                 f"cannot become {self.target_shape} ({known} values)")
        return [(out, False)]

    def _check_input_shapes(self, shapes):
        pass

    def forward(self, inputs, masks, **kw):
        validation.check_reshape_input(self, inputs[0], self.target_shape)   # free dims (None)
        y, cache = reshape_forward(inputs[0], self.target_shape)
        return [y], [None], cache

    def backward(self, d_outputs, cache, d_logits=None, extras=None, input_grads=None):
        return [reshape_backward(d_outputs[0], cache)], {}

    def get_config(self):
        config = super().get_config()
        config.pop("trainable")
        config["target_shape"] = list(self.target_shape)
        return config


# --------------------------------------------------------------------------- Masking
class Masking(Layer):
    """Mask time steps whose features all equal ``mask_value``.

    Output: the input with masked steps set to 0 (as Keras); the mask (N, T) travels on
    to the layers that use it (LSTM) or pass it on (Dense, Activation, Concatenate).
    """

    base_name = "masking"

    def __init__(self, mask_value=0.0, name=None, dtype=None, trainable=True):
        super().__init__(name=name, dtype=dtype, trainable=trainable)
        self.mask_value = float(mask_value)

    def output_specs(self, input_specs, call_kwargs):
        shape = input_specs[0][0]
        if len(shape) < 2:
            raise ValueError(f"Masking {self.name!r} expects input of shape (N, T, D), got "
                             f"{_format_shape((None,) + shape)}")
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


#: class name -> class, for configs
LAYERS = {cls.__name__: cls for cls in (InputLayer, LSTM, Dense, Activation, Concatenate,
                                        Reshape, Masking)}
