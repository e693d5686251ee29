"""RMSprop in Keras' form (ε inside the square root), with momentum and the centered variant.

Step t = 1, 2, ... (after clipping and weight decay, :mod:`mlstm.optimizers.base`); the
state starts at zero::

    v ← ρ v + (1 - ρ) g²
    centered:      ḡ ← ρ ḡ + (1 - ρ) g;    d = v - ḡ² + ε
    not centered:                          d = v + ε
    Δ = lr · g / sqrt(d)
    momentum μ > 0:  s ← μ s + Δ;  θ ← θ - s
    μ = 0:                         θ ← θ - Δ

ε = 1e-7 sits *inside* the square root (Adam adds its ε to sqrt(v)), and there is no bias
correction: at the first step v = (1 - ρ) g², so Δ ≈ lr · sign(g) / sqrt(1 - ρ), about
3.2 · lr for ρ = 0.9. An Embedding table's g² is Σ g_i² over its token occurrences, as
Keras' (docs/optimizers.md, "Embedding tables").
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .._typing import FloatArray, JSONDict
from ..registry import register_optimizer
from ..schedules import LearningRateSchedule
from .base import Gradient, Optimizer, _positive, gradient_squares, gradient_sum

__all__ = ["RMSprop"]


@register_optimizer(aliases=("rmsprop",))
class RMSprop(Optimizer):
    """RMSprop, Keras form (ε inside the square root); see the module docstring.

    Parameters
    ----------
    learning_rate : float
    rho : float
        Decay of the moving average of g² (and of g, when centered), in [0, 1].
    momentum : float
        Heavy-ball momentum on the increment, in [0, 1]; 0 keeps no momentum state.
    epsilon : float
        Added to the average of g² inside the square root (1e-7, Keras' default).
    centered : bool
        Divide by the moving *variance* of g (v - ḡ²) instead of the moving mean of g².
    clipnorm, global_clipnorm, clipvalue, weight_decay
        See :class:`mlstm.optimizers.Optimizer`.

    Notes
    -----
    State, per parameter (its shape): ``velocity`` (v), ``momentum`` (s, when
    ``momentum > 0``) and ``average_gradient`` (ḡ, when ``centered``), as Keras names them.
    """

    name = "rmsprop"
    handles_sparse_rows = True

    def __init__(self, learning_rate: float | LearningRateSchedule = 0.001, rho: float = 0.9,
                 momentum: float = 0.0, epsilon: float = 1e-7, centered: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        for label, value in (("rho", rho), ("momentum", momentum)):
            if not 0.0 <= _positive(label, value, allow_zero=True) <= 1.0:
                raise ValueError(f"RMSprop: {label} must be in [0, 1], got {value}")
        self.rho, self.momentum = float(rho), float(momentum)
        self.epsilon = _positive("epsilon", epsilon, allow_zero=True)
        self.centered = bool(centered)
        self.velocities: dict[str, FloatArray] = {}
        self.momentums: dict[str, FloatArray] = {}
        self.average_gradients: dict[str, FloatArray] = {}

    def rule(self, theta: FloatArray, g: Gradient, state: Mapping[str, FloatArray | None],
             step: int) -> tuple[FloatArray, dict[str, FloatArray]]:
        dtype = theta.dtype.type
        # Keras multiplies by the Python floats ρ and 1 - ρ (exact in float64) and adds the
        # Python float ε: each is the nearest value of the weights' dtype.
        rho, one_minus_rho = dtype(self.rho), dtype(1 - self.rho)
        # g² per token occurrence for an Embedding table (Keras' IndexedSlices), else g²
        squares, g = gradient_squares(g), gradient_sum(g)
        v = state["velocity"] if state["velocity"] is not None else np.zeros_like(theta)
        v_new = rho * v
        squares *= one_minus_rho
        v_new += squares
        new_state = {"velocity": v_new}
        if self.centered:
            a = (state["average_gradient"] if state["average_gradient"] is not None
                 else np.zeros_like(theta))
            a_new = rho * a
            a_new += one_minus_rho * g
            new_state["average_gradient"] = a_new
            denominator = v_new - np.square(a_new)
        else:
            denominator = v_new.copy()
        denominator += dtype(self.epsilon)
        increment = dtype(self.learning_rate_at(step - 1)) * g
        increment /= np.sqrt(denominator)
        if self.momentum > 0:
            s = state["momentum"] if state["momentum"] is not None else np.zeros_like(theta)
            s_new = dtype(self.momentum) * s
            s_new += increment
            new_state["momentum"] = s_new
            theta -= s_new
        else:
            theta -= increment
        return theta, new_state

    def _slots(self) -> dict[str, dict[str, FloatArray]]:
        slots = {"velocity": self.velocities}
        if self.momentum > 0:
            slots["momentum"] = self.momentums
        if self.centered:
            slots["average_gradient"] = self.average_gradients
        return slots

    def _float_settings(self) -> list[tuple[str, float]]:
        return super()._float_settings() + [("epsilon", self.epsilon)]

    def get_config(self) -> JSONDict:
        config = super().get_config()
        config.update(rho=self.rho, momentum=self.momentum, epsilon=self.epsilon,
                      centered=self.centered)
        return config
