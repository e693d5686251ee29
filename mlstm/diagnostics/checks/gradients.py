"""Findings from where the gradient goes: samples a loss does not reach, parameters with no
gradient, one output dominating the shared weights, outputs in conflict, saturated heads and
gates, dead ReLU units, gradient vanishing through time.

Each check reads a :class:`~mlstm.diagnostics.report.DiagnosisReport` ``r`` and the findings
of earlier checks, and returns a list of :class:`~mlstm.diagnostics.findings.Finding`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ... import losses as losses_module
from ..findings import Finding, before_after, run_or_static, traced_steps, when, where
from ..remedies import Remedy
from .data import STANDARDIZE_INPUTS, input_scales

if TYPE_CHECKING:
    from ...losses import Loss
    from ..report import DiagnosisReport

__all__ = ["check_coverage", "check_no_gradient", "check_dominance", "check_conflict",
           "check_saturated_heads", "check_saturated_gates", "check_dead_relu",
           "check_vanishing", "standard_loss"]


def standard_loss(r: DiagnosisReport, name: str) -> str:
    """The built-in loss that fits output ``name``'s head: binary cross-entropy on a sigmoid,
    categorical cross-entropy on a softmax over several units, else mean squared error."""
    activation = r.head_activations.get(name)
    if activation == "sigmoid":
        return "binary_crossentropy"
    if activation == "softmax" and r.output_shapes[name][-1] > 1:
        return "categorical_crossentropy"
    return "mse"


def _built_in(loss: Loss | None) -> bool:
    return type(loss) in set(losses_module.LOSSES.classes())


def check_coverage(r: DiagnosisReport, found: list[Finding]) -> list[Finding]:
    out = []
    limit = r.thresholds["min_coverage"]
    run_cov = r.summary.get("run_coverage", {})
    for name, cov in r.summary["coverage"].items():
        if name not in r.active_outputs:        # at loss weight 0 its seed is 0 by design
            continue
        fraction = cov["fraction"]
        run_fraction = run_cov.get(name)
        worst = fraction if run_fraction is None else min(fraction, run_fraction)
        if worst >= limit:
            continue
        loss = r.losses[name]
        message = (f"The loss of output {name!r} sends gradient to only {cov['reached']} of "
                   f"{cov['batch']} samples of the batch ({100 * fraction:.0f}%)")
        if run_fraction is not None:
            message += (f"; over the {traced_steps(r)} training steps, {100 * run_fraction:.1f}% "
                        "of each batch on average")
        message += (". The other samples' predictions do not change the loss, so the weights "
                    "learn from a small part of the data and the error on the rest stays.")
        remedy = None
        if _built_in(loss):
            fix = ("Built-in losses reach every sample unless its entries are masked or its "
                   "gradient is exactly zero (a probability clipped at 0 or 1: use a sigmoid "
                   "head, whose binary cross-entropy is computed from the logits; a head whose "
                   "loss is a constant, see the other findings). Check the masks and the "
                   "targets of the samples not reached.")
        else:
            outputs = [o for o in r.output_names if r.losses[o] is not None]
            names = [standard_loss(r, o) for o in outputs]
            call = ("compile(loss=[" + ", ".join(repr(n) for n in names) + "], loss_weights=["
                    + ", ".join("w_" + o for o in outputs) + "])" if len(outputs) > 1 else
                    f"compile(loss={names[0]!r})")
            fix = ("Keras calls a loss once per output, with that output's y_true and y_pred "
                   "of shape (batch, ...): y_true[0] is the first *sample* of the batch, "
                   "not the first output. A custom loss must average over the batch, not "
                   f"index it. For one loss per output with weights, write {call}, with the "
                   "weights your loss applied inside.")
            remedy = Remedy("standard-losses", "one built-in loss per output: "
                            + ", ".join(f"{o} {n}" for o, n in zip(outputs, names)),
                            losses={o: losses_module.get(n) for o, n in zip(outputs, names)})
        out.append(Finding("low_sample_coverage", "error",
                           f"The loss of {name!r} reaches only part of each batch", message,
                           fix, {"output": name, "reached": cov["reached"],
                                 "batch": cov["batch"], "fraction": fraction,
                                 "run_mean_fraction": run_fraction}, remedy=remedy))
    return out


def check_no_gradient(r: DiagnosisReport, found: list[Finding]) -> list[Finding]:
    assert r.static is not None                     # a check on the batch's measurements
    total = r.static["total"]
    dead = []
    for name in r.trainable_names:
        if np.any(total[name] != 0):
            continue
        if r.trace is not None and len(r.trace):
            j = r.trace.param_names.index(name)
            if np.nanmax(r.trace.total_grad_norm[:, j]) > 0:
                continue
        dead.append(name)
    if not dead:
        return []
    traced = r.trace is not None and len(r.trace)
    when = "on the batch" + (f" and at all {traced_steps(r)} training steps" if traced else "")
    # parameters that only outputs switched off (no loss, or loss weight 0) depend on get no
    # gradient by the user's choice: named apart, and alone they are a warning
    active = set()
    for o in r.active_outputs:
        active |= {r.output_layers[o]} | r.upstream_of_layer.get(r.output_layers[o], set())
    idle = [p for p in dead if p.split("/", 1)[0] not in active]
    starved = [p for p in dead if p not in idle]
    parts = []
    if starved:
        parts.append(f"The gradient of {', '.join(starved)} is exactly zero {when}: no loss "
                     "gradient reaches them, so no optimizer can move them.")
    if idle:
        parts.append(f"{', '.join(idle)} serve only outputs switched off (no loss, or loss "
                     f"weight 0): their gradient is zero {when}.")
    return [Finding(
        "no_gradient", "error" if starved else "warning",
        "Parameters that receive no gradient", " ".join(parts),
        "If their output has no loss, give it one (no None for it in compile(loss=...)); "
        "remove layers whose output is not used; if what lies between them and the loss "
        "passes no gradient (a sigmoid saturated at exactly 0 or 1, a mask, a ReLU that is 0 "
        "on every sample, e.g. from a large negative bias), fix that (see the other findings; "
        "re-initialize a dead ReLU layer's bias at 0). Mark them trainable=False if they are "
        "meant to stay fixed.",
        {"parameters": dead, "switched_off_only": idle})]


def check_dominance(r: DiagnosisReport, found: list[Finding]) -> list[Finding]:
    shares = run_or_static(r, "run_shared_share", "shared_share")
    shares = {k: v for k, v in shares.items() if v is not None and np.isfinite(v)
              and k in r.active_outputs}
    if len(shares) < 2:
        return []
    top = max(shares, key=shares.__getitem__)
    if shares[top] < r.thresholds["dominant_share"]:
        return []
    others = {k: v for k, v in shares.items() if k != top}
    weakest = min(others, key=others.__getitem__)
    factor = shares[top] / others[weakest] if others[weakest] > 0 else float("inf")
    return [Finding(
        "dominant_output", "warning", f"Output {top!r} dominates the shared weights",
        f"On the weights all outputs share ({', '.join(r.summary['shared_layers'])}), "
        f"{top!r} provides {100 * shares[top]:.1f}% of the gradient norm "
        f"({where(r, 'run_shared_share')}); its gradient there is {factor:.0f}x that of "
        f"{weakest!r}. The shared layers learn almost only what {top!r} needs.",
        f"Rebalance the loss weights (raise {weakest!r}'s weight, roughly x{factor:.0f}, or "
        f"lower {top!r}'s{_suggested(r)}), and put the losses on comparable scales "
        "(standardize regression targets).",
        {"shares": shares, "dominant": top, "factor": factor}, remedy=_weights_remedy(r))]


def _weights_remedy(r: DiagnosisReport) -> Remedy | None:
    """Trying the suggested loss weights, aimed at the outputs whose weight they raise."""
    weights = r.suggested_loss_weights
    if not weights:
        return None
    raised = [o for o, w in weights.items() if w > r.loss_weights[o]]
    return Remedy("loss-weights", "loss_weights={" + ", ".join(f"{o!r}: {w:.3g}"
                                                              for o, w in weights.items()) + "}",
                  outputs=raised or None, loss_weights=weights)


def _suggested(r: DiagnosisReport) -> str:
    """``"; suggested above: loss_weights={...}"`` from the report's suggestion, or ""."""
    weights = r.suggested_loss_weights
    if not weights:
        return ""
    return ("; suggested above: loss_weights={"
            + ", ".join(f"{o!r}: {w:.3g}" for o, w in weights.items()) + "}")


