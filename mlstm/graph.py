"""The functional graph: nodes in topological order, forward and backward over them.

:class:`Graph` knows nothing about losses or training; :class:`mlstm.Model` adds those
(:mod:`mlstm.training`).

``Model(inputs, outputs)`` walks back from the outputs to the inputs and orders the layer
calls (nodes). :meth:`Model.forward` runs them in order and keeps a :class:`Tape` of every
value, mask and cache; :meth:`Model.backward` runs them in reverse from gradients given
for the outputs, summing where a tensor feeds several layers. Backward is linear in the
output gradients and never modifies the tape, so one forward pass serves any number of
backward passes (one per output for per-output contributions, for instance).

Both passes follow a schedule (:meth:`Model._schedule`) that respects the order of the
graph but runs independent layers with enough work per step (the input LSTMs of a
multi-input model) at the same time, each on its own thread (:mod:`mlstm.parallel`); the
schedule, and so every result, is the same with one thread or several.
"""
from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar, overload

import numpy as np

from . import parallel, validation
from ._typing import Array, ArrayLike, BoolArray, DTypeLike, JSONDict
from .layers.base import Layer, Node, SymbolicTensor, format_shape
from .graph_config import graph_config, graph_from_config
from .ops.embedding import SparseRowsGradient
from .schedule import schedule

__all__ = ["Graph", "Tape", "MAX_GRAPH_NODES"]

G = TypeVar("G", bound="Graph")
#: What backward sums over a tensor's consumers or a shared layer's calls.
_Summed = TypeVar("_Summed", Array, SparseRowsGradient)

#: Most layer calls a graph may hold (a limit on what a config file can make mlstm build).
MAX_GRAPH_NODES = 100_000


class Tape:
    """What a forward pass leaves behind.

    Attributes
    ----------
    values : dict id(SymbolicTensor) -> ndarray
    masks : dict id(SymbolicTensor) -> ndarray of bool (N, T) or None
    caches : list
        One per node of ``model.nodes``: what the layer's backward needs.
    outputs : list of ndarray
    output_masks : list of (ndarray or None)
    """

    def __init__(self) -> None:
        self.values: dict[int, Array] = {}
        self.masks: dict[int, BoolArray | None] = {}
        self.caches: list[Any] = []
        self.outputs: list[Array] = []
        self.output_masks: list[BoolArray | None] = []

    def value(self, tensor: SymbolicTensor) -> Array:
        return self.values[id(tensor)]

    def mask(self, tensor: SymbolicTensor) -> BoolArray | None:
        return self.masks[id(tensor)]


