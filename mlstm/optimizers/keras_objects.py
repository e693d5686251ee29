"""Keras optimizer objects mapped to the mlstm optimizer with the same options, without
importing Keras.

A Keras optimizer is recognized by its class (or a base class) coming from a ``keras.*``
module. The mlstm optimizer is the one registered in :data:`mlstm.registry.OPTIMIZERS`
under the Keras class's name ("RMSprop", "Adam", ...: mlstm's optimizer classes carry Keras'
names), and the Keras object's ``get_config()`` gives the options, which carry Keras' names
in mlstm too. Refused by name, never approximated:

- a Keras optimizer mlstm does not have (Ftrl, Lion, ...), or a subclass of one defined
  outside Keras (its update may differ);
- a learning-rate callable or a schedule mlstm does not have (Keras' own schedules map to
  :mod:`mlstm.schedules`, option for option);
- an option mlstm does not compute (``use_ema=True``, ``loss_scale_factor``,
  ``gradient_accumulation_steps``, or any other option away from the Keras class's
  default). ``ema_momentum`` and ``ema_overwrite_frequency`` are read only with
  ``use_ema=True``, so they are ignored without it.

The learning rate is taken as Keras reports it: Keras keeps it in a variable of its
``floatx``, so with float32 Keras ``0.001`` reads back as ``0.0010000000474974513``, the
value Keras' own steps use.
"""
from __future__ import annotations

import inspect
import numbers
from typing import Any

from ..registry import OPTIMIZERS
from ..schedules import SCHEDULES, deserialize
from .base import Optimizer

__all__ = ["from_keras_object"]

#: Keras options mlstm computes only at one value (its default), with that value.
KERAS_ONLY_OPTIONS = {"use_ema": False, "loss_scale_factor": None,
                      "gradient_accumulation_steps": None}
#: Keras options without effect unless ``use_ema=True`` (refused above).
_EMA_ONLY_OPTIONS = ("ema_momentum", "ema_overwrite_frequency")


def _is_keras(module: object) -> bool:
    return isinstance(module, str) and (module == "keras" or module.startswith("keras."))


def _supported() -> str:
    return ", ".join(sorted(cls.__name__ for cls in OPTIMIZERS.classes()))


def from_keras_object(identifier: Any) -> Optimizer | None:
    """The mlstm optimizer for a Keras optimizer object or class; None for anything else.

    Parameters
    ----------
    identifier : object
        A ``keras.optimizers.X(...)`` instance (its options are carried) or the class
        itself (Keras' defaults).

    Returns
    -------
    mlstm.optimizers.Optimizer or None
        A new optimizer with fresh state (Keras' moments are not carried: both sides
        start fresh, as the Keras interop does).

    Raises
    ------
    ValueError
        A Keras optimizer or option mlstm does not compute, named.
    """
    cls = identifier if isinstance(identifier, type) else type(identifier)
    if not any(_is_keras(getattr(base, "__module__", None)) for base in cls.__mro__):
        return None
    name = cls.__name__
    matches = OPTIMIZERS.by_attribute("registered_name", name)
    matches = [c for c in matches if c.__name__ == name]
    if not matches or not _is_keras(cls.__module__):
        kind = "custom Keras optimizer class" if not _is_keras(cls.__module__) else \
            "Keras optimizer"
        raise ValueError(f"{kind} {name!r} has no mlstm counterpart (mlstm has the Keras "
                         f"optimizers {_supported()}; EMA and "
                         "loss scaling are not supported)")
    mine = matches[0]
    if identifier is cls:
        return mine()
    config = dict(identifier.get_config())
    config.pop("name", None)
    learning_rate = config.get("learning_rate")
    if isinstance(learning_rate, dict) and learning_rate.get("class_name") in SCHEDULES:
        # a Keras schedule, serialized: its config is the mlstm schedule's, key for key
        config["learning_rate"] = deserialize({"class_name": learning_rate["class_name"],
                                               "config": learning_rate.get("config", {})})
    elif not isinstance(learning_rate, numbers.Real) or isinstance(learning_rate, bool):
        raise ValueError(f"Keras optimizer {name}: learning rate {learning_rate!r} is not "
                         f"supported: a number or one of the schedules {SCHEDULES.names()} "
                         "(mlstm.schedules)")
    for key, expected in KERAS_ONLY_OPTIONS.items():
        if config.get(key, expected) != expected:
            raise ValueError(f"Keras optimizer {name}: option {key}={config[key]!r} is not "
                             f"supported (mlstm computes {key}={expected!r} only)")
    if not config.get("use_ema", False):
        for key in _EMA_ONLY_OPTIONS:
            config.pop(key, None)
    accepted = set(mine().get_config())
    # (cls is a class here: its __init__, not an instance's)
    keras_defaults = {k: p.default for k, p in inspect.signature(
                          cls.__init__).parameters.items()  # type: ignore[misc]
                      if p.default is not inspect.Parameter.empty}
    options: dict[str, Any] = {}
    for key, value in config.items():
        if key in accepted:
            options[key] = value
        elif key not in KERAS_ONLY_OPTIONS and (key not in keras_defaults
                                                or keras_defaults[key] != value):
            raise ValueError(f"Keras optimizer {name}: option {key}={value!r} is not "
                             f"supported by mlstm's {mine.__name__} (it takes "
                             f"{sorted(accepted - {'name'})})")
    return mine(**options)
