"""The model users build: the functional graph (:mod:`mlstm.graph`) with training
(:mod:`mlstm.training`), saving and a summary.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ._typing import Array, ArrayLike, DTypeLike
from .graph import Graph
from .layers.base import SymbolicTensor, format_shape
from .registry import register_model
from .training import Trainer

__all__ = ["Model"]

#: Writers of formats the core does not hold, by extension: ``{".keras": write(model, path)}``.
#: Writers by extension offered from above: :mod:`mlstm.interop.keras` sets ".keras"
#: (through ``to_keras``) when imported; the model must not import the interop.
SAVE_FORMATS: dict[str, Callable[[Model, str], object]] = {}


def _target_path(path: str | os.PathLike[str], method: str) -> str:
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

    def __init__(self, inputs: SymbolicTensor | Sequence[SymbolicTensor],
                 outputs: SymbolicTensor | Sequence[SymbolicTensor], name: str = "model") -> None:
        Graph.__init__(self, inputs, outputs, name=name)
        Trainer.__init__(self)

    def summary(self, print_fn: Callable[[str], object] = print) -> None:
        """Print a table of layers: type, output shapes, parameter counts and inputs, then the
        total, trainable and non-trainable parameter counts (as Keras' ``summary``)."""
        rows = [("Layer (type)", "Output shape", "Param #", "Connected to")]
        for node in self.nodes:
            layer = node.layer
            shapes = ", ".join(format_shape((None,) + t.shape) for t in node.outputs)
            inbound = ", ".join(t.name for t in node.inputs)
            rows.append((f"{layer.name} ({type(layer).__name__})", shapes,
                         str(layer.count_params()), inbound))
        widths = [max(len(r[k]) for r in rows) for k in range(4)]
        line = "  ".join("{:<%d}" % w for w in widths)
        total, trainable = self.count_params(), self.count_trainable_params()
        print_fn(f'Model: "{self.name}"')
        print_fn(line.format(*rows[0]))
        print_fn("-" * (sum(widths) + 6))
        for r in rows[1:]:
            print_fn(line.format(*r))
        print_fn("-" * (sum(widths) + 6))
        # Keras' three lines: state arrays (moving statistics) and the weights of
        # non-trainable layers count as non-trainable
        print_fn(f"Total params: {total}")
        print_fn(f"Trainable params: {trainable}")
        print_fn(f"Non-trainable params: {total - trainable}")

    def count_trainable_params(self) -> int:
        """Entries of the weights the optimizer updates: the parameters of trainable layers,
        without their state arrays (BatchNormalization's moving statistics), as Keras'
        ``summary`` counts "Trainable params"."""
        return int(sum(p.size for p in self.trainable_params.values()))

    def clone(self, dtype: DTypeLike | None = None) -> Model:
        """A copy with the same graph, weights (cast to ``dtype``) and compile settings.

        The optimizer state is not copied (the clone gets a fresh optimizer of the same
        configuration).
        """
        twin = type(self).from_config(self.get_config(), dtype=dtype, seed=0)
        # a copy, whatever it holds (diagnose looks at a diverged model through its clone)
        twin.set_weights([w.astype(twin.dtype) for w in self.get_weights()],
                         allow_nonfinite=True)
        for layer, src in zip(twin.layers, self.layers):
            layer.trainable = src.trainable
        if self.compiled:
            twin._copy_compile_settings(self)
        return twin

    def save(self, path: str | os.PathLike[str]) -> None:
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
            if writer is None:     # set when mlstm.interop.keras is imported (mlstm does)
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

    def save_weights(self, path: str | os.PathLike[str]) -> None:
        """Write every weight to a ``.weights.npz`` file (atomically; no pickle); see
        :func:`mlstm.io.weights.save_weights`."""
        from .io.weights import save_weights
        save_weights(self, path)

    def load_weights(self, path: str | os.PathLike[str]) -> None:
        """Set the weights from a :meth:`save_weights` file (names, shapes and dtypes checked
        from the headers before any data is read); see :func:`mlstm.io.weights.load_weights`."""
        from .io.weights import load_weights
        load_weights(self, path)

    def plot(self, path: str | os.PathLike[str], **options: Any) -> Path:
        """Draw the model's graph to ``path`` (.png, .svg or .pdf; needs matplotlib): layers
        with their shapes, outputs with their losses and weights. See
        :func:`mlstm.plotting.plot_model`."""
        from .plotting import plot_model
        return plot_model(self, path, **options)

    def __call__(self, x: ArrayLike | Sequence[ArrayLike] | Mapping[str, ArrayLike]
                 ) -> Array | list[Array]:
        """The prediction for ``x`` (``model(x)`` as in Keras): :meth:`predict` in one batch."""
        return self.predict_on_batch(x)