class Graph:
    """A graph of layers from symbolic ``inputs`` to symbolic ``outputs``.

    Parameters
    ----------
    inputs : SymbolicTensor or list of them
        From :func:`mlstm.Input`.
    outputs : SymbolicTensor or list of them
    name : str, optional

    The training half lives in :class:`mlstm.Model` (Graph + Trainer), whose docstring
    has an example.
    """

    def __init__(self, inputs: SymbolicTensor | Sequence[SymbolicTensor],
                 outputs: SymbolicTensor | Sequence[SymbolicTensor], name: str = "model") -> None:
        self._single_input = not isinstance(inputs, (list, tuple))
        self._single_output = not isinstance(outputs, (list, tuple))
        # Any: checked just below to be SymbolicTensors
        self.inputs: list[Any] = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        self.outputs: list[Any] = (list(outputs) if isinstance(outputs, (list, tuple))
                                   else [outputs])
        self.name = name
        if not self.inputs or not self.outputs:
            raise ValueError("Model needs at least one input and one output")
        for role, tensors in (("inputs", self.inputs), ("outputs", self.outputs)):
            for k, t in enumerate(tensors):
                if not isinstance(t, SymbolicTensor):
                    raise TypeError(f"Model {role}[{k}] must be a symbolic tensor, "
                                    f"got {type(t).__name__}")
        for k, t in enumerate(self.inputs):
            if not t.node.layer.is_input:
                raise ValueError(f"Model inputs[{k}] must come from mlstm.Input, "
                                 f"got the output of {t.node.layer!r}")
        if len({id(t) for t in self.inputs}) != len(self.inputs):
            raise ValueError("Model inputs must be distinct")
        self.nodes = self._order_nodes()
        self.layers: list[Layer] = []
        for node in self.nodes:
            if node.layer not in self.layers:
                self.layers.append(node.layer)
        names = [layer.name for layer in self.layers]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"Layer names must be unique within a model; repeated: {duplicated}")
        self.input_names = [t.node.layer.name for t in self.inputs]
        self.output_names = self._name_outputs()
        self._node_index = {id(node): k for k, node in enumerate(self.nodes)}
        self._schedules: dict[tuple[frozenset[int], bool], list[list[int]]] = {}

    # ------------------------------------------------------------------ structure
    def _order_nodes(self) -> list[Node]:
        """Nodes in topological order: a depth-first walk back from the outputs, written
        with an explicit stack so that a chain of any length builds (no recursion limit)."""
        order: list[Node] = []
        state: dict[int, str] = {}
        input_ids = {id(t) for t in self.inputs}
        for root in self.inputs + self.outputs:
            stack = [(root, False)]
            while stack:
                tensor, expanded = stack.pop()
                node = tensor.node
                if expanded:                    # every input of node is done
                    state[id(node)] = "done"
                    order.append(node)
                    if len(order) > MAX_GRAPH_NODES:
                        raise ValueError(f"The graph has more than {MAX_GRAPH_NODES} layer "
                                         "calls (mlstm.graph.MAX_GRAPH_NODES)")
                    continue
                if node.layer.is_input and id(tensor) not in input_ids:
                    raise ValueError(
                        f"Output depends on input {node.layer.name!r}, which is not among the "
                        f"model's inputs {[t.node.layer.name for t in self.inputs]}")
                mark = state.get(id(node))
                if mark == "done":
                    continue
                if mark == "active":
                    raise ValueError(f"The graph has a cycle through {node.layer.name!r}")
                state[id(node)] = "active"
                stack.append((tensor, True))
                stack.extend((t, False) for t in reversed(node.inputs))
        return order

    def _schedule(self, heavy: frozenset[int], backward: bool = False) -> list[list[int]]:
        """The order to run the nodes in: a list of groups of node positions.

        ``heavy`` is the set of positions with enough work per step to be worth a thread
        (``Layer.step_elements``). Light nodes run one at a time as soon as what they need is
        done, so that independent heavy nodes become ready together; those then form one
        group, run at the same time (:mod:`mlstm.parallel`). Forward, a node needs the nodes
        that produce its inputs; backward, the nodes that consume its outputs. The schedule
        does not depend on the thread count, so neither do the results.
        """
        key = (heavy, backward)
        if key not in self._schedules:
            order = [k for k, node in enumerate(self.nodes) if not node.layer.is_input]
            remaining = set(order)
            producers = {k: {self._node_index[id(t.node)] for t in self.nodes[k].inputs}
                         & remaining for k in order}
            if backward:
                consumers: dict[int, set[int]] = {k: set() for k in order}
                for k in order:
                    for p in producers[k]:
                        consumers[p].add(k)
                order.reverse()
            self._schedules[key] = schedule(order, consumers if backward else producers, heavy)
        return self._schedules[key]

    def _heavy_nodes(self, batch_size: int) -> frozenset[int]:
        """Positions of the nodes worth a thread at this batch size."""
        return frozenset(
            k for k, node in enumerate(self.nodes)
            if node.layer.step_elements(batch_size) >= parallel.MIN_STEP_ELEMENTS)

    def _name_outputs(self) -> list[str]:
        names = []
        for t in self.outputs:
            name = t.node.layer.name if len(t.node.outputs) == 1 else t.name
            names.append(name)
        if len(set(names)) != len(names):
            names = [f"{n}_{k}" for k, n in enumerate(names)]
        return names

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """The layer called ``name`` (or at position ``index`` in ``model.layers``)."""
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No layer named {name!r}; layers are {[l.name for l in self.layers]}")

    @property
    def params(self) -> dict[str, Array]:
        """All parameters, ``{"layer/weight": ndarray}`` (the live arrays), in layer order."""
        return {f"{layer.name}/{k}": layer.params[k]
                for layer in self.layers for k in layer.param_names if k in layer.params}

    @property
    def trainable_params(self) -> dict[str, Array]:
        """Parameters of trainable layers, ``{"layer/weight": ndarray}`` (live arrays)."""
        return {f"{layer.name}/{k}": layer.params[k] for layer in self.layers if layer.trainable
                for k in layer.param_names if k in layer.params}

    @property
    def dtype(self) -> str:
        """The float dtype: the first float input's, else (inputs of token ids only) the
        first layer's with a float dtype."""
        for source in [t.dtype for t in self.inputs] + [layer.dtype for layer in self.layers]:
            if source is not None and np.dtype(source).kind == "f":
                return source
        return self.inputs[0].dtype

    def get_weights(self) -> list[Array]:
        """Copies of all parameters: layers in order, each in Keras order."""
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights: Sequence[ArrayLike], allow_nonfinite: bool = False) -> None:
        """Set all parameters from a list shaped like :meth:`get_weights`.

        Every array is checked (count, shape, real values, and finite unless
        ``allow_nonfinite``) before any weight changes, so a refused call changes nothing.
        """
        weights = validation.as_weight_list(weights, f"Model {self.name!r} set_weights")
        counts = [len(layer.weight_names) for layer in self.layers]
        if len(weights) != sum(counts):
            raise ValueError(f"Model {self.name!r} has {sum(counts)} weight arrays "
                             f"{list(self.params)}, set_weights got {len(weights)}")
        # Check every layer before changing any, so a refused call changes nothing.
        pos, plan = 0, []
        for layer, n in zip(self.layers, counts):
            plan.append((layer, layer.checked_weights(weights[pos:pos + n], allow_nonfinite)))
            pos += n
        for layer, checked in plan:
            layer._assign_weights(checked)

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self.layers)

    # ------------------------------------------------------------------ forward / backward
    def forward(self, xs: Sequence[Array], training: bool = False,
                rng: np.random.Generator | None = None) -> Tape:
        """Run the graph on a list of input arrays (already checked; see ``predict``).

        Parameters
        ----------
        xs : list of ndarray
            One array per model input, in input order.
        training : bool
            Passed to every layer (dropout draws masks only when training).
        rng : numpy.random.Generator, optional
            The training run's seeded stream (``fit(seed=...)``). Each layer that draws
            random numbers (``Layer.uses_rng``) gets its own child generator, spawned in node
            order, so the draws do not depend on which layers run concurrently.

        Returns
        -------
        Tape
            ``tape.outputs`` and ``tape.output_masks`` are lists in output order.
        """
        tape = Tape()
        for t, x in zip(self.inputs, xs):
            tape.values[id(t)] = x
            tape.masks[id(t)] = None
        tape.caches = [None] * len(self.nodes)
        node_rngs: dict[int, np.random.Generator] = {}
        if rng is not None:
            drawing = [pos for pos, node in enumerate(self.nodes) if node.layer.uses_rng]
            node_rngs = dict(zip(drawing, rng.spawn(len(drawing))))

        def run(pos: int) -> tuple[list[Array], list[BoolArray | None], Any]:
            node = self.nodes[pos]
            return node.layer.forward([tape.values[id(t)] for t in node.inputs],
                                      [tape.masks[id(t)] for t in node.inputs],
                                      training=training, rng=node_rngs.get(pos),
                                      **node.call_kwargs)

        heavy = self._heavy_nodes(len(xs[0]))
        with parallel.blas_threads_for(heavy):
            for group in self._schedule(heavy):
                for pos, (outs, out_masks, cache) in zip(group, parallel.run_concurrently(
                        [functools.partial(run, pos) for pos in group])):
                    tape.caches[pos] = cache
                    for t, v, m in zip(self.nodes[pos].outputs, outs, out_masks):
                        tape.values[id(t)] = v
                        tape.masks[id(t)] = m
        tape.outputs = [tape.values[id(t)] for t in self.outputs]
        tape.output_masks = [tape.masks[id(t)] for t in self.outputs]
        return tape

    def output_activation(self, k: int) -> str | None:
        """The activation that produced output ``k`` from logits (``"sigmoid"`` for a sigmoid
        head), or None."""
        t = self.outputs[k]
        return t.node.layer.output_activation(t.index)

    def output_logits(self, tape: Tape, k: int, activation: str | None = None) -> Array | None:
        """Logits of output ``k`` when it is ``activation`` of them (e.g. a sigmoid head),
        else None; ``activation=None`` accepts whatever activation the output has. Losses
        that work from logits (BCE from a sigmoid head) ask for them."""
        t = self.outputs[k]
        own = t.node.layer.output_activation(t.index)
        if own is None or (activation is not None and own != activation):
            return None
        return t.node.layer.logits(tape.caches[self._node_index[id(t.node)]], t.index)

    @overload
    def backward(self, tape: Tape, d_outputs: Mapping[int, Array] | None = None,
                 d_logits: Mapping[int, Array] | None = None, input_grads: Literal[False] = False,
                 extras: dict[str, Any] | None = None,
                 sparse_grads: dict[str, SparseRowsGradient] | None = None) -> dict[str, Array]: ...
    @overload
    def backward(self, tape: Tape, d_outputs: Mapping[int, Array] | None = None,
                 d_logits: Mapping[int, Array] | None = None, *, input_grads: Literal[True],
                 extras: dict[str, Any] | None = None,
                 sparse_grads: dict[str, SparseRowsGradient] | None = None
                 ) -> tuple[dict[str, Array], list[Array | None]]: ...
    @overload
    def backward(self, tape: Tape, d_outputs: Mapping[int, Array] | None = None,
                 d_logits: Mapping[int, Array] | None = None, input_grads: bool = False,
                 extras: dict[str, Any] | None = None,
                 sparse_grads: dict[str, SparseRowsGradient] | None = None
                 ) -> dict[str, Array] | tuple[dict[str, Array], list[Array | None]]: ...
    def backward(self, tape: Tape, d_outputs: Mapping[int, Array] | None = None,
                 d_logits: Mapping[int, Array] | None = None, input_grads: bool = False,
                 extras: dict[str, Any] | None = None,
                 sparse_grads: dict[str, SparseRowsGradient] | None = None
                 ) -> dict[str, Array] | tuple[dict[str, Array], list[Array | None]]:
        """Backpropagate gradients given for the outputs.

        Parameters
        ----------
        tape : Tape
            From :meth:`forward`; not modified.
        d_outputs : dict output index -> ndarray, optional
            dL/d(output k).
        d_logits : dict output index -> ndarray, optional
            dL/d(logits of output k), for sigmoid heads whose loss used the logits.
        input_grads : bool
            Also return dL/d(input) for each model input (None for an integer input).
        extras : dict, optional
            Filled with ``{layer name: {...}}`` of intermediate gradients layers expose
            (LSTM: ``d_h_steps``, the gradient reaching each step's hidden state).
        sparse_grads : dict, optional
            Filled with ``{"layer/weight": SparseRowsGradient}`` for the weights a layer
            also gives per token occurrence (Embedding; summed over a shared layer's calls),
            for the optimizer (:mod:`mlstm.ops.embedding`). ``grads`` stays the dense sum.

        Returns
        -------
        grads : dict "layer/weight" -> ndarray
            Every parameter; zeros where no gradient arrives.
        d_inputs : list of ndarray
            Only when ``input_grads``.
        """
        d_outputs = d_outputs or {}
        d_logits = d_logits or {}
        grad_of: dict[int, Array] = {}
        for k, g in d_outputs.items():
            _accumulate(grad_of, id(self.outputs[k]), g)
        logit_seed: dict[int, Array] = {}
        for k, g in d_logits.items():
            t = self.outputs[k]
            key = id(t.node)
            logit_seed[key] = g if key not in logit_seed else logit_seed[key] + g
        grads: dict[str, Array] = {}
        heavy = self._heavy_nodes(len(tape.values[id(self.inputs[0])]))
        with parallel.blas_threads_for(heavy):
            self._backward_groups(tape, heavy, grad_of, logit_seed, grads, input_grads, extras,
                                  sparse_grads)
        grads = {name: grads[name] if name in grads else np.zeros_like(p)
                 for name, p in self.params.items()}
        if input_grads:
            # token ids (integer inputs, float ones read only as ids) are not
            # differentiable: None, not zeros
            d_inputs = [None if ids else grad_of.get(id(t), np.zeros_like(tape.values[id(t)]))
                        for t, ids in zip(self.inputs, validation.token_id_inputs(self))]
            return grads, d_inputs
        return grads

    def _backward_groups(self, tape: Tape, heavy: frozenset[int], grad_of: dict[int, Array],
                         logit_seed: Mapping[int, Array], grads: dict[str, Array],
                         input_grads: bool, extras: dict[str, Any] | None,
                         sparse_grads: dict[str, SparseRowsGradient] | None = None) -> None:
        """The node loop of :meth:`backward`: fills ``grads`` and ``grad_of``."""
        g: Array | None
        for group in self._schedule(heavy, backward=True):
            calls = {}
            for node_pos in group:
                node = self.nodes[node_pos]
                d_outs = [grad_of.get(id(t)) for t in node.outputs]
                d_log = logit_seed.get(id(node))
                if d_log is None and all(g is None for g in d_outs):
                    continue
                # Gradients reaching model inputs are kept only when asked for: a layer fed
                # by a model input may skip computing them.
                needed = [input_grads or not t.node.layer.is_input for t in node.inputs]
                accepted = _backward_keywords(node.layer.backward)
                kwargs: dict[str, Any] = {}
                if "extras" in accepted:
                    kwargs["extras"] = {} if extras is not None else None
                if "input_grads" in accepted:
                    kwargs["input_grads"] = needed
                if sparse_grads is not None and "sparse_grads" in accepted:
                    kwargs["sparse_grads"] = {}
                if "d_logits" in accepted:
                    kwargs["d_logits"] = d_log
                else:
                    # the public contract: every output gets an array, and logits are a
                    # built-in layer's business
                    d_outs = [np.zeros_like(tape.values[id(t)]) if g is None else g
                              for t, g in zip(node.outputs, d_outs)]
                    if d_log is not None:
                        raise TypeError(f"{type(node.layer).__name__} {node.layer.name!r} "
                                        "returned logits but its backward takes no d_logits")
                calls[node_pos] = (functools.partial(node.layer.backward, d_outs,
                                                     tape.caches[node_pos], **kwargs),
                                   needed, kwargs.get("extras"), kwargs.get("sparse_grads"))
            results = parallel.run_concurrently([call for call, *_ in calls.values()])
            for node_pos, (d_ins, d_params) in zip(list(calls), results):
                node, (_, needed, node_extras, node_sparse) = self.nodes[node_pos], calls[node_pos]
                if node_extras is not None and extras is not None:  # (one implies the other)
                    extras.setdefault(node.layer.name, {}).update(node_extras)
                for name, g in d_params.items():
                    _accumulate(grads, f"{node.layer.name}/{name}", g)
                if node_sparse is not None and sparse_grads is not None:  # (as for extras)
                    for name, rows in node_sparse.items():
                        _accumulate(sparse_grads, f"{node.layer.name}/{name}", rows)
                for t, g, need in zip(node.inputs, d_ins, needed):
                    if g is not None and need:
                        _accumulate(grad_of, id(t), g)
            # let gradients go (memory); (the names are not used again: no type to keep)
            calls = results = d_ins = d_params = g = None  # type: ignore[assignment]

    # ------------------------------------------------------------------ config
    def get_config(self) -> JSONDict:
        """A JSON-serializable description of the graph (no weights); see
        :func:`mlstm.graph_config.graph_config`."""
        return graph_config(self)

    @classmethod
    def from_config(cls: type[G], config: Mapping[str, Any], dtype: DTypeLike | None = None,
                    seed: int | None = None) -> G:
        """Rebuild a model from :meth:`get_config` (fresh weights); see
        :func:`mlstm.graph_config.graph_from_config`."""
        return graph_from_config(cls, config, dtype=dtype, seed=seed)

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.name!r}: inputs {self.input_names}, outputs {self.output_names}, "
                f"{self.count_params()} params>")


