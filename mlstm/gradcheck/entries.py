"""The per-entry check (``method="entries"``): every entry, or a seeded sample of them.

Each entry θ_j gets its own five-point derivative (four loss evaluations), compared with
``∂L/∂θ_j`` from the backward pass. The array's error is :func:`error_row` over its
entries: the worst entry's error relative to the array's largest gradient entry. Exact
about where a gradient is wrong, and slow: four forward passes per entry (the README's
model with 256 samples has 95,000 entries: hours).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .probes import entry_derivatives, error_row

if TYPE_CHECKING:
    from .._typing import Array, BoolArray, Float64Array, IntArray
    from .problem import Float64Problem, Masks
    from .progress import Progress

__all__ = ["check_entries"]


def check_entries(problem: Float64Problem, array: Array, grad: Array, h: float,
                  max_entries: int | None, rng: np.random.Generator, base_masks: Masks,
                  watch: bool, progress: Progress | None = None) -> dict[str, Any]:
    """Compare every entry's gradient (or a sample of ``max_entries``) with finite
    differences. Entries whose perturbation changes a mask are skipped and counted.

    Returns
    -------
    dict
        ``max_rel_error``, ``max_abs_error``, ``checked``, ``skipped`` and ``worst_index``
        (the worst entry's index, None when nothing was checked).
    """
    entries = np.arange(array.size)
    if max_entries is not None and array.size > max_entries:
        entries = np.sort(rng.choice(array.size, size=max_entries, replace=False))
    numeric, kept = entry_derivatives(problem, array, entries, h, base_masks, watch, progress)
    entries, numeric = entries[kept], numeric[kept]
    analytic = grad.reshape(-1)[entries]
    row = error_row(analytic, numeric, len(entries), skipped=int(np.sum(~kept)))
    # Where the worst entry sits, so that a failure can name the gate block / time step.
    errors = np.abs(analytic - numeric)
    row["worst_index"] = (
        [int(i) for i in np.unravel_index(
            int(entries[np.argmax(np.where(np.isnan(errors), np.inf, errors))]), array.shape)]
        if len(entries) else None)
    return row
