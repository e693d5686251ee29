"""The layer contract: symbolic tensors, graph nodes, and the :class:`Layer` base class.

A layer holds parameters and a config and calls into :mod:`mlstm.ops` for its math.
Calling a layer on symbolic tensors (from :func:`mlstm.Input`) records a node of the
functional graph, exactly like Keras::

    x = Input(shape=(20, 8), name="x")
    h = LSTM(32, name="lstm_a")(x)
    y = Dense(1, activation="sigmoid", name="out")(h)

Two ways to write a layer
-------------------------
**The public contract** (what a user writes; see ``docs/extending.md``)::

    @mlstm.register_layer
    class Scale(mlstm.Layer):
        def build(self, input_shapes):               # shapes without the batch axis
            (shape,) = input_shapes
            self.add_weight("gamma", (shape[-1],), initializer="ones")
        def call(self, inputs, training=False):      # -> (outputs, cache)
            (x,) = inputs
            return [x * self.params["gamma"]], (x,)
        def backward(self, d_outputs, cache):        # -> (d_inputs, d_params)
            (x,) = cache; (d,) = d_outputs
            return [d * self.params["gamma"]], {"gamma": (d * x).reshape(-1, x.shape[-1]).sum(0)}

Masks pass through (every output carries the first input's mask) and each output has the
first input's shape unless :meth:`Layer.compute_output_shape` says otherwise. ``d_outputs``
holds an array for every output (zeros where no gradient flows).

**The internal protocol** of the built-in layers adds masks, logits and skipped input
gradients: ``forward(inputs, masks, training=False, rng=None, **call_kwargs) ->
(outputs, output_masks, cache)`` and ``backward(d_outputs, cache, d_logits=None,
extras=None, input_grads=None)`` (``d_outputs`` entries may be None). The model passes
only the keyword arguments a layer's ``backward`` accepts.

Questions the rest of mlstm asks a layer
----------------------------------------
Instead of ``isinstance`` checks on concrete classes, the model, the Keras interop, the
gradient measures and the diagnosis ask every layer the same questions; the base class
answers "nothing special", and a layer overrides what it knows better:

===============================  ==========================================================
``is_input``                     the source of a graph (``InputLayer``)
``keras_name``, ``keras_options``  the Keras class and how its config maps (interop)
``node_call_arguments(inputs)``  how a node's recorded tensors become call arguments
``output_activation(i)``         the activation that produced output ``i`` from logits
``logits(cache, i)``             those logits (losses take logits from sigmoid heads)
``per_sample_grad_norms(...)``   a vectorized rule for per-sample gradient norms
``time_step_grads(extras)``      dL/dh at every step (``time_step_directions()``: per direction)
``step_mask(cache)``             which steps were valid, (T, N) in processing order
``gate_saturation(cache, thr)``  fraction of saturated gate pre-activations
``batch_statistics_count(cache)``  values behind each feature's batch statistics (BatchNorm)
``activation_inputs(cache)``     every array each activation was applied to (kinks)
``describe_weight_entry(w, i)``  words for one entry of a weight (gate block, unit)
``gate_columns(w)``              the column blocks of a gated weight, for gate-order hints
``mask_value``                   the value a masking layer treats as padding, else None
``uses_rng``, ``state_names``    draws random numbers (dropout); non-trainable state arrays
``activation_bytes(call)``       memory a call keeps and needs for a batch (layers/memory.py)
===============================  ==========================================================
"""
from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import Any

import numpy as np

from .. import initializers, validation
from .._typing import Array, ArrayLike, BoolArray, DTypeLike, IntArray, JSONDict, TensorShape
from ..initializers import Initializer
from .keras_options import KerasOptions
from .memory import ActivationBytes, CallShapes, default_activation_bytes

#: ``(shape without the batch axis, whether a mask travels with it)`` of a tensor.
TensorSpec = tuple[TensorShape, bool]

__all__ = ["SymbolicTensor", "Node", "Layer", "KerasOptions", "format_shape", "check_dtype"]

_name_counters: defaultdict[str, Iterator[int]] = defaultdict(itertools.count)


def _unique_name(base: str) -> str:
    n = next(_name_counters[base])
    return base if n == 0 else f"{base}_{n}"