_BACKWARD_KEYWORDS = ("d_logits", "extras", "input_grads")


@functools.lru_cache(maxsize=256)
def _backward_keywords_cached(function: Callable[..., Any]) -> frozenset[str]:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return frozenset()
    named = frozenset(k for k in (*_BACKWARD_KEYWORDS, "sparse_grads") if k in parameters)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return named | frozenset(_BACKWARD_KEYWORDS)
    return named


def _backward_keywords(backward: Callable[..., Any]) -> frozenset[str]:
    """Which of ``d_logits``, ``extras``, ``input_grads`` a layer's ``backward`` accepts:
    the built-in protocol takes all three, the public contract ``backward(d_outputs,
    cache)`` none (and older custom layers some). ``sparse_grads`` (the Embedding's) only
    when named: a ``**kwargs`` backward might hand it on to one that does not take it."""
    return _backward_keywords_cached(getattr(backward, "__func__", backward))


def takes_extras(layer: Layer) -> bool:
    """Whether ``layer.backward`` can report intermediate gradients (``extras``)."""
    return "extras" in _backward_keywords(layer.backward)


def _accumulate(store: dict[Any, _Summed], key: Any, g: _Summed) -> None:
    if key in store:
        store[key] = store[key] + g
    else:
        store[key] = g
