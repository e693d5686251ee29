"""Causes ranked, not listed: which finding explains which, from what was measured.

Several findings often share one cause: a learning rate so large that the gates saturate,
the gradient vanishes and the loss stops falling gives four findings, and only one fix.
:func:`rank_causes` links a finding to the one that explains it (``finding.caused_by``,
with ``finding.cause_reason`` saying from which figures) when a rule below holds, and
orders the report: causes first (errors before warnings, then by how much they explain),
then what follows from them.

Each rule is ``(effect code, cause code, test)``, where ``test(r, effect, cause)`` returns
the reason in words, or None when the figures do not support the link. The rules read the
measurements, not just the codes: gates saturated *during* training point to the learning
rate, gates saturated *at the current weights* of an LSTM that reads a badly scaled input
point to the input's scale.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .findings import SEVERITY_ORDER, Finding

if TYPE_CHECKING:
    from .report import DiagnosisReport

#: ``test(r, effect, cause)``: the reason in words, or None.
RuleTest = Callable[["DiagnosisReport", Finding, Finding], "str | None"]

__all__ = ["rank_causes", "RULES"]


def _max(values: dict[Any, Any] | None) -> float:
    finite = [v for v in (values or {}).values() if v is not None and np.isfinite(v)]
    return max(finite) if finite else float("nan")


def _lr_ratio(cause: Finding) -> str:
    return f"updates of {cause.measured['median_update_ratio']:.2g} of the weights per step"


def _kernel_growth(r: DiagnosisReport, layer: str) -> float | None:
    """How many times the norm of ``layer``'s largest weight matrix grew over the run."""
    t = r.trace
    if t is None or len(t) < 2:
        return None
    growth = [t.weight_norm[-1, j] / t.weight_norm[0, j] for j, p in enumerate(t.param_names)
              if p.split("/", 1)[0] == layer and len(r.param_shapes[p]) >= 2
              and t.weight_norm[0, j] > 0]
    return max(growth) if growth else None


def _gates_from_training(r: DiagnosisReport, effect: Finding, cause: Finding) -> str | None:
    before, after = _max(effect.measured["fractions"]), _max(effect.measured["fractions_after"])
    limit = r.thresholds["saturated_fraction"]
    if not (before <= limit < after):
        return None
    growth = _kernel_growth(r, effect.measured["lstm"])
    grew = f", and its weight matrices grew x{growth:.1f}" if growth else ""
    return (f"the gates of {effect.measured['lstm']!r} were {100 * before:.0f}% saturated at "
            f"the current weights and {100 * after:.0f}% after {r.summary.get('steps')} steps: "
            f"they saturated during training, under {_lr_ratio(cause)}{grew}")


def _head_from_training(r: DiagnosisReport, effect: Finding, cause: Finding) -> str | None:
    before, after = effect.measured["fraction"], effect.measured["fraction_after"]
    if after is None or not before <= r.thresholds["saturated_fraction"] < after:
        return None
    return (f"{effect.measured['output']!r} was {100 * before:.0f}% saturated at the current "
            f"weights and {100 * after:.0f}% after training, under {_lr_ratio(cause)}")


def _gates_from_inputs(r: DiagnosisReport, effect: Finding, cause: Finding) -> str | None:
    if _max(effect.measured["fractions"]) <= r.thresholds["saturated_fraction"]:
        return None
    reads = r.layer_inputs.get(effect.measured["lstm"], [])
    largest = cause.measured["largest"].split("[", 1)[0]
    if largest not in reads:
        return None
    return (f"the gates of {effect.measured['lstm']!r} are saturated already at the current "
            f"weights, and it reads input {largest!r}, whose feature "
            f"{cause.measured['largest']} has scale {cause.measured['largest_scale']:.3g}")


def _head_from_inputs(r: DiagnosisReport, effect: Finding, cause: Finding) -> str | None:
    if effect.measured["fraction"] <= r.thresholds["saturated_fraction"]:
        return None
    return (f"{effect.measured['output']!r} is saturated already at the current weights, with "
            f"input features on scales up to {cause.measured['largest_scale']:.3g}")


def _vanishing_from_gates(r: DiagnosisReport, effect: Finding, cause: Finding) -> str | None:
    if effect.measured["lstm"] != cause.measured["lstm"]:
        return None
    worst = max(_max(cause.measured["fractions"]), _max(cause.measured["fractions_after"]))
    return (f"{100 * worst:.0f}% of the gates of {effect.measured['lstm']!r} are saturated, and "
            "a saturated gate passes almost no gradient from one step to the one before")


def _vanishing_from_training(r: DiagnosisReport, effect: Finding, cause: Finding) -> str | None:
    before, after = effect.measured["ratio"], effect.measured["ratio_after"]
    if after is None or not (np.isfinite(before) and before >= r.thresholds["vanishing_ratio"]):
        return None
    return (f"|dL/dh| first/last step was {before:.1e} at the current weights and {after:.1e} "
            f"after training, under {_lr_ratio(cause)}")