def check_conflict(r: DiagnosisReport, found: list[Finding]) -> list[Finding]:
    cos = run_or_static(r, "run_shared_cosine", "shared_cosine")
    out = []
    for pair, value in cos.items():
        if value is None or not np.isfinite(value) or value >= r.thresholds["conflict_cosine"]:
            continue
        a, b = pair.split("|")
        if a not in r.active_outputs or b not in r.active_outputs:
            continue
        out.append(Finding(
            "conflicting_outputs", "warning",
            f"Outputs {a!r} and {b!r} pull the shared weights in opposite directions",
            f"Cosine between their gradients on the shared weights: {value:.2f} "
            f"({where(r, 'run_shared_cosine')}). What one output's gradient builds, the "
            "other's takes down, and their sum, which the optimizer follows, is smaller than "
            "either.",
            "Check that the targets mean what you think (signs, scaling, one derived from "
            "the other); give each head its own layers after the merge so they compete less; "
            "reweight the losses.",
            {"pair": [a, b], "cosine": value}))
    return out


def check_saturated_heads(r: DiagnosisReport, found: list[Finding]) -> list[Finding]:
    out = []
    limit = r.thresholds["saturated_fraction"]
    for name, (before, after) in before_after(r, "head_saturation").items():
        wrong = _wrong_side(r.static, name)
        assert wrong is not None            # the saturation is measured on sigmoid logits
        wrong_after = _wrong_side((r.run or {}).get("static"), name)
        # From the logits (binary cross-entropy on a sigmoid head) a confident right answer
        # is what training is for, and a wrong one still gets the gradient σ(x) - t: only
        # saturation on the wrong side counts. A loss on the probability loses its gradient
        # on either side.
        loss = r.losses.get(name)
        from_logits = getattr(loss, "logits_activation", None) == r.head_activations.get(name)
        if from_logits:
            worst = max(v for v in (wrong, wrong_after) if v is not None)
        else:
            worst = before if after is None else max(before, after)
        if worst <= limit or name not in r.active_outputs:
            continue
        during = after is not None and before <= limit < after
        large = max(input_scales(r).values(), default=float("nan"))
        remedy = None
        if during:
            fix = ("The head saturated during training (its logits grew): lower the learning "
                   "rate (see the learning-rate finding, if any); use binary_crossentropy, "
                   "computed from the logits, whose gradient σ(x) - t does not vanish on "
                   "wrong answers.")
        elif large > r.thresholds["input_scale_max"]:
            fix = (f"Standardize the inputs (features reach a scale of {large:.3g}); use "
                   "binary_crossentropy, computed from the logits, whose gradient σ(x) - t "
                   "does not vanish on wrong answers.")
            remedy = STANDARDIZE_INPUTS
        else:
            fix = (f"The inputs are on a unit scale (largest feature {large:.3g}), so the "
                   "head's weights or bias are large: re-initialize the head; use "
                   "binary_crossentropy, computed from the logits, whose gradient σ(x) - t "
                   "does not vanish on wrong answers.")
        out.append(Finding(
            "saturated_head", "warning", f"Sigmoid head {name!r} is saturated",
            f"Fraction of the logits of {name!r} beyond ±5 (where σ' < 0.007): "
            f"{when(before, after, r.summary.get('steps'), lambda v: f'{100 * v:.0f}%')}; "
            f"saturated on the wrong side: {100 * wrong:.0f}% of the batch"
            + ("" if wrong_after is None else f", {100 * wrong_after:.0f}% after training")
            + ". " + ("Its loss is computed from the logits, so a wrong answer still gets a "
                      "gradient, but one this confident takes many steps to turn." if from_logits
                      else "A loss on the probability (MSE, clipped cross-entropy) passes "
                      "almost no gradient there."),
            fix, {"output": name, "fraction": before, "fraction_after": after,
                  "wrong_side_fraction": wrong, "wrong_side_fraction_after": wrong_after},
            remedy=remedy))
    return out


