"""Weight initializers with Keras' formulas, drawn from a ``numpy.random.Generator``.

=================  ===========================================================
glorot_uniform     U(-L, L),  L = sqrt(6 / (fan_in + fan_out))
orthogonal         Q of QR(normal(max(r, c), min(r, c))), columns' signs fixed by
                   sign(diag(R)), transposed when rows < cols (rows = prod(shape[:-1]))
uniform            U(-0.05, 0.05) (Keras' ``RandomUniform()``, Embedding's default)
zeros, ones        constants
=================  ===========================================================

Randomness comes only from the generator passed in, so the same seed gives the same bits.
The draws are not the same bits as Keras' (different generators); weights are carried
between the two with ``mlstm.interop.keras``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._typing import DTypeLike, FloatArray, Shape

__all__ = ["glorot_uniform", "orthogonal", "uniform", "zeros", "ones", "INITIALIZERS",
           "get_initializer", "default_rng", "set_random_seed"]

#: ``initializer(shape, rng, dtype) -> array``: a named initializer or a user's callable.
Initializer = Callable[..., FloatArray]


def _fans(shape: Shape) -> tuple[int, int]:
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def glorot_uniform(shape: Shape, rng: np.random.Generator, dtype: DTypeLike = "float32"
                   ) -> FloatArray:
    """Glorot (Xavier) uniform: U(-L, L) with L = sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def orthogonal(shape: Shape, rng: np.random.Generator, dtype: DTypeLike = "float32",
               gain: float = 1.0) -> FloatArray:
    """Orthogonal matrix (Saxe et al.), as ``keras.initializers.Orthogonal``."""
    num_rows = int(np.prod(shape[:-1]))
    num_cols = shape[-1]
    a = rng.standard_normal((max(num_rows, num_cols), min(num_rows, num_cols)))
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))
    if num_rows < num_cols:
        q = q.T
    return (gain * q).reshape(shape).astype(dtype)


def uniform(shape: Shape, rng: np.random.Generator, dtype: DTypeLike = "float32"
            ) -> FloatArray:
    """U(-0.05, 0.05), as ``keras.initializers.RandomUniform()`` (``"uniform"``)."""
    return rng.uniform(-0.05, 0.05, size=shape).astype(dtype)


def zeros(shape: Shape, rng: np.random.Generator | None = None, dtype: DTypeLike = "float32"
          ) -> FloatArray:
    """All zeros."""
    return np.zeros(shape, dtype=dtype)


def ones(shape: Shape, rng: np.random.Generator | None = None, dtype: DTypeLike = "float32"
         ) -> FloatArray:
    """All ones."""
    return np.ones(shape, dtype=dtype)


INITIALIZERS: dict[str, Initializer] = {"glorot_uniform": glorot_uniform, "orthogonal": orthogonal,
                "uniform": uniform, "zeros": zeros, "ones": ones}


def get_initializer(name: str | Initializer) -> Initializer:
    """Look up an initializer by name; unknown names raise ValueError listing the valid ones."""
    if callable(name):
        return name
    if name not in INITIALIZERS:
        raise ValueError(f"Unknown initializer {name!r}; valid initializers are "
                         f"{sorted(INITIALIZERS)} (or a callable(shape, rng, dtype))")
    return INITIALIZERS[name]


_global_rng = np.random.default_rng(0)


def set_random_seed(seed: Any) -> None:
    """Reseed the generator used by layers created without their own ``seed``.

    Like ``keras.utils.set_random_seed``: call it before building a model to get the same
    initial weights every time. The stream starts seeded with 0 on import.
    """
    global _global_rng
    _global_rng = np.random.default_rng(seed)


def default_rng() -> np.random.Generator:
    """The shared generator for layers without a seed of their own."""
    return _global_rng
