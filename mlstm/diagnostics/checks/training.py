"""Findings from how the weights moved over the training run: updates too large or too small
for the weights' scale (the learning rate), parameters that barely move, a gradient norm
that grows, a clip that is always active, a loss that stops falling at the level of a
constant prediction.

Each check reads a :class:`~mlstm.diagnostics.report.DiagnosisReport` ``r`` and the findings
of earlier checks, and returns a list of :class:`~mlstm.diagnostics.findings.Finding`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Collection

import numpy as np

from ..findings import Finding, traced_steps
from ..remedies import Remedy
from ..summary import nanmedian

if TYPE_CHECKING:
    from ..report import DiagnosisReport

__all__ = ["check_learning_rate", "check_not_moving", "check_exploding", "check_clipping",
           "check_plateau", "USUAL_LEARNING_RATE", "suggested_learning_rate"]


#: Per optimizer: (Keras' default learning rate, the usual range's low and high end). The
#: adaptive optimizers scale each step to about the learning rate whatever the gradient's
#: size; plain SGD's step is the learning rate times the gradient, so its range sits higher
#: (with momentum 0.9, lower ends of it).
USUAL_LEARNING_RATE = {"adam": (1e-3, 1e-4, 3e-3), "adamw": (1e-3, 1e-4, 3e-3),
                       "nadam": (1e-3, 1e-4, 3e-3), "adamax": (1e-3, 1e-4, 3e-3),
                       "rmsprop": (1e-3, 1e-4, 3e-3), "adagrad": (1e-3, 1e-3, 1e-1),
                       "sgd": (1e-2, 1e-3, 1e-1)}

#: The healthy update-to-weight ratio per step the learning-rate suggestions aim at.
TARGET_RATIO = 1e-3


def _usual_start(r: DiagnosisReport) -> str:
    """``" (Adam's usual start is 0.001; usually 0.0001 to 0.003)"``, or "" when unknown."""
    name = str(r.setup.get("optimizer_name", "")).lower()
    if name not in USUAL_LEARNING_RATE:
        return ""
    default, low, high = USUAL_LEARNING_RATE[name]
    extra = ", with momentum 0.9 at the lower end" if name == "sgd" else ""
    return (f" ({r.setup['optimizer_name']}'s usual start is {default:g}; usually {low:g} to "
            f"{high:g}{extra})")


def suggested_learning_rate(r: DiagnosisReport, median: float) -> float | None:
    """The learning rate that would bring the median update ratio to about 1e-3 (the
    ratio is proportional to the learning rate at the same weights), one significant
    digit; the optimizer's default when the learning rate is 0; None when unknown."""
    lr = r.setup.get("learning_rate")
    if not isinstance(lr, (int, float)) or not np.isfinite(lr):
        return None
    if lr == 0 or median == 0:
        usual = USUAL_LEARNING_RATE.get(str(r.setup.get("optimizer_name", "")).lower())
        return usual[0] if lr == 0 and usual else None
    value = lr * TARGET_RATIO / median
    usual = USUAL_LEARNING_RATE.get(str(r.setup.get("optimizer_name", "")).lower())
    if usual is not None:               # stay inside the optimizer's usual range
        value = min(max(value, usual[1]), usual[2])
    return float(f"{value:.0e}")


def _lr_remedy(r: DiagnosisReport, new_lr: float | None) -> Remedy | None:
    if new_lr is None:
        return None
    return Remedy(f"learning-rate:{new_lr:g}", f"learning_rate={new_lr:g}",
                  optimizer={"learning_rate": new_lr})


def _starved(found: list[Finding]) -> set[str]:
    """Parameters an earlier finding already explains: those that received no gradient."""
    return {p for f in found if f.code == "no_gradient" for p in f.measured["parameters"]}


def _weight_matrix_ratios(r: DiagnosisReport, leave_out: Collection[str] = ()
                          ) -> dict[str, float]:
    """``{param: median |Δθ|/|θ|}`` for the traced weight matrices (biases start at 0),
    without the parameters ``leave_out``."""
    ups = r.summary.get("updates", {})
    return {p: u["median_ratio"] for p, u in ups.items()
            if len(r.param_shapes[p]) >= 2 and np.isfinite(u["median_ratio"])
            and p not in leave_out}