def format_shape(shape: Sequence[int | None]) -> str:
    """``(None, 20, 8)`` -> ``"(N, 20, 8)"``: the batch axis written as N."""
    return "(" + ", ".join("N" if d is None and k == 0 else str(d)
                           for k, d in enumerate(shape)) + ("," if len(shape) == 1 else "") + ")"


def check_dtype(dtype: DTypeLike) -> str:
    """The dtype's name if it is float32 or float64; TypeError otherwise."""
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

    def __init__(self, shape: Sequence[int | None], dtype: str, node: Node, index: int,
                 has_mask: bool = False) -> None:
        self.shape = tuple(shape)
        self.dtype = dtype
        self.node = node
        self.index = index
        self.has_mask = has_mask

    @property
    def name(self) -> str:
        layer = self.node.layer
        if len(self.node.outputs) == 1:
            return layer.name
        return f"{layer.name}_{self.index}"

    def __repr__(self) -> str:
        return (f"<SymbolicTensor shape={format_shape((None,) + self.shape)} "
                f"dtype={self.dtype} from={self.node.layer.name!r}>")


class Node:
    """One call of a layer: its input tensors, output tensors and call options."""

    def __init__(self, layer: Layer, inputs: Sequence[SymbolicTensor],
                 call_kwargs: Mapping[str, Any] | None = None) -> None:
        self.layer = layer
        self.inputs = list(inputs)
        self.call_kwargs = dict(call_kwargs or {})
        self.outputs: list[SymbolicTensor] = []


