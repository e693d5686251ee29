"""The default check: random directions per array.

For an array θ with analytic gradient g and a direction v drawn from a standard normal
distribution (one draw per entry, seeded), the check compares two numbers::

    analytic   a = <g, v> = Σ_j g_j v_j
    numeric    n = (-L(θ+2hv) + 8 L(θ+hv) - 8 L(θ-hv) + L(θ-2hv)) / (12 h)

Four loss evaluations per direction, however large the array. If the backward pass is
wrong by e (it returns g + e), then ``a - n = <e, v>`` up to the stencil's error, and
``<e, v>`` is a normal variable with standard deviation ``||e||``: it is exactly zero with
probability 0, and smaller than ε with probability at most ``sqrt(2/π) ε / ||e||``. With k
independent directions all k must be that small. docs/gradcheck.md has the argument and the
measurements.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .probes import directional, error_row, held_steps

if TYPE_CHECKING:
    from .._typing import Array, BoolArray, Float64Array, IntArray
    from .problem import Float64Problem, Masks
    from .progress import Progress

#: A direction checked: ``(v, <grad, v>, the numeric derivative along v)``.
Probe = tuple["Array", float, float]

__all__ = ["check_along_directions", "entry_scale"]


def entry_scale(grad: Array, probes: Sequence[Probe]) -> float:
    """The scale errors along directions are measured against: the array's largest gradient
    entry, as the per-entry check measures errors::

        max( max_j |g_j|,  max_k |n_k| / ||v_k||_1 )

    The second term is the largest entry the numeric derivatives imply at least (Hölder:
    ``|<g, v>| <= ||g||_∞ ||v||_1``): a backward pass that returns zeros where the loss does
    move still gets an error of order 1, not an absolute error. Against the largest entry
    (not the size of ``<g, v>``, which grows with the array), an error e is measured at
    about ``||e||_2 / max_j |g_j|``, at least the per-entry check's ``max_j |e_j| / max_j
    |g_j|`` (times the size of the normal draw), so the projection check is not less
    sensitive than the per-entry one; and float64 rounding, which does not grow with the
    direction, stays as small relative to it as in the per-entry check.
    """
    largest = float(np.max(np.abs(grad), initial=0.0))
    implied = max((abs(n) / max(float(np.sum(np.abs(v))), 1e-300) for v, _, n in probes),
                  default=0.0)
    return max(largest, implied)


def check_along_directions(problem: Float64Problem, array: Array, grad: Array, h: float,
                           directions: int, rng: np.random.Generator, base_masks: Masks,
                           watch: bool, progress: Progress | None = None,
                           ) -> tuple[dict[str, Any], list[Probe], BoolArray]:
    """Compare ``<grad, v>`` with the five-point derivative along ``directions`` draws of v.

    Entries whose perturbation changes a mask (padded steps of an input that feeds a
    ``Masking`` layer) are held fixed: v is zero there, they are counted as skipped, and
    the directions are measured again without them.

    Returns
    -------
    row : dict
        ``max_rel_error`` (the worst direction's ``|<g, v> - n|`` relative to
        :func:`entry_scale`), ``max_abs_error`` (that ``|<g, v> - n|``),
        ``checked`` (entries the directions move), ``skipped`` (entries held fixed),
        ``directions``.
    probes : list of (v, analytic, numeric)
        The directions as used (zero on held entries) and their two derivatives.
    free : ndarray of bool
        The entries the directions move.
    """
    draws = [rng.standard_normal(array.shape) for _ in range(directions)]
    free = np.ones(array.shape, dtype=bool)
    while True:
        probes: list[Probe] = []
        restart = False
        for draw in draws:
            if not free.any():
                break
            v = np.where(free, draw, 0.0)
            numeric, changed = directional(problem, array, v, h, base_masks, watch, progress)
            if changed:
                hold = held_steps(changed, array.shape)
                if hold is None or not (hold & free).any():
                    free[...] = False      # cannot tell which entries flipped it: hold all
                else:
                    free &= ~hold
                restart = True             # measure every direction without them
                break
            assert numeric is not None     # None only when a mask changed
            probes.append((v, float(np.sum(grad * v)), float(numeric)))
        if not restart or not free.any():
            break
    if not free.any():
        probes = []
    row = error_row([p[1] for p in probes], [p[2] for p in probes], checked=free.sum(),
                    skipped=free.size - free.sum(), scale=entry_scale(grad, probes))
    row["directions"] = len(probes)
    return row, probes, free
