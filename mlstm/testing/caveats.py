"""Why finite differences cannot judge a case: relu kinks within the stencil's reach, a
gradient below float64's noise floor, overflow, a loss too curved for the stencil."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import validation
from ..gradcheck import Float64Problem, gradcheck
from .data import _input_specs

if TYPE_CHECKING:
    from .._typing import Array, BoolArray
    from ..gradcheck.report import GradcheckReport
    from ..graph import Tape
    from ..model import Model

#: A perturbation: ``(name, array, step, where)``; step an array to add or ``(index, delta)``.
Perturbation = tuple[str, "Array", "Array | tuple[tuple[Any, ...], float]", "str | list[int]"]

__all__ = ["kink_distance", "gradcheck_caveats", "FINITE_DIFFERENCE_NOISE"]


def _relu_inputs(model: Model, tape: Tape) -> list[Array]:
    """The arrays every relu of the forward pass in ``tape`` was applied to (flattened).

    LSTM relus count only at valid steps (a masked step's new state is discarded).
    """
    found: list[Array] = []
    for node, cache in zip(model.nodes, tape.caches):
        # each layer says what it applied its activations to (at valid steps only)
        found += [array.ravel() for activation, array in node.layer.activation_inputs(cache)
                  if activation == "relu"]
    return found


def kink_distance(model: Model, x: Any) -> float:
    """Smallest distance of any relu input to 0 (its kink) in a forward pass on ``x``.

    Covers Dense/Activation relu, LSTM relu activations (candidate and cell
    pre-activations, at valid steps) and relu recurrent activations (gate
    pre-activations). ``inf`` when the model has no relu.
    """
    tape = model.forward(model._inputs(x), training=True)
    return min((float(np.min(np.abs(a), initial=np.inf)) for a in _relu_inputs(model, tape)),
               default=np.inf)


def _perturbations(model: Model, xs: Sequence[Array], h: float,
                   report: GradcheckReport) -> Iterator[Perturbation]:
    """Every perturbation the check in ``report`` made (up to the stencil's reach ±2h):
    ``(name, array, step, where)`` with ``step`` an array to add (``where`` says which
    entry, for an entry-by-entry check) or an ``(index, delta)`` entry step."""
    arrays = dict(model.params)
    # token ids are never perturbed (the check does not perturb them either)
    arrays.update((f"input:{n}", a) for n, a, ids in zip(model.input_names, xs,
                                                         validation.token_id_inputs(model))
                  if not ids)
    for name, array in arrays.items():
        along = report.directions.get(name)
        if along is not None:
            for k, v in enumerate(along):
                for sign in (2, -2):
                    yield name, array, sign * h * v, f" along random direction {k}"
        else:
            for j in range(array.size):
                index = np.unravel_index(j, array.shape)
                for sign in (2, -2):
                    yield name, array, (index, sign * h), list(map(int, index))


def _relu_flip(model: Model, xs: list[Array], h: float, report: GradcheckReport) -> str | None:
    """The first perturbation of the check in ``report`` that flips a relu, as words
    (perturbations that change a mask are skipped: the check holds those entries), or
    None."""
    def pattern() -> tuple[list[BoolArray], list[BoolArray]]:
        tape = model.forward(xs, training=True)
        signs = [a > 0 for a in _relu_inputs(model, tape)]
        masks = [m for m in tape.masks.values() if m is not None]
        return signs, masks

    base_signs, base_masks = pattern()
    if not base_signs:
        return None
    for name, array, step, where in _perturbations(model, xs, h, report):
        original = array.copy()
        if isinstance(step, tuple):
            array[step[0]] += step[1]
        else:
            array += step
        signs, masks = pattern()
        np.copyto(array, original)
        if not all(np.array_equal(a, b) for a, b in zip(masks, base_masks)):
            continue                       # gradcheck holds these entries fixed
        if not all(np.array_equal(a, b) for a, b in zip(signs, base_signs)):
            return f"{name}{where}"
    return None


#: Float64 rounding of a loss of size L leaves about 1e-12·L in a five-point derivative with
#: h = 1e-4 (measured on drawn models); a gradient array whose largest entry is below this
#: floor divided by the relative tolerance cannot be checked by finite differences.
FINITE_DIFFERENCE_NOISE = 1e-12


def gradcheck_caveats(model: Model, x: Any, y: Any, h: float = 1e-4, rtol: float = 1e-6,
                      report: GradcheckReport | None = None) -> list[str]:
    """Reasons why finite differences cannot judge ``model``'s gradients on ``(x, y)``.

    An empty list means a gradient check is meaningful. Otherwise each entry says why not:

    - the loss or a gradient overflows float64 (unbounded activations through time);

    - a perturbation of the check (a parameter or input moved along one of its random
      directions by up to ±2h, the stencil's reach, or, with ``method="entries"``, one
      entry by ±2h) flips the sign of a relu input: the stencil straddles the kink and
      measures an average slope;
    - a parameter or input whose gradient is not zero but whose largest entry is below
      ``10 · FINITE_DIFFERENCE_NOISE · max(1, |L|) / rtol``: the float64 rounding of the
      loss (amplified by 1/h) is then larger than the ``rtol`` the check asks for;
    - the loss is too curved for the stencil: the check at ``h`` fails, but the error of
      every failing array falls at least 8-fold when h is halved (the five-point stencil's
      truncation error goes as h⁴, 16-fold; a wrong gradient's error would not fall), so
      finite differences at ``h`` cannot judge it (unbounded gates through time do this).

    ``report``: the :func:`mlstm.gradcheck` report at this ``h`` when the caller has one:
    its method, directions and settings are the ones looked at (without it, the default
    check is run to find them).

    :func:`assert_gradients_close` adds these to its failure message and to the
    :class:`GradientMismatch` it raises; property tests reject such draws with
    ``hypothesis.assume``.
    """
    caveats: list[str] = []
    problem = Float64Problem(model, x, y)
    m64, xs, loss = problem.model, problem.xs, problem.loss
    with np.errstate(over="ignore", invalid="ignore"):    # overflow is reported below
        _, result, grads, d_inputs = problem.analytic()
    if not (np.isfinite(result.total) and all(np.all(np.isfinite(g)) for g in
                                              list(grads.values())
                                              + [g for g in d_inputs if g is not None])):
        # Activations without bounds (linear or relu gates) can grow doubly exponentially
        # through time and overflow float64: no derivative to compare then.
        return [f"the loss ({result.total:.3g}) or a gradient is not finite in float64"]
    floor = 10 * FINITE_DIFFERENCE_NOISE * max(1.0, abs(result.total)) / rtol * (1e-4 / h)
    mask_values = {name: mask_value for name, _, mask_value, _ in _input_specs(m64)}
    arrays = [(name, m64.params[name], g) for name, g in grads.items()]
    arrays += [(f"input:{n}", a, g) for n, a, g in zip(m64.input_names, xs, d_inputs)
               if g is not None]
    rng = np.random.default_rng(0)

    for name, array, g in arrays:
        scale = float(np.max(np.abs(g), initial=0.0))
        if scale >= floor:
            continue
        # The analytic gradient is below the floor. Ask the loss itself, along a random
        # direction v (|v| <= 1; zero on padded steps, whose mask a perturbation would flip):
        # if neither moves, the array does not influence the loss (exact zeros on both
        # sides: checkable); if the loss's slope is as small as the analytic one (a tiny
        # gradient the loss cannot resolve, or a stationary point where only rounding noise
        # is left), the array cannot be judged; if the slope is larger, the check goes
        # ahead and will fail, as it should.
        v = rng.standard_normal(array.shape)
        mask_value = mask_values.get(name.partition("input:")[2]) if name.startswith(
            "input:") else None
        if mask_value is not None and array.ndim == 3:
            v[np.all(array == mask_value, axis=-1)] = 0
        v /= max(float(np.max(np.abs(v), initial=0.0)), 1e-300)
        original = array.copy()
        base = loss()
        np.copyto(array, original + h * v)
        plus = loss()
        np.copyto(array, original - h * v)
        minus = loss()
        np.copyto(array, original)
        probe = abs(plus - minus) / (2 * h)
        moves = plus != base or minus != base
        if (scale > 0 or moves) and probe < floor * max(array.size, 1):
            caveats.append(f"the gradient of {name} is at most {scale:.2g} (a finite "
                           f"difference along a random direction: {probe:.2g}), below the "
                           f"finite-difference noise floor {floor:.2g} for rtol {rtol:g}")
    if caveats:
        return caveats
    if report is None or report.h != h:
        report = gradcheck(model, x, y, h=h, rtol=rtol, drill_down=0, progress=False)
    flip = _relu_flip(m64, xs, h, report)
    if flip is not None:
        reach = "±2h" if report.method == "projection" else f"±{2 * h:g}"
        return [f"perturbing {flip} by {reach} flips a relu (its input is "
                f"{kink_distance(m64, xs):.2g} from the kink)"]
    return _truncation_caveats(model, x, y, h, rtol, report)


def _truncation_caveats(model: Model, x: Any, y: Any, h: float, rtol: float,
                        report: GradcheckReport) -> list[str]:
    """The arrays the check in ``report`` (at ``h``) fails only because the stencil is too
    coarse (see :func:`gradcheck_caveats`): their error falls ≥ 8-fold when h is halved
    (the same check otherwise: same method, directions and seed)."""
    coarse = report.rows
    failing = [name for name, row in coarse.items() if not row["max_rel_error"] < rtol]
    if not failing:
        return []
    same = {k: report.settings[k] for k in ("method", "inputs", "max_entries", "seed",
                                            "directions") if k in report.settings}
    fine = gradcheck(model, x, y, h=h / 2, rtol=rtol, drill_down=0, progress=False,
                     **same).rows
    ratios = {name: coarse[name]["max_abs_error"] / max(fine[name]["max_abs_error"], 1e-300)
              for name in failing}
    if not min(ratios.values()) >= 8:
        return []                       # some error does not shrink: let the check fail
    return [f"the loss is too curved for h={h:g}: {name}'s error "
            f"{coarse[name]['max_abs_error']:.2g} falls {ratio:.0f}-fold at h={h / 2:g} "
            "(stencil truncation, not the gradient)"
            for name, ratio in ratios.items()]