def _wrong_side(static: dict[str, Any] | None, name: str) -> float | None:
    """Fraction of the batch whose logit is beyond ±5 on the side of the wrong class."""
    if static is None or static["head_logits"].get(name) is None:
        return None
    logits, t = static["head_logits"][name], static["head_targets"][name]
    return float(np.mean((np.abs(logits) > 5) & ((logits > 0) != (t > 0.5))))


def check_saturated_gates(r: DiagnosisReport, found: list[Finding]) -> list[Finding]:
    out = []
    limit = r.thresholds["saturated_fraction"]
    names = {"i": "input", "f": "forget", "c": "cell", "o": "output"}
    for lstm, (before, after) in before_after(r, "gate_saturation").items():
        def worst(g: str) -> float:
            values = [v for v in (before[g], None if after is None else after[g])
                      if v is not None and np.isfinite(v)]
            return max(values) if values else float("nan")

        if not any(worst(g) > limit for g in before):
            continue

        def listed(gates: dict[str, float]) -> str:
            return ", ".join(f"{names[g]} {100 * v:.0f}%" for g, v in gates.items()
                             if np.isfinite(v))

        text = f"{listed(before)} at the current weights"
        if after is not None:
            text += f"; {listed(after)} after {r.summary.get('steps')} training steps"
        at_start = max((v for v in before.values() if np.isfinite(v)), default=0.0)
        reads = input_scales(r, r.layer_inputs.get(lstm))
        large = max(reads.values(), default=float("nan"))
        remedy = None
        if at_start <= limit:
            fix = ("The gates saturated during training, as their weights grew: lower the "
                   "learning rate (see the learning-rate finding, if any) or clip the "
                   "gradients; the inputs are not the cause (they were unsaturated at the "
                   f"start; largest feature scale {large:.3g}).")
        elif large > r.thresholds["input_scale_max"]:
            fix = (f"Standardize the inputs {lstm!r} reads ({', '.join(reads)}: features reach "
                   f"a scale of {large:.3g}) per feature: subtract the mean, divide by the "
                   "std, with training statistics.")
            remedy = STANDARDIZE_INPUTS
        else:
            fix = (f"The inputs {lstm!r} reads are on a unit scale (largest feature "
                   f"{large:.3g}), so its weights are large: keep the default glorot_uniform "
                   "kernel and orthogonal recurrent_kernel initializers, or re-initialize.")
        out.append(Finding(
            "saturated_gates", "warning", f"LSTM {lstm!r} has saturated gates",
            f"Fraction of gate pre-activations beyond ±5 in {lstm!r}: {text}. A saturated "
            "gate passes almost no gradient (σ'(5) = 0.007), so these units barely learn.",
            fix, {"lstm": lstm, "fractions": before, "fractions_after": after,
                  "input_scale": large}, remedy=remedy))
    return out


