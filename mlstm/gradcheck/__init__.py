"""Finite-difference gradient checks, in float64.

The default check (``method="projection"``) compares, for each parameter array and each
model input, the derivative of the total loss along a few random directions v: from the
backward pass, ``<∂L/∂θ, v>``; from the loss, the five-point stencil::

    (-L(θ+2hv) + 8 L(θ+hv) - 8 L(θ-hv) + L(θ-2hv)) / (12 h)

whose truncation error is O(h^4), so h = 1e-4 leaves errors near 1e-12 in float64. Four
loss evaluations per direction, whatever the array's size. An array that fails is then
drilled into entry by entry, within a budget, to name its worst entries
(:mod:`mlstm.gradcheck.drill`). ``method="entries"`` checks every entry instead (four
evaluations per entry).

The error reported per array is the worst compared value's error (over its directions,
or its entries) relative to the array's largest gradient entry: entry by entry
``max_j |a_j - n_j| / max_j max(|a_j|, |n_j|)``, along directions
``max_k |<g, v_k> - n_k| / max(max_j |g_j|, max_k |n_k| / ||v_k||_1)``. A wrong gradient
g + e moves ``<g + e, v>`` by ``<e, v>``, a normal variable of standard deviation
``||e||_2 >= max_j |e_j|``, so a wrong gradient that the per-entry check would catch shows
along the directions too; entries far below the largest one cannot produce false alarms
from rounding.

Input entries at time steps whose mask would change under the perturbation (a Masking
layer sees ``mask_value`` exactly there) have no derivative; they are held fixed (skipped)
and counted. docs/gradcheck.md has the details and the measurements.

Modules: :mod:`~mlstm.gradcheck.problem` (the float64 loss, the stencil),
:mod:`~mlstm.gradcheck.probes` (directional and per-entry derivatives, the error measure),
:mod:`~mlstm.gradcheck.projection`, :mod:`~mlstm.gradcheck.drill`,
:mod:`~mlstm.gradcheck.entries`, :mod:`~mlstm.gradcheck.describe` (words for an entry),
:mod:`~mlstm.gradcheck.report`, :mod:`~mlstm.gradcheck.progress`,
:mod:`~mlstm.gradcheck.check` (:func:`gradcheck`).
"""
from __future__ import annotations

from .check import DEFAULT_DIRECTIONS, gradcheck
from .drill import DEFAULT_BUDGET
from .problem import Float64Problem, numerical_gradient
from .report import GradcheckReport

__all__ = ["gradcheck", "GradcheckReport", "numerical_gradient", "Float64Problem",
           "DEFAULT_DIRECTIONS", "DEFAULT_BUDGET"]
