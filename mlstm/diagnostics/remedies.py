"""Fixes as concrete changes, so that they can be tried before they are advised.

A :class:`Remedy` is what a finding's fix says, in a form that can be applied to a copy
of the model and its data: new compile settings (losses, loss weights, optimizer options
such as the learning rate or the clip), a changed activation, biases reset, inputs or
targets standardized. :mod:`mlstm.diagnostics.verify` retrains a copy from the same
weights with it and compares the per-output losses with the run without it.

A remedy never changes the model it is given: :meth:`Remedy.build` rebuilds the graph from
its config (:meth:`mlstm.Model.get_config`) with the changes, copies the weights, and
compiles the copy; :meth:`Remedy.prepare` returns transformed copies of the data and the
inverse transform of the predictions, so the losses are compared in the data's units.
"""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import numpy as np

from .. import validation
from .._typing import Array, ArrayLike, Float64Array
from ..layers.dropout import set_dropout_rates

if TYPE_CHECKING:
    from ..losses import Loss
    from ..model import Model

__all__ = ["Remedy", "Prepared"]


class Prepared:
    """A remedy's data: the arrays to train on and how to read predictions back.

    Attributes
    ----------
    xs, ys : lists of ndarray
        Training inputs and targets, transformed as the remedy says.
    transform_x : callable
        Applies the same input transform to other inputs (validation data).
    inverse : dict output -> callable
        Maps the copy's predictions of that output back to the targets' units (targets
        standardized); outputs not listed need nothing.
    """

    def __init__(self, xs: list[Array], ys: list[Array],
                 transform_x: Callable[[Sequence[Array]], list[Array]],
                 inverse: dict[str, Callable[[Array], Array]]) -> None:
        self.xs, self.ys, self.transform_x, self.inverse = xs, ys, transform_x, inverse


