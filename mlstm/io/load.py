"""Load a saved model: the config first, then the shapes, then the arrays, each bounded.

The order (every step refuses with a ``ValueError`` naming the file and the part):

1. the zip directory: the file is a zip, ``mlstm.json`` is there and not too large
   (:mod:`mlstm.io.archive`);
2. ``mlstm.json``: parsed strictly and checked against the schema and the graph limits
   (:mod:`mlstm.io.schema`);
3. the architecture, wired with placeholder weights: the bytes it implies, weights and
   optimizer state, against ``max_bytes``; every weight's shape against the file's
   entries (:mod:`mlstm.io.build`);
4. every array's ``.npy`` header against its entry and the architecture, before any data;
5. the data, read straight into the model's weights, each checked finite; the compile
   settings and the optimizer state, all checked before the model is compiled.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import limits
from .archive import Archive
from .build import ModelTooLarge, Skeleton
from .save import layer_state
from .schema import check_meta, parse_meta

if TYPE_CHECKING:
    import numpy as np

    from .._typing import Array, JSONDict, Shape
    from ..model_protocol import TrainableModel
    from ..optimizers.base import Optimizer
    from .archive import NpyHeader

__all__ = ["load_model", "read_config", "CONFIG_MEMBER"]

CONFIG_MEMBER = "mlstm.json"
_FLOAT_DTYPES = ("float32", "float64")
_REBUILD_ERRORS = (KeyError, TypeError, IndexError, AttributeError, ValueError, OverflowError)
_NONFINITE_HINT = ("load_model(..., allow_nonfinite=True) loads it anyway, e.g. to look at a "
                   "diverged checkpoint")


def read_config(path: str | os.PathLike[str]) -> JSONDict:
    """The ``mlstm.json`` of a saved model, checked against the schema (no arrays are read)."""
    with _open(path) as archive:
        return _meta(archive)


def load_model(path: str | os.PathLike[str], compile: bool = True,
               custom_objects: Mapping[str, Any] | None = None, max_bytes: int | None = None,
               allow_nonfinite: bool = False) -> TrainableModel:
    """Rebuild a model saved with :func:`save_model` (``model.save(path)``).

    Parameters
    ----------
    path : str or os.PathLike
    compile : bool
        Restore the compile settings and the optimizer state (moments, step count).
    custom_objects : dict, optional
        Name -> class or instance for losses and optimizers that are not mlstm's own
        (a custom :class:`mlstm.losses.Loss` subclass, or a plain loss function, by the
        name it was saved under).
    max_bytes : int, optional
        Refuse a file whose architecture implies more bytes of weights and optimizer state;
        :data:`mlstm.io.limits.MAX_MODEL_BYTES` (1 GiB) by default.
    allow_nonfinite : bool
        Load weights and optimizer state holding NaN or inf (refused by default).

    Returns
    -------
    Model
        With ``model.training_state`` set: ``fit`` keyword arguments that resume training
        when the file was written by fit's checkpoint option, else None.

    Raises
    ------
    ValueError
        The file is not an mlstm model, is corrupted or truncated, holds an object
        (pickled) array, a key the format does not define, non-finite weights, asks for
        more than the limits of :mod:`mlstm.io.limits`, or does not match the
        architecture it declares.
    """
    max_bytes = limits.MAX_MODEL_BYTES if max_bytes is None else int(max_bytes)
    with _open(path) as archive:
        meta = _meta(archive)
        label = archive.label
        skeleton = _skeleton(meta["model"], max_bytes, label)
        entries = meta["weights"]
        planned = skeleton.weights
        if sorted(e["name"] for e in entries) != sorted(planned):
            raise ValueError(f"{label}: weights {[e['name'] for e in entries]} do not match "
                             f"the architecture's {list(planned)}")
        compiled = meta.get("compile") if compile else None
        state_entries = compiled["optimizer"]["state"] if compiled is not None else []
        for entry in state_entries:
            param = entry["name"].partition("/")[2]
            if param not in planned:
                raise ValueError(f"{label}: optimizer state {entry['name']!r} is for an "
                                 f"unknown parameter; parameters are {list(planned)}")
        for entry in entries + state_entries:     # what the file declares, before any header
            name = entry["name"]
            shape = planned[name if name in planned else name.partition("/")[2]][0]
            if tuple(entry["shape"]) != shape:
                raise ValueError(f"{label}: array {name!r}: the file declares shape "
                                 f"{entry['shape']}, the architecture needs {shape}")
        total = skeleton.nbytes + sum(
            math.prod(shape) * dtype.itemsize
            for shape, dtype in (planned[e["name"].partition("/")[2]] for e in state_entries))
        if total > max_bytes:
            raise ValueError(f"{label}: the weights and optimizer state take up to "
                             f"{limits.format_bytes(total)}, beyond "
                             f"{limits.format_bytes(max_bytes)} (mlstm.io.limits."
                             "MAX_MODEL_BYTES); pass load_model(..., max_bytes=...) to allow it")
        headers = {e["name"]: _header(archive, e, *planned[e["name"]]) for e in entries}
        state_headers = [(e, _header(archive, e, *planned[e["name"].partition("/")[2]]))
                         for e in state_entries]
        model = skeleton.finish()
        params = model.params
        if [e["name"] for e in entries] != list(params):
            raise ValueError(f"{label}: weights {[e['name'] for e in entries]} are not in the "
                             f"order of the architecture's {list(params)}")
        for entry in entries:
            name = entry["name"]
            archive.read_into(entry["key"] + ".npy", headers[name], params[name],
                              f"array {name!r}")
            if not allow_nonfinite:
                _check_finite(params[name], f"{label}: weight {name!r}")
        _read_layer_state(archive, meta, model, allow_nonfinite)
        if compiled is not None:
            state: dict[str, Any] = {"iterations": compiled["optimizer"]["iterations"]}
            for entry, header in state_headers:
                value = archive.read_array(entry["key"] + ".npy", header,
                                           f"array {entry['name']!r}")
                if not allow_nonfinite:
                    _check_finite(value, f"{label}: optimizer state {entry['name']!r}")
                state[entry["name"]] = value
            settings, optimizer = _compile_settings(compiled, label, custom_objects or {})
            _compile(model, settings, optimizer, state, label)
    model.training_state = meta.get("training_state")
    return model


def _read_layer_state(archive: Archive, meta: JSONDict, model: TrainableModel,
                      allow_nonfinite: bool) -> None:
    """Read the layers' non-trainable state (moving statistics) into the built model.

    These arrays are a few per layer and as long as a layer's feature axis, so they are
    built with the layer (not planned by the skeleton) and read here, each header checked
    against the built array first.
    """
    label = archive.label
    state = layer_state(model)
    entries = meta.get("state", [])      # files written before layers had state: none
    if [e["name"] for e in entries] != list(state):
        raise ValueError(f"{label}: state arrays {[e['name'] for e in entries]} do not match "
                         f"the architecture's {list(state)}")
    for entry in entries:
        name, target = entry["name"], state[entry["name"]]
        if tuple(entry["shape"]) != target.shape:
            raise ValueError(f"{label}: array {name!r}: the file declares shape "
                             f"{entry['shape']}, the architecture needs {target.shape}")
        header = _header(archive, entry, target.shape, target.dtype)
        archive.read_into(entry["key"] + ".npy", header, target, f"array {name!r}")
        if not allow_nonfinite:
            _check_finite(target, f"{label}: state {name!r}")


def _open(path: str | os.PathLike[str]) -> Archive:
    if os.fspath(path).endswith(".keras"):
        raise ValueError(f"load_model: {os.fspath(path)!r} is a Keras file; load it with "
                         "mlstm.load_keras(path)")
    return Archive(path, f"load_model: {os.fspath(path)!r}", "an mlstm model file")


def _meta(archive: Archive) -> JSONDict:
    label = archive.label
    if CONFIG_MEMBER not in archive.names():
        raise ValueError(f"{label} is not an mlstm model: it has no {CONFIG_MEMBER} "
                         f"(members {archive.names()[:8]}). For arrays saved with np.savez, "
                         "load them with np.load and pass them to model.set_weights")
    raw = archive.read_text(CONFIG_MEMBER, limits.MAX_CONFIG_BYTES, "the config",
                            "MAX_CONFIG_BYTES")
    return check_meta(parse_meta(raw, label), label)


def _skeleton(config: JSONDict, max_bytes: int, label: str) -> Skeleton:
    try:
        return Skeleton(config, max_bytes, label)
    except ModelTooLarge:
        raise
    except RecursionError:
        raise ValueError(f"{label}: its architecture cannot be rebuilt: the graph is too "
                         "deep") from None
    except _REBUILD_ERRORS as exc:
        raise ValueError(f"{label}: its architecture cannot be rebuilt: "
                         f"{type(exc).__name__}: {exc}") from None


def _header(archive: Archive, entry: JSONDict, shape: Shape,
            dtype: np.dtype[Any]) -> NpyHeader:
    """The checked ``.npy`` header of a weights/state entry (no data read)."""
    name, label = entry["name"], archive.label
    header = archive.header(entry["key"] + ".npy", f"array {name!r}")
    if header.dtype.name not in _FLOAT_DTYPES:
        raise ValueError(f"{label}: array {name!r} must be float32 or float64, got "
                         f"{header.dtype}")
    if header.shape != shape or list(header.shape) != entry["shape"]:
        raise ValueError(f"{label}: array {name!r} has shape {header.shape}; the file "
                         f"declares {entry['shape']} and the model needs {shape}")
    if header.dtype != dtype or entry["dtype"] != dtype.name:
        raise ValueError(f"{label}: array {name!r} has dtype {header.dtype} (declared "
                         f"{entry['dtype']!r}), the model's is {dtype.name}")
    archive.check_size(entry["key"] + ".npy", header, f"array {name!r}")
    return header


def _check_finite(array: Array, label: str) -> None:
    from ..validation import check_finite_weights
    check_finite_weights(array, label, hint=_NONFINITE_HINT)


def _compile_settings(compiled: JSONDict, label: str, custom_objects: Mapping[str, Any],
                      ) -> tuple[dict[str, Any], Optimizer]:
    """``(compile kwargs, optimizer)`` from the file's compile settings."""
    from ..registry import OPTIMIZERS
    from .. import losses as losses_module

    try:
        loss = [None if spec is None else
                _rebuild(spec, {**{cls.__name__: cls for cls in losses_module.LOSSES.values()},
                                "FunctionLoss": None}, custom_objects, "loss", label)
                for spec in compiled["loss"]]
        optimizer = _rebuild(compiled["optimizer"],
                             {name: OPTIMIZERS.get(name) for name in OPTIMIZERS.names()},
                             custom_objects, "optimizer", label)
        settings = dict(loss=loss, loss_weights=list(compiled["loss_weights"]),
                        metrics=[list(m) for m in compiled["metrics"]])
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        raise ValueError(f"{label}: its compile settings are malformed: "
                         f"{type(exc).__name__}: {exc}") from None
    return settings, optimizer


