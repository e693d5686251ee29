"""Findings from how the weights moved over the training run: updates too large or too small
for the weights' scale (the learning rate), parameters that barely move.

Each check reads a :class:`~mlstm.diagnostics.report.DiagnosisReport` ``r`` and the findings
of earlier checks, and returns a list of :class:`~mlstm.diagnostics.findings.Finding`.
"""
from __future__ import annotations

import numpy as np

from ..findings import Finding

__all__ = ["check_learning_rate", "check_not_moving"]


#: Where each optimizer's learning rate usually starts (Keras' defaults), for the advice.
USUAL_LEARNING_RATE = {"adam": 1e-3, "sgd": 1e-2, "rmsprop": 1e-3, "adamw": 1e-3,
                       "adagrad": 1e-3, "nadam": 1e-3, "adamax": 1e-3}


def _usual_start(r):
    """``"Adam's usual start is 1e-3"`` for the report's optimizer, or "" when unknown."""
    name = str(r.setup.get("optimizer_name", "")).lower()
    lr = USUAL_LEARNING_RATE.get(name)
    return "" if lr is None else f" ({r.setup['optimizer_name']}'s usual start is {lr:g})"


def _starved(found):
    """Parameters an earlier finding already explains: those that received no gradient."""
    return {p for f in found if f.code == "no_gradient" for p in f.measured["parameters"]}


def _weight_matrix_ratios(r, leave_out=()):
    """``{param: median |Δθ|/|θ|}`` for the traced weight matrices (biases start at 0),
    without the parameters ``leave_out``."""
    ups = r.summary.get("updates", {})
    return {p: u["median_ratio"] for p, u in ups.items()
            if len(r.param_shapes[p]) >= 2 and np.isfinite(u["median_ratio"])
            and p not in leave_out}


def check_learning_rate(r, found):
    # Weights that get no gradient do not move whatever the learning rate: leave them out,
    # no_gradient has named them.
    ratios = _weight_matrix_ratios(r, leave_out=_starved(found))
    if not ratios:
        return []
    median = float(np.median(list(ratios.values())))
    optimizer = r.setup["optimizer"]
    lr = r.setup.get("learning_rate")
    if median == 0:
        zero_lr = isinstance(lr, (int, float)) and lr == 0
        return [Finding(
            "learning_rate_too_small", "warning", "The weights do not move",
            f"Over {len(r.trace)} steps no weight matrix moved at all (|Δθ| = 0 at every "
            "step), though their gradient is not zero"
            + (": the learning rate is 0" if zero_lr else
               ": the updates are below the weights' floating-point resolution")
            + f". Optimizer: {optimizer}.",
            "Set a positive learning rate" + _usual_start(r) + "."
            if zero_lr else "Raise the learning rate" + _usual_start(r) + ".",
            {"median_update_ratio": median, "per_parameter": ratios, "learning_rate": lr})]
    if median < r.thresholds["lr_small_ratio"]:
        return [Finding(
            "learning_rate_too_small", "warning", "Updates too small for the weights' scale",
            f"Over {len(r.trace)} steps the median update of a weight matrix is "
            f"{median:.2g} of its norm per step (healthy: about 1e-3); at this pace the "
            f"weights change by 1% only after ~{0.01 / median:.0f} steps. "
            f"Optimizer: {optimizer}.",
            f"Raise the learning rate, roughly x{1e-3 / median:.0f}{_usual_start(r)}, after "
            "checking that the gradient is not starved (see the other findings).",
            {"median_update_ratio": median, "per_parameter": ratios})]
    if median > r.thresholds["lr_large_ratio"]:
        return [Finding(
            "learning_rate_too_large", "warning", "Updates too large for the weights' scale",
            f"Over {len(r.trace)} steps the median update of a weight matrix is "
            f"{median:.2g} of its norm per step (healthy: about 1e-3): each step rewrites a "
            "large part of the weights, so training jumps around instead of descending. "
            f"Optimizer: {optimizer}.",
            f"Lower the learning rate, roughly /{median / 1e-3:.0f}{_usual_start(r)}; clip "
            "the gradients (clipnorm=1.0) if the loss spikes.",
            {"median_update_ratio": median, "per_parameter": ratios})]
    return []


def check_not_moving(r, found):
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
        f"Median update per step relative to the weight's norm, over {len(r.trace)} steps: "
        f"{listed}; " + (f"the weight matrices typically move {typical:.1e} per step, and "
                         if moving else "")
        + "about 1e-3 is healthy.",
        "Their gradient is negligible next to the optimizer's scale: look for what starves "
        "them (saturated gates or heads, gradient vanishing through time, a tiny loss "
        "weight), or give them a larger learning rate.",
        {"parameters": still, "typical_ratio": typical})]
