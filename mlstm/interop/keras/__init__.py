"""Keras interop: import, export, and a step-by-step cross-check against Keras.

Keras (``keras==3.15.1`` on ``tensorflow-cpu==2.21.0``, the ``keras`` extra) is imported only
inside the functions below, never when :mod:`mlstm` is imported.

``from_keras(keras_model)``
    A functional or Sequential Keras model becomes an :class:`mlstm.Model` with the same
    layer names, options and weights, compiled with the same losses, loss weights and
    optimizer when the Keras model is compiled. Anything mlstm does not compute the way
    Keras does is refused with an error naming the layer and the option (GRU,
    stateful, regularizers, constraints, custom layers, ...): a silent approximation would
    defeat the point of the cross-check.
``to_keras(model)``
    The other way; ``from_keras(to_keras(m))`` gives back ``m``'s graph and weights.
``load_keras(path)``
    A ``.keras`` file, compile config included.
``crosscheck(model, x, y, steps=3)``
    Runs the model in both frameworks from the same weights and compares, per output and
    per parameter: the forward pass, each output's loss, the gradients (of the total and of
    each output's weighted loss, Keras' from ``tf.GradientTape``) and the weights after each
    of ``steps`` optimizer steps (``train_on_batch``). A plain-text table, or a dict.

The interop keeps no list of components: a Keras layer maps to the registered mlstm layer
whose class declares it as ``keras_name``, with the options of its ``keras_options``; a
Keras loss to the registered loss whose ``keras_name`` (class) or ``keras_function``
(function) it is; a Keras optimizer to the registered optimizer of the same class name.
A new component that declares these is converted with no edit here.

=====================  ==============================================================
``backend.py``         importing Keras quietly; Keras' floatx and dtype policy
``layer_mapping.py``   one Keras layer <-> one mlstm layer (through the registry)
``importing.py``       from_keras, load_keras (the graph walk)
``exporting.py``       to_keras
``compile_settings.py``  losses, loss weights, optimizers both ways; compile_like
``comparison.py``      crosscheck
``report.py``          its verdicts and table (format_report)
``command_line.py``    ``python -m mlstm crosscheck``
=====================  ==============================================================

Keras facts this package relies on (Keras 3.15, read from its source and checked by running
it; :mod:`mlstm.layers` implements the rest):

- A Keras layer receives its input's mask only when it is called with a single tensor
  argument. ``LSTM(...)(x, initial_state=[h0, c0])`` on a masked ``x`` therefore runs
  **unmasked** while its output still carries the mask downstream. mlstm would apply the
  mask, so a masked input with more than one call argument is refused in both directions.
- ``Masking`` adds two hidden operations (``not_equal``, ``any``) to the functional graph
  that compute the mask; they are reached only through the ``mask=`` argument Keras passes
  to the next layer and are not converted (mlstm computes masks itself).
- Keras fixes its global dtype policy from ``floatx`` when the process creates its first
  layer, so float64 takes ``set_floatx`` *and* ``set_dtype_policy`` (or a dtype per layer:
  :func:`to_keras` does both); ``fit``/``predict`` cast float inputs to ``floatx``.
- A model's loss is ``Σ_k loss_weight_k · loss_k(y_true_k, y_pred_k)``; each ``loss_k`` is
  computed in the compile-time ``floatx`` and its logged value kept in a tracker made in
  ``floatx`` at the first training step (so float64 agreement needs floatx float64:
  :func:`to_keras` sets it while it builds and compiles a float64 model, :func:`crosscheck`
  while it runs Keras).
- Adam's bias corrections use β1, β2 cast through float32 even for float64 variables
  (:class:`mlstm.optimizers.Adam` does the same).
- Keras' optimizer starts with fresh state whenever a model is cloned, and so does the
  cross-check on both sides: what is compared is the same configuration from the same
  weights.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .backend import import_keras as _import_keras
from .backend import keras_dtype
from .command_line import cli_main
from .compile_settings import compile_like
from .comparison import DEFAULT_TOLERANCES, crosscheck
from .exporting import to_keras
from .importing import from_keras, load_keras
from .layer_mapping import supported_keras_layers
from .report import format_report
from ... import model as _model_module

if TYPE_CHECKING:
    import os

    from ...model import Model


def _save_keras(model: Model, path: str | os.PathLike[str]) -> None:
    """``model.save("m.keras")``: a Keras file through :func:`to_keras`."""
    to_keras(model).save(path)


# Model.save finds its ".keras" writer here: the model sits below the interop and must not
# import it, so the interop offers the writer when it is imported (mlstm imports it).
_model_module.SAVE_FORMATS[".keras"] = _save_keras

__all__ = ["from_keras", "to_keras", "load_keras", "compile_like", "crosscheck",
           "format_report", "cli_main", "DEFAULT_TOLERANCES", "keras_dtype",
           "supported_keras_layers"]