def check_learning_rate(r: DiagnosisReport, found: list[Finding]) -> list[Finding]:
    # Weights that get no gradient do not move whatever the learning rate: leave them out,
    # no_gradient has named them.
    ratios = _weight_matrix_ratios(r, leave_out=_starved(found))
    if not ratios:
        return []
    median = float(np.median(list(ratios.values())))
    # A run that diverges saturates what it blew up: those weights then stop moving while
    # their norm is huge, and the median over the whole run reads "too small". The first
    # fifth of the run, before that, tells.
    early_ratios = [u["early_ratio"] for p, u in r.summary["updates"].items() if p in ratios
                    and np.isfinite(u["early_ratio"])]
    early = float(np.median(early_ratios)) if early_ratios else median
    diverged = median < r.thresholds["lr_large_ratio"] < early
    if diverged:
        median = early
    optimizer = r.setup["optimizer"]
    lr = r.setup.get("learning_rate")
    if median == 0:
        zero_lr = isinstance(lr, (int, float)) and lr == 0
        return [Finding(
            "learning_rate_too_small", "warning", "The weights do not move",
            f"Over {traced_steps(r)} steps no weight matrix moved at all (|Δθ| = 0 at every "
            "step), though their gradient is not zero"
            + (": the learning rate is 0" if zero_lr else
               ": the updates are below the weights' floating-point resolution")
            + f". Optimizer: {optimizer}.",
            "Set a positive learning rate" + _usual_start(r) + "."
            if zero_lr else "Raise the learning rate" + _usual_start(r) + ".",
            {"median_update_ratio": median, "per_parameter": ratios, "learning_rate": lr},
            remedy=_lr_remedy(r, suggested_learning_rate(r, median)))]
    suggestion = suggested_learning_rate(r, median)
    to = "" if suggestion is None else f" to about {suggestion:g}"
    if median < r.thresholds["lr_small_ratio"]:
        return [Finding(
            "learning_rate_too_small", "warning", "Updates too small for the weights' scale",
            f"Over {traced_steps(r)} steps the median update of a weight matrix is "
            f"{median:.2g} of its norm per step (healthy: about 1e-3); at this pace the "
            f"weights change by 1% only after ~{0.01 / median:.0f} steps. "
            f"Optimizer: {optimizer}.",
            f"Raise the learning rate, roughly x{1e-3 / median:.0f}{to}{_usual_start(r)}, "
            "after checking that the gradient is not starved (see the other findings).",
            {"median_update_ratio": median, "per_parameter": ratios, "learning_rate": lr},
            remedy=_lr_remedy(r, suggestion))]
    if median > r.thresholds["lr_large_ratio"]:
        return [Finding(
            "learning_rate_too_large", "warning", "Updates too large for the weights' scale",
            f"Over {traced_steps(r)} steps the median update of a weight matrix is "
            f"{median:.2g} of its norm per step"
            + (" in the first fifth of the run" if diverged else "")
            + " (healthy: about 1e-3): each step rewrites a large part of the weights, so "
            "training jumps around instead of descending. "
            f"Optimizer: {optimizer}.",
            f"Lower the learning rate, roughly /{median / 1e-3:.0f}{to}{_usual_start(r)}; "
            "clip the gradients (clipnorm=1.0) if the loss spikes.",
            {"median_update_ratio": median, "per_parameter": ratios, "learning_rate": lr},
            remedy=_lr_remedy(r, suggestion))]
    return []


def check_not_moving(r: DiagnosisReport, found: list[Finding]) -> list[Finding]:
    ups = r.summary.get("updates")
    if not ups or any(f.code == "learning_rate_too_small" for f in found):
        return []
    dead = _starved(found)
    limit = r.thresholds["not_moving_ratio"]
    still = {p: u["median_ratio"] for p, u in ups.items()
             if p not in dead and np.isfinite(u["median_ratio"]) and u["median_ratio"] < limit}
    if not still:
        return []
    listed = ", ".join(f"{p} ({v:.1e})" for p, v in still.items())
    moving = list(_weight_matrix_ratios(r, leave_out=dead).values())
    typical = float(np.median(moving)) if moving else float("nan")
    return [Finding(
        "not_moving", "warning", "Parameters that barely move",
        f"Median update per step relative to the weight's norm, over {traced_steps(r)} steps: "
        f"{listed}; " + (f"the weight matrices typically move {typical:.1e} per step, and "
                         if moving else "")
        + "about 1e-3 is healthy.",
        "Their gradient is negligible next to the optimizer's scale: look for what starves "
        "them (saturated gates or heads, gradient vanishing through time, a tiny loss "
        "weight), or give them a larger learning rate.",
        {"parameters": still, "typical_ratio": typical})]


