"""``gradcheck``: the backward pass against finite differences, in float64."""
from __future__ import annotations

import numbers
import time
from typing import TYPE_CHECKING, Any, Literal, TypedDict

import numpy as np

from .drill import DEFAULT_BUDGET, drill_down
from .entries import check_entries
from .problem import Float64Problem
from .progress import Progress
from .projection import check_along_directions
from .report import GradcheckReport

if TYPE_CHECKING:
    from .._typing import Array, BoolArray
    from ..model import Model
    from .problem import Masks
    from .projection import Probe

__all__ = ["gradcheck", "DEFAULT_DIRECTIONS", "GradcheckOptions"]

#: Random directions per array of the default check.
DEFAULT_DIRECTIONS = 3
METHODS = ("projection", "entries")


class GradcheckOptions(TypedDict, total=False):
    """:func:`gradcheck`'s options after ``rtol``, for functions that pass them on
    (``mlstm.testing.assert_gradients_close``)."""

    h: float
    inputs: bool
    method: Literal["projection", "entries"]
    max_entries: int | None
    seed: int
    directions: int
    drill_down: int
    progress: bool | None


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _check_arguments(h: float, method: str, max_entries: int | None, directions: int,
                     rtol: float, drill: int) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be 'projection' (random directions, the default) or "
                         f"'entries' (every entry), got {method!r}")
    if not isinstance(h, numbers.Real) or not h > 0:
        raise ValueError(f"h must be a positive number, got {h!r}")
    if not isinstance(rtol, numbers.Real) or not rtol > 0:
        raise ValueError(f"rtol must be a positive number, got {rtol!r}")
    for label, value, low in (("directions", directions, 1), ("drill_down", drill, 0),
                              ("max_entries", max_entries, 1)):
        if value is None and label == "max_entries":
            continue
        if (not isinstance(value, numbers.Integral) or isinstance(value, bool)
                or value < low):
            raise ValueError(f"{label} must be an int >= {low}, got {value!r}")
    if max_entries is not None and method != "entries":
        raise ValueError("max_entries limits method='entries' (entries checked per array); "
                         "the default method='projection' checks every array along "
                         "`directions` random directions: pass method='entries' with it")


