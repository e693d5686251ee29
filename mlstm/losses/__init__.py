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

=============================  =========================================================
mean_squared_error ("mse")     mean_D (p - t)^2;              dp = 2 (p - t) / D
binary_crossentropy ("bce")    -mean_D [t log p̂ + (1-t) log(1-p̂)], p̂ = clip(p, ε, 1-ε);
                               dp = -(t/p̂ - (1-t)/(1-p̂)) / D inside the clip, 0 outside
BCE from logits x              mean_D [max(x,0) - x t + log(1 + e^-|x|)]; dx = (σ(x) - t) / D
=============================  =========================================================

When the output is a sigmoid of logits (a ``Dense(activation="sigmoid")`` or
``Activation("sigmoid")`` output), binary cross-entropy is computed from those logits, as
Keras does; the clipped formula would be wrong (and its gradient zero) on a saturated head.

Each loss is one registered class in one file (``mse.py``, ``bce.py``; the contract and the
reduction in ``base.py``), found by name through :data:`mlstm.registry.LOSSES`.

A custom loss is a :class:`Loss` subclass with ``call`` and ``gradient``, or a plain function
``f(y_true, y_pred) -> values`` differentiated by central differences (with a warning).
"""
from __future__ import annotations

import warnings

from ..registry import LOSSES, register_loss
from .base import EPSILON, Loss, reduce_output_loss
from .bce import BinaryCrossentropy, binary_crossentropy
from .function import FunctionLoss
from .mse import MeanSquaredError, mean_squared_error

__all__ = ["Loss", "MeanSquaredError", "BinaryCrossentropy", "FunctionLoss", "get",
           "reduce_output_loss", "mean_squared_error", "binary_crossentropy", "LOSSES",
           "EPSILON", "register_loss"]


def get(identifier):
    """Resolve a loss: a name in :data:`LOSSES`, a :class:`Loss`, or a plain function.

    A plain function becomes a :class:`FunctionLoss` and a warning says that its gradient
    is taken by central differences.
    """
    if isinstance(identifier, Loss):
        return identifier
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
            f"loss {loss.name!r} is a plain function: mlstm differentiates it by central "
            "differences (2 evaluations per prediction entry, approximate). Subclass "
            "mlstm.losses.Loss with call() and gradient() for an exact, fast gradient.",
            stacklevel=3)
        return loss
    raise TypeError(f"Cannot interpret {identifier!r} as a loss; use a name from "
                    f"{LOSSES.names(aliases=True)}, a losses.Loss instance or a function")
