"""Losses: values and gradients, with Keras' reduction.

A loss is applied to **each output separately**, with that output's ``y_true`` and
``y_pred`` only (as Keras does: a single loss given for several outputs is called once per
output). For one output::

    values = loss.call(y_true, y_pred)          shape y_pred.shape[:-1] (or a scalar)
    L      = Σ w ⊙ values                       w = 1/size        (no mask)
                                                w = m / Σ m       (mask m; 0 if Σ m = 0)

i.e. Keras' "sum over batch size" (the mean of all per-sample values), with a mask
averaging over valid entries only. The total is ``Σ_k loss_weight_k · L_k``.

Built-in losses (D = size of the last axis, ε = 1e-7):

=================================  =====================================================
mean_squared_error ("mse")         mean_D (p - t)^2;              dp = 2 (p - t) / D
mean_absolute_error ("mae")        mean_D |p - t|;                dp = sign(p - t) / D
huber                              mean_D h_δ(p - t) (quadratic up to δ, then linear)
binary_crossentropy ("bce")        -mean_D [t log p̂ + (1-t) log(1-p̂)], p̂ = clip(p, ε, 1-ε);
                                   dp = -(t/p̂ - (1-t)/(1-p̂)) / D inside the clip, 0 outside
BCE from logits x                  mean_D [max(x,0) - x t + log(1 + e^-|x|)]; dx = (σ(x) - t) / D
categorical_crossentropy           -Σ_C t log clip(p / Σp, ε, 1-ε); from logits a:
                                   Σ_C t (lse(a) - a), da = softmax(a) - t (targets summing to 1)
sparse_categorical_crossentropy    the same with class ids y: lse(a) - a_y, da = softmax(a) - onehot(y)
=================================  =====================================================

When the output is a sigmoid of logits (a ``Dense(activation="sigmoid")`` or
``Activation("sigmoid")`` output), binary cross-entropy is computed from those logits, and
on a softmax head (categorical and sparse) categorical cross-entropy, as Keras does; the
clipped formula would be wrong (and its gradient zero) on a saturated head.

Each loss is one registered class in one file (``mse.py``, ``mae.py``, ``huber_loss.py``,
``bce.py``, ``categorical.py``, ``sparse_categorical.py``; the contract and the reduction
in ``base.py``), found by name through :data:`mlstm.registry.LOSSES`.

A Keras loss object or function (``keras.losses.MeanSquaredError()``,
``keras.losses.categorical_crossentropy``) is recognized without importing Keras (by its
class or function name, its module and its ``get_config()``) and becomes the mlstm loss of
the same name and options (:func:`get`); one mlstm has no counterpart for is refused by
name. A custom loss is a :class:`Loss` subclass with ``call`` and ``gradient``, or a plain
NumPy function ``f(y_true, y_pred) -> values`` differentiated numerically (five-point
stencil in float64, with a warning: :class:`FunctionLoss`).
"""
from __future__ import annotations

import inspect
import warnings
from typing import Any

from ..registry import LOSSES, register_loss
from .base import EPSILON, Loss, reduce_output_loss
from .bce import BinaryCrossentropy, binary_crossentropy
from .categorical import CategoricalCrossentropy, categorical_crossentropy
from .function import FunctionLoss
from .huber_loss import Huber, huber
from .mae import MeanAbsoluteError, mean_absolute_error
from .mse import MeanSquaredError, mean_squared_error
from .sparse_categorical import SparseCategoricalCrossentropy, sparse_categorical_crossentropy

__all__ = ["Loss", "MeanSquaredError", "MeanAbsoluteError", "Huber", "BinaryCrossentropy",
           "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "FunctionLoss", "get",
           "reduce_output_loss", "mean_squared_error", "mean_absolute_error", "huber",
           "binary_crossentropy", "categorical_crossentropy",
           "sparse_categorical_crossentropy", "LOSSES", "EPSILON", "register_loss",
           "from_keras_object"]

#: Keras loss options that are not the loss's math: the name, and the dtype it computes in
#: (mlstm computes in the output's dtype). ``reduction`` is checked separately.
_KERAS_IGNORED_OPTIONS = ("name", "dtype")
_KERAS_REDUCTION = "sum_over_batch_size"


def _is_keras(module: object) -> bool:
    return isinstance(module, str) and (module == "keras" or module.startswith("keras."))


def _keras_names(attribute: str) -> list[str]:
    return sorted(getattr(cls, attribute) for cls in LOSSES.classes()
                  if getattr(cls, attribute, None))


