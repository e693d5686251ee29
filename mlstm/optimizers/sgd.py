"""Stochastic gradient descent with optional (Nesterov) momentum, in Keras' form.

After clipping and weight decay (:mod:`mlstm.optimizers.base`)::

    no momentum:  θ ← θ - lr · g
    momentum μ:   u ← μ u - lr · g;  θ ← θ + u              (nesterov: θ ← θ + μ u - lr · g)
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .._typing import FloatArray, JSONDict
from ..registry import register_optimizer
from ..schedules import LearningRateSchedule
from .base import Gradient, Optimizer, _positive, gradient_sum

__all__ = ["SGD"]


@register_optimizer(aliases=("sgd",))
class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, Keras form.

    Parameters
    ----------
    learning_rate : float
    momentum : float
    nesterov : bool
    clipnorm, global_clipnorm, clipvalue, weight_decay
        See :class:`mlstm.optimizers.Optimizer`.
    """

    name = "sgd"
    handles_sparse_rows = True

    def __init__(self, learning_rate: float | LearningRateSchedule = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, **kwargs: Any) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        if not 0.0 <= _positive("momentum", momentum, allow_zero=True) <= 1.0:
            raise ValueError(f"SGD: momentum must be in [0, 1], got {momentum}")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.velocity: dict[str, FloatArray] = {}

    def rule(self, theta: FloatArray, g: Gradient, state: Mapping[str, FloatArray | None],
             step: int) -> tuple[FloatArray, dict[str, FloatArray]]:
        dtype = theta.dtype.type
        g = gradient_sum(g)     # linear in g: an Embedding table's occurrences just add up
        lr = dtype(self.learning_rate_at(step - 1))
        if not self.momentum:
            theta -= lr * g
            return theta, {}
        # Keras: ops.cast(self.momentum, dtype), which takes a Python float through float32
        # even for float64 weights (0.9 -> 0.8999999761581421)
        mu = dtype(np.float32(self.momentum))
        u = state["velocity"] if state["velocity"] is not None else np.zeros_like(theta)
        u = u * mu
        u -= lr * g
        if self.nesterov:
            theta += mu * u - lr * g
        else:
            theta += u
        return theta, {"velocity": u}

    def _slots(self) -> dict[str, dict[str, FloatArray]]:
        return {"velocity": self.velocity} if self.momentum else {}

    def get_config(self) -> JSONDict:
        config = super().get_config()
        config.update(momentum=self.momentum, nesterov=self.nesterov)
        return config
