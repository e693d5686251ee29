"""Drill-down: which entries of a failing array are wrong.

Only an array whose random-direction check failed is drilled into, within a budget of
``budget`` entries checked one by one (four loss evaluations each):

1. an array of at most ``budget`` entries is checked entirely, entry by entry;
2. a larger one is first narrowed down by bisection with projections (when the error is
   not finite: to its non-finite gradient entries instead): the failing
   direction v is split in two halves (by flat index); the error along the first half,
   ``<e_A, v_A>``, is measured (four evaluations), the second half's is the rest,
   ``<e, v> - <e_A, v_A>``, and the half with the larger error is kept, until at most
   ``budget // 2`` entries are left (``ceil(log2(size / (budget // 2)))`` steps: 12 for the
   40,960 entries of a (256, 20, 8) input). Those entries are checked one by one, and the
   rest of the budget goes to entries drawn at random from the remainder of the array
   (seeded), so that the report also says whether wrong entries are spread out.

The worst entries are then the ones with the largest absolute error among those checked,
each with its relative error (against the array's largest gradient entry, as the
per-entry check measures it).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .probes import directional, entry_derivatives

if TYPE_CHECKING:
    from .._typing import Array, BoolArray, Float64Array, IntArray
    from .problem import Float64Problem, Masks
    from .progress import Progress

__all__ = ["drill_down", "DEFAULT_BUDGET", "WORST_SHOWN"]

#: Entries checked one by one per failing array, by default.
DEFAULT_BUDGET = 32
#: Worst entries listed per failing array.
WORST_SHOWN = 3


def _bisect(problem: Float64Problem, array: Array, grad: Array, v: Array, error: float,
            candidates: IntArray, leaf: int, h: float, base_masks: Masks, watch: bool,
            progress: Progress | None) -> tuple[IntArray, int]:
    """Narrow ``candidates`` (flat indices, where v is not zero) down to at most ``leaf``
    entries holding a large share of the error ``error = <e, v>``; returns
    ``(entries, steps)``."""
    region, region_error, steps = candidates, error, 0
    flat_v = v.reshape(-1)
    while region.size > leaf:
        half = region[:region.size // 2]
        v_half: Array = np.zeros(array.size)
        v_half[half] = flat_v[half]
        v_half = v_half.reshape(array.shape)
        numeric, changed = directional(problem, array, v_half, h, base_masks, watch, progress)
        steps += 1
        if changed:
            break           # the entry-by-entry check below skips what changes a mask
        assert numeric is not None     # None only when a mask changed
        half_error = float(np.sum(grad * v_half)) - numeric
        other_error = region_error - half_error
        if abs(half_error) >= abs(other_error):
            region, region_error = half, half_error
        else:
            region, region_error = region[half.size:], other_error
    return region, steps


def drill_down(problem: Float64Problem, array: Array, grad: Array, v: Array, error: float,
               free: BoolArray, budget: int, h: float, rng: np.random.Generator,
               base_masks: Masks, watch: bool, rtol: float,
               progress: Progress | None = None) -> dict[str, Any]:
    """Check up to ``budget`` entries of a failing array one by one (see the module doc).

    Parameters
    ----------
    v : ndarray
        The failing direction (zero where ``free`` is False).
    error : float
        ``<grad, v>`` minus the numeric derivative along v.
    free : ndarray of bool
        Entries that may be perturbed.

    Returns
    -------
    dict
        ``entries`` (how many could be checked), ``entries_checked``, ``bisection_steps``,
        ``evaluations``, ``failing_entries`` (checked entries whose relative error reaches
        ``rtol``), ``worst``: up to :data:`WORST_SHOWN` dicts ``index``, ``analytic``,
        ``numeric``, ``abs_error``, ``rel_error``, worst first.
    """
    start = problem.evaluations
    candidates = np.flatnonzero(free.reshape(-1))
    steps = 0
    nonfinite = candidates[~np.isfinite(grad.reshape(-1)[candidates])]
    if candidates.size <= budget:
        chosen = candidates
    else:
        if np.isfinite(error):
            leaf, steps = _bisect(problem, array, grad, v, error, candidates,
                                  max(1, budget // 2), h, base_masks, watch, progress)
        else:      # NaN or inf: no bisection by size of error; the non-finite entries first
            leaf = nonfinite[:max(1, budget // 2)]
        if leaf.size > budget:                       # a mask changed: bisection stopped
            leaf = np.sort(rng.choice(leaf, size=budget, replace=False))
        others = np.setdiff1d(candidates, leaf, assume_unique=True)
        extra = rng.choice(others, size=min(budget - leaf.size, others.size), replace=False)
        chosen = np.sort(np.concatenate([leaf, extra]))
    numeric, kept = entry_derivatives(problem, array, chosen, h, base_masks, watch, progress)
    chosen, numeric = chosen[kept], numeric[kept]
    analytic = grad.reshape(-1)[chosen]
    scale = max(float(np.max(np.abs(grad), initial=0.0)),
                float(np.max(np.abs(numeric), initial=0.0)))
    abs_errors = np.abs(analytic - numeric)
    rel_errors = abs_errors / scale if scale > 0 else abs_errors
    order = np.argsort(-np.where(np.isnan(abs_errors), np.inf, abs_errors), kind="stable")
    worst = [{"index": [int(i) for i in np.unravel_index(int(chosen[k]), array.shape)],
              "analytic": float(analytic[k]), "numeric": float(numeric[k]),
              "abs_error": float(abs_errors[k]), "rel_error": float(rel_errors[k])}
             for k in order[:WORST_SHOWN]]
    return {"entries": int(candidates.size), "entries_checked": int(chosen.size),
            "bisection_steps": steps, "evaluations": problem.evaluations - start,
            "failing_entries": int(np.sum(~(rel_errors < rtol))), "worst": worst}
