"""Save and load a model: architecture and compile settings as JSON, arrays as ``.npz``.

One file holds everything, and it is an ordinary ``.npz`` (a zip archive): ::

    mlstm.json        architecture (Model.get_config), compile settings, optimizer config and
                      step count, the name, shape and dtype of every array, training state
    w0.npy, w1.npy    weights, in model.get_weights() order
    n0.npy, ...       non-trainable state of layers that have some (``Layer.state_names``:
                      BatchNormalization's moving statistics)
    s0.npy, ...       optimizer state (Adam m and v, AMSGrad v_hat, SGD velocity)

``np.load(path)`` opens it and ``unzip -p path mlstm.json`` shows the config. Loading
never unpickles: arrays are read with ``allow_pickle=False`` (an object array is refused),
the JSON is parsed by :mod:`json`, and every name, shape and dtype is checked against the
rebuilt model before anything is set.

The write is atomic: the archive goes to a temporary file in the same directory, which is
flushed, fsynced and then renamed over ``path`` (``os.replace``, atomic on POSIX and
Windows), and the directory is fsynced. An interruption at any point leaves either the old
file or the new one, never a mixture.

A model saved by the checkpoint option of ``fit`` also records where training was
(``model.training_state`` after loading: ``initial_epoch``, ``epochs``, ``batch_size``,
``seed``, ``shuffle``), so ``model.fit(x, y, **model.training_state)`` resumes, and gives
weights bit-identical to a run that was never interrupted.
"""
from __future__ import annotations

import json
import os
import secrets
import time
import zipfile

import numpy as np

__all__ = ["save_model", "load_model", "read_config", "FORMAT", "FORMAT_VERSION"]

FORMAT = "mlstm.model"
FORMAT_VERSION = 1
CONFIG_MEMBER = "mlstm.json"
_FLOAT_DTYPES = ("float32", "float64")


# --------------------------------------------------------------------------- save
def save_model(model, path, training_state=None):
    """Write ``model`` to ``path`` atomically (see the module docstring).

    Parameters
    ----------
    model : mlstm.Model
    path : str or os.PathLike
        Written exactly as given (no suffix is added).
    training_state : dict, optional
        Keyword arguments of ``fit`` that resume training (set by the checkpoint option).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ValueError(f"save_model: directory {directory!r} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"save_model: {path!r} is a directory; give a file name")
    meta, arrays = _serialize(model, training_state)
    _atomic_write(path, lambda f: _write_archive(f, meta, arrays))


def _serialize(model, training_state):
    """``(meta dict, {member key: array})`` for ``model``."""
    arrays, weights = {}, []
    # model.params: the live arrays, named and ordered as get_weights (written, not copied).
    for k, (name, value) in enumerate(model.params.items()):
        key = f"w{k}"
        arrays[key] = value
        weights.append({"name": name, "key": key, "shape": list(value.shape),
                        "dtype": value.dtype.name})
    state = []
    for k, (name, value) in enumerate(_layer_state(model).items()):
        key = f"n{k}"
        arrays[key] = value
        state.append({"name": name, "key": key, "shape": list(value.shape),
                      "dtype": value.dtype.name})
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION,
            "mlstm_version": _version(), "model": model.get_config(), "weights": weights,
            "state": state, "compile": None, "training_state": training_state}
    if model.compiled:
        optimizer = model.optimizer
        state = optimizer.get_state()
        entries = []
        for k, (name, value) in enumerate((n, v) for n, v in state.items() if n != "iterations"):
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


def _layer_state(model):
    """``{"layer/name": live array}`` of every layer's non-trainable state, in layer order."""
    return {f"{layer.name}/{k}": layer.state[k]
            for layer in model.layers for k in layer.state_names if k in layer.state}


def _version():
    from . import __version__
    return __version__


def _write_archive(f, meta, arrays):
    now = time.localtime()[:6]
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(zipfile.ZipInfo(CONFIG_MEMBER, date_time=now),
                         json.dumps(meta, indent=1, allow_nan=False))
        for key, value in arrays.items():
            info = zipfile.ZipInfo(key + ".npy", date_time=now)
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(value),
                                          allow_pickle=False)


def _atomic_write(path, write):
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


def _fsync_directory(directory):
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


# --------------------------------------------------------------------------- load
def read_config(path):
    """The ``mlstm.json`` of a saved model, checked to be one (no arrays are read)."""
    with _open(path) as archive:
        return archive.meta


