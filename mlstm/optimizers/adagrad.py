"""Adagrad in Keras' form (ε inside the square root, the accumulator starting at 0.1).

Step t = 1, 2, ... (after clipping and weight decay, :mod:`mlstm.optimizers.base`)::

    a ← a + g²                      a₀ = initial_accumulator_value (0.1)
    θ ← θ - lr · g / sqrt(a + ε)    ε = 1e-7

The accumulator only grows, so each parameter's step size shrinks as 1/sqrt(Σ g²). Its
starting value is cast to the weights' dtype the way Keras' ``Constant`` initializer does
(``ops.cast``, which goes through float32: in float64, a₀ = float32(0.1) exactly). An
Embedding table's g² is Σ g_i² over its token occurrences, as Keras' (docs/optimizers.md).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .._typing import FloatArray, JSONDict
from ..registry import register_optimizer
from ..schedules import LearningRateSchedule
from .base import Gradient, Optimizer, _positive, gradient_squares, gradient_sum

__all__ = ["Adagrad"]


@register_optimizer(aliases=("adagrad",))
class Adagrad(Optimizer):
    """Adagrad, Keras form; see the module docstring.

    Parameters
    ----------
    learning_rate : float
    initial_accumulator_value : float
        The accumulator's starting value (non-negative; 0.1, Keras' default).
    epsilon : float
        Added to the accumulator inside the square root (1e-7, Keras' default).
    clipnorm, global_clipnorm, clipvalue, weight_decay
        See :class:`mlstm.optimizers.Optimizer`.

    Notes
    -----
    State, per parameter (its shape): ``accumulator`` (a).
    """

    name = "adagrad"
    handles_sparse_rows = True

    def __init__(self, learning_rate: float | LearningRateSchedule = 0.001,
                 initial_accumulator_value: float = 0.1, epsilon: float = 1e-7,
                 **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.initial_accumulator_value = _positive(
            "initial_accumulator_value", initial_accumulator_value, allow_zero=True)
        self.epsilon = _positive("epsilon", epsilon, allow_zero=True)
        self.accumulators: dict[str, FloatArray] = {}

    def rule(self, theta: FloatArray, g: Gradient, state: Mapping[str, FloatArray | None],
             step: int) -> tuple[FloatArray, dict[str, FloatArray]]:
        dtype = theta.dtype.type
        # g² per token occurrence for an Embedding table (Keras' IndexedSlices), else g²
        squares, g = gradient_squares(g), gradient_sum(g)
        if state["accumulator"] is None:
            # Keras' Constant initializer: ops.cast(value, dtype), through float32
            a_new = np.full_like(theta, dtype(np.float32(self.initial_accumulator_value)))
        else:
            a_new = state["accumulator"].copy()
        a_new += squares
        denominator = a_new + dtype(self.epsilon)
        step_size = dtype(self.learning_rate_at(step - 1)) * g
        step_size /= np.sqrt(denominator)
        theta -= step_size
        return theta, {"accumulator": a_new}

    def _slots(self) -> dict[str, dict[str, FloatArray]]:
        return {"accumulator": self.accumulators}

    def _float_settings(self) -> list[tuple[str, float]]:
        return super()._float_settings() + [
            ("epsilon", self.epsilon),
            ("initial_accumulator_value", self.initial_accumulator_value)]

    def get_config(self) -> JSONDict:
        config = super().get_config()
        config.update(initial_accumulator_value=self.initial_accumulator_value,
                      epsilon=self.epsilon)
        return config
