"""Finite differences along a direction and entry by entry, with the error measure.

Both kinds of probe perturb an array in place, run the five-point stencil
(:func:`mlstm.gradcheck.problem.stencil`) and restore the array. When ``watch`` is on (model
inputs), each of the four evaluations also compares the forward pass's masks with the
unperturbed ones: a perturbation that turns a padded step into a valid one (or back) makes
the loss jump, so such a probe is discarded and its entries are held fixed instead.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .problem import masks_changed, stencil

if TYPE_CHECKING:
    from .._typing import Array, BoolArray, Float64Array, IntArray
    from .problem import Float64Problem, Masks
    from .progress import Progress

__all__ = ["directional", "entry_derivatives", "held_steps", "error_row"]


class _MaskChanged(Exception):
    """A perturbation changed a mask: the probe stops at once (its derivative is void)."""


def directional(problem: Float64Problem, array: Array, v: Array, h: float, base_masks: Masks,
                watch: bool, progress: Progress | None = None,
                ) -> tuple[float | None, list[tuple[BoolArray | None, BoolArray | None]]]:
    """Five-point derivative of the loss along ``v`` (same shape as ``array``).

    Returns
    -------
    derivative : float or None
        ``d/dt L(array + t v)`` at t = 0; None when a mask changed.
    changed : list of (old mask, new mask)
        Masks that the perturbation changed (empty when none, or when not ``watch``); the
        probe stops at the first evaluation that changes one.
    """
    original = array.copy()
    changed: list[tuple[BoolArray | None, BoolArray | None]] = []
    evaluations = 0

    def evaluate(delta: float) -> float:
        nonlocal evaluations
        np.copyto(array, original + delta * v)
        value, masks = problem.evaluate()
        evaluations += 1
        if watch:
            changed.extend(masks_changed(base_masks, masks))
            if changed:
                raise _MaskChanged
        return value

    try:
        derivative = stencil(evaluate, h)
    except _MaskChanged:
        derivative = None
    finally:
        np.copyto(array, original)
        if progress is not None:
            progress.advance(evaluations)
    return derivative, changed


def entry_derivatives(problem: Float64Problem, array: Array, entries: Sequence[int] | IntArray,
                      h: float, base_masks: Masks, watch: bool,
                      progress: Progress | None = None) -> tuple[Float64Array, BoolArray]:
    """Five-point derivatives of the loss with respect to single entries.

    Parameters
    ----------
    entries : sequence of int
        Flat (C-order) indices into ``array``.

    Returns
    -------
    numeric : ndarray (len(entries),)
    kept : ndarray of bool (len(entries),)
        False where a perturbation changed a mask (that entry has no derivative; its
        probe stops at the first evaluation that changes one).
    """
    numeric = np.zeros(len(entries))
    kept = np.ones(len(entries), dtype=bool)
    for k, j in enumerate(entries):
        index = np.unravel_index(int(j), array.shape)
        original = array[index]
        evaluations = 0

        def evaluate(delta: float, index: tuple[Any, ...] = index,
                     original: Any = original) -> float:
            nonlocal evaluations
            array[index] = original + delta
            value, masks = problem.evaluate()
            evaluations += 1
            if watch and masks_changed(base_masks, masks):
                raise _MaskChanged
            return value

        try:
            numeric[k] = stencil(evaluate, h)
        except _MaskChanged:
            kept[k] = False
        finally:
            array[index] = original
            if progress is not None:
                progress.advance(evaluations)
    return numeric, kept


def held_steps(changed: Sequence[tuple[BoolArray | None, BoolArray | None]],
               shape: tuple[int, ...]) -> BoolArray | None:
    """The entries of an array of ``shape`` to hold fixed after a perturbation changed the
    masks in ``changed``: every entry of each (sample, time step) whose mask flipped (masks
    are (N, T); the array (N, T, ...)). None when the changes cannot be placed in the array
    (a mask of another shape, or one that appeared or vanished)."""
    hold = np.zeros(shape, dtype=bool)
    for old, new in changed:
        if old is None or new is None or old.shape != new.shape:
            return None
        flipped = old != new
        if len(shape) < flipped.ndim or tuple(shape[:flipped.ndim]) != flipped.shape:
            return None
        hold[flipped] = True
    return hold


def error_row(analytic: Any, numeric: Any, checked: int, skipped: int = 0,
              scale: float | None = None) -> dict[str, Any]:
    """The error measure of a checked array, from the compared values (entries, or
    derivatives along directions)::

        max_rel_error = max_k |a_k - n_k| / scale,   scale = max_k max(|a_k|, |n_k|)

    by default: the worst compared value's error relative to the largest. Along random
    directions the caller passes the scale of the array's entries instead (see
    :func:`mlstm.gradcheck.projection.check_along_directions`). NaN anywhere gives NaN (a
    failure)."""
    analytic, numeric = np.asarray(analytic, float), np.asarray(numeric, float)
    if scale is None:
        scale = max(float(np.max(np.abs(analytic), initial=0.0)),
                    float(np.max(np.abs(numeric), initial=0.0)))
    abs_err = float(np.max(np.abs(analytic - numeric), initial=0.0))
    if np.isnan(analytic).any() or np.isnan(numeric).any() or np.isnan(scale):
        abs_err = float("nan")
    rel = abs_err / scale if scale > 0 else abs_err
    return {"max_rel_error": rel, "max_abs_error": abs_err, "checked": int(checked),
            "skipped": int(skipped)}
