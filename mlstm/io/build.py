"""Rebuild a saved architecture knowing every weight's shape before allocating any.

``Model.from_config`` builds each layer as it is called, and building allocates and
initializes the weights: a file asking for ``units=10**9`` would allocate before anything
could compare. Here the same graph is wired from the same config (layers from their
``from_config``, called in the file's order, an LSTM with three inputs given its
``initial_state``), but each new layer's ``_add_param`` is replaced, on that instance only,
by one that records the shape and gives a zero-strided placeholder (one element, any
shape). The bytes the architecture implies are summed as they are recorded, and the
build stops at the first weight that takes the sum over the limit. Only once the shapes
have been compared with the file does :meth:`Skeleton.finish` allocate the weights
(uninitialized: the file's arrays are read straight into them) and make the ``Model``.

No initializer runs on loading, so loading a large model costs its size, not the
orthogonal initializer's QR factorization.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import limits

if TYPE_CHECKING:
    from .._typing import Array, JSONDict, Shape
    from ..layers.base import Layer, SymbolicTensor
    from ..model_protocol import TrainableModel

__all__ = ["Skeleton"]


class Skeleton:
    """The layers of a saved architecture, wired, with placeholder weights.

    Parameters
    ----------
    config : dict
        ``Model.get_config()``, already checked by :mod:`mlstm.io.schema`.
    max_bytes : int
        Refuse (ValueError naming the weight reached) beyond this many bytes of weights.
    label : str
        Starts every message.

    Attributes
    ----------
    weights : dict "layer/weight" -> (shape tuple, numpy dtype)
        Every weight the architecture implies, in build order.
    nbytes : int
        Their total size.
    """

    def __init__(self, config: JSONDict, max_bytes: int, label: str) -> None:
        from ..registry import LAYERS
        self.label, self.max_bytes = label, max_bytes
        self.weights: dict[str, tuple[Shape, np.dtype[Any]]] = {}
        self.nbytes = 0
        self._placeholders: list[tuple[Layer, str, Shape, np.dtype[Any]]] = []
        self.layers: dict[str, Layer] = {}
        for entry in config["layers"]:
            layer = LAYERS.get(entry["class_name"]).from_config(dict(entry["config"]))
            layer._add_param = _Recorder(self, layer)     # this instance only
            self.layers[entry["config"]["name"]] = layer
        produced: dict[tuple[str, int], list[SymbolicTensor]] = {}
        for name, layer in self.layers.items():
            if layer._inbound_nodes:          # an InputLayer: its tensor exists already
                produced[(name, 0)] = layer._inbound_nodes[0].outputs
        for node in config["nodes"]:
            layer = self.layers[node["layer"]]
            inputs = [produced[(r[0], r[1])][r[2]] for r in node["inputs"]]
            out = layer.call_on_node_inputs(inputs, **dict(node.get("kwargs") or {}))
            produced[(node["layer"], node["call"])] = out if isinstance(out, list) else [out]
        self.inputs = [produced[(r[0], r[1])][r[2]] for r in config["inputs"]]
        self.outputs = [produced[(r[0], r[1])][r[2]] for r in config["outputs"]]
        self.single_input = bool(config.get("single_input"))
        self.single_output = bool(config.get("single_output"))
        self.name = config.get("name", "model")

    def add(self, layer: Layer, name: str, shape: Sequence[int]) -> Array:
        """Record one weight; refuse when the total passes ``max_bytes``."""
        shape = tuple(int(d) for d in shape)
        dtype = np.dtype(layer.dtype)
        self.nbytes += math.prod(shape) * dtype.itemsize
        qualified = f"{layer.name}/{name}"
        if self.nbytes > self.max_bytes:
            raise ModelTooLarge(
                f"{self.label}: the architecture asks for more than "
                f"{limits.format_bytes(self.max_bytes)} of weights (reached at {qualified!r}, "
                f"shape {shape} {dtype.name}: {limits.format_bytes(self.nbytes)} so far), "
                "beyond mlstm.io.limits.MAX_MODEL_BYTES; refused before allocating. If the "
                "model is yours, pass load_model(..., max_bytes=...) or raise the limit")
        self.weights[qualified] = (shape, dtype)
        placeholder = np.lib.stride_tricks.as_strided(
            np.zeros(1, dtype), shape=shape, strides=(0,) * len(shape), writeable=True)
        self._placeholders.append((layer, name, shape, dtype))
        return placeholder

    def finish(self) -> TrainableModel:
        """Allocate every weight (uninitialized) and return the ``Model``."""
        from ..registry import MODELS     # not ..model: the loader sits below the model
        for layer, name, shape, dtype in self._placeholders:
            layer.params[name] = np.empty(shape, dtype)
        for layer in self.layers.values():
            layer.__dict__.pop("_add_param", None)
        inputs = self.inputs[0] if self.single_input else self.inputs
        outputs = self.outputs[0] if self.single_output else self.outputs
        return MODELS.get("Model")(inputs, outputs, name=self.name)


class ModelTooLarge(ValueError):
    """The architecture implies more bytes of weights than allowed (passed on unchanged)."""


class _Recorder:
    """Stands in for ``layer._add_param(name, shape, initializer, rng)`` during the build."""

    def __init__(self, skeleton: Skeleton, layer: Layer) -> None:
        self.skeleton, self.layer = skeleton, layer

    def __call__(self, name: str, shape: Sequence[int], initializer: Callable[..., Any],
                 rng: np.random.Generator | None) -> None:
        self.layer.params[name] = self.skeleton.add(self.layer, name, shape)
