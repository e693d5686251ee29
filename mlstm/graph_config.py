"""A graph as JSON and back: what ``Model.get_config``/``from_config`` and checkpoints use.

Layer classes are written by their registered names and found again through
:data:`mlstm.registry.LAYERS`, so a user's registered layer round-trips like a built-in one.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ._typing import JSONDict
from .registry import LAYERS

G = TypeVar("G")

__all__ = ["graph_config", "graph_from_config"]


def graph_config(graph: Any) -> JSONDict:
    """A JSON-serializable description of ``graph`` (no weights): its layers' classes and
    configs, every call (node) with the tensors it took, and the model's inputs and outputs."""
    node_ids: dict[int, tuple[str, int]] = {}
    for layer in graph.layers:
        for k, node in enumerate(layer._inbound_nodes):
            node_ids[id(node)] = (layer.name, k)

    def ref(t: Any) -> list[Any]:
        name, k = node_ids[id(t.node)]
        return [name, k, t.index]

    return {
        "name": graph.name,
        "layers": [{"class_name": vars(type(l)).get("registered_name") or type(l).__name__,
                    "config": l.get_config()}
                   for l in graph.layers],
        "nodes": [{"layer": n.layer.name, "call": node_ids[id(n)][1],
                   "inputs": [ref(t) for t in n.inputs], "kwargs": n.call_kwargs}
                  for n in graph.nodes if not n.layer.is_input],
        "inputs": [ref(t) for t in graph.inputs],
        "outputs": [ref(t) for t in graph.outputs],
        "single_input": graph._single_input,
        "single_output": graph._single_output,
    }

def graph_from_config(cls: Callable[..., G], config: Mapping[str, Any], dtype: Any = None,
                      seed: int | None = None) -> G:
    """Rebuild a model of class ``cls`` from :func:`graph_config` (fresh weights).

    Layer classes are found in :data:`mlstm.registry.LAYERS`. ``dtype`` overrides every
    input's and layer's dtype; ``seed`` seeds the initializers of every layer that takes
    a seed (leaving the shared stream untouched).
    """
    layers: dict[str, Any] = {}
    for entry in config["layers"]:
        layer_cls = LAYERS.get(entry["class_name"])
        layer_config = dict(entry["config"])
        # an integer input (token ids) keeps its dtype: only float dtypes are overridden
        if dtype is not None and not str(layer_config.get("dtype")).startswith("int"):
            layer_config["dtype"] = dtype
        if seed is not None and _accepts(layer_cls.__init__, "seed"):
            layer_config["seed"] = seed
        layers[layer_config["name"]] = layer_cls.from_config(layer_config)
    produced: dict[tuple[str, int], list[Any]] = {}
    for name, layer in layers.items():
        if layer.is_input:
            produced[(name, 0)] = layer._inbound_nodes[0].outputs

    def get(ref: list[Any]) -> Any:
        name, call, index = ref
        return produced[(name, call)][index]

    for node in config["nodes"]:
        layer = layers[node["layer"]]
        out = layer.call_on_node_inputs([get(r) for r in node["inputs"]],
                                        **dict(node.get("kwargs") or {}))
        produced[(node["layer"], node["call"])] = out if isinstance(out, list) else [out]
    inputs = [get(r) for r in config["inputs"]]
    outputs = [get(r) for r in config["outputs"]]
    return cls(inputs[0] if config.get("single_input") else inputs,
               outputs[0] if config.get("single_output") else outputs,
               name=config.get("name", "model"))


def _accepts(function: Callable[..., Any], name: str) -> bool:
    try:
        return name in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