def check_dead_relu(r: DiagnosisReport, found: list[Finding]) -> list[Finding]:
    out = []
    limit = r.thresholds["dead_unit_fraction"]
    after_all = r.summary.get("dead_units_after", {})
    for layer, d in r.summary.get("dead_units", {}).items():
        before = len(d["dead"]) / d["units"]
        a = after_all.get(layer)
        after = None if a is None else len(a["dead"]) / a["units"]
        if max(before, after or 0.0) <= limit:
            continue
        text = (f"{len(d['dead'])} of {d['units']} units of {layer!r} output 0 for every "
                f"sample and step of the batch at the current weights")
        if a is not None:
            text += f", {len(a['dead'])} after {r.summary.get('steps')} training steps"
        text += (". A ReLU at 0 passes no gradient, so a dead unit's weights never change "
                 "and it stays dead; the layer works with the units left.")
        remedy = None
        bias = d.get("dead_bias")
        if before > limit:
            if bias is not None and bias < 0:
                text += f" The dead units' median bias is {bias:.3g}."
                fix = ("Re-initialize the layer's bias at 0 (the default 'zeros'), or the dead "
                       "units' entries of it; standardize the inputs; lower the learning rate "
                       "if they died in earlier training.")
                remedy = Remedy(f"relu-bias:{layer}", f"the bias of {layer!r}'s "
                                f"{len(d['dead'])} dead units set to 0",
                                zero_biases={f"{layer}/bias": d["dead"]})
            else:
                fix = ("Re-initialize the layer (glorot_uniform kernel, zeros bias) and "
                       "standardize its inputs; lower the learning rate if they died in "
                       "earlier training.")
        else:
            fix = ("The units died during training: lower the learning rate (see the "
                   "learning-rate finding, if any), or clip the gradients.")
        out.append(Finding(
            "dead_relu", "warning", f"Dead ReLU units in {layer!r}", text, fix,
            {"layer": layer, "fraction": before, "fraction_after": after,
             "dead": d["dead"], "units": d["units"], "dead_bias": bias}, remedy=remedy))
    return out