class Layer:
    """Base class of every layer (see the module docstring for the two contracts).

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

    #: Parameter names in ``get_weights`` order (built-ins; ``add_weight`` extends it).
    param_names: tuple[str, ...] = ()
    #: Non-trainable arrays in ``self.state`` (moving statistics): after the parameters in
    #: ``get_weights`` (Keras' order), saved and loaded, no gradient, no optimizer update.
    state_names: tuple[str, ...] = ()
    #: Default base name for generated names (None: the class name in lower case).
    base_name: str | None = None
    #: How many inputs a call takes (None: any number, at least one).
    input_count: int | None = 1
    #: The Keras class this layer imports from and exports to (None: no Keras counterpart).
    keras_name: str | None = None
    #: :class:`KerasOptions` for that Keras class.
    keras_options = KerasOptions()
    #: The source of a graph.
    is_input = False
    #: Whether the layer steps through time (its dL/dh per step is inspected).
    recurrent = False
    #: The padding value of a masking layer (None: not a masking layer).
    mask_value: float | None = None
    #: Whether ``forward`` draws random numbers (then it gets its own seeded ``rng``).
    uses_rng = False
    #: Whether the layer takes integer tensors (token ids: Embedding); others refuse them.
    takes_integer_inputs = False

    def __init__(self, name: str | None = None, dtype: DTypeLike | None = None,
                 trainable: bool = True, seed: int | None = None) -> None:
        if name is not None and (not isinstance(name, str) or not name or "/" in name):
            raise ValueError(f"Layer name must be a non-empty string without '/', got {name!r}")
        self.name = name or _unique_name(self.base_name or type(self).__name__.lower())
        self.dtype: str | None = None if dtype is None else check_dtype(dtype)
        self.trainable = bool(trainable)
        self.seed = seed
        # (a wrapped layer's are views into its wrapper's: mlstm.layers.wrapper.PrefixedView)
        self.params: MutableMapping[str, Array] = {}
        self.state: MutableMapping[str, Array] = {}
        self.built = False
        self._inbound_nodes: list[Node] = []
        if "param_names" not in vars(self):
            self.param_names = tuple(type(self).param_names)

    # ----------------------------------------------------------------- graph building
    def __call__(self, inputs: SymbolicTensor | Sequence[SymbolicTensor], **call_kwargs: Any
                 ) -> Any:
        # Returns a SymbolicTensor, or a list of them when the call has several outputs (an
        # LSTM with return_state). Typed Any, as Keras does: which one depends on options
        # known only at run time, and a union would make every user narrow `LSTM(4)(x)`.
        # Any: checked just below to be SymbolicTensors (a user may pass anything)
        inputs_list: list[Any] = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        for k, t in enumerate(inputs_list):
            if not isinstance(t, SymbolicTensor):
                raise TypeError(
                    f"{type(self).__name__} {self.name!r} must be called on symbolic tensors "
                    f"(from mlstm.Input or another layer); input {k} is {type(t).__name__}")
            if np.dtype(t.dtype).kind == "i" and not self.takes_integer_inputs:
                raise TypeError(
                    f"{type(self).__name__} {self.name!r} takes float tensors; input {k} holds "
                    f"integer token ids ({t.dtype}) from {type(t.node.layer).__name__} "
                    f"{t.node.layer.name!r}: ids go through an Embedding first")
        specs = self._input_specs(inputs_list, call_kwargs)
        if self.dtype is None:
            self.dtype = inputs_list[0].dtype
        if not self.built:
            self.build([s for s, _ in specs])
            self._built_shapes = [s for s, _ in specs]
            self.built = True
        else:
            self._check_input_shapes([s for s, _ in specs])
        node = Node(self, self._node_inputs(inputs_list, call_kwargs), call_kwargs)
        out_specs = self.output_specs(specs, call_kwargs)
        node.outputs = [SymbolicTensor(shape, self.dtype, node, k, has_mask)
                        for k, (shape, has_mask) in enumerate(out_specs)]
        self._inbound_nodes.append(node)
        return node.outputs[0] if len(node.outputs) == 1 else list(node.outputs)

    def node_call_arguments(self, inputs: Sequence[Any]) -> tuple[list[Any], dict[str, Any]]:
        """``(args, kwargs)`` that call this layer on the tensors a graph node recorded.

        A node records all its input tensors in one flat list; a layer whose call splits
        them (LSTM: the sequence and ``initial_state=[h0, c0]``) or takes a list
        (Concatenate) says how. Used to rebuild a saved graph (:meth:`call_on_node_inputs`)
        and to call the Keras twin of the layer (:mod:`mlstm.interop.keras`), so the tensors
        may be mlstm's or Keras'. The default: one tensor, or a list of several.
        """
        return [inputs if len(inputs) > 1 else inputs[0]], {}

    def call_on_node_inputs(self, inputs: Sequence[SymbolicTensor], **call_kwargs: Any
                            ) -> SymbolicTensor | list[SymbolicTensor]:
        """Call the layer on the inputs a graph node recorded (rebuilding a saved graph)."""
        args, kwargs = self.node_call_arguments(list(inputs))
        # (no node_call_arguments puts "inputs" among the keyword arguments)
        return self(*args, **kwargs, **call_kwargs)  # type: ignore[misc]

    def _input_specs(self, inputs: Sequence[SymbolicTensor], call_kwargs: Mapping[str, Any]
                     ) -> list[TensorSpec]:
        """``[(shape, has_mask)]`` per input, checked; a layer taking one input by default."""
        if self.input_count is not None and len(inputs) != self.input_count:
            raise ValueError(f"{type(self).__name__} {self.name!r} takes {self.input_count} "
                             f"input{'s' if self.input_count > 1 else ''}, got {len(inputs)}")
        return [(t.shape, t.has_mask) for t in inputs]

    def _node_inputs(self, inputs: list[SymbolicTensor], call_kwargs: dict[str, Any]
                     ) -> list[SymbolicTensor]:
        return inputs

    def _check_input_shapes(self, shapes: list[TensorShape]) -> None:
        if shapes != self._built_shapes:
            raise ValueError(
                f"{type(self).__name__} {self.name!r} was built for inputs of shape "
                f"{[format_shape((None,) + s) for s in self._built_shapes]}, called on "
                f"{[format_shape((None,) + s) for s in shapes]}")

    def build(self, input_shapes: Sequence[TensorShape]) -> None:
        """Create parameters for inputs of these shapes (batch axis excluded)."""

    def compute_output_shape(self, input_shapes: Sequence[TensorShape]
                             ) -> Sequence[Sequence[int | None]]:
        """Output shapes (batch axis excluded) for these input shapes: one output shaped
        like the first input unless a layer says otherwise."""
        return [input_shapes[0]]

    def output_specs(self, input_specs: Sequence[TensorSpec], call_kwargs: Mapping[str, Any]
                     ) -> list[TensorSpec]:
        """``[(shape, has_mask), ...]`` for each output, given ``[(shape, has_mask), ...]``."""
        shapes = self.compute_output_shape([s for s, _ in input_specs])
        return [(tuple(s), input_specs[0][1]) for s in shapes]

    # ----------------------------------------------------------------- run time
    def call(self, inputs: list[Array], training: bool = False
             ) -> tuple[Sequence[Array], Any]:
        """Public contract: arrays in, ``(outputs, cache)`` out."""
        raise NotImplementedError(f"{type(self).__name__} must define call(inputs, training) "
                                  "or forward(inputs, masks, ...)")

    def forward(self, inputs: Sequence[Array], masks: Sequence[BoolArray | None],
                training: bool = False, rng: np.random.Generator | None = None,
                **call_kwargs: Any) -> tuple[list[Array], list[BoolArray | None], Any]:
        """Arrays in, ``(outputs, output_masks, cache)`` out (lists, lists, anything).

        The default runs :meth:`call` and lets the first input's mask travel with every
        output. ``rng`` is the model's seeded ``numpy.random.Generator`` during training
        (``fit(seed=...)``), for layers that draw random numbers (dropout).
        """
        outputs, cache = self.call(list(inputs), training=training)
        outputs = list(outputs)
        return outputs, [masks[0] if masks else None] * len(outputs), cache

    def backward(self, d_outputs: Sequence[Array | None], cache: Any,
                 d_logits: Array | None = None, extras: dict[str, Any] | None = None,
                 input_grads: Sequence[bool] | None = None
                 ) -> tuple[list[Array | None], dict[str, Array]]:
        """Gradients: ``(d_inputs, d_params)``.

        ``d_outputs`` has one entry per output, ``None`` where nothing flows back (layers of
        the public contract, whose ``backward(d_outputs, cache)`` takes two arguments, get
        zeros instead); ``d_logits`` is a gradient with respect to the logits of output 0
        (see :meth:`logits`). When ``extras`` is a dict, a layer may put intermediate
        gradients there for inspection (LSTM: ``d_h_steps``, ``d_gates``). ``input_grads``
        has one bool per input, False where the caller does not need that input's gradient
        (None: all are needed); a layer may then return None for it and skip the work.
        """
        raise NotImplementedError

    def step_elements(self, batch_size: int) -> int:
        """Elements one sequential step of this layer computes for a batch, for the scheduler
        of independent layers (:mod:`mlstm.parallel`); 0 for layers not worth a thread."""
        return 0

    def activation_bytes(self, call: CallShapes) -> ActivationBytes:
        """An :class:`~mlstm.layers.memory.ActivationBytes` for a :class:`CallShapes` ``call``
        (the default: output-sized caches and scratch)."""
        return default_activation_bytes(self, call)

    @classmethod
    def examples(cls) -> list[JSONDict]:
        """Small configurations the parametrized component tests build (tests/test_components.py).

        Each is ``{"config": constructor kwargs, "inputs": [input shape without N, ...]}``;
        a layer that does not say gets its default constructor on one (3, 4) input.
        """
        return [{"config": {}, "inputs": [(3, 4)]}]

    # ----------------------------------------------------------------- questions asked
    def output_activation(self, index: int = 0) -> str | None:
        """The activation that produced output ``index`` from logits (None: none known)."""
        return None

    def logits(self, cache: Any, index: int = 0) -> Array | None:
        """The logits of output ``index`` (see :meth:`output_activation`), or None."""
        return None

    def per_sample_grad_norms(self, cache: Any, extras: Mapping[str, Any]
                              ) -> dict[str, Array] | None:
        """``{weight: (N,) norms}`` of each sample's gradient term, from one backward pass's
        ``extras``; None when the layer has no vectorized rule (a loop over samples is used)."""
        return None

    def time_step_grads(self, extras: Mapping[str, Any]) -> Array | dict[str, Array] | None:
        """dL/dh at every step, (T, N, H) in processing order, or None; a layer with several
        directions returns ``{direction: (T, N, H_d)}`` (:meth:`time_step_directions`)."""
        return None

    def time_step_directions(self) -> dict[str, bool] | None:
        """``{direction: runs from the last step to the first}`` (Bidirectional), or None."""
        return None

    def step_mask(self, cache: Any) -> BoolArray | dict[str, BoolArray | None] | None:
        """Valid steps (T, N) in processing order, per direction as time_step_grads; or None."""
        return None

    def batch_statistics_count(self, cache: Any) -> int | None:
        """Values behind each feature's batch statistics in the last pass, or None."""
        return None

    def gate_saturation(self, cache: Any, threshold: float) -> dict[str, float] | None:
        """``{gate: fraction of |pre-activation| > threshold}`` over valid steps, or None."""
        return None

    def activation_inputs(self, cache: Any) -> list[tuple[str, Array]]:
        """``[(activation name, array it was applied to), ...]`` of the last forward pass,
        at valid positions only (for finite-difference checks near kinks)."""
        return []

    def describe_weight_entry(self, weight: str, index: tuple[int, ...]) -> str:
        """Words for entry ``index`` of weight ``weight`` (e.g. the gate block and unit)."""
        return ""

    def gate_columns(self, weight: str) -> dict[str, IntArray] | None:
        """``{gate: column indices}`` of a gated weight, or None."""
        return None

    # ----------------------------------------------------------------- parameters
    def _rng(self) -> np.random.Generator:
        if self.seed is not None:
            return np.random.default_rng(self.seed)
        return initializers.default_rng()

    def _add_param(self, name: str, shape: Sequence[int], initializer: str | Initializer,
                   rng: np.random.Generator) -> None:
        value = initializers.get_initializer(initializer)(tuple(shape), rng, dtype=self.dtype)
        self.params[name] = np.ascontiguousarray(value, dtype=self.dtype)

    def add_weight(self, name: str, shape: Sequence[int], initializer: str | Initializer = "glorot_uniform"
                   ) -> Array:
        """Create parameter ``name`` of ``shape`` (public contract; call it from ``build``).

        Returns the array (also in ``self.params[name]``).
        """
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError(f"{type(self).__name__} {self.name!r}: a weight name must be a "
                             f"non-empty string without '/', got {name!r}")
        if name in self.params:
            raise ValueError(f"{type(self).__name__} {self.name!r} already has a weight {name!r}")
        shape = tuple(int(d) for d in shape)
        self._add_param(name, shape, initializer, self._rng())
        if name not in self.param_names:
            self.param_names = tuple(self.param_names) + (name,)
        return self.params[name]

    def _weight_keys(self) -> list[str]:
        """Local names of the parameters, then of the state arrays, in ``get_weights`` order
        (Keras order)."""
        return ([k for k in self.param_names if k in self.params]
                + [k for k in self.state_names if k in self.state])

    def _weight_array(self, key: str) -> Array:
        """The live array of a parameter or a state array."""
        return self.params[key] if key in self.params else self.state[key]

    def get_weights(self) -> list[Array]:
        """Copies of the parameters, then of the state arrays (Keras order)."""
        return [self._weight_array(k).copy() for k in self._weight_keys()]

    @property
    def weight_names(self) -> list[str]:
        """Fully qualified names ``"layer/weight"`` in ``get_weights`` order (state included)."""
        return [f"{self.name}/{k}" for k in self._weight_keys()]

    def checked_weights(self, weights: Sequence[ArrayLike], allow_nonfinite: bool = False
                        ) -> list[Array]:
        """The arrays :meth:`set_weights` would assign, checked; nothing is changed.

        Raises TypeError/ValueError naming the layer and the weight for a wrong count,
        non-real values, a wrong shape or a NaN/inf entry (named by its index).
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
            if w.shape != self._weight_array(k).shape:
                raise ValueError(f"{label} has shape {self._weight_array(k).shape}, "
                                 f"got {w.shape}")
            if not allow_nonfinite:
                validation.check_finite_weights(w, label)
            checked.append(w)
        return checked

    def _assign_weights(self, checked: Sequence[Array]) -> None:
        for k, w in zip(self._weight_keys(), checked):
            self._weight_array(k)[...] = w

    def set_weights(self, weights: Sequence[ArrayLike], allow_nonfinite: bool = False) -> None:
        """Set the parameters from a list in ``get_weights`` order; shapes must match, and
        NaN/inf entries are refused unless ``allow_nonfinite``."""
        self._assign_weights(self.checked_weights(weights, allow_nonfinite))

    def count_params(self) -> int:
        """Entries of every weight, state arrays included (as Keras counts)."""
        return int(sum(p.size for p in self.params.values())
                   + sum(a.size for a in self.state.values()))

    def get_config(self) -> JSONDict:
        """JSON-serializable constructor arguments."""
        return {"name": self.name, "dtype": self.dtype, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Layer:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
