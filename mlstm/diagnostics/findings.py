"""What a finding is, when a figure becomes one (:data:`THRESHOLDS`), and how findings read.

The checks that produce findings live in :mod:`mlstm.diagnostics.checks`, one module per
kind of evidence (the data and compile settings, where the gradient goes, how the weights
move). Each check is a function ``check(report, found) -> [Finding, ...]`` that reads the
figures of a :class:`~mlstm.diagnostics.report.DiagnosisReport`.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Protocol

import numpy as np

if TYPE_CHECKING:
    from ..losses import Loss
    from ..measure.trace import Trace
    from ..model import Model
    from .remedies import Remedy

__all__ = ["Finding", "ReportFields", "THRESHOLDS", "FINDING_CODES", "SEVERITY_ORDER", "indent",
           "jsonable", "run_or_static", "where", "before_after", "when", "traced_steps"]

#: When a figure becomes a finding. Healthy update/weight ratios sit near 1e-3 per step.
#: ``verify_gain`` is not a finding's threshold: a fix tried by retraining counts as verified
#: when the losses it is meant to lower end at least this fraction lower (geometric mean).
THRESHOLDS: dict[str, float] = {
    "min_coverage": 0.5,        # fraction of the batch an output's loss gradient reaches
    "dominant_share": 0.98,     # one output's share of the gradient norm on shared weights
    "conflict_cosine": -0.3,    # median cosine between outputs' gradients on shared weights
    "saturated_fraction": 0.25, # fraction of gate / head pre-activations beyond ±5
    "vanishing_ratio": 1e-4,    # |dL/dh| at the first step over |dL/dh| at the last
    "input_scale_ratio": 20.0,  # largest over smallest per-feature scale (RMS)
    "input_scale_max": 5.0,     # largest per-feature |mean| or std
    "not_moving_ratio": 1e-5,   # a parameter's median |Δθ|/|θ| per step
    "lr_small_ratio": 1e-4,     # median |Δθ|/|θ| over weight matrices
    "lr_large_ratio": 3e-2,
    "target_scale_max": 10.0,   # largest |mean| or std of a regression target (MSE)
    "dead_unit_fraction": 0.25, # fraction of a ReLU layer's units at 0 on every sample
    "gradient_growth": 10.0,    # gradient norm over the last fifth of the run / the first
    "clip_active_fraction": 0.9,  # fraction of steps whose gradient the clip rescales
    "plateau_drop": 0.01,       # relative fall of the loss after the first tenth of the run
    "plateau_baseline": 0.95,   # loss over the loss of the best constant prediction
    "batchnorm_min_values": 8,  # values behind a BatchNormalization's batch statistics
    "dropout_underfit_ratio": 0.8,  # rate 0's training loss over a constant prediction's
    "dropout_learned_fraction": 0.25,  # loss fall at the model's rates over that at rate 0
    "verify_gain": 0.05,
}

FINDING_CODES = ("nonfinite", "nothing_trainable", "class_target_format", "single_unit_softmax",
                 "categorical_on_one_unit", "low_sample_coverage", "no_gradient", "bce_targets",
                 "learning_rate_too_large", "learning_rate_too_small", "not_moving",
                 "exploding_gradient", "clipping_always_active", "dominant_output",
                 "conflicting_outputs", "switched_off_output", "saturated_head",
                 "saturated_gates", "dead_relu", "vanishing_gradient", "constant_inputs",
                 "input_scale", "target_scale", "mse_on_sigmoid", "from_logits_on_activated",
                 "loss_plateau", "batchnorm_small_batch", "dropout_hides",
                 "dropout_underfits", "categorical_target_sums")
SEVERITY_ORDER: dict[str, int] = {"error": 0, "warning": 1}


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
    remedy : Remedy or None
        The fix as a concrete change that can be tried by retraining
        (:mod:`mlstm.diagnostics.remedies`); None when the advice is not that concrete
        (``why_not_tried`` may say why).
    verification : dict or None
        What retraining with the remedy measured (``diagnose(..., verify=True)``,
        :mod:`mlstm.diagnostics.verify`): ``verified`` (bool), the per-output losses
        ``before`` and ``after``, the ``change`` tried, and ``words``.
    caused_by : str or None
        The code of the finding that explains this one (:mod:`mlstm.diagnostics.causes`),
        with ``cause_reason`` saying from which figures.
    explains : list of str
        The codes of the findings this one explains.
    """

    def __init__(self, code: str, severity: str, title: str, message: str, fix: str,
                 measured: dict[str, Any], remedy: Remedy | None = None,
                 why_not_tried: str | None = None) -> None:
        if code not in FINDING_CODES or severity not in SEVERITY_ORDER:
            raise ValueError(f"Finding: unknown code {code!r} or severity {severity!r}")
        self.code, self.severity, self.title = code, severity, title
        self.message, self.fix, self.measured = message, fix, measured
        self.remedy, self.why_not_tried = remedy, why_not_tried
        self.verification: dict[str, Any] | None = None
        self.caused_by: str | None = None
        self.cause_reason: str | None = None
        self.explains: list[str] = []
        self.cause: Finding | None = None       # the Finding named by caused_by

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "title": self.title,
                "message": self.message, "fix": self.fix, "measured": jsonable(self.measured),
                "remedy": None if self.remedy is None else self.remedy.words,
                "verification": jsonable(self.verification),
                "caused_by": self.caused_by, "cause_reason": self.cause_reason,
                "explains": list(self.explains)}

    def verification_words(self) -> str:
        """One line on whether the fix was tried: verified, not verified, or not tried."""
        if self.verification is not None:
            return self.verification["words"]
        if self.caused_by is not None:
            return f"fix the cause first ({self.caused_by}); this follows from it"
        if self.remedy is None:
            return "advice not verified: " + (self.why_not_tried or
                                              "no single change to retrain with")
        return "advice not verified: retraining was not run (diagnose(..., verify=True))"

    def __str__(self) -> str:
        lines = [f"[{self.severity}] {self.title} ({self.code})", indent(self.message, "    ")]
        if self.caused_by is not None:
            lines.append(indent(f"cause: {self.cause_reason}", "    "))
        lines.append(indent("fix: " + self.fix, "    "))
        lines.append(indent(self.verification_words(), "    "))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Finding {self.code}: {self.title}>"


