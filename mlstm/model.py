"""The model users build: the functional graph (:mod:`mlstm.graph`) with training
(:mod:`mlstm.training`), saving and a summary.
"""
from __future__ import annotations

import os

from .graph import Graph
from .layers.base import format_shape
from .registry import register_model
from .training import Trainer

__all__ = ["Model"]

#: Writers of formats the core does not hold, by extension: ``{".keras": write(model, path)}``.
#: The package's ``__init__`` sets ".keras" (through :func:`mlstm.interop.keras.to_keras`):
#: the bridge to Keras sits above the model, which must not import it.
SAVE_FORMATS = {}
WEIGHTS_SUFFIX = ".weights.npz"
WEIGHTS_FORMAT = "mlstm.weights"


def _target_path(path, method):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{method}: path must be a str or os.PathLike, got "
                        f"{type(path).__name__}")
    target = os.fspath(path)
    if os.path.isdir(target):
        raise ValueError(f"{method}: {target!r} is a directory; give a file name")
    return target


@register_model
class Model(Graph, Trainer):
    """A graph of layers from symbolic ``inputs`` to symbolic ``outputs``, trainable.

    Parameters
    ----------
    inputs : SymbolicTensor or list of them
        From :func:`mlstm.Input`.
    outputs : SymbolicTensor or list of them
    name : str, optional

    Examples
    --------
    >>> import mlstm
    >>> x1 = mlstm.Input(shape=(5, 3), name="x1")
    >>> x2 = mlstm.Input(shape=(5, 2), name="x2")
    >>> merged = mlstm.concatenate([mlstm.LSTM(4, name="la")(x1), mlstm.LSTM(4, name="lb")(x2)])
    >>> out1 = mlstm.Dense(1, name="out1")(merged)
    >>> out2 = mlstm.Dense(1, activation="sigmoid", name="out2")(merged)
    >>> model = mlstm.Model([x1, x2], [out1, out2])
    >>> model.output_names
    ['out1', 'out2']
    >>> model.get_layer("la").get_weights()[0].shape
    (3, 16)
    """

    def __init__(self, inputs, outputs, name="model"):
        Graph.__init__(self, inputs, outputs, name=name)
        Trainer.__init__(self)

    def summary(self, print_fn=print):
        """Print a table of layers: type, output shapes, parameter counts and inputs."""
        rows = [("Layer (type)", "Output shape", "Param #", "Connected to")]
        for node in self.nodes:
            layer = node.layer
            shapes = ", ".join(format_shape((None,) + t.shape) for t in node.outputs)
            inbound = ", ".join(t.name for t in node.inputs)
            rows.append((f"{layer.name} ({type(layer).__name__})", shapes,
                         str(layer.count_params()), inbound))
        widths = [max(len(r[k]) for r in rows) for k in range(4)]
        line = "  ".join("{:<%d}" % w for w in widths)
        total = self.count_params()
        trainable = sum(l.count_params() for l in self.layers if l.trainable)
        print_fn(f'Model: "{self.name}"')
        print_fn(line.format(*rows[0]))
        print_fn("-" * (sum(widths) + 6))
        for r in rows[1:]:
            print_fn(line.format(*r))
        print_fn("-" * (sum(widths) + 6))
        print_fn(f"Total params: {total}  (trainable: {trainable}, "
                 f"non-trainable: {total - trainable})")

    def clone(self, dtype=None):
        """A copy with the same graph, weights (cast to ``dtype``) and compile settings.

        The optimizer state is not copied (the clone gets a fresh optimizer of the same
        configuration).
        """
        twin = type(self).from_config(self.get_config(), dtype=dtype, seed=0)
        twin.set_weights([w.astype(twin.dtype) for w in self.get_weights()])
        for layer, src in zip(twin.layers, self.layers):
            layer.trainable = src.trainable
        if self.compiled:
            twin._copy_compile_settings(self)
        return twin

    def save(self, path):
        """Save the model; the format is chosen by the file name's extension.

        ``.npz``
            mlstm's own file (:mod:`mlstm.io`): architecture, compile settings, weights and
            optimizer state, written atomically; :func:`mlstm.load_model` reads it.
        ``.keras``
            A Keras file, through :func:`mlstm.interop.keras.to_keras` (the keras extra;
            the writer is in ``SAVE_FORMATS``):
            ``keras.saving.load_model`` loads it and predicts the same;
            :func:`mlstm.load_keras` reads it back.

        Any other extension is refused (never a silent other format); ``.weights.npz`` is
        :meth:`save_weights`' file.
        """
        target = _target_path(path, "save")
        if target.endswith(".keras"):
            writer = SAVE_FORMATS.get(".keras")
            if writer is None:     # set when the mlstm package is imported
                raise ValueError("save: no writer for .keras files (import mlstm)")
            try:
                writer(self, target)
            except ImportError as exc:
                raise ValueError(f"save: {target!r} is a Keras file, which needs the keras "
                                 f"extra ({exc}); save mlstm's own format with a .npz name"
                                 ) from None
            return
        if target.endswith(".weights.npz"):
            raise ValueError(f"save: {target!r} is a weights file name; use "
                             "model.save_weights(path) for the weights alone, or a .npz name "
                             "(without .weights) for the whole model")
        if target.endswith(".npz"):
            from .io import save_model
            save_model(self, target)
            return
        raise ValueError(f"save: cannot tell the format of {target!r} from its extension; use "
                         "'.npz' (mlstm's format), '.keras' (Keras') or save_weights with "
                         "'.weights.npz'")

    def save_weights(self, path):
        """Write every weight to a ``.weights.npz`` file (atomically; no pickle).

        The file holds the arrays and their names (``"layer/weight"``), shapes and dtypes,
        checked by :meth:`load_weights`; the architecture and optimizer are not saved.
        """
        from . import io as io_module
        target = _target_path(path, "save_weights")
        if not target.endswith(WEIGHTS_SUFFIX):
            raise ValueError(f"save_weights: the file name must end with {WEIGHTS_SUFFIX!r} "
                             f"(as Keras wants .weights.h5), got {target!r}")
        directory = os.path.dirname(os.path.abspath(target))
        if not os.path.isdir(directory):
            raise ValueError(f"save_weights: directory {directory!r} does not exist")
        arrays, entries = {}, []
        for k, (name, value) in enumerate(self.params.items()):
            arrays[f"w{k}"] = value
            entries.append({"name": name, "key": f"w{k}", "shape": list(value.shape),
                            "dtype": value.dtype.name})
        meta = {"format": WEIGHTS_FORMAT, "format_version": 1, "model": self.name,
                "weights": entries}
        io_module._atomic_write(target, lambda f: io_module._write_archive(f, meta, arrays))

    def load_weights(self, path):
        """Set the weights from a :meth:`save_weights` file (names, shapes, dtypes checked
        before any weight changes; read with ``allow_pickle=False``)."""
        import json
        import zipfile

        import numpy as np
        target = _target_path(path, "load_weights")
        label = f"load_weights: {target!r}"
        if not os.path.exists(target):
            raise FileNotFoundError(f"load_weights: no file {target!r}")
        if not zipfile.is_zipfile(target):
            raise ValueError(f"{label} is not a weights file (not a .npz archive)")
        with np.load(target, allow_pickle=False) as npz:
            try:
                meta = json.loads(npz["mlstm.json"].decode("utf-8"))
            except Exception as exc:
                raise ValueError(f"{label} is not an mlstm weights file ({type(exc).__name__}: "
                                 f"{exc})") from None
            if not isinstance(meta, dict) or meta.get("format") != WEIGHTS_FORMAT:
                kind = meta.get("format") if isinstance(meta, dict) else None
                raise ValueError(f"{label} is not an mlstm weights file (format {kind!r})"
                                 + ("; it is a whole model: mlstm.load_model(path)"
                                    if kind == "mlstm.model" else ""))
            entries = meta.get("weights")
            names = [e.get("name") for e in entries] if isinstance(entries, list) else None
            if names != list(self.params):
                raise ValueError(f"{label}: its weights {names} do not match the model's "
                                 f"{list(self.params)}")
            weights = []
            for entry, current in zip(entries, self.params.values()):
                try:
                    value = npz[entry["key"]]
                except Exception as exc:
                    raise ValueError(f"{label}: array {entry['name']!r} cannot be read "
                                     f"({type(exc).__name__}: {exc})") from None
                if value.shape != current.shape or value.dtype != current.dtype:
                    raise ValueError(f"{label}: {entry['name']!r} is {value.dtype}{value.shape}, "
                                     f"the model's is {current.dtype}{current.shape}")
                weights.append(value)
        self.set_weights(weights)

    def __call__(self, x):
        """The prediction for ``x`` (``model(x)`` as in Keras): :meth:`predict` in one batch."""
        return self.predict_on_batch(x)