def _nonfinite_from_training(r: DiagnosisReport, effect: Finding, cause: Finding) -> str | None:
    where = effect.measured["where"]
    if not where or not all(w.startswith(("training", "the loss on all samples after"))
                            for w in where):
        return None
    return (f"the data, the weights and the first batch are finite; the run overflowed under "
            f"{_lr_ratio(cause)}")


def _always(text: str) -> RuleTest:
    return lambda r, effect, cause: text.format(e=effect, c=cause)


def _no_gradient_from_dead(r: DiagnosisReport, effect: Finding, cause: Finding) -> str | None:
    if cause.measured["fraction"] < 1:
        return None
    layer = cause.measured["layer"]
    behind = [p for p in effect.measured["parameters"]
              if p.split("/", 1)[0] in r.upstream_of_layer.get(layer, set()) | {layer}]
    if not behind:
        return None
    return (f"every unit of {layer!r} is 0 on every sample, so no gradient passes back "
            f"through it to {', '.join(behind)}")


def _dead_from_training(r: DiagnosisReport, effect: Finding, cause: Finding) -> str | None:
    before, after = effect.measured["fraction"], effect.measured.get("fraction_after")
    if after is None or not before <= r.thresholds["dead_unit_fraction"] < after:
        return None
    return (f"{100 * before:.0f}% of {effect.measured['layer']!r}'s units were dead at the "
            f"current weights and {100 * after:.0f}% after training, under {_lr_ratio(cause)}")


def _no_gradient_from_head(r: DiagnosisReport, effect: Finding, cause: Finding) -> str | None:
    layer = r.output_layers[cause.measured["output"]]
    behind = [p for p in effect.measured["parameters"]
              if p.split("/", 1)[0] in r.upstream_of_layer.get(layer, set()) | {layer}]
    if not behind:
        return None
    return (f"the loss of {cause.measured['output']!r} is a constant of its weights "
            f"({cause.code}): no gradient leaves it for {', '.join(behind)}")


def _same_output(text: str) -> RuleTest:
    def test(r: DiagnosisReport, effect: Finding, cause: Finding) -> str | None:
        if effect.measured.get("output") != cause.measured.get("output"):
            return None
        return text.format(o=cause.measured["output"], code=cause.code)
    return test


def _dominance_from_targets(r: DiagnosisReport, effect: Finding, cause: Finding) -> str | None:
    if effect.measured["dominant"] != cause.measured["output"]:
        return None
    return (f"the targets of {cause.measured['output']!r} are on a scale of "
            f"{cause.measured['scale']:.3g}, so its loss and its gradient are that much "
            "larger than the others'")


def _small_lr_from_clipping(r: DiagnosisReport, effect: Finding, cause: Finding) -> str | None:
    return (f"the clip rescales {100 * cause.measured['fraction_clipped']:.0f}% of the "
            f"gradients (their norm is {cause.measured['median_over_clip']:.3g}x the clip), so "
            "the steps are set by the clip, not by the gradient")


def _nonfinite_from_switched_off(r: DiagnosisReport, effect: Finding, cause: Finding) -> str | None:
    if not cause.measured.get("nonfinite_loss"):
        return None
    return (f"{cause.measured['output']!r} has loss weight 0 and a loss of "
            f"{cause.measured['loss']}; 0 x inf is NaN")


def _no_gradient_from_constant_inputs(r: DiagnosisReport, effect: Finding, cause: Finding
                                      ) -> str | None:
    reads = {layer for layer, inputs in r.layer_inputs.items()
             if any(i in cause.measured["constant"] for i in inputs)}
    behind = [p for p in effect.measured["parameters"] if p.split("/", 1)[0] in reads
              and p.split("/", 1)[1] == "kernel"]
    if not behind:
        return None
    return (f"{', '.join(behind)} multiply inputs that are 0 on every sample and step, so "
            "their gradient is 0")


def _no_gradient_from_batchnorm(r: DiagnosisReport, effect: Finding, cause: Finding) -> str | None:
    if cause.measured["count"] != 1 or cause.measured["last_batch_only"]:
        return None
    layer = cause.measured["layer"]
    behind = [p for p in effect.measured["parameters"]
              if p.split("/", 1)[0] in r.upstream_of_layer.get(layer, set())
              or p == f"{layer}/gamma"]
    if not behind:
        return None
    return (f"{layer!r} normalizes each feature over one value, so its output is beta "
            f"whatever its input, and no gradient passes back to {', '.join(behind)}")


def _plateau_from(words: str) -> RuleTest:
    return lambda r, effect, cause: f"the loss cannot fall while {words.format(c=cause)}"


