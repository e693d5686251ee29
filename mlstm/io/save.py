"""Save a model atomically: ``mlstm.json`` (architecture, compile settings) and ``.npy`` arrays.

The write is atomic: the archive goes to a temporary file in the same directory, which is
flushed, fsynced and then renamed over ``path`` (``os.replace``, atomic on POSIX and
Windows), and the directory is fsynced. An interruption at any point leaves either the old
file or the new one, never a mixture. Members are stored uncompressed (a loaded file's
compressed members are checked for inflation, :mod:`mlstm.io.limits`).
"""
from __future__ import annotations

import json
import os
import secrets
import time
import zipfile
from collections.abc import Callable, Mapping
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from .schema import FORMAT, FORMAT_VERSION, check_training_state

if TYPE_CHECKING:
    from .._typing import Array, JSONDict
    from ..model_protocol import TrainableModel

__all__ = ["save_model", "layer_state"]

CONFIG_MEMBER = "mlstm.json"


# --------------------------------------------------------------------------- save
def save_model(model: TrainableModel, path: str | os.PathLike[str],
               training_state: Mapping[str, Any] | None = None) -> None:
    """Write ``model`` to ``path`` atomically (see the module docstring).

    Parameters
    ----------
    model : mlstm.Model
    path : str or os.PathLike
        Written exactly as given (no suffix is added).
    training_state : dict, optional
        Keyword arguments of ``fit`` that resume training (set by the checkpoint option):
        exactly ``initial_epoch``, ``epochs``, ``batch_size``, ``seed``, ``shuffle``
        (:data:`mlstm.io.schema.TRAINING_STATE_KEYS`); anything else is refused.
    """
    training_state = check_training_state(training_state, "save_model: training_state")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ValueError(f"save_model: directory {directory!r} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"save_model: {path!r} is a directory; give a file name")
    meta, arrays = _serialize(model, training_state)
    _atomic_write(path, lambda f: _write_archive(f, meta, arrays))


def _serialize(model: TrainableModel, training_state: Mapping[str, Any] | None,
               ) -> tuple[JSONDict, dict[str, Array]]:
    """``(meta dict, {member key: array})`` for ``model``."""
    arrays: dict[str, Array] = {}
    weights: list[JSONDict] = []
    # model.params: the live arrays, named and ordered as get_weights (written, not copied).
    for k, (name, value) in enumerate(model.params.items()):
        key = f"w{k}"
        arrays[key] = value
        weights.append({"name": name, "key": key, "shape": list(value.shape),
                        "dtype": value.dtype.name})
    state: list[JSONDict] = []
    for k, (name, value) in enumerate(layer_state(model).items()):
        key = f"n{k}"
        arrays[key] = value
        state.append({"name": name, "key": key, "shape": list(value.shape),
                      "dtype": value.dtype.name})
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION,
            "mlstm_version": _version(), "model": model.get_config(), "weights": weights,
            "state": state, "compile": None, "training_state": training_state}
    if model.compiled:
        optimizer = model.optimizer
        assert optimizer is not None            # compiled
        slots = optimizer.get_state()
        entries = []
        for k, (name, value) in enumerate((n, v) for n, v in slots.items() if n != "iterations"):
            key = f"s{k}"
            arrays[key] = np.asarray(value)
            entries.append({"name": name, "key": key, "shape": list(np.shape(value)),
                            "dtype": np.asarray(value).dtype.name})
        meta["compile"] = {
            "loss": [None if l is None else {"class_name": type(l).__name__,
                                             "config": l.get_config()}
                     for l in model._losses],
            "loss_weights": list(model._loss_weights),
            "metrics": [[key for _, key in ms] for ms in model._metrics],
            "optimizer": {"class_name": type(optimizer).__name__,
                          "config": optimizer.get_config(),
                          "iterations": int(optimizer.iterations), "state": entries},
        }
    return meta, arrays


def layer_state(model: TrainableModel) -> dict[str, Array]:
    """``{"layer/name": live array}`` of every layer's non-trainable state (``Layer.state``:
    BatchNormalization's moving statistics), in layer order, as ``get_weights`` has it."""
    return {f"{layer.name}/{k}": layer.state[k]
            for layer in model.layers for k in layer.state_names if k in layer.state}


def _version() -> str:
    from .._version import __version__
    return __version__


def _write_archive(f: IO[bytes], meta: JSONDict, arrays: Mapping[str, Array]) -> None:
    now = time.localtime()[:6]
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(zipfile.ZipInfo(CONFIG_MEMBER, date_time=now),
                         json.dumps(meta, indent=1, allow_nan=False))
        for key, value in arrays.items():
            info = zipfile.ZipInfo(key + ".npy", date_time=now)
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(value),
                                          allow_pickle=False)


def _atomic_write(path: str, write: Callable[[IO[bytes]], None]) -> None:
    """Run ``write(file)`` on a temporary file next to ``path``, then rename it over ``path``."""
    directory, base = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, f".{base}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # os.open with 0o666 lets the umask decide the permissions, as open() would.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable (POSIX; a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
