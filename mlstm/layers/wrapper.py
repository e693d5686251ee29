"""What the wrappers (TimeDistributed, Bidirectional) share: holding other layers.

A wrapper holds one or more *wrapped* layers that are not nodes of the graph: the wrapper
builds them, runs them inside its own ``forward``/``backward``, and shows their weights
as its own, named ``"<wrapped layer>/<weight>"`` (``"bidirectional/forward_lstm/kernel"``,
as Keras names them, without Keras' ``lstm_cell`` level).

The arrays live in the wrapper's ``params`` and ``state`` dicts; a wrapped layer's own
``params`` and ``state`` are views of them under its prefix (:class:`PrefixedView`), and a
wrapped layer creates its weights through the wrapper's ``_add_param``. So an optimizer
step, ``set_weights``, or the loader (which records every ``_add_param`` of a layer before
allocating, :mod:`mlstm.io.build`, and then puts the arrays in the wrapper's dict) reaches
the wrapped layers with nothing to keep in sync.

A wrapped layer is given as a layer (unbuilt, not called on anything yet) or as its config
``{"class_name": registered name, "config": {...}}``; ``get_config`` writes the latter,
so configs, checkpoints and clones rebuild wrappers like any other layer. Wrapped layers
compute in the wrapper's dtype (their configs carry none) and train with the wrapper
(``trainable`` is the wrapper's).
"""
from __future__ import annotations

import functools
import inspect
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import Any

import numpy as np

from .._typing import Array, DTypeLike, IntArray, JSONDict
from ..initializers import Initializer
from ..registry import LAYERS
from .base import Layer, SymbolicTensor, TensorSpec, format_shape

__all__ = ["Wrapper", "wrapped_layer", "call_backward", "PrefixedView"]

_BACKWARD_KEYWORDS = ("extras", "input_grads")


def call_backward(layer: Layer, d_outputs: Sequence[Array | None], cache: Any,
                  outputs: Sequence[Array], extras: dict[str, Any] | None = None,
                  input_grads: Sequence[bool] | None = None
                  ) -> tuple[list[Array | None], dict[str, Array]]:
    """``layer.backward`` with the keywords it accepts (as the graph calls it): the built-in
    protocol takes ``extras`` and ``input_grads`` and None for an output with no gradient;
    a layer of the public contract, ``backward(d_outputs, cache)``, gets zeros shaped like
    that output (``outputs``) instead."""
    parameters: Mapping[str, inspect.Parameter]
    try:
        parameters = inspect.signature(layer.backward).parameters
    except (TypeError, ValueError):
        parameters = {}
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    kwargs: dict[str, Any] = {}
    if takes_all or "extras" in parameters:
        kwargs["extras"] = extras
    if takes_all or "input_grads" in parameters:
        kwargs["input_grads"] = input_grads
    if not (takes_all or "d_logits" in parameters):
        d_outputs = [np.zeros_like(y) if d is None else d for d, y in zip(d_outputs, outputs)]
    return layer.backward(d_outputs, cache, **kwargs)


class PrefixedView(MutableMapping[str, Array]):
    """The entries ``"<prefix>/<key>"`` of ``store`` seen as ``key`` (a wrapped layer's
    ``params`` or ``state`` inside its wrapper's). Keys keep the store's order."""

    def __init__(self, store: MutableMapping[str, Array], prefix: str) -> None:
        self._store, self._prefix = store, prefix + "/"

    def __getitem__(self, key: str) -> Array:
        return self._store[self._prefix + key]

    def __setitem__(self, key: str, value: Array) -> None:
        self._store[self._prefix + key] = value

    def __delitem__(self, key: str) -> None:
        del self._store[self._prefix + key]

    def __iter__(self) -> Iterator[str]:
        n = len(self._prefix)
        return (k[n:] for k in list(self._store) if k.startswith(self._prefix))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"PrefixedView({dict(self)!r})"


def wrapped_layer(owner_name: str, option: str, spec: Layer | Mapping[str, Any]) -> Layer:
    """An unbuilt layer from ``spec``: a :class:`Layer`, or ``{"class_name", "config"}``."""
    if isinstance(spec, Layer):
        if spec.built or spec._inbound_nodes:
            raise ValueError(f"{owner_name}: {option} {spec!r} has already been built or "
                             "called; wrap a new layer (its weights become the wrapper's)")
        if spec.is_input:
            raise ValueError(f"{owner_name}: {option} cannot be an input layer")
        return spec
    if isinstance(spec, dict) and set(spec) == {"class_name", "config"} \
            and isinstance(spec["config"], dict):
        cls = LAYERS.get(spec["class_name"])
        config = dict(spec["config"])
        config.pop("dtype", None)
        return cls.from_config(config)
    raise TypeError(f"{owner_name}: {option} must be a layer or a config "
                    f"{{'class_name': ..., 'config': {{...}}}}, got {type(spec).__name__}")


