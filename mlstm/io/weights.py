"""``model.save_weights`` / ``model.load_weights``: the weights alone, in a ``.weights.npz``.

The same container as a whole model (:mod:`mlstm.io.save`): a zip of ``.npy`` arrays and an
``mlstm.json`` naming them, written atomically, read header first (every array's shape and
dtype are compared with the model's before its data is read) and never unpickled. The
architecture and the optimizer are not in the file: the model that loads it must have the
same weights, by name, shape and dtype.
"""
from __future__ import annotations

import json
import os

from typing import TYPE_CHECKING

import numpy as np

from . import limits
from .archive import Archive
from .load import CONFIG_MEMBER, _header
from .save import _atomic_write, _write_archive

if TYPE_CHECKING:
    from .._typing import Array, JSONDict
    from ..model_protocol import TrainableModel

__all__ = ["save_weights", "load_weights", "WEIGHTS_SUFFIX", "WEIGHTS_FORMAT"]

WEIGHTS_SUFFIX = ".weights.npz"
WEIGHTS_FORMAT = "mlstm.weights"
_WEIGHTS_KEYS = {"format", "format_version", "model", "weights"}


def _target(path: str | os.PathLike[str], method: str, suffix: bool = True) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{method}: path must be a str or os.PathLike, got "
                        f"{type(path).__name__}")
    target = os.fspath(path)
    if suffix and not target.endswith(WEIGHTS_SUFFIX):
        raise ValueError(f"{method}: the file name must end with {WEIGHTS_SUFFIX!r} (as Keras "
                         f"wants .weights.h5), got {target!r}")
    return target


def _named_weights(model: TrainableModel) -> dict[str, Array]:
    """``{"layer/weight": live array}`` in ``model.get_weights()`` order: the parameters and
    the layers' non-trainable state (moving statistics), as Keras' weights files hold both."""
    return {name: layer._weight_array(key) for layer in model.layers
            for name, key in zip(layer.weight_names, layer._weight_keys())}


def save_weights(model: TrainableModel, path: str | os.PathLike[str]) -> None:
    """Write every weight of ``model`` to ``path`` (``*.weights.npz``), atomically."""
    target = _target(path, "save_weights")
    directory = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(directory):
        raise ValueError(f"save_weights: directory {directory!r} does not exist")
    arrays: dict[str, Array] = {}
    entries: list[JSONDict] = []
    for k, (name, value) in enumerate(_named_weights(model).items()):
        arrays[f"w{k}"] = value
        entries.append({"name": name, "key": f"w{k}", "shape": list(value.shape),
                        "dtype": value.dtype.name})
    meta = {"format": WEIGHTS_FORMAT, "format_version": 1, "model": model.name,
            "weights": entries}
    _atomic_write(target, lambda f: _write_archive(f, meta, arrays))


def load_weights(model: TrainableModel, path: str | os.PathLike[str]) -> None:
    """Set ``model``'s weights from a :func:`save_weights` file; nothing changes unless every
    array is there with the model's name, shape and dtype, and finite."""
    target = _target(path, "load_weights", suffix=False)    # the content decides
    with Archive(target, f"load_weights: {target!r}", "an mlstm weights file") as archive:
        label = archive.label
        if CONFIG_MEMBER not in archive.names():
            raise ValueError(f"{label} is not an mlstm weights file: it has no {CONFIG_MEMBER}")
        try:
            meta = json.loads(archive.read_text(CONFIG_MEMBER, limits.MAX_CONFIG_BYTES,
                                                CONFIG_MEMBER, "MAX_CONFIG_BYTES"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{label}: {CONFIG_MEMBER} is not valid JSON ({exc})") from None
        kind = meta.get("format") if isinstance(meta, dict) else None
        if kind != WEIGHTS_FORMAT:
            raise ValueError(f"{label} is not an mlstm weights file (format {kind!r})"
                             + ("; it is a whole model: mlstm.load_model(path)"
                                if kind == "mlstm.model" else ""))
        unknown = sorted(set(meta) - _WEIGHTS_KEYS)
        if unknown:
            raise ValueError(f"{label}: unknown keys {unknown} in {CONFIG_MEMBER}")
        entries = meta.get("weights")
        names = ([e.get("name") if isinstance(e, dict) else None for e in entries]
                 if isinstance(entries, list) else None)
        current = _named_weights(model)
        if names != list(current):
            raise ValueError(f"{label}: its weights {names} do not match the model's "
                             f"{list(current)}")
        headers = [_header(archive, entry, array.shape, array.dtype)
                   for entry, array in zip(entries, current.values())]
        weights = [archive.read_array(entry["key"] + ".npy", header, f"array {entry['name']!r}")
                   for entry, header in zip(entries, headers)]
    model.set_weights(weights)         # checks finiteness, changes all or nothing
