"""Built-in synthetic data (no download): the two-input, two-output demo task.

Two sequences, ``x1`` (N, T, D1) and ``x2`` (N, T, D2), standard normal. With
``s1 = Σ_t x1[:, t, 0] / sqrt(T)`` and ``s2 = Σ_t x2[:, t, 0] / sqrt(T)`` (each ~ N(0, 1))::

    y1 = s1 + s2 + 0.5 · x1[:, -1, 1] · x2[:, -1, 1]     regression (N, 1), linear head
    y2 = [s1 - s2 > 0]                                     binary (N, 1), sigmoid head

Both targets need both inputs, so neither head can be learned from one LSTM alone.
"""
from __future__ import annotations

import numpy as np

from ._typing import DTypeLike, FloatArray

__all__ = ["make_demo_data"]


def make_demo_data(n_samples: int = 1024, timesteps: int = 20, features: tuple[int, int] = (8, 8),
                   seed: int = 0, dtype: DTypeLike = "float32") -> dict[str, FloatArray]:
    """Inputs and targets of the demo task.

    Parameters
    ----------
    n_samples, timesteps : int
    features : (int, int)
        D1 and D2 (each at least 2).
    seed : int
    dtype : str

    Returns
    -------
    dict with ``x1``, ``x2`` (inputs) and ``y1``, ``y2`` (targets).
    """
    d1, d2 = features
    if min(d1, d2) < 2:
        raise ValueError(f"features must be at least 2 each, got {features}")
    rng = np.random.default_rng(seed)
    x1 = rng.standard_normal((n_samples, timesteps, d1))
    x2 = rng.standard_normal((n_samples, timesteps, d2))
    s1 = x1[:, :, 0].sum(axis=1) / np.sqrt(timesteps)
    s2 = x2[:, :, 0].sum(axis=1) / np.sqrt(timesteps)
    y1 = s1 + s2 + 0.5 * x1[:, -1, 1] * x2[:, -1, 1]
    y2 = (s1 - s2 > 0).astype(float)
    return {"x1": x1.astype(dtype), "x2": x2.astype(dtype),
            "y1": y1[:, None].astype(dtype), "y2": y2[:, None].astype(dtype)}