class Wrapper(Layer):
    """Base of the layers that hold other layers (not registered itself).

    Subclasses set ``self.wrapped`` (the wrapped layers, in weight order) in their
    constructor and call :meth:`build_wrapped` for each from ``build``.
    """

    def __init__(self, name: str | None = None, dtype: DTypeLike | None = None,
                 trainable: bool = True, seed: int | None = None) -> None:
        super().__init__(name=name, dtype=dtype, trainable=trainable, seed=seed)
        self.wrapped: list[Layer] = []

    @property
    def _label(self) -> str:
        return f"{type(self).__name__} {self.name!r}"

    def _adopt(self, layers: Sequence[Layer]) -> None:
        """Hold ``layers``: each must be trainable as the wrapper is, and of its dtype."""
        for layer in layers:
            if not layer.trainable and self.trainable:
                raise ValueError(f"{self._label}: wrapped layer {layer.name!r} is not trainable "
                                 "while the wrapper is; mlstm trains a wrapper as a whole")
            if layer.dtype is not None and self.dtype is not None and layer.dtype != self.dtype:
                raise ValueError(f"{self._label}: wrapped layer {layer.name!r} has dtype "
                                 f"{layer.dtype}, the wrapper {self.dtype}")
        names = [layer.name for layer in layers]
        if len(set(names)) != len(names):
            raise ValueError(f"{self._label}: wrapped layers need distinct names, got {names}")
        self.wrapped = list(layers)
        for layer in self.wrapped:
            # the wrapped layer's weights live in the wrapper's dicts, made by its _add_param
            layer.params = PrefixedView(self.params, layer.name)
            layer.state = PrefixedView(self.state, layer.name)
            # (an instance attribute shadowing the method, on purpose)
            layer._add_param = functools.partial(  # type: ignore[method-assign]
                self._add_wrapped_param, layer.name)

    def _add_wrapped_param(self, prefix: str, name: str, shape: Sequence[int], initializer: str | Initializer,
                           rng: np.random.Generator) -> None:
        # looked up at call time: the loader replaces the wrapper's _add_param on the instance
        self._add_param(f"{prefix}/{name}", shape, initializer, rng)

    @property
    def uses_rng(self) -> bool:  # type: ignore[override]  # (read-only here: from the layers)
        return any(layer.uses_rng for layer in self.wrapped)

    def wrapped_rngs(self, rng: np.random.Generator | None
                     ) -> Sequence[np.random.Generator | None]:
        """One generator per wrapped layer (children of ``rng``), or Nones."""
        if rng is None:
            return [None] * len(self.wrapped)
        return rng.spawn(len(self.wrapped))

    def build_wrapped(self, layer: Layer, input_specs: Sequence[TensorSpec], seed_index: int = 0
                      ) -> list[TensorSpec]:
        """Build ``layer`` for inputs ``[(shape without N, has_mask), ...]``, checked as a call
        would check them; returns its output specs ``[(shape, has_mask), ...]``."""
        if layer.dtype is not None and layer.dtype != self.dtype:
            raise ValueError(f"{self._label}: wrapped layer {layer.name!r} has dtype "
                             f"{layer.dtype}, the wrapper {self.dtype}")
        layer.dtype = self.dtype
        if layer.seed is None and self.seed is not None:
            # a seeded wrapper seeds its layers, each differently (two directions of a
            # Bidirectional must not start from the same weights)
            layer.seed = int(np.random.default_rng([self.seed, seed_index]).integers(2 ** 31))
        # placeholders for the checks only (built wrappers have a dtype; no node: never in a graph)
        placeholders = [SymbolicTensor(shape, self.dtype, None,  # type: ignore[arg-type]
                                       0, has_mask) for shape, has_mask in input_specs]
        specs = layer._input_specs(placeholders, {})
        if not layer.built:
            layer.build([s for s, _ in specs])
            layer._built_shapes = [s for s, _ in specs]
            layer.built = True
        else:
            layer._check_input_shapes([s for s, _ in specs])
        return layer.output_specs(specs, {})

    def weight_order(self) -> None:
        """``param_names`` and ``state_names`` of the wrapper: the wrapped layers' weights,
        ``"<layer>/<weight>"``, layer by layer in each layer's order (Keras' order)."""
        self.param_names = tuple(f"{layer.name}/{k}" for layer in self.wrapped
                                 for k in layer.param_names if k in layer.params)
        self.state_names = tuple(f"{layer.name}/{k}" for layer in self.wrapped
                                 for k in layer.state_names if k in layer.state)

    def split_weight_name(self, weight: str) -> tuple[Layer, str]:
        """``(wrapped layer, its weight name)`` for a weight name of the wrapper."""
        name, _, key = weight.partition("/")
        for layer in self.wrapped:
            if layer.name == name:
                return layer, key
        raise KeyError(weight)

    @staticmethod
    def prefixed(layer: Layer, grads: Mapping[str, Array]) -> dict[str, Array]:
        """``{"<layer>/<weight>": g}`` from a wrapped layer's ``{weight: g}``."""
        return {f"{layer.name}/{k}": g for k, g in grads.items()}

    def layer_config(self, layer: Layer) -> JSONDict:
        """``{"class_name", "config"}`` of a wrapped layer (without dtype: the wrapper's)."""
        config = dict(layer.get_config())
        config.pop("dtype", None)
        return {"class_name": vars(type(layer)).get("registered_name") or type(layer).__name__,
                "config": config}

    # ----------------------------------------------------------------- questions asked
    def describe_weight_entry(self, weight: str, index: tuple[int, ...]) -> str:
        layer, key = self.split_weight_name(weight)
        return layer.describe_weight_entry(key, index)

    def gate_columns(self, weight: str) -> dict[str, IntArray] | None:
        layer, key = self.split_weight_name(weight)
        return layer.gate_columns(key)

    def _shape_text(self, shape: Sequence[int | None]) -> str:
        return format_shape((None,) + tuple(shape))
