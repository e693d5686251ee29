"""Adam in Keras' form (ε on the uncorrected sqrt(v)), with AMSGrad.

Step t = 1, 2, ... (after clipping and weight decay, :mod:`mlstm.optimizers.base`)::

    m ← m + (g - m)(1 - β1)
    v ← v + (g² - v)(1 - β2)
    v̂ ← max(v̂, v)  (amsgrad; the step then uses v̂)
    α = lr · sqrt(1 - β2^t) / (1 - β1^t)
    θ ← θ - α · m / (sqrt(v) + ε)                   ε = 1e-7 by default

An Embedding table's g² is Σ g_i² over its token occurrences, as Keras' (docs/optimizers.md,
"Embedding tables"; :mod:`mlstm.optimizers._gradients`).

ε sits on the *uncorrected* sqrt(v): PyTorch's ``(m/(1-β1^t)) / (sqrt(v/(1-β2^t)) + ε')``
equals this with ε = ε' · sqrt(1 - β2^t) (docs/optimizers.md).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .._typing import FloatArray, JSONDict
from ..registry import register_optimizer
from ..schedules import LearningRateSchedule
from ._moments import BetaMomentsOptimizer, moving_average
from .base import Gradient, gradient_squares, gradient_sum

__all__ = ["Adam"]


@register_optimizer(aliases=("adam",))
class Adam(BetaMomentsOptimizer):
    """Adam, Keras form (ε on the uncorrected sqrt(v)); see the module docstring.

    Parameters
    ----------
    learning_rate : float
    beta_1, beta_2 : float
    epsilon : float
        1e-7 (Keras' default; PyTorch's 1e-8 sits elsewhere in the formula).
    amsgrad : bool
    clipnorm, global_clipnorm, clipvalue, weight_decay
        See :class:`mlstm.optimizers.Optimizer`.
    """

    name = "adam"
    handles_sparse_rows = True

    def __init__(self, learning_rate: float | LearningRateSchedule = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, amsgrad: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(learning_rate, beta_1, beta_2, epsilon, **kwargs)
        self.amsgrad = bool(amsgrad)
        self.m: dict[str, FloatArray] = {}
        self.v: dict[str, FloatArray] = {}
        self.v_hat: dict[str, FloatArray] = {}

    def rule(self, theta: FloatArray, g: Gradient, state: Mapping[str, FloatArray | None],
             step: int) -> tuple[FloatArray, dict[str, FloatArray]]:
        dtype = theta.dtype.type
        # g² per token occurrence for an Embedding table (Keras' IndexedSlices), else g²
        squares, g = gradient_squares(g), gradient_sum(g)
        m = state["m"] if state["m"] is not None else np.zeros_like(theta)
        v = state["v"] if state["v"] is not None else np.zeros_like(theta)
        alpha, c1, c2, epsilon = self._factors(dtype, step)
        m_new = moving_average(m, g, c1)
        v_new = moving_average(v, squares, c2)
        new_state = {"m": m_new, "v": v_new}
        if self.amsgrad:
            v_hat = state["v_hat"] if state["v_hat"] is not None else np.zeros_like(theta)
            v_new = new_state["v_hat"] = np.maximum(v_hat, v_new)
        step_size = alpha * m_new
        denominator = np.sqrt(v_new)
        denominator += epsilon
        step_size /= denominator
        theta -= step_size
        return theta, new_state

    def _factors(self, dtype: type[np.floating[Any]], step: int) -> tuple[Any, ...]:
        """``(α_t, 1 - β1, 1 - β2, ε)`` as ``dtype`` scalars, computed once per step and dtype
        (NumPy scalar arithmetic costs about a microsecond an operation)."""
        rate = self.learning_rate_at(step - 1)
        key = (dtype, step, rate, self.beta_1, self.beta_2, self.epsilon)
        cache = getattr(self, "_factors_cache", None)    # read once: another thread may
        if cache is None or cache[0] != key:             # replace it meanwhile
            # As Keras computes them: the bias corrections use ops.cast(β, dtype), which
            # goes through float32 even for float64 variables; the moment factors (1 - β)
            # are Python floats, so they are exact in float64 and float32(1 - β) in float32.
            beta_1, beta_2 = dtype(np.float32(self.beta_1)), dtype(np.float32(self.beta_2))
            alpha = (dtype(rate) * np.sqrt(1 - beta_2 ** dtype(step))
                     / (1 - beta_1 ** dtype(step)))
            cache = self._factors_cache = (key, (alpha, dtype(1 - self.beta_1),
                                                 dtype(1 - self.beta_2), dtype(self.epsilon)))
        return cache[1]

    def _slots(self) -> dict[str, dict[str, FloatArray]]:
        slots = {"m": self.m, "v": self.v}
        if self.amsgrad:
            slots["v_hat"] = self.v_hat
        return slots

    def get_config(self) -> JSONDict:
        config = super().get_config()
        config.update(amsgrad=self.amsgrad)
        return config