def _compile(model: TrainableModel, settings: dict[str, Any], optimizer: Optimizer,
             state: dict[str, Any], label: str) -> None:
    """Compile ``model`` and set the optimizer state, refusing (model untouched) on error."""
    # Set the state on a throwaway twin first: a refusal there (a slot the optimizer does
    # not have) must not leave the loaded model half set.
    probe = optimizer.from_config(optimizer.get_config())
    try:
        probe.set_state(state)
    except (ValueError, KeyError) as exc:
        raise ValueError(f"{label}: optimizer state does not fit {type(optimizer).__name__}: "
                         f"{exc}") from None
    try:
        model.compile(optimizer=optimizer, **settings)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{label}: its compile settings are refused: {exc}") from None
    assert model.optimizer is not None      # compiled just above
    model.optimizer.set_state(state)


def _rebuild(spec: JSONDict, known: Mapping[str, Any], custom_objects: Mapping[str, Any],
             kind: str, label: str) -> Any:
    """A loss or optimizer from ``{"class_name", "config"}``; custom ones by name."""
    class_name, config = spec["class_name"], dict(spec["config"])
    name = config.get("name")
    for key in (name, class_name):
        if isinstance(key, str) and key in custom_objects:
            obj = custom_objects[key]
            if isinstance(obj, type):
                config.pop("name", None)
                return obj.from_config(spec["config"]) if hasattr(obj, "from_config") \
                    else obj(**config)
            return obj
    cls = known.get(class_name) if isinstance(class_name, str) else None
    if cls is None:
        raise ValueError(f"{label}: the {kind} {name or class_name!r} ({class_name}) is not "
                         f"built in; pass load_model(..., custom_objects={{{name!r}: ...}}) "
                         "or load_model(..., compile=False)")
    try:
        if kind == "optimizer":
            return cls.from_config(config)
        config.pop("name", None)
        return cls(**config)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{label}: the {kind} settings {class_name} are refused: {exc}") \
            from None