def load_model(path, compile=True, custom_objects=None):
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

    Returns
    -------
    Model
        With ``model.training_state`` set: ``fit`` keyword arguments that resume training
        when the file was written by fit's checkpoint option, else None.

    Raises
    ------
    ValueError
        The file is not an mlstm model, is corrupted or truncated, holds an object
        (pickled) array, or does not match the architecture it declares.
    """
    from .model import Model

    with _open(path) as archive:
        meta = archive.meta
        label = archive.label
        try:
            model = Model.from_config(meta["model"], seed=0)
        except (KeyError, TypeError, IndexError, AttributeError, ValueError) as exc:
            raise ValueError(f"{label}: its architecture cannot be rebuilt: "
                             f"{type(exc).__name__}: {exc}") from None
        params = model.params
        entries = _entries(meta, "weights", label)
        if [e["name"] for e in entries] != list(params):
            raise ValueError(f"{label}: weights {[e['name'] for e in entries]} do not match "
                             f"the architecture's {list(params)}")
        loaded = {e["name"]: archive.array(e, expected_shape=w.shape, expected_dtype=w.dtype)
                  for e, w in zip(entries, params.values())}
        state = _layer_state(model)
        # files written before layers had state hold no "state" list
        state_entries = _entries(meta, "state", label) if "state" in meta else []
        if [e["name"] for e in state_entries] != list(state):
            raise ValueError(f"{label}: state arrays {[e['name'] for e in state_entries]} do "
                             f"not match the architecture's {list(state)}")
        loaded.update({e["name"]: archive.array(e, expected_shape=a.shape,
                                                expected_dtype=a.dtype)
                       for e, a in zip(state_entries, state.values())})
        weights = [loaded[name] for layer in model.layers for name in layer.weight_names]
        compiled = meta.get("compile") if compile else None
        if compiled is not None:
            settings, optimizer, state = _compile_settings(compiled, model, archive,
                                                           custom_objects or {})
    model.set_weights(weights)
    if compiled is not None:
        model.compile(optimizer=optimizer, **settings)
        model.optimizer.set_state(state)
    model.training_state = meta.get("training_state")
    return model


def _compile_settings(compiled, model, archive, custom_objects):
    """``(compile kwargs, optimizer, optimizer state)``, every array checked."""
    from . import losses as losses_module
    from . import optimizers as optimizers_module

    label = archive.label
    try:
        loss = [None if spec is None else
                _rebuild(spec, {**{cls.__name__: cls for cls in losses_module.LOSSES.values()},
                                "FunctionLoss": None}, custom_objects, "loss", label)
                for spec in compiled["loss"]]
        opt_spec = compiled["optimizer"]
        optimizer = _rebuild(opt_spec, {cls.__name__: cls
                                        for cls in optimizers_module.OPTIMIZERS.values()},
                             custom_objects, "optimizer", label)
        settings = dict(loss=loss, loss_weights=list(compiled["loss_weights"]),
                        metrics=[list(m) for m in compiled["metrics"]])
        iterations = opt_spec["iterations"]
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        raise ValueError(f"{label}: its compile settings are malformed: "
                         f"{type(exc).__name__}: {exc}") from None
    if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 0:
        raise ValueError(f"{label}: optimizer iterations must be a non-negative int, "
                         f"got {iterations!r}")
    params = model.params
    state = {"iterations": iterations}
    for entry in _entries(opt_spec, "state", label):
        slot, _, param = entry["name"].partition("/")
        if param not in params:
            raise ValueError(f"{label}: optimizer state {entry['name']!r} is for an unknown "
                             f"parameter; parameters are {list(params)}")
        state[entry["name"]] = archive.array(entry, expected_shape=params[param].shape,
                                             expected_dtype=params[param].dtype)
    # Compile and set the state on a throwaway twin first: a refusal there (a slot the
    # optimizer does not have, an unknown metric) must not leave the loaded model half set.
    probe = optimizer.from_config(optimizer.get_config())
    try:
        probe.set_state(state)
    except (ValueError, KeyError) as exc:
        raise ValueError(f"{label}: optimizer state does not fit {type(optimizer).__name__}: "
                         f"{exc}") from None
    return settings, optimizer, state


def _rebuild(spec, known, custom_objects, kind, label):
    """A loss or optimizer from ``{"class_name", "config"}``; custom ones by name."""
    class_name, config = spec["class_name"], dict(spec["config"])
    name = config.get("name")
    for key in (name, class_name):
        if key in custom_objects:
            obj = custom_objects[key]
            if isinstance(obj, type):
                config.pop("name", None)
                return obj.from_config(spec["config"]) if hasattr(obj, "from_config") \
                    else obj(**config)
            return obj
    cls = known.get(class_name)
    if cls is None:
        raise ValueError(f"{label}: the {kind} {name or class_name!r} ({class_name}) is not "
                         f"built in; pass load_model(..., custom_objects={{{name!r}: ...}}) "
                         "or load_model(..., compile=False)")
    if kind == "optimizer":
        return cls.from_config(config)
    config.pop("name", None)
    return cls(**config)


def _entries(meta, key, label):
    entries = meta.get(key)
    if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get("name"), str)
            and isinstance(e.get("key"), str) for e in entries):
        raise ValueError(f"{label}: {key!r} must be a list of {{name, key, shape, dtype}}")
    return entries


class _Archive:
    """An opened, checked ``.npz``: its ``meta`` and checked access to its arrays."""

    def __init__(self, npz, label):
        self.npz, self.label = npz, label
        self.meta = self._meta()

    def _meta(self):
        if CONFIG_MEMBER not in self.npz.files:
            raise ValueError(f"{self.label} is not an mlstm model: it has no {CONFIG_MEMBER} "
                             f"(members {self.npz.files[:8]}). For arrays saved with np.savez, "
                             "load them with np.load and pass them to model.set_weights")
        try:
            raw = self.npz[CONFIG_MEMBER]
        except Exception as exc:   # damaged member, or an array (pickled or not) in its place
            raise ValueError(f"{self.label}: {CONFIG_MEMBER} cannot be read "
                             f"({type(exc).__name__}: {exc})") from None
        if not isinstance(raw, bytes):
            raise ValueError(f"{self.label}: {CONFIG_MEMBER} is not a JSON text")
        try:
            meta = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{self.label}: {CONFIG_MEMBER} is not valid JSON ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"{self.label} is not an mlstm model (format "
                             f"{meta.get('format') if isinstance(meta, dict) else None!r})")
        version = meta.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(f"{self.label} has format version {version!r}; this mlstm reads "
                             f"version {FORMAT_VERSION}")
        return meta

    def array(self, entry, expected_shape, expected_dtype):
        """The array of a weights/state entry, checked against the JSON and the model."""
        key, name = entry["key"], entry["name"]
        if key not in self.npz.files:
            raise ValueError(f"{self.label}: array {name!r} ({key}.npy) is missing")
        try:
            value = self.npz[key]
        except ValueError as exc:   # "Object arrays cannot be loaded when allow_pickle=False"
            raise ValueError(f"{self.label}: array {name!r} cannot be read safely: {exc}; "
                             "mlstm never unpickles") from None
        except Exception as exc:    # truncated or damaged member: zipfile/zlib/EOF errors
            raise ValueError(f"{self.label}: array {name!r} is corrupted "
                             f"({type(exc).__name__}: {exc})") from None
        if not isinstance(value, np.ndarray) or value.dtype.name not in _FLOAT_DTYPES:
            kind = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
            raise ValueError(f"{self.label}: array {name!r} must be float32 or float64, "
                             f"got {kind}")
        if value.shape != tuple(expected_shape) or list(value.shape) != entry.get("shape"):
            raise ValueError(f"{self.label}: array {name!r} has shape {value.shape}; the file "
                             f"declares {entry.get('shape')} and the model needs "
                             f"{tuple(expected_shape)}")
        if value.dtype != expected_dtype:
            raise ValueError(f"{self.label}: array {name!r} has dtype {value.dtype}, the "
                             f"model's is {np.dtype(expected_dtype).name}")
        return value


class _open:
    """``with _open(path) as archive``: a checked :class:`_Archive`, closed afterwards."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self.label = f"load_model: {self.path!r}"

    def __enter__(self):
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"load_model: no file {self.path!r}")
        if not zipfile.is_zipfile(self.path):
            raise ValueError(f"{self.label} is not an mlstm model file (not a .npz/zip "
                             "archive; truncated or foreign)")
        try:
            self.npz = np.load(self.path, allow_pickle=False)
        except Exception as exc:
            raise ValueError(f"{self.label} is corrupted ({type(exc).__name__}: {exc})") from None
        if not isinstance(self.npz, np.lib.npyio.NpzFile):
            raise ValueError(f"{self.label} is not an mlstm model file")
        try:
            return _Archive(self.npz, self.label)
        except ValueError:
            self.npz.close()
            raise
        except Exception as exc:   # damaged zip structure discovered while reading
            self.npz.close()
            raise ValueError(f"{self.label} is corrupted ({type(exc).__name__}: {exc})") from None

    def __exit__(self, *exc):
        self.npz.close()
        return False
