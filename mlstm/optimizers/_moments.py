"""What Adam, Nadam and Adamax share: β1, β2 and ε (validated, checked finite in the
weights' dtype, carried in the config) and Keras' moving average of a moment,

    m ← m + (g - m)(1 - β)        (``assign_add(m, (g - m) * (1 - β))``).
"""
from __future__ import annotations

from typing import Any

from .._typing import FloatArray, JSONDict
from ..schedules import LearningRateSchedule
from .base import Optimizer, _positive

__all__ = ["BetaMomentsOptimizer", "moving_average"]


def moving_average(old: FloatArray, new: FloatArray, one_minus_beta: Any) -> FloatArray:
    """``old + (new - old) · (1 - β)`` as a new array, made once and finished in place
    (fewer temporaries than the expression, and the same bits)."""
    out = new - old
    out *= one_minus_beta
    out += old
    return out


class BetaMomentsOptimizer(Optimizer):
    """Base of the optimizers that keep moments with decay rates β1, β2 and an ε."""

    #: Whether β2 = 1 is allowed (Adamax's infinity norm: ``max(β2 u, |g|)``).
    beta_2_may_be_one = False

    def __init__(self, learning_rate: float | LearningRateSchedule, beta_1: float,
                 beta_2: float, epsilon: float, **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        label = type(self).__name__
        if not 0.0 <= _positive("beta_1", beta_1, allow_zero=True) < 1.0:
            raise ValueError(f"{label}: beta_1 must be in [0, 1), got {beta_1}")
        _positive("beta_2", beta_2, allow_zero=True)
        if self.beta_2_may_be_one and not 0.0 <= beta_2 <= 1.0:
            raise ValueError(f"{label}: beta_2 must be in [0, 1], got {beta_2}")
        if not self.beta_2_may_be_one and not 0.0 <= beta_2 < 1.0:
            raise ValueError(f"{label}: beta_2 must be in [0, 1), got {beta_2}")
        self.beta_1, self.beta_2 = float(beta_1), float(beta_2)
        self.epsilon = _positive("epsilon", epsilon, allow_zero=True)

    def _float_settings(self) -> list[tuple[str, float]]:
        return super()._float_settings() + [("epsilon", self.epsilon)]

    def get_config(self) -> JSONDict:
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)
        return config
