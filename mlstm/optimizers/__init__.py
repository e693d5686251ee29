"""Optimizers in Keras' exact form, with explicit state and all-or-nothing steps.

=========================  ==================================================================
:mod:`.base`               :class:`Optimizer`: the step (clip -> weight decay -> rule),
                           computed into new arrays, checked finite, committed with Ctrl-C
                           deferred; the clipping and weight-decay transforms
:mod:`.adam`               :class:`Adam` (Keras' form; AMSGrad)
:mod:`.sgd`                :class:`SGD` ((Nesterov) momentum)
=========================  ==================================================================

Each optimizer class registers itself in :data:`mlstm.registry.OPTIMIZERS` under its Keras
class name and a lowercase alias ("Adam"/"adam", "SGD"/"sgd"); :func:`get` looks names up
there. The formulas are in ``docs/optimizers.md``. ``learning_rate`` may be a schedule
(:mod:`mlstm.schedules`, also reachable as ``mlstm.optimizers.schedules``).
"""
from __future__ import annotations

from .. import schedules
from ..registry import OPTIMIZERS as _REGISTRY
from .adam import Adam
from .base import (MAX_ITERATIONS, Optimizer, clip_by_global_norm, clip_by_norm,
                   clip_by_value, decoupled_weight_decay)
from .sgd import SGD

__all__ = ["Optimizer", "Adam", "SGD", "get", "MAX_ITERATIONS", "clip_by_norm",
           "clip_by_global_norm", "clip_by_value", "decoupled_weight_decay", "schedules"]


def get(identifier):
    """An optimizer from a name (``"adam"``, ``"Adam"``, ``"sgd"``, ...; Keras' defaults) or
    an instance (returned as it is)."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        key = identifier if identifier in _REGISTRY else identifier.lower()
        if key in _REGISTRY:
            return _REGISTRY.get(key)()
    raise ValueError(f"Unknown optimizer {identifier!r}; registered optimizers: "
                     f"{', '.join(_REGISTRY.names(aliases=True))}, or an "
                     "mlstm.optimizers.Optimizer instance")