def from_keras_object(identifier: Any) -> Loss | None:
    """The mlstm loss for a Keras loss object, class or function; None for anything else.

    Recognized without importing Keras: a Keras loss is an object whose class (or a base
    class) comes from a ``keras.*`` module, or a function defined in one. The mlstm class is
    the registered loss whose ``keras_name`` is the Keras class's name (or whose
    ``keras_function`` is the function's name); the object's ``get_config()`` (and the
    options a Keras wrapper keeps in ``_fn_kwargs``) give the options. An option mlstm's class does not take is accepted only at the Keras class's
    default value (mlstm computes what Keras does by default); ``reduction`` must be
    ``"sum_over_batch_size"``, Keras' default. Anything else is refused by name.
    """
    if inspect.isfunction(identifier):
        if not _is_keras(getattr(identifier, "__module__", None)):
            return None
        name = identifier.__name__
        found = LOSSES.by_attribute("keras_function", name)
        if not found:
            raise ValueError(f"Keras loss function {name!r} has no mlstm counterpart; mlstm "
                             f"has the Keras loss functions {_keras_names('keras_function')} "
                             "(or write it as a mlstm.losses.Loss subclass)")
        return found[0]()
    cls = identifier if isinstance(identifier, type) else type(identifier)
    if not any(_is_keras(getattr(base, "__module__", None)) for base in cls.__mro__):
        return None
    found = LOSSES.by_attribute("keras_name", cls.__name__)
    if not found or not _is_keras(cls.__module__):
        kind = "custom Keras loss class" if not _is_keras(cls.__module__) else "Keras loss"
        raise ValueError(f"{kind} {cls.__name__!r} has no mlstm counterpart, and mlstm does "
                         "not differentiate Keras code; mlstm has the Keras losses "
                         f"{_keras_names('keras_name')} (or write it as a mlstm.losses.Loss "
                         "subclass with call() and gradient())")
    mine = found[0]
    if identifier is cls:
        return mine()
    # Keras keeps a wrapper's options in ``_fn_kwargs``; its get_config() leaves some out
    # (Huber's delta in Keras 3.15), so both are read.
    fn_kwargs = getattr(identifier, "_fn_kwargs", None)
    config = {**(fn_kwargs if isinstance(fn_kwargs, dict) else {}),
              **identifier.get_config()}
    reduction = config.pop("reduction", _KERAS_REDUCTION)
    if reduction != _KERAS_REDUCTION:
        raise ValueError(f"Keras loss {cls.__name__}: reduction={reduction!r} is not "
                         f"supported (only {_KERAS_REDUCTION!r}, Keras' default)")
    accepted = inspect.signature(mine.__init__).parameters
    # (cls is a class here: its __init__, not an instance's)
    keras_defaults = {k: p.default for k, p in inspect.signature(
                          cls.__init__).parameters.items()  # type: ignore[misc]
                      if p.default is not inspect.Parameter.empty}
    options = {}
    for key, value in config.items():
        if key in _KERAS_IGNORED_OPTIONS:
            continue
        if key in accepted:
            options[key] = value
        elif key not in keras_defaults or keras_defaults[key] != value:
            raise ValueError(f"Keras loss {cls.__name__}: option {key}={value!r} is not "
                             f"supported by mlstm's {mine.__name__} (it takes "
                             f"{[k for k in accepted if k != 'self']})")
    return mine(**options)


def get(identifier: Any) -> Loss:
    """Resolve a loss: a name in :data:`LOSSES`, a :class:`Loss`, a Keras loss object or
    function (:func:`from_keras_object`), or a plain NumPy function.

    A plain function becomes a :class:`FunctionLoss` and a warning says that its gradient
    is taken numerically.
    """
    if isinstance(identifier, Loss):
        return identifier
    keras_loss = from_keras_object(identifier)
    if keras_loss is not None:
        return keras_loss
    if isinstance(identifier, str):
        if identifier not in LOSSES:
            raise ValueError(f"Unknown loss {identifier!r}; valid losses are "
                             f"{LOSSES.names(aliases=True)}, a losses.Loss instance or a "
                             "function f(y_true, y_pred)")
        return LOSSES.get(identifier)()
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier):
        loss = FunctionLoss(identifier)
        warnings.warn(
            f"loss {loss.name!r} is a plain function: mlstm differentiates it numerically "
            "(five-point central differences in float64, the step refined per entry: 8-24 "
            "evaluations per prediction entry, relative error ~1e-9, slow). Subclass "
            "mlstm.losses.Loss with call() and gradient() for an exact, fast gradient.",
            stacklevel=3)
        return loss
    raise TypeError(f"Cannot interpret {identifier!r} as a loss; use a name from "
                    f"{LOSSES.names(aliases=True)}, a losses.Loss instance or a function")
