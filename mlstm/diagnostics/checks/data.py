"""Findings from the data and the compile settings: NaN/inf, nothing trainable, BCE targets
outside [0, 1], inputs on very different scales, regression targets on a large scale,
mean squared error on a sigmoid head.

Each check reads a :class:`~mlstm.diagnostics.report.DiagnosisReport` ``r`` and the findings
of earlier checks, and returns a list of :class:`~mlstm.diagnostics.findings.Finding`.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Collection

import numpy as np

from ... import losses as losses_module
from ...ops.activations import sigmoid
from ..findings import Finding
from ..remedies import Remedy

if TYPE_CHECKING:
    from ..report import DiagnosisReport

__all__ = ["check_nonfinite", "check_nothing_trainable", "check_bce_targets", "check_input_scale",
           "check_constant_inputs",
           "check_target_scale", "check_mse_on_sigmoid", "input_scales", "STANDARDIZE_INPUTS"]

#: The remedy of badly scaled inputs (one key: every finding that advises it shares a run).
STANDARDIZE_INPUTS = Remedy("standardize-inputs", "every input feature standardized with the "
                            "training data's mean and std", standardize_inputs=True)


def input_scales(r: DiagnosisReport, names: Collection[str] | None = None) -> dict[str, float]:
    """``{input: largest per-feature scale sqrt(mean² + std²)}`` of the data as given."""
    out: dict[str, float] = {}
    for name, st in r.data["inputs"].items():
        if names is not None and name not in names:
            continue
        scale = np.hypot(st["mean"], st["std"])
        scale = scale[np.isfinite(scale)]
        out[name] = float(scale.max()) if scale.size else float("nan")
    return out


def check_nonfinite(r: DiagnosisReport, found: list[Finding]) -> list[Finding]:
    where = []
    for name, stats in r.data["inputs"].items():
        if stats["nonfinite"]:
            where.append(f"input {name!r}: {stats['nonfinite']} values")
    for name, stats in r.data["targets"].items():
        if stats["nonfinite"]:
            where.append(f"target {name!r}: {stats['nonfinite']} values")
    for name, count in r.data["nonfinite_weights"].items():
        if count:
            where.append(f"weight {name!r}: {count} values")
    if r.static is not None:
        for name, count in r.static["nonfinite_outputs"].items():
            if count:
                where.append(f"output {name!r} on the batch: {count} values")
        if not np.isfinite(r.static["loss"]):
            where.append(f"the loss on the batch ({r.static['loss']})")
        if r.static["nonfinite_grads"]:
            where.append(f"gradients of {r.static['nonfinite_grads']}")
    if r.run and r.run["stopped"]:
        where.append(f"training, at step {r.run['stopped']['iteration']} (stopped there): "
                     + r.run["stopped"]["message"].splitlines()[0])
    after = r.summary.get("loss_after") or {}
    bad_after = [k for k, v in after.items() if not np.isfinite(v)]
    if bad_after and not (r.run and r.run["stopped"]):
        where.append("the loss on all samples after training ("
                     + ", ".join(f"{k} {after[k]}" for k in bad_after) + ")")
    bad_steps = r.summary.get("run_nonfinite_steps", 0)
    if bad_steps and r.trace is not None:       # counted over the run's trace
        first = int(np.argmax(r.trace.nonfinite)) + 1
        where.append(f"training: {bad_steps} of {len(r.trace)} steps (first at step {first})")
    if not where:
        return []
    return [Finding(
        "nonfinite", "error", "NaN or inf values",
        "NaN or inf found in " + "; ".join(where) + ".",
        "Remove or impute non-finite data (check np.isfinite(a).all() on every array); if "
        "the data is clean and training produces them, lower the learning rate or clip the "
        "gradients (Adam(clipnorm=1.0)).",
        {"where": where})]


def check_nothing_trainable(r: DiagnosisReport, found: list[Finding]) -> list[Finding]:
    if r.trainable_names:
        return []
    frozen = list(r.param_shapes)
    return [Finding(
        "nothing_trainable", "error", "The model has no trainable parameters",
        ("Every parameter is frozen (trainable=False): " + ", ".join(frozen) if frozen else
         "The model has no parameters") + ". fit computes gradients but changes nothing.",
        "Set trainable=True on the layers that should learn (layer.trainable = True, before "
        "compile).",
        {"frozen": frozen})]


def check_bce_targets(r: DiagnosisReport, found: list[Finding]) -> list[Finding]:
    out = []
    for name, loss in r.losses.items():
        if not isinstance(loss, losses_module.BinaryCrossentropy):
            continue
        t = r.data["targets"][name]
        if t["outside_01"] > 0:
            out.append(Finding(
                "bce_targets", "error",
                f"Binary cross-entropy on targets outside [0, 1] ({name!r})",
                f"Output {name!r} is trained with binary_crossentropy, but "
                f"{100 * t['outside_01']:.1f}% of its targets lie outside [0, 1] (range "
                f"{t['min']:.3g} to {t['max']:.3g}). The cross-entropy is then unbounded below "
                "and its minimum is not at the target.",
                "Use mean squared error for a regression target, or rescale/binarize the "
                "targets to [0, 1].",
                {"output": name, "fraction_outside": t["outside_01"], "min": t["min"],
                 "max": t["max"]}))
    return out


def check_input_scale(r: DiagnosisReport, found: list[Finding]) -> list[Finding]:
    features = []
    for name, st in r.data["inputs"].items():
        for j, (m, s) in enumerate(zip(st["mean"], st["std"])):
            if np.isfinite(m) and np.isfinite(s):
                features.append((f"{name}[{j}]", float(m), float(s), math.hypot(m, s)))
    scaled = [f for f in features if f[3] > 0]
    if not scaled:
        return []
    largest = max(scaled, key=lambda f: f[3])
    smallest = min(scaled, key=lambda f: f[3])
    ratio = largest[3] / smallest[3]
    biggest = max(max(abs(f[1]), f[2]) for f in scaled)
    if ratio <= r.thresholds["input_scale_ratio"] and biggest <= r.thresholds["input_scale_max"]:
        return []
    stds = [f[2] for f in scaled]
    means = [abs(f[1]) for f in scaled]
    return [Finding(
        "input_scale", "warning", "Inputs on very different scales",
        f"Per-feature scale sqrt(mean² + std²) ranges from {smallest[3]:.3g} ({smallest[0]}) "
        f"to {largest[3]:.3g} ({largest[0]}), a ratio of {ratio:.0f}; std from "
        f"{min(stds):.3g} to {max(stds):.3g}, |mean| up to {max(means):.3g}. Large features "
        "saturate the gates they feed; small ones are drowned out.",
        "Standardize each feature with training-set statistics: x = (x - mean) / std, per "
        "input and feature (mean and std over samples and time steps).",
        {"ratio": ratio, "largest": largest[0], "largest_scale": largest[3],
         "smallest": smallest[0], "smallest_scale": smallest[3], "max_abs_mean": max(means),
         "std_range": [min(stds), max(stds)]},
        remedy=STANDARDIZE_INPUTS)]


def check_constant_inputs(r: DiagnosisReport, found: list[Finding]) -> list[Finding]:
    constant = {}
    for name, st in r.data["inputs"].items():
        std = np.asarray(st["std"])
        flat = [j for j, v in enumerate(std) if np.isfinite(v) and v == 0]
        if flat:
            constant[name] = flat
    if not constant:
        return []
    total = sum(len(st["std"]) for st in r.data["inputs"].values())
    count = sum(len(v) for v in constant.values())
    everything = count == total
    listed = "; ".join(f"{name!r}: {len(v)} of {len(r.data['inputs'][name]['std'])} "
                       f"(features {', '.join(map(str, v[:8]))}{', ...' if len(v) > 8 else ''})"
                       for name, v in constant.items())
    text = (f"Input features with the same value on every sample and step (std 0): {listed}. "
            "They carry no information, and the weights that read them get a gradient only "
            "through that constant.")
    if everything:
        text += (" That is every feature of every input: the model sees the same sequence for "
                 "every sample and can only learn a constant prediction.")
    return [Finding(
        "constant_inputs", "error" if everything else "warning",
        "Inputs that never change" if everything else "Input features that never change",
        text,
        "Check the preprocessing (a scaler fitted on other data, an integer division, a "
        "mask or a fill that zeroes the values, the wrong column); drop features that are "
        "constant by design.",
        {"constant": constant, "all": everything},
        why_not_tried="the data the inputs should hold is not known")]


def check_target_scale(r: DiagnosisReport, found: list[Finding]) -> list[Finding]:
    out = []
    limit = r.thresholds["target_scale_max"]
    for name, loss in r.losses.items():
        t = r.data["targets"].get(name)
        if (t is None or not isinstance(loss, losses_module.MeanSquaredError)
                or name not in r.active_outputs):
            continue
        scale = max(t["max_abs_mean"], t["max_std"])
        if not np.isfinite(scale) or scale <= limit:
            continue
        k = r.output_names.index(name)
        value = r.static["output_losses"][k] if r.static is not None else None
        text = (f"The targets of {name!r} (mean squared error) have |mean| up to "
                f"{t['max_abs_mean']:.3g} and std up to {t['max_std']:.3g}; a freshly "
                "initialized output starts near 0")
        if value is not None:
            text += f", so its loss on the batch is {value:.3g}"
        text += ". Its gradient is as large, and it dominates whatever weights it shares"
        lr, optimizer = r.setup.get("learning_rate"), r.setup.get("optimizer_name", "")
        if (str(optimizer).lower() in ("adam", "adamw", "rmsprop", "adamax", "nadam")
                and isinstance(lr, (int, float)) and lr > 0):
            text += (f"; and {optimizer} moves each weight by about its learning rate ({lr:g}) "
                     f"per step, so the output's bias needs ~{scale / lr:.0f} steps to reach "
                     "the targets' scale")
        text += "."
        out.append(Finding(
            "target_scale", "warning", f"Regression targets on a large scale ({name!r})", text,
            f"Standardize the targets: y' = (y - mean) / std with the training data's mean "
            f"and std, train on y', and predict y = prediction · std + mean.",
            {"output": name, "scale": scale, "max_abs_mean": t["max_abs_mean"],
             "max_std": t["max_std"], "batch_loss": value},
            remedy=Remedy(f"standardize-targets:{name}",
                          f"the targets of {name!r} standardized (predictions mapped back)",
                          outputs=[name], standardize_targets=[name])))
    return out


def check_mse_on_sigmoid(r: DiagnosisReport, found: list[Finding]) -> list[Finding]:
    out = []
    for name in r.sigmoid_heads:
        if (not isinstance(r.losses.get(name), losses_module.MeanSquaredError)
                or name not in r.active_outputs):
            continue
        assert r.static is not None                 # sigmoid_heads come from it
        p = sigmoid(r.static["head_logits"][name].astype(np.float64))
        attenuation = float(np.mean(p * (1 - p)))
        out.append(Finding(
            "mse_on_sigmoid", "warning", f"Mean squared error on sigmoid head {name!r}",
            f"{name!r} outputs a probability but is trained with MSE: its gradient with "
            f"respect to the logit is 2(p - t)·p(1 - p), with p(1 - p) = {attenuation:.3f} on "
            "average on this batch (at most 0.25), falling to 0 as the head saturates, even "
            "on wrong answers.",
            "Use binary_crossentropy for this output (mlstm and Keras compute it from the "
            "logits of a sigmoid head), e.g. loss=['mse', 'binary_crossentropy'].",
            {"output": name, "mean_p_1_minus_p": attenuation},
            remedy=Remedy(f"bce:{name}", f"loss {name!r}: binary_crossentropy", outputs=[name],
                          losses={name: losses_module.BinaryCrossentropy()})))
    return out
