"""What a finding is, when a figure becomes one (:data:`THRESHOLDS`), and how findings read.

The checks that produce findings live in :mod:`mlstm.diagnostics.checks`, one module per
kind of evidence (the data and compile settings, where the gradient goes, how the weights
move). Each check is a function ``check(report, found) -> [Finding, ...]`` that reads the
figures of a :class:`~mlstm.diagnostics.report.DiagnosisReport`.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["Finding", "THRESHOLDS", "FINDING_CODES", "SEVERITY_ORDER", "indent", "jsonable",
           "run_or_static", "where", "before_after", "when"]

#: When a figure becomes a finding. Healthy update/weight ratios sit near 1e-3 per step.
THRESHOLDS = {
    "min_coverage": 0.5,        # fraction of the batch an output's loss gradient reaches
    "dominant_share": 0.98,     # one output's share of the gradient norm on shared weights
    "conflict_cosine": -0.3,    # median cosine between outputs' gradients on shared weights
    "saturated_fraction": 0.25, # fraction of gate / head pre-activations beyond ±5
    "vanishing_ratio": 1e-3,    # |dL/dh| at the first step over |dL/dh| at the last
    "input_scale_ratio": 20.0,  # largest over smallest per-feature scale (RMS)
    "input_scale_max": 5.0,     # largest per-feature |mean| or std
    "not_moving_ratio": 1e-5,   # a parameter's median |Δθ|/|θ| per step
    "lr_small_ratio": 1e-4,     # median |Δθ|/|θ| over weight matrices
    "lr_large_ratio": 3e-2,
}

FINDING_CODES = ("nonfinite", "nothing_trainable", "low_sample_coverage", "no_gradient", "bce_targets",
                 "learning_rate_too_large", "learning_rate_too_small", "not_moving",
                 "dominant_output", "conflicting_outputs", "saturated_head", "saturated_gates",
                 "vanishing_gradient", "input_scale", "mse_on_sigmoid")
SEVERITY_ORDER = {"error": 0, "warning": 1}


class Finding:
    """One thing measured to be wrong.

    Attributes
    ----------
    code : str
        One of :data:`FINDING_CODES`.
    severity : {"error", "warning"}
    title : str
    message : str
        What was measured, with the figure.
    fix : str
        What to change.
    measured : dict
        The figures (JSON-serializable).
    """

    def __init__(self, code, severity, title, message, fix, measured):
        if code not in FINDING_CODES or severity not in SEVERITY_ORDER:
            raise ValueError(f"Finding: unknown code {code!r} or severity {severity!r}")
        self.code, self.severity, self.title = code, severity, title
        self.message, self.fix, self.measured = message, fix, measured

    def to_dict(self):
        return {"code": self.code, "severity": self.severity, "title": self.title,
                "message": self.message, "fix": self.fix, "measured": jsonable(self.measured)}

    def __str__(self):
        return (f"[{self.severity}] {self.title} ({self.code})\n"
                + indent(self.message, "    ") + "\n" + indent("fix: " + self.fix, "    "))

    def __repr__(self):
        return f"<Finding {self.code}: {self.title}>"


# --------------------------------------------------------------------------- phrasing
def run_or_static(r, run_key, static_key):
    """The figure over the training run when there is one, else the one on the batch."""
    value = r.summary.get(run_key)
    return value if value else r.summary[static_key]


def where(r, run_key):
    """Words for where :func:`run_or_static` took its figure from."""
    return "median over the training steps" if r.summary.get(run_key) else "on the batch"


def before_after(r, key):
    """``{name: (value at the current weights, value after the run or None)}``."""
    before = r.summary[key]
    after = r.summary.get(key + "_after", {})
    return {name: (v, after.get(name)) for name, v in before.items()}


def when(before, after, steps, fmt):
    """``"<before> at the current weights, <after> after <steps> training steps"``."""
    text = f"{fmt(before)} at the current weights"
    if after is not None:
        text += f", {fmt(after)} after {steps} training steps"
    return text


def indent(text, prefix):
    return "\n".join(prefix + line for line in text.splitlines())


def jsonable(value):
    """Plain Python values (lists, floats, None for nan/inf) for ``json.dumps``."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)
