"""The schema of ``mlstm.json``: every key a file may hold, its type and its bounds.

A saved model carries data, never instructions. The JSON is parsed with no NaN, no
Infinity and no number beyond a float (each refused by name), then checked here key by
key: a key the format does not define is refused with a ``ValueError`` naming it, at the
top level, in the compile settings, in each array entry and in ``training_state``.

``training_state`` holds only what resuming needs, and ``fit(**model.training_state)``
passes nothing else: the epoch to start from and the last, the batch size, the seed of the
shuffling and whether to shuffle. The optimizer's state (moments, step count) is stored
with the compile settings. A path, a callback or any other key is refused: a file can
never make ``fit`` write a checkpoint, or run anything.

The architecture is bounded before it is built: layer count, layer calls, the depth of the
graph and the inputs of any one call (:mod:`mlstm.io.limits`); each reference to a tensor
must point to a layer call that comes earlier in the file.
"""
from __future__ import annotations

import json
import math
from collections.abc import Collection
from typing import TYPE_CHECKING, Any, NoReturn, TypeGuard, cast

from . import limits

if TYPE_CHECKING:
    from .._typing import JSONDict

__all__ = ["parse_meta", "check_meta", "check_training_state", "TRAINING_STATE_KEYS",
           "OPTIONAL_TRAINING_STATE_KEYS",
           "FORMAT", "FORMAT_VERSION"]

FORMAT = "mlstm.model"
FORMAT_VERSION = 1
_MAX_INT = 2 ** 63 - 1

_TOP_KEYS = ("format", "format_version", "mlstm_version", "model", "weights", "state",
             "compile", "training_state")
_MODEL_KEYS = ("name", "layers", "nodes", "inputs", "outputs", "single_input", "single_output")
_COMPILE_KEYS = ("loss", "loss_weights", "metrics", "optimizer")
_OPTIMIZER_KEYS = ("class_name", "config", "iterations", "state")
_ENTRY_KEYS = ("name", "key", "shape", "dtype")

#: ``fit`` keyword arguments a checkpoint may carry: name -> (type, smallest value).
TRAINING_STATE_KEYS = {"initial_epoch": (int, 0), "epochs": (int, 0), "batch_size": (int, 1),
                       "seed": (int, 0), "shuffle": (bool, None)}
#: Keys a checkpoint may carry when fit had them (same rules as above).
OPTIONAL_TRAINING_STATE_KEYS = {"steps_per_epoch": (int, 1)}


# --------------------------------------------------------------------------- parse
def parse_meta(raw: bytes, label: str) -> Any:
    """``mlstm.json``'s bytes -> dict, bounded and strict (see the module docstring)."""
    items = raw.count(b",") + raw.count(b"[") + raw.count(b"{")
    if items > limits.MAX_CONFIG_ITEMS:
        raise ValueError(f"{label}: mlstm.json holds about {items} JSON values, more than "
                         f"mlstm.io.limits.MAX_CONFIG_ITEMS = {limits.MAX_CONFIG_ITEMS}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{label}: mlstm.json is not valid JSON (not UTF-8: {exc})") from None
    try:
        meta = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError(f"{label}: mlstm.json is not valid JSON for mlstm (nested too "
                         "deeply)") from None
    except ValueError as exc:     # JSONDecodeError, a 5000-digit int, NaN, 1e400
        raise ValueError(f"{label}: mlstm.json is not valid JSON ({_short(exc)})") from None
    return meta


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a number mlstm accepts in a file")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:30]} is beyond the range of a float")
    return value