def _fifths(values: Any) -> tuple[float, float]:
    """Medians of the first and the last fifth of a series (nan-aware)."""
    series = np.asarray(values, dtype=np.float64)
    n = max(len(series) // 5, 1)
    return nanmedian(series[:n]), nanmedian(series[-n:])


def check_exploding(r: DiagnosisReport, found: list[Finding]) -> list[Finding]:
    norms = np.asarray(r.summary.get("gradient_norm_steps", []), dtype=np.float64)
    if norms.size < 10:
        return []
    first, last = _fifths(norms)
    growth = last / first if first > 0 else float("nan")
    finite = norms[np.isfinite(norms)]
    if not np.isfinite(growth) or growth <= r.thresholds["gradient_growth"]:
        return []
    lr = r.setup.get("learning_rate")
    new_lr = float(f"{lr / 10:.0e}") if isinstance(lr, (int, float)) and lr > 0 else None
    return [Finding(
        "exploding_gradient", "warning", "The gradient norm grows during training",
        f"The norm of the whole gradient grew from a median of {first:.3g} over the first "
        f"fifth of the {norms.size} steps to {last:.3g} over the last fifth (x{growth:.0f}; "
        f"largest {finite.max():.3g}). Training that descends makes the gradient smaller; a "
        "growing one means the steps overshoot, and it ends in NaN.",
        "Lower the learning rate" + ("" if new_lr is None else f" (to {new_lr:g}, say)")
        + _usual_start(r) + "; clip the gradient norm (global_clipnorm=1.0) to stop single "
        "steps from blowing up.",
        {"first_fifth": first, "last_fifth": last, "growth": growth,
         "largest": float(finite.max())},
        remedy=_lr_remedy(r, new_lr))]


def _clip(r: DiagnosisReport) -> tuple[str, float] | None:
    """``(option, value)`` of the optimizer's norm clip, or None."""
    for option in ("global_clipnorm", "clipnorm"):
        value = r.optimizer_config.get(option)
        if value:
            return option, float(value)
    return None


def check_clipping(r: DiagnosisReport, found: list[Finding]) -> list[Finding]:
    clip, trace = _clip(r), r.trace
    if clip is None or trace is None or len(trace) == 0:
        return []
    option, value = clip
    if option == "clipnorm":            # each tensor on its own: the largest one decides
        norms = np.nanmax(trace.total_grad_norm, axis=1)
    else:
        norms = np.asarray(r.summary["gradient_norm_steps"], dtype=np.float64)
    clipped = float(np.mean(norms > value))
    if clipped < r.thresholds["clip_active_fraction"]:
        return []
    typical = nanmedian(norms)
    new = float(f"{3 * typical:.1e}")
    return [Finding(
        "clipping_always_active", "warning", f"Gradient clipping ({option}) is always active",
        f"{option}={value:g}, and the gradient norm exceeds it at {100 * clipped:.0f}% of the "
        f"{len(trace)} steps (median {typical:.3g}, {typical / value:.3g}x the clip): the clip, "
        "not the gradient, sets every step's size and the gradient's size never reaches the "
        "optimizer. A clip is a cap for rare spikes.",
        f"Raise {option} above the typical norm ({option}={new:g}, three times the median "
        "measured), or remove it; if the gradient is large because of another finding "
        "(targets or inputs on a large scale), fix that.",
        {"option": option, "clip": value, "fraction_clipped": clipped, "median_norm": typical,
         "median_over_clip": typical / value},
        remedy=Remedy(f"clip:{new:g}", f"{option}={new:g}", optimizer={option: new}))]


def check_plateau(r: DiagnosisReport, found: list[Finding]) -> list[Finding]:
    curves, baseline = r.summary.get("curves"), r.summary.get("baseline") or {}
    if not curves or r.summary.get("steps", 0) < 10 or len(curves["steps"]) < 3:
        return []
    steps, total = curves["steps"], curves["train"]["total"]
    early = next(i for i, s in enumerate(steps) if s >= max(steps[-1] / 10, 1))
    first, last, base = total[early], total[-1], baseline.get("total")
    if not (np.isfinite(first) and np.isfinite(last) and base and base > 0 and first > 0):
        return []
    drop = (first - last) / first
    if drop >= r.thresholds["plateau_drop"] or last < r.thresholds["plateau_baseline"] * base:
        return []
    per_output = ", ".join(
        f"{o} {curves['train'][o][early]:.4g} -> {curves['train'][o][-1]:.4g} (constant "
        f"prediction {baseline[o]:.4g})" for o in r.loss_outputs
        if o in curves["train"] and baseline.get(o) is not None)
    return [Finding(
        "loss_plateau", "warning", "The loss stops falling from the first steps",
        f"From step {steps[early]} to step {steps[-1]}, the loss on a fixed set of training "
        f"samples went {first:.4g} -> {last:.4g} ({100 * drop:+.1f}%), at the level of "
        f"predicting the same value for every sample ({base:.4g}: each target's mean, or "
        f"the class frequencies){'' if not per_output else '; per output: ' + per_output}. "
        "The model has learned nothing its inputs could tell it.",
        "If another finding explains it, fix that first. Otherwise check that the targets "
        "belong to the inputs (the same order; no shift by a step), that the inputs still "
        "carry information after preprocessing, and that each output's loss fits its target.",
        {"from_step": steps[early], "to_step": steps[-1], "loss_from": first,
         "loss_to": last, "drop": drop, "constant_prediction": base})]
