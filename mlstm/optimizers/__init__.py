"""Optimizers in Keras' exact form, with explicit state and all-or-nothing steps.

=========================  ==================================================================
:mod:`.base`               :class:`Optimizer`: the step (clip -> weight decay -> rule),
                           computed into new arrays, checked finite, committed with Ctrl-C
                           deferred; the weight-decay transform
:mod:`._gradients`         the clipping transforms, and the terms a rule takes from a
                           gradient (sum, squares, magnitudes): per token occurrence for an
                           Embedding table, as Keras (``mlstm.ops.embedding.SparseRowsGradient``)
:mod:`._moments`           what Adam, Nadam and Adamax share: β1, β2, ε and Keras' moving
                           average of a moment, m + (g - m)(1 - β)
:mod:`.adam`               :class:`Adam` (Keras' form; AMSGrad)
:mod:`.adamw`              :class:`AdamW` (Adam with weight_decay=0.004 by default)
:mod:`.adamax`             :class:`Adamax` (Adam with the infinity norm)
:mod:`.nadam`              :class:`Nadam` (Nesterov Adam with Keras' momentum schedule)
:mod:`.rmsprop`            :class:`RMSprop` (momentum; centered)
:mod:`.adagrad`            :class:`Adagrad`
:mod:`.sgd`                :class:`SGD` ((Nesterov) momentum)
:mod:`.keras_objects`      :func:`from_keras_object`: a Keras optimizer object -> the mlstm
                           one with the same options (Keras is not imported)
=========================  ==================================================================

Each optimizer class registers itself in :data:`mlstm.registry.OPTIMIZERS` under its Keras
class name and a lowercase alias ("Adam"/"adam", "RMSprop"/"rmsprop", ...); :func:`get`
looks names up there. The formulas are in ``docs/optimizers.md``. ``learning_rate`` may be
a schedule (:mod:`mlstm.schedules`, also reachable as ``mlstm.optimizers.schedules``).
"""
from __future__ import annotations

from typing import Any

from .. import schedules
from ..registry import OPTIMIZERS as _REGISTRY
from .adagrad import Adagrad
from .adam import Adam
from .adamax import Adamax
from .adamw import AdamW
from .base import (MAX_ITERATIONS, Optimizer, clip_by_global_norm, clip_by_norm,
                   clip_by_value, decoupled_weight_decay, gradient_magnitudes,
                   gradient_squares, gradient_sum)
from .keras_objects import from_keras_object
from .nadam import Nadam
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "Adam", "AdamW", "Adamax", "Nadam", "RMSprop", "Adagrad", "SGD",
           "get", "from_keras_object", "MAX_ITERATIONS", "clip_by_norm",
           "clip_by_global_norm", "clip_by_value", "decoupled_weight_decay", "gradient_sum",
           "gradient_squares", "gradient_magnitudes", "schedules"]


def get(identifier: Any) -> Optimizer:
    """An optimizer from a name (``"adam"``, ``"RMSprop"``, ``"sgd"``, ...; Keras'
    defaults), an instance (returned as it is), or a Keras optimizer object or class (the
    mlstm optimizer with its options: :func:`from_keras_object`)."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        key = identifier if identifier in _REGISTRY else identifier.lower()
        if key in _REGISTRY:
            return _REGISTRY.get(key)()
    else:
        mapped = from_keras_object(identifier)
        if mapped is not None:
            return mapped
    raise ValueError(f"Unknown optimizer {identifier!r}; registered optimizers: "
                     f"{', '.join(_REGISTRY.names(aliases=True))}, an "
                     "mlstm.optimizers.Optimizer instance, or a Keras optimizer object of "
                     "one of these classes")