def _horizon(norms: Any, level: float = 1e-3) -> int:
    """Steps, counted back from the last, over which |dL/dh| stays above ``level`` times its
    value at the last step."""
    norms = np.asarray(norms, dtype=np.float64)
    if norms.size == 0 or not norms[-1] > 0:
        return 0
    above = norms / norms[-1] >= level
    return int(np.argmin(above[::-1])) if not above.all() else int(norms.size)


def check_vanishing(r: DiagnosisReport, found: list[Finding]) -> list[Finding]:
    assert r.static is not None                     # a check on the batch's measurements
    out = []
    after_all = r.summary.get("through_time_after", {})
    for lstm, tt in r.summary["through_time"].items():
        after = after_all.get(lstm)
        ratios = [x["ratio"] for x in (tt, after) if x is not None and np.isfinite(x["ratio"])]
        if not ratios or max(ratios) >= r.thresholds["vanishing_ratio"]:
            continue
        text = when(tt["ratio"], None if after is None else after["ratio"],
                     r.summary.get("steps"), lambda v: f"{v:.1e}")
        horizons = [_horizon(st["through_time_total"][lstm]) for st in
                    (r.static, (r.run or {}).get("static")) if st is not None
                    and lstm in st["through_time_total"]]
        horizon = max(horizons) if horizons else 0
        gates = [f for f in found if f.code == "saturated_gates"
                 and f.measured["lstm"] == lstm.split(" ")[0]]
        backwards = r.static.get("through_time_reversed", {}).get(lstm, False)
        order = (" (it runs from the last time step to the first, so its last steps are the "
                 "sequence's first)" if backwards else "")
        if gates:
            fix = (f"Unsaturate the gates of {lstm!r} first (see saturated_gates): a saturated "
                   "gate passes almost no gradient back to the step before.")
        else:
            fix = (f"{lstm!r} learns from about its last {horizon} of {tt['steps']} steps"
                   f"{order} (|dL/dh| above 1e-3 of its value at the last step). If what the "
                   "target "
                   "needs lies earlier: put a loss on every step (return_sequences=True with a "
                   "per-step target), feed a summary of the early steps as extra features, or "
                   "use a coarser time step if the series is not subsampled already. If it "
                   f"does not, feeding only the last ~{max(horizon, 1)} steps trains faster. "
                   "Keep unit_forget_bias=True (the default).")
        out.append(Finding(
            "vanishing_gradient", "warning", f"Gradient vanishes through time in {lstm!r}",
            f"|dL/dh| at the first of {tt['steps']} steps over its value at the last step: "
            f"{text}. What happens early in the sequence barely changes the weights.",
            fix, {"lstm": lstm, "reversed": backwards, "ratio": tt["ratio"],
                  "ratio_after": None if after is None else after["ratio"],
                  "steps": tt["steps"], "horizon": horizon}))
    return out