#: (effect, cause, test): the first rule that holds for an effect names its cause.
RULES: tuple[tuple[str, str, RuleTest], ...] = (
    ("saturated_gates", "learning_rate_too_large", _gates_from_training),
    ("saturated_gates", "input_scale", _gates_from_inputs),
    ("saturated_head", "learning_rate_too_large", _head_from_training),
    ("saturated_head", "input_scale", _head_from_inputs),
    ("vanishing_gradient", "saturated_gates", _vanishing_from_gates),
    ("vanishing_gradient", "learning_rate_too_large", _vanishing_from_training),
    ("nonfinite", "switched_off_output", _nonfinite_from_switched_off),
    ("nonfinite", "learning_rate_too_large", _nonfinite_from_training),
    ("exploding_gradient", "learning_rate_too_large",
     _always("each step rewrites a large part of the weights ({c.measured[median_update_ratio]"
             ":.2g} per step), so the loss overshoots and its gradient grows")),
    ("dead_relu", "learning_rate_too_large", _dead_from_training),
    ("no_gradient", "dead_relu", _no_gradient_from_dead),
    ("no_gradient", "constant_inputs", _no_gradient_from_constant_inputs),
    ("no_gradient", "batchnorm_small_batch", _no_gradient_from_batchnorm),
    ("conflicting_outputs", "constant_inputs",
     lambda r, e, c: "the inputs never change, so the outputs share nothing but biases"
     if c.measured["all"] else None),
    ("no_gradient", "single_unit_softmax", _no_gradient_from_head),
    ("no_gradient", "categorical_on_one_unit", _no_gradient_from_head),
    ("low_sample_coverage", "single_unit_softmax",
     _same_output("the loss of {o!r} is a constant ({code}): it reaches no sample")),
    ("low_sample_coverage", "categorical_on_one_unit",
     _same_output("the loss of {o!r} is a constant ({code}): it reaches no sample")),
    ("dominant_output", "target_scale", _dominance_from_targets),
    ("learning_rate_too_small", "clipping_always_active", _small_lr_from_clipping),
    ("loss_plateau", "constant_inputs",
     lambda r, e, c: "the model sees the same input for every sample" if c.measured["all"]
     else None),
    ("loss_plateau", "learning_rate_too_small", _plateau_from("the weights barely move")),
    ("loss_plateau", "nothing_trainable", _plateau_from("nothing is trainable")),
    ("loss_plateau", "single_unit_softmax", _plateau_from("a head is a constant")),
    ("loss_plateau", "categorical_on_one_unit", _plateau_from("a head's loss is a constant")),
    ("loss_plateau", "dead_relu", _plateau_from("a ReLU layer is dead")),
    ("loss_plateau", "batchnorm_small_batch",
     lambda r, e, c: "the loss cannot fall while a BatchNormalization layer outputs beta "
     "whatever its input" if c.measured["count"] == 1 and not c.measured["last_batch_only"]
     else None),
    ("loss_plateau", "dropout_underfits",
     _always("with every dropout rate at 0 the same steps bring the training loss to "
             "{c.measured[train_loss_zero]:.4g}")),
    ("loss_plateau", "no_gradient", _plateau_from("parameters get no gradient")),
    ("loss_plateau", "low_sample_coverage", _plateau_from("the loss reaches only part of the "
                                                          "batch")),
    ("loss_plateau", "learning_rate_too_large", _plateau_from("the updates overshoot")),
    ("loss_plateau", "target_scale", _plateau_from("the output has to travel to the targets' "
                                                   "scale at the optimizer's pace")),
    ("not_moving", "clipping_always_active", _small_lr_from_clipping),
)


def root(finding: Finding) -> Finding:
    """The finding at the start of ``finding``'s chain of causes."""
    seen = {id(finding)}
    cause = finding.cause
    while cause is not None and id(cause) not in seen:
        finding = cause
        seen.add(id(finding))
        cause = finding.cause
    return finding


def rank_causes(r: DiagnosisReport) -> list[Finding]:
    """Link each finding of ``r`` to the one that explains it, and order ``r.findings``:
    causes first (errors before warnings, then the most explained), then consequences."""
    findings = r.findings
    for effect_code, cause_code, test in RULES:
        for effect in findings:
            if effect.code != effect_code or effect.caused_by is not None:
                continue
            for cause in findings:
                if cause.code != cause_code or cause is effect:
                    continue
                reason = test(r, effect, cause)
                if reason:
                    effect.caused_by, effect.cause_reason = cause.code, reason
                    effect.cause = cause
                    cause.explains.append(effect.code)
                    break
    roots = [f for f in findings if f.caused_by is None]
    roots.sort(key=lambda f: (SEVERITY_ORDER[f.severity], -_explained(f, findings)))
    rest = [f for f in findings if f.caused_by is not None]
    rest.sort(key=lambda f: SEVERITY_ORDER[f.severity])
    r.findings = roots + rest
    return r.findings


def _explained(cause: Finding, findings: list[Finding]) -> int:
    return sum(1 for f in findings if f is not cause and root(f) is cause)
