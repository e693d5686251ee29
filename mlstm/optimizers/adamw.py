"""AdamW in Keras' form: Adam with decoupled weight decay, on by default (0.004).

Step t = 1, 2, ... (after clipping, :mod:`mlstm.optimizers.base`)::

    θ ← θ - θ · λ · lr              λ = weight_decay = 0.004 (decoupled: not in g)
    m ← m + (g - m)(1 - β1)
    v ← v + (g² - v)(1 - β2)
    v̂ ← max(v̂, v)  (amsgrad; the step then uses v̂)
    α = lr · sqrt(1 - β2^t) / (1 - β1^t)
    θ ← θ - α · m / (sqrt(v) + ε)   ε = 1e-7

Keras' ``AdamW`` is its ``Adam`` with a different default ``weight_decay`` (and refuses
``weight_decay=None``); so is this one. The decay comes first, on the weights before the
Adam step, as in :meth:`mlstm.optimizers.Optimizer.apply`.
"""
from __future__ import annotations

from typing import Any

from ..registry import register_optimizer
from ..schedules import LearningRateSchedule
from .adam import Adam

__all__ = ["AdamW"]


@register_optimizer(aliases=("adamw",))
class AdamW(Adam):
    """AdamW: :class:`mlstm.optimizers.Adam` with ``weight_decay=0.004`` by default.

    Parameters
    ----------
    learning_rate : float
    weight_decay : float
        Decoupled weight decay λ: ``θ ← θ - θ · λ · lr`` before the Adam step (0.004,
        Keras' default; required, as in Keras, 0 switches it off).
    beta_1, beta_2, epsilon, amsgrad
        As :class:`mlstm.optimizers.Adam`.
    clipnorm, global_clipnorm, clipvalue
        See :class:`mlstm.optimizers.Optimizer`.

    Notes
    -----
    State, per parameter: ``m``, ``v`` (and ``v_hat`` with amsgrad), as Adam's.
    """

    name = "adamw"

    def __init__(self, learning_rate: float | LearningRateSchedule = 0.001,
                 weight_decay: float = 0.004, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False, **kwargs: Any) -> None:
        if weight_decay is None:
            raise ValueError("AdamW: weight_decay must be a number (0.004 by default; 0 "
                             "switches the decay off), got None, as Keras refuses it")
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
                         epsilon=epsilon, amsgrad=amsgrad, weight_decay=weight_decay,
                         **kwargs)
