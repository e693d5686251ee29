"""Nadam in Keras' form: Adam with Nesterov momentum and a momentum schedule.

Step t = 1, 2, ... (after clipping and weight decay, :mod:`mlstm.optimizers.base`); the
moments start at zero::

    μ_t     = β1 (1 - 0.5 · 0.96^t)               the momentum schedule
    Π_t     = μ_1 μ_2 ... μ_t                     (Keras' ``u_product``, Π_0 = 1)
    m ← m + (g - m)(1 - β1)
    v ← v + (g² - v)(1 - β2)
    m̂ = μ_{t+1} m / (1 - Π_t μ_{t+1})  +  (1 - μ_t) g / (1 - Π_t)
    v̂ = v / (1 - β2^t)
    θ ← θ - lr · m̂ / (sqrt(v̂) + ε)                ε = 1e-7

ε is added to the *corrected* sqrt(v̂) (Adam adds it to the uncorrected one). An Embedding
table's g² in v is Σ g_i² over its token occurrences, as in Adam.

Casts, as Keras does them (found by running it): in the step, β1, β2 and 0.96 go to the
weights' dtype through float32 (``ops.cast``), ``1 - β1`` included; ``u_product`` is a
variable Keras updates once per step, before the step, as ``Π_t = Π_{t-1} · β1 · (1 - 0.5
· 0.96^t)`` with the Python floats β1 and 0.96 (exact in float64).

``u_product`` depends on nothing but t (and β1 and the dtype), so mlstm does not store it:
:meth:`Nadam.u_product` recomputes it with Keras' recursion, in the same order of
roundings, and keeps the latest value per dtype. Once it is below ε_dtype / 4 (2^-54 in
float64), ``1 - Π`` is exactly 1 in that dtype, so it is set to 0 there: no step changes, and
recomputing it after ``set_state`` takes at most about 40 / (1 - β1) multiplications.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import numpy as np

from .._typing import DTypeLike, FloatArray, JSONDict
from ..registry import register_optimizer
from ..schedules import LearningRateSchedule
from ._moments import BetaMomentsOptimizer, moving_average
from .base import Gradient, gradient_squares, gradient_sum

__all__ = ["Nadam"]

#: The decay of Keras' momentum schedule μ_t = β1 (1 - 0.5 · 0.96^t) (fixed in Keras).
SCHEDULE_DECAY = 0.96


@register_optimizer(aliases=("nadam",))
class Nadam(BetaMomentsOptimizer):
    """Nadam, Keras form (momentum schedule, ε on the corrected sqrt(v)); see the module
    docstring.

    Parameters
    ----------
    learning_rate : float
    beta_1 : float
        Base momentum (the schedule μ_t is β1 (1 - 0.5 · 0.96^t)), in [0, 1).
    beta_2 : float
        Decay of the second moment, in [0, 1).
    epsilon : float
        Added to the bias-corrected sqrt(v) (1e-7, Keras' default).
    clipnorm, global_clipnorm, clipvalue, weight_decay
        See :class:`mlstm.optimizers.Optimizer`.

    Notes
    -----
    State, per parameter (its shape): ``m`` and ``v``. Keras' ``u_product`` is a function
    of the step count, recomputed (:meth:`u_product`).
    """

    name = "nadam"
    handles_sparse_rows = True

    def __init__(self, learning_rate: float | LearningRateSchedule = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, **kwargs: Any) -> None:
        super().__init__(learning_rate, beta_1, beta_2, epsilon, **kwargs)
        self.m: dict[str, FloatArray] = {}
        self.v: dict[str, FloatArray] = {}
        # (dtype, beta_1) -> (t, Π_t); replaced, never mutated
        self._u_products: dict[tuple[Any, float], tuple[int, Any]] = {}

    def u_product(self, dtype: DTypeLike, step: int) -> np.floating[Any]:
        """Keras' ``u_product`` after ``step`` steps: Π_t = Π_{t-1} · β1 · (1 - 0.5 · 0.96^t),
        Π_0 = 1, in ``dtype`` and Keras' order of operations; 0 once it is below
        ``eps(dtype) / 4`` (module docstring). Continues from the last value computed."""
        dtype = cast("type[np.floating[Any]]", np.dtype(dtype).type)   # float32 or float64
        key = (dtype, self.beta_1)
        cache = self._u_products                 # read once: another thread may replace it
        t, product = cache.get(key, (0, dtype(1.0)))
        if t > step:
            t, product = 0, dtype(1.0)
        beta_1, decay = dtype(self.beta_1), dtype(SCHEDULE_DECAY)
        one, half = dtype(1.0), dtype(0.5)
        negligible = np.finfo(dtype).eps / 4
        while t < step:
            if product == 0:                     # 0 stays 0
                t = step
                break
            t += 1
            product = product * beta_1 * (one - half * decay ** dtype(t))
            if product < negligible:
                product = dtype(0.0)
        self._u_products = {**cache, key: (t, product)}
        return product

    def rule(self, theta: FloatArray, g: Gradient, state: Mapping[str, FloatArray | None],
             step: int) -> tuple[FloatArray, dict[str, FloatArray]]:
        dtype = theta.dtype.type
        # g² per token occurrence for an Embedding table (Keras' IndexedSlices), else g²
        squares, g = gradient_squares(g), gradient_sum(g)
        m = state["m"] if state["m"] is not None else np.zeros_like(theta)
        v = state["v"] if state["v"] is not None else np.zeros_like(theta)
        (lr, one_minus_beta_1, one_minus_beta_2, first, second, v_correction,
         epsilon) = self._factors(dtype, step)
        m_new = moving_average(m, g, one_minus_beta_1)
        v_new = moving_average(v, squares, one_minus_beta_2)
        # m̂ = μ_{t+1} m / (1 - Π_t μ_{t+1}) + (1 - μ_t) g / (1 - Π_t), each product and
        # quotient rounded as Keras rounds them
        m_hat = first[0] * m_new
        m_hat /= first[1]
        gradient_part = second[0] * g
        gradient_part /= second[1]
        m_hat += gradient_part
        denominator = v_new / v_correction
        np.sqrt(denominator, out=denominator)
        denominator += epsilon
        m_hat *= lr
        m_hat /= denominator
        theta -= m_hat
        return theta, {"m": m_new, "v": v_new}

    def _factors(self, dtype: type[np.floating[Any]], step: int) -> tuple[Any, ...]:
        """The step's scalars in ``dtype``, computed once per step and dtype: ``(lr, 1 - β1,
        1 - β2, (μ_{t+1}, 1 - Π_t μ_{t+1}), (1 - μ_t, 1 - Π_t), 1 - β2^t, ε)``."""
        rate = self.learning_rate_at(step - 1)
        key = (dtype, step, rate, self.beta_1, self.beta_2, self.epsilon)
        cache = getattr(self, "_factors_cache", None)
        if cache is None or cache[0] != key:
            # ops.cast(python float, dtype) in Keras goes through float32
            beta_1, beta_2 = dtype(np.float32(self.beta_1)), dtype(np.float32(self.beta_2))
            decay, one, half = dtype(np.float32(SCHEDULE_DECAY)), dtype(1.0), dtype(0.5)
            t, t_next = dtype(step), dtype(step + 1)
            u_t = beta_1 * (one - half * decay ** t)
            u_next = beta_1 * (one - half * decay ** t_next)
            product = self.u_product(dtype, step)
            factors = (dtype(rate), one - beta_1, one - beta_2,
                       (u_next, one - product * u_next), (one - u_t, one - product),
                       one - beta_2 ** t, dtype(self.epsilon))
            cache = self._factors_cache = (key, factors)
        return cache[1]

    def _slots(self) -> dict[str, dict[str, FloatArray]]:
        return {"m": self.m, "v": self.v}