class Remedy:
    """One concrete change a finding advises.

    Parameters
    ----------
    key : str
        Identifies the change: findings whose remedies share a key are verified by one run.
    words : str
        The change as the report prints it (``"learning_rate=0.002"``).
    outputs : list of str, optional
        The outputs whose loss the change should lower (None: every output with a loss).
    losses : dict output -> Loss or None, optional
        New losses for these outputs (None: no loss).
    loss_weights : dict output -> float, optional
    optimizer : dict, optional
        Options of the same optimizer class to change (``{"learning_rate": 1e-3}``,
        ``{"clipnorm": 2.0}``).
    standardize_inputs : bool
        Every float input, per feature, with the training data's mean and std.
    standardize_targets : sequence of str
        These outputs' targets, per unit; predictions are mapped back before comparing.
    activations : dict layer name -> str, optional
        A new activation for these layers (their config's ``activation``).
    zero_biases : dict "layer/bias" -> list of int, optional
        Set these entries of a bias to 0 (units a large negative bias killed).
    batch_size : int, optional
        Retrain with batches of this size (the same number of steps).
    dropout_rates : dict "layer: option" -> float, optional
        New dropout rates, named as :func:`mlstm.layers.dropout.dropout_rates` names them.
    from_start : bool
        The setup cannot train as it is (mlstm refused its data, or it cannot learn): the
        fix is verified by its own run, its loss at the end against its loss at the start.
    """

    def __init__(self, key: str, words: str, outputs: list[str] | None = None,
                 losses: dict[str, Loss | None] | None = None,
                 loss_weights: dict[str, float] | None = None,
                 optimizer: dict[str, Any] | None = None, standardize_inputs: bool = False,
                 standardize_targets: Iterable[str] = (),
                 activations: dict[str, str] | None = None,
                 zero_biases: dict[str, list[int]] | None = None,
                 from_start: bool = False, batch_size: int | None = None,
                 dropout_rates: dict[str, Any] | None = None) -> None:
        self.key, self.words, self.outputs = key, words, outputs
        self.losses = dict(losses or {})
        self.loss_weights = dict(loss_weights or {})
        self.optimizer = dict(optimizer or {})
        self.standardize_inputs = bool(standardize_inputs)
        self.standardize_targets = tuple(standardize_targets)
        self.activations = dict(activations or {})
        self.zero_biases = dict(zero_biases or {})
        self.from_start = bool(from_start)
        self.batch_size = None if batch_size is None else int(batch_size)
        self.dropout_rates = dict(dropout_rates or {})

    def build(self, model: Model) -> Model:
        """A compiled copy of ``model`` (same weights, optimizer state when it keeps the
        optimizer) with the change applied; ``model`` is not touched."""
        config = model.get_config()
        for entry in config["layers"]:
            name = entry["config"].get("name")
            if name in self.activations:
                if "activation" not in entry["config"]:
                    raise ValueError(f"remedy {self.words!r}: layer {name!r} has no activation")
                entry["config"] = dict(entry["config"], activation=self.activations[name])
        twin = type(model).from_config(config, seed=0)
        twin.set_weights([w.astype(twin.dtype) for w in model.get_weights()])
        for layer, src in zip(twin.layers, model.layers):
            layer.trainable = src.trainable
        for name, units in self.zero_biases.items():
            layer_name, weight = name.split("/", 1)
            twin.get_layer(layer_name).params[weight][units] = 0
        if self.dropout_rates:
            set_dropout_rates(twin.layers, self.dropout_rates)
        losses = [self.losses.get(n, loss) for n, loss in zip(model.output_names, model._losses)]
        weights = [self.loss_weights.get(n, w) for n, w in zip(model.output_names,
                                                                model._loss_weights)]
        optimizer = type(model.optimizer).from_config({**model.optimizer.get_config(),
                                                       **self.optimizer})
        with warnings.catch_warnings():
            # a plain-function loss warns that it is differentiated numerically: the user
            # saw that warning when compiling the model
            warnings.simplefilter("ignore", UserWarning)
            twin.compile(optimizer=optimizer, loss=losses, loss_weights=weights)
        if model.optimizer.iterations and not self.optimizer:
            twin.optimizer.set_state(model.optimizer.get_state())
        return twin

    def targets_for(self, model: Model, fixed: Model, ys: Sequence[ArrayLike]) -> list[Array]:
        """The user's targets as the fixed model's losses take them: class ids for a loss
        on one sigmoid unit get that unit's axis."""
        out = []
        for k, y in enumerate(ys):
            y = np.asarray(y)
            shape = tuple(fixed.outputs[k].shape)
            if (not getattr(fixed._losses[k], "sparse_targets", False)
                    and y.shape[1:] == shape[:-1] and shape[-1] == 1):
                y = y.reshape(y.shape + (1,))
            out.append(y)
        return out

    def prepare(self, fixed: Model, xs: Sequence[Array], ys: Sequence[Array]) -> Prepared:
        """The training data for the fixed copy: :class:`Prepared`."""
        # token ids (integer inputs, float ones only an Embedding reads) are not scaled
        stats = [_mean_std(a) if self.standardize_inputs and not ids else None
                 for a, ids in zip(xs, validation.token_id_inputs(fixed))]

        def transform_x(arrays: Sequence[Array]) -> list[Array]:
            return [a if s is None else ((a - s[0]) / s[1]).astype(a.dtype)
                    for a, s in zip(arrays, stats)]

        new_ys = list(ys)
        inverse: dict[str, Callable[[Array], Array]] = {}
        for k, name in enumerate(fixed.output_names):
            if name in self.standardize_targets:
                mean, std = _mean_std(ys[k])
                new_ys[k] = ((ys[k] - mean) / std).astype(ys[k].dtype)

                def back(p: Array, m: Float64Array = mean, s: Array = std) -> Array:
                    return p * s + m

                inverse[name] = back
        return Prepared(transform_x(xs), new_ys, transform_x, inverse)

    def __repr__(self) -> str:
        return f"<Remedy {self.words}>"


def _mean_std(a: Array) -> tuple[Float64Array, Array]:
    """Per-feature mean and std over every axis but the last (std 1 where it is 0)."""
    axes = tuple(range(a.ndim - 1))
    mean = np.asarray(np.mean(a, axis=axes, keepdims=True, dtype=np.float64))
    std = np.std(a, axis=axes, keepdims=True, dtype=np.float64)
    return mean, np.where(std > 0, std, 1.0)