# --------------------------------------------------------------------------- check
def check_meta(meta: Any, label: str) -> JSONDict:
    """Check a parsed ``mlstm.json`` against the schema; return it."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        kind = meta.get("format") if isinstance(meta, dict) else None
        raise ValueError(f"{label} is not an mlstm model (format {_short(kind)})"
                         + ("; it holds weights only: build the model and call "
                            "model.load_weights(path)" if kind == "mlstm.weights" else ""))
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"{label} has format version {_short(version)}; this mlstm reads "
                         f"version {FORMAT_VERSION}")
    _keys(meta, _TOP_KEYS, "mlstm.json", label)
    _check_model(meta.get("model"), label)
    _entries(meta.get("weights"), "weights", label)
    if "state" in meta:          # layers' non-trainable state; files before it have none
        _entries(meta["state"], "state", label)
    compiled = meta.get("compile")
    if compiled is not None:
        _keys(_dict(compiled, "compile", label), _COMPILE_KEYS, "compile", label)
        optimizer = _dict(compiled.get("optimizer"), "compile.optimizer", label)
        _keys(optimizer, _OPTIMIZER_KEYS, "compile.optimizer", label)
        _dict(optimizer.get("config"), "compile.optimizer.config", label)
        iterations = optimizer.get("iterations")
        if not _is_int(iterations) or not 0 <= iterations <= 2 ** 53:
            raise ValueError(f"{label}: optimizer iterations must be an int in [0, 2**53], "
                             f"got {_short(iterations)}")
        _entries(optimizer.get("state"), "compile.optimizer.state", label)
    check_training_state(meta.get("training_state"), f"{label}: training_state")
    return meta


def check_training_state(state: object, label: str) -> dict[str, Any] | None:
    """``state`` is None or exactly :data:`TRAINING_STATE_KEYS` (and any of
    :data:`OPTIONAL_TRAINING_STATE_KEYS`), each in its bounds.

    Used on loading and on saving, so a file can neither carry nor be given anything else.
    """
    if state is None:
        return None
    if not isinstance(state, dict):
        raise ValueError(f"{label} must be a dict of fit arguments, got "
                         f"{type(state).__name__}")
    allowed = {**TRAINING_STATE_KEYS, **OPTIONAL_TRAINING_STATE_KEYS}
    unknown = [k for k in state if k not in allowed]
    if unknown:
        raise ValueError(f"{label} holds {_short(unknown[0])}, which is not allowed: a "
                         f"checkpoint carries only {list(allowed)} (data to resume from, "
                         "never a path or a callback)")
    for key, (kind, low) in allowed.items():
        if key not in state:
            if key in OPTIONAL_TRAINING_STATE_KEYS:
                continue
            raise ValueError(f"{label} lacks {key!r}")
        value = state[key]
        if kind is bool:
            if not isinstance(value, bool):
                raise ValueError(f"{label}: {key} must be true or false, got {_short(value)}")
        elif not _is_int(value) or not cast(int, low) <= value <= _MAX_INT:   # int keys: int low
            raise ValueError(f"{label}: {key} must be an int in [{low}, 2**63 - 1], got "
                             f"{_short(value)}")
    if state["initial_epoch"] > state["epochs"]:
        raise ValueError(f"{label}: initial_epoch {state['initial_epoch']} is past epochs "
                         f"{state['epochs']}")
    return dict(state)


def _check_model(model: object, label: str) -> None:
    """Shape of the architecture and the graph limits (the layers check their own configs)."""
    if not isinstance(model, dict):
        raise ValueError(f"{label}: its architecture cannot be rebuilt: 'model' must be a "
                         f"JSON object, got {type(model).__name__}")
    _keys(model, _MODEL_KEYS, "model", label)
    layers = _list(model.get("layers"), "model.layers", label, limits.MAX_LAYERS, "MAX_LAYERS")
    nodes = _list(model.get("nodes"), "model.nodes", label, limits.MAX_NODES, "MAX_NODES")
    names: set[str] = set()
    for k, entry in enumerate(layers):
        entry = _dict(entry, f"model.layers[{k}]", label)
        config = _dict(entry.get("config"), f"model.layers[{k}].config", label)
        if not isinstance(entry.get("class_name"), str) or not isinstance(config.get("name"),
                                                                        str):
            raise ValueError(f"{label}: model.layers[{k}] needs a class_name and a name")
        names.add(config["name"])
    called: set[Any] = set()
    for k, node in enumerate(nodes):
        called.add(_dict(node, f"model.nodes[{k}]", label).get("layer"))
    # A layer never called in "nodes" is a source (an Input): its one tensor has depth 0.
    depth = {(name, 0): 0 for name in names if name not in called}
    for k, node in enumerate(nodes):
        where = f"model.nodes[{k}]"
        if node.get("kwargs"):
            raise ValueError(f"{label}: {where} has call arguments "
                             f"{_short(sorted(node['kwargs']))}; a saved call has none")
        refs = _list(node.get("inputs"), f"{where}.inputs", label, limits.MAX_NODE_INPUTS,
                     "MAX_NODE_INPUTS")
        key = (node.get("layer"), node.get("call"))
        if (key[0] not in names or not _is_int(key[1]) or key[1] < 0 or key in depth):
            raise ValueError(f"{label}: {where} must name a layer of model.layers and a new "
                             f"call number, got {_short(list(key))}")
        level = 1 + max((depth[_ref(r, depth, f'{where}.inputs', label)] for r in refs),
                        default=0)
        if level > limits.MAX_DEPTH:
            raise ValueError(f"{label}: the graph is deeper than mlstm.io.limits.MAX_DEPTH = "
                             f"{limits.MAX_DEPTH} layer calls")
        depth[key] = level
    for role in ("inputs", "outputs"):
        for r in _list(model.get(role), f"model.{role}", label, limits.MAX_NODE_INPUTS,
                       "MAX_NODE_INPUTS"):
            _ref(r, depth, f"model.{role}", label)


def _ref(ref: object, depth: dict[tuple[Any, Any], int], where: str,
         label: str) -> tuple[str, int]:
    """``(layer, call)`` of a tensor reference ``[layer, call, index]`` made earlier."""
    if (not isinstance(ref, list) or len(ref) != 3 or not isinstance(ref[0], str)
            or not all(_is_int(v) and v >= 0 for v in ref[1:])):
        raise ValueError(f"{label}: {where}: a tensor reference is [layer, call, index], got "
                         f"{_short(ref)}")
    key = (ref[0], ref[1])
    if key not in depth:
        raise ValueError(f"{label}: {where} refers to {_short(ref)}, a layer call that does "
                         "not come earlier in the file")
    return key


def _entries(entries: object, where: str, label: str) -> list[JSONDict]:
    if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get("name"), str)
            and isinstance(e.get("key"), str) for e in entries):
        raise ValueError(f"{label}: {where.split('.')[-1]!r} must be a list of "
                         "{name, key, shape, dtype}")
    if len(entries) > 4 * limits.MAX_LAYERS:
        raise ValueError(f"{label}: {where} lists {len(entries)} arrays, more than "
                         f"4 x mlstm.io.limits.MAX_LAYERS")
    for e in entries:
        _keys(e, _ENTRY_KEYS, f"{where} entry {e['name']!r}", label)
        shape = e.get("shape")
        if not isinstance(shape, list) or len(shape) > 32 or not all(
                _is_int(d) and 0 <= d <= _MAX_INT for d in shape):
            raise ValueError(f"{label}: {where} entry {e['name']!r} has shape "
                             f"{_short(shape)}; a shape is a list of non-negative ints")
    return entries


def _keys(mapping: JSONDict, allowed: Collection[str], where: str, label: str) -> None:
    unknown = [k for k in mapping if k not in allowed]
    if unknown:
        raise ValueError(f"{label}: {where} holds the key {_short(unknown[0])}, which the "
                         f"format does not define (it defines {list(allowed)})")


def _dict(value: object, where: str, label: str) -> JSONDict:
    if not isinstance(value, dict):
        raise ValueError(f"{label}: {where} must be a JSON object, got {type(value).__name__}")
    return value


def _list(value: object, where: str, label: str, most: int,
          limit_name: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{label}: {where} must be a list, got {type(value).__name__}")
    if len(value) > most:
        raise ValueError(f"{label}: {where} has {len(value)} entries, more than "
                         f"mlstm.io.limits.{limit_name} = {most}")
    return value


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _short(value: object) -> str:
    """``repr(value)`` cut to a readable length (a file may hold a 400-digit number)."""
    text = repr(value) if not isinstance(value, BaseException) else str(value)
    return text if len(text) <= 60 else f"{text[:40]}...{text[-10:]} ({len(text)} characters)"
