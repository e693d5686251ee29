"""Adamax in Keras' form: Adam with the infinity norm in place of sqrt(v).

Step t = 1, 2, ... (after clipping and weight decay, :mod:`mlstm.optimizers.base`); the
state starts at zero::

    m ← m + (g - m)(1 - β1)
    u ← max(β2 u, |g|)
    θ ← θ - lr · m / ((1 - β1^t) (u + ε))      ε = 1e-7

ε is added to u, the running maximum of |g| (there is no square root and no second bias
correction: u is not a biased average). In ``1 - β1^t`` Keras casts β1 to the weights'
dtype through float32 (``ops.cast``); in the moment update it uses the Python float
``1 - β1``. Both as here. An Embedding table's |g| is Σ |g_i| over its token occurrences, as
Keras' (docs/optimizers.md, "Embedding tables").
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .._typing import FloatArray, JSONDict
from ..registry import register_optimizer
from ..schedules import LearningRateSchedule
from ._moments import BetaMomentsOptimizer, moving_average
from .base import Gradient, gradient_magnitudes, gradient_sum

__all__ = ["Adamax"]


@register_optimizer(aliases=("adamax",))
class Adamax(BetaMomentsOptimizer):
    """Adamax, Keras form; see the module docstring.

    Parameters
    ----------
    learning_rate : float
    beta_1 : float
        Decay of the first moment m, in [0, 1).
    beta_2 : float
        Decay of the infinity norm u, in [0, 1].
    epsilon : float
        Added to u (1e-7, Keras' default).
    clipnorm, global_clipnorm, clipvalue, weight_decay
        See :class:`mlstm.optimizers.Optimizer`.

    Notes
    -----
    State, per parameter (its shape): ``m`` and ``u``.
    """

    name = "adamax"
    beta_2_may_be_one = True        # max(β2 u, |g|): β2 = 1 keeps the largest |g|
    handles_sparse_rows = True

    def __init__(self, learning_rate: float | LearningRateSchedule = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, **kwargs: Any) -> None:
        super().__init__(learning_rate, beta_1, beta_2, epsilon, **kwargs)
        self.m: dict[str, FloatArray] = {}
        self.u: dict[str, FloatArray] = {}

    def rule(self, theta: FloatArray, g: Gradient, state: Mapping[str, FloatArray | None],
             step: int) -> tuple[FloatArray, dict[str, FloatArray]]:
        dtype = theta.dtype.type
        # |g| per token occurrence for an Embedding table (Keras' IndexedSlices), else |g|
        magnitudes, g = gradient_magnitudes(g), gradient_sum(g)
        m = state["m"] if state["m"] is not None else np.zeros_like(theta)
        u = state["u"] if state["u"] is not None else np.zeros_like(theta)
        m_new = moving_average(m, g, dtype(1 - self.beta_1))
        u_new = np.maximum(dtype(self.beta_2) * u, magnitudes)
        correction = 1 - dtype(np.float32(self.beta_1)) ** dtype(step)
        denominator = u_new + dtype(self.epsilon)
        denominator *= correction
        step_size = dtype(self.learning_rate_at(step - 1)) * m_new
        step_size /= denominator
        theta -= step_size
        return theta, {"m": m_new, "u": u_new}

    def _slots(self) -> dict[str, dict[str, FloatArray]]:
        return {"m": self.m, "u": self.u}