class ReportFields(Protocol):
    """What the checks, the text and the plot read of a report: the fields of a
    :class:`~mlstm.diagnostics.report.DiagnosisReport` (declared here, below the modules the
    report imports, so that they can name its type without an import cycle)."""

    model_name: str
    thresholds: dict[str, float]
    output_names: list[str]
    loss_outputs: list[str]
    loss_weights: dict[str, float]
    active_outputs: list[str]
    setup: dict[str, Any]
    data: dict[str, Any]
    static: dict[str, Any] | None
    run: dict[str, Any] | None
    stopped: str | None
    trace: Trace | None
    trained_model: Model | None
    shared_names: list[str]
    trainable_names: list[str]
    param_shapes: dict[str, tuple[int, ...]]
    losses: dict[str, Loss | None]
    head_activations: dict[str, str | None]
    output_layers: dict[str, str]
    output_shapes: dict[str, tuple[int, ...]]
    upstream_of_layer: dict[str, set[str]]
    layer_inputs: dict[str, list[str]]
    optimizer_config: dict[str, Any]
    verified: list[dict[str, Any]]
    sigmoid_heads: list[str]
    summary: dict[str, Any]
    findings: list[Finding]

    @property
    def suggested_loss_weights(self) -> dict[str, float] | None: ...


# --------------------------------------------------------------------------- phrasing
def run_or_static(r: ReportFields, run_key: str, static_key: str) -> Any:
    """The figure over the training run when there is one, else the one on the batch."""
    value = r.summary.get(run_key)
    return value if value else r.summary[static_key]


def traced_steps(r: ReportFields) -> int:
    """The number of optimizer steps the training run traced (0 without a run)."""
    return 0 if r.trace is None else len(r.trace)


def where(r: ReportFields, run_key: str) -> str:
    """Words for where :func:`run_or_static` took its figure from."""
    return "median over the training steps" if r.summary.get(run_key) else "on the batch"


def before_after(r: ReportFields, key: str) -> dict[str, tuple[Any, Any]]:
    """``{name: (value at the current weights, value after the run or None)}``."""
    before = r.summary[key]
    after = r.summary.get(key + "_after", {})
    return {name: (v, after.get(name)) for name, v in before.items()}


def when(before: Any, after: Any, steps: int | None, fmt: Callable[[Any], str]) -> str:
    """``"<before> at the current weights, <after> after <steps> training steps"``."""
    text = f"{fmt(before)} at the current weights"
    if after is not None:
        text += f", {fmt(after)} after {steps} training steps"
    return text


def indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def jsonable(value: Any) -> Any:
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