def gradcheck(model: Model, x: Any, y: Any, h: float = 1e-4, inputs: bool = True,
              method: Literal["projection", "entries"] = "projection",
              max_entries: int | None = None, seed: int = 0, *,
              directions: int = DEFAULT_DIRECTIONS, rtol: float = 1e-6,
              drill_down: int = DEFAULT_BUDGET, progress: bool | None = None) -> GradcheckReport:
    """Compare ``model``'s backward pass with finite differences, in float64.

    By default (``method="projection"``) each parameter array and each input is checked
    along ``directions`` random directions (standard normal, seeded): the derivative of
    the loss along v from the backward pass, ``<g, v>``, against the five-point finite
    difference along v — four loss evaluations per direction, whatever the array's size
    (an array of at most ``directions`` entries is checked entry by entry instead).
    An array fails when its worst direction's ``|<g, v> - n|``, relative to the array's
    largest gradient entry (as the per-entry check measures errors), reaches ``rtol``;
    then up to ``drill_down`` of its entries are checked one by one (after a bisection
    with projections when the array is larger), and the report names the worst: the gate
    block, unit and row of an LSTM weight, the sample, time step and feature of an input.
    ``method="entries"`` checks every entry (four loss evaluations each).
    docs/gradcheck.md explains the measure and gives the measured costs.

    Parameters
    ----------
    model : Model
        Compiled. A float32 model is cloned to float64 first (same weights, same losses).
    x, y : inputs and targets, as for ``fit``.
    h : float
        Step of the five-point stencil (along a direction v the loss is evaluated at
        θ ± h v, θ ± 2h v).
    inputs : bool
        Also check dL/d(input) for every model input.
    method : {"projection", "entries"}
        Random directions per array (default), or every entry (a random sample of
        ``max_entries`` per array when given).
    max_entries : int, optional
        With ``method="entries"``: check at most this many entries per array (drawn with
        ``seed``).
    seed : int
        Seeds the directions (array k uses ``np.random.default_rng([seed, k])``), the
        drill-down's sample and ``max_entries``' sample: the same check every run.
    directions : int
        Random directions per array (``method="projection"``).
    rtol : float
        The tolerance of the verdict (``report.ok()``) and of the drill-down.
    drill_down : int
        Entries checked one by one per failing array (0: no drill-down).
    progress : bool, optional
        Print a progress line on stderr: None (default) when the check is expected to take
        more than a few seconds (timed on its first loss evaluations), True always, False
        never.

    Returns
    -------
    GradcheckReport
        ``print(report)`` gives the verdict and a table; ``report.ok()``.

    Changed in this version: the default method was ``"entries"``; ``"projection"`` used
    one direction and no drill-down.
    """
    _check_arguments(h, method, max_entries, directions, rtol, drill_down)
    started = time.perf_counter()
    problem = Float64Problem(model, x, y)
    tape, _, grads, d_inputs = problem.analytic()
    base_masks = tuple(None if m is None else m.copy() for m in tape.masks.values())
    arrays = problem.arrays(grads, d_inputs, inputs)
    # An array with no more entries than directions is checked entry by entry: as cheap
    # or cheaper, and exact (its entries are the directions).
    by_entries = [method == "entries" or a.size <= directions for _, a, _, _ in arrays]
    per_projection = sum(4 * min(a.size, directions) for _, a, _, _ in arrays)
    if method == "entries":
        counts = [min(a.size, max_entries or a.size) for _, a, _, _ in arrays]
        planned = 4 * sum(counts)

        def announce(seconds: float) -> str:
            projection = seconds / planned * per_projection
            return (f"gradcheck: method='entries' checks {sum(counts):,} entries one by one "
                    f"({planned:,} loss evaluations), about {_duration(seconds)}; the default "
                    f"method='projection' takes about {_duration(projection)}")
    else:
        planned = per_projection

        def announce(seconds: float) -> str:
            return (f"gradcheck: {len(arrays)} arrays x up to {directions} random directions "
                    f"({planned:,} loss evaluations), about {_duration(seconds)}")

    meter = Progress(planned, announce, enabled=progress)
    rows: dict[str, dict[str, Any]] = {}
    moved_along: dict[str, list[Array] | None] = {}
    for k, (name, array, grad, is_input) in enumerate(arrays):
        rng = np.random.default_rng([seed, k])
        if by_entries[k]:
            rows[name] = check_entries(problem, array, grad, h, max_entries, rng, base_masks,
                                       is_input, meter)
            moved_along[name] = None
            continue
        row, probes, free = check_along_directions(problem, array, grad, h, directions, rng,
                                                   base_masks, is_input, meter)
        moved_along[name] = [v for v, _, _ in probes]
        if drill_down and probes and not row["max_rel_error"] < rtol:
            row.update(_drill(problem, name, array, grad, probes, free, drill_down, h, rng,
                              base_masks, is_input, rtol, meter))
        rows[name] = row
    report = GradcheckReport(rows, h, method, rtol=rtol, evaluations=problem.evaluations,
                             seconds=time.perf_counter() - started, directions=moved_along,
                             settings=dict(inputs=inputs, max_entries=max_entries, seed=seed,
                                           directions=directions, drill_down=drill_down))
    meter.finish("passed" if report.ok() else "FAILED")
    return report


def _drill(problem: Float64Problem, name: str, array: Array, grad: Array, probes: list[Probe],
           free: BoolArray, budget: int, h: float, rng: np.random.Generator, base_masks: Masks,
           watch: bool, rtol: float, meter: Progress) -> dict[str, Any]:
    """The drill-down of a failing array along its worst direction, described."""
    from .describe import describe_entry

    errors = [abs(a - n) for _, a, n in probes]
    worst = int(np.argmax([np.inf if np.isnan(e) else e for e in errors]))
    v, a, n = probes[worst]
    meter.plan(4 * (budget + int(np.ceil(np.log2(max(free.sum(), 1))))))
    drill = drill_down(problem, array, grad, v, a - n, free, budget, h, rng, base_masks,
                       watch, rtol, meter)
    for entry in drill["worst"]:
        entry["where"] = describe_entry(problem.model, name, entry["index"])
    return {"drill_down": drill,
            "worst_index": drill["worst"][0]["index"] if drill["worst"] else None}
