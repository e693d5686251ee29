"""The report as text: what ``str(report)`` prints.

Sections in order: the setup, the gradient table (each output's gradient norm per layer and
its share), sample coverage, gradient through time, saturation, updates, the loss before and
after the training run, the suggested loss weights, the causes ranked (with what follows
from each and whether its fix was verified), and the findings in full.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from .findings import Finding, ReportFields, indent, run_or_static, where

if TYPE_CHECKING:
    from .loss_weights import LossWeightSuggestion

__all__ = ["format_report", "causes_lines"]


class _Printed(ReportFields, Protocol):
    """A report as the text reads it: its fields and the loss weights it suggests."""

    loss_weight_suggestion: LossWeightSuggestion | None


def causes_lines(r: ReportFields) -> list[str]:
    """The causes, most likely first: each with what follows from it and whether its fix was
    verified by retraining (nothing when there is at most one finding and no fix tried)."""
    roots = [f for f in r.findings if f.caused_by is None]
    if not roots or (len(r.findings) == 1 and r.findings[0].verification is None):
        return []
    lines = ["Causes, most likely first (what follows from each; the fix tried):"]
    for k, f in enumerate(roots, 1):
        lines.append(f"  {k}. [{f.severity}] {f.title} ({f.code})")
        chains = _chains(r, f)
        if chains:
            lines.append("       explains: " + "; ".join(" -> ".join(c) for c in chains))
        if f.verification is not None:
            lines.append("       " + ("verified" if f.verification["verified"] else
                                      "not verified") + f": {f.verification['change']}"
                         + _loss_change(f.verification))
        elif f.remedy is None:
            lines.append("       advice not verified: " + (f.why_not_tried or
                                                          "no single change to retrain with"))
    lines.append("")
    return lines


def _label(f: Finding) -> str:
    where = f.measured.get("lstm") or f.measured.get("output") or f.measured.get("layer")
    return f.code + (f" ({where})" if where else "")


def _chains(r: ReportFields, cause: Finding) -> list[list[str]]:
    """The findings that follow from ``cause``, as chains ``[effect, effect of effect]``."""
    out: list[list[str]] = []
    for effect in r.findings:
        if effect.cause is cause:
            deeper = _chains(r, effect)
            out += [[_label(effect)] + c for c in deeper] if deeper else [[_label(effect)]]
    return out


def _loss_change(v: dict[str, Any]) -> str:
    parts = [f"{o} {d['before']:.4g} -> {d['after']:.4g}"
             for o, d in v.get("outputs", {}).items() if d["targeted"]]
    return f" ({', '.join(parts)}, {v['on']})" if parts else ""


def format_report(r: _Printed) -> str:
    """The report as text (what ``str(report)`` returns)."""
    s = r.summary
    steps = s.get("steps", 0)
    lines = [f"Diagnosis of model {r.model_name!r}",
             f"  loss:      {r.setup['loss']}",
             f"  optimizer: {r.setup['optimizer']}"]
    if r.static is None:
        lines += ["", "Stopped before measuring gradients: mlstm refuses this data:",
                  indent(r.stopped or "", "  "), ""]
        lines += causes_lines(r)
        lines += [f"Findings ({len(r.findings)}):"] + [indent(str(f), "  ") for f in r.findings]
        return "\n".join(lines)
    lines += [f"  measured on a batch of {r.static['batch_size']} samples at the current "
              "weights" + (f", then over {steps} training steps of a copy" if r.run else ""),
              ""]
    lines += _gradient_table(r)
    lines += ["", "Sample coverage (samples of the batch that each output's loss gradient "
              "reaches):"]
    for o, cov in s["coverage"].items():
        run = s.get("run_coverage", {}).get(o)
        extra = f"; {100 * run:.1f}% of each batch on average over training" if run is not None \
            else ""
        lines.append(f"  {o}: {cov['reached']} of {cov['batch']}{extra}")
    if s["through_time"]:
        lines += ["", "Gradient through time, |dL/dh| at the first step / at the last step "
                  "(in the order each layer or direction runs):"]
        reversed_ = r.static.get("through_time_reversed", {}) if r.static else {}
        for lstm, tt in s["through_time"].items():
            order = " (runs from the last time step to the first)" if reversed_.get(lstm) else ""
            text = (f"  {lstm}{order}: {tt['ratio']:.2g} ({tt['steps']} steps) at the current "
                    "weights")
            after = s.get("through_time_after", {}).get(lstm)
            if after is not None:
                text += f", {after['ratio']:.2g} after training"
            lines.append(text)
    lines += ["", "Saturation (fraction of pre-activations beyond ±5; before -> after training):"]
    for lstm, gates in s["gate_saturation"].items():
        after = s.get("gate_saturation_after", {}).get(lstm)
        cells = [f"{g} {v:.2f}" + ("" if after is None else f"->{after[g]:.2f}")
                 for g, v in gates.items()]
        lines.append(f"  LSTM {lstm} gates: " + "  ".join(cells))
    for head, v in s["head_saturation"].items():
        after = s.get("head_saturation_after", {}).get(head)
        lines.append(f"  sigmoid head {head}: {v:.2f}" + ("" if after is None
                                                          else f" -> {after:.2f}"))
    if s.get("updates"):
        lines += ["", f"Updates (median per step over {steps} steps; |Δθ|/|θ| near 1e-3 is "
                  "healthy):"]
        pw = max(len(p) for p in s["updates"])
        for p, u in s["updates"].items():
            lines.append(f"  {p.ljust(pw)}  |Δθ|/|θ| {u['median_ratio']:8.1e}   |Δθ| "
                         f"{u['median_update']:8.1e}   |θ| at start {u['weight_norm_start']:.3g}")
    if r.run:
        lines += ["", f"Loss on all {_n_samples(r)} samples, before -> after the {steps} steps "
                  "(per output: unweighted):"]
        for key, before in s["loss_before"].items():
            after = s["loss_after"].get(key, float("nan"))
            lines.append(f"  {key}: {before:.4f} -> {after:.4f}")
    if s.get("dropout"):
        lines += [""] + dropout_lines(s["dropout"])
    if r.loss_weight_suggestion is not None:
        lines += [""] + r.loss_weight_suggestion.lines()
    lines.append("")
    lines += causes_lines(r)
    if r.findings:
        lines.append(f"Findings ({len(r.findings)}):")
        for f in r.findings:
            lines.append(indent(str(f), "  "))
    else:
        lines.append("Findings: none. Nothing measured here explains a model that does not "
                     "learn.")
    return "\n".join(lines)


def _gradient_table(r: ReportFields) -> list[str]:
    """Rows: layers; columns: each output's gradient norm and its share of the layer's."""
    s = r.summary
    outs = [o for o in r.output_names if o in r.loss_outputs]
    width = max([len(l) for l in s["gradient_norm"]] + [5])
    lines = ["Gradient norm per layer and output (share of the layer's sum), on the batch:",
             "  " + "layer".ljust(width) + "".join(o.rjust(20) for o in outs)]
    for layer, by_out in s["gradient_norm"].items():
        cells = []
        for o in outs:
            share = s["gradient_share"][layer].get(o)
            cells.append((f"{by_out.get(o, 0.0):.3g}" + ("" if share is None
                                                          else f" ({100 * share:3.0f}%)")
                          ).rjust(20))
        shared = "   shared" if layer in s["shared_layers"] else ""
        lines.append("  " + layer.ljust(width) + "".join(cells) + shared)
    if s["shared_layers"]:
        share = run_or_static(r, "run_shared_share", "shared_share")
        lines.append(f"  shared weights, each output's share of the gradient norm "
                     f"({where(r, 'run_shared_share')}): "
                     + ", ".join(f"{o} {100 * v:.1f}%" for o, v in share.items()
                                 if v is not None))
        cos = run_or_static(r, "run_shared_cosine", "shared_cosine")
        if cos:
            lines.append(f"  cosine between outputs' gradients on the shared weights "
                         f"({where(r, 'run_shared_cosine')}): "
                         + ", ".join(f"{p.replace('|', ' vs ')} {v:+.2f}"
                                     for p, v in cos.items() if v is not None))
    return lines


def _n_samples(r: ReportFields) -> int:
    return next(iter(r.data["targets"].values()))["samples"]


def dropout_lines(d: dict[str, Any]) -> list[str]:
    """What changes with every dropout rate at 0 (:mod:`mlstm.diagnostics.dropout`)."""
    rates = ", ".join(f"{name}={rate:g}" for name, rate in d["rates"].items())
    lines = [f"Dropout ({rates}): measured with masks, as training draws them, and again on a "
             "copy with every rate at 0:"]
    for key, words in (("train_loss", "loss on the training samples"),
                       ("validation_loss", "loss on the validation data")):
        v = d[key]
        if v["rates"] is not None and v["zero"] is not None:
            lines.append(f"  {words} after {d['steps']} steps: {v['rates']:.4g} at the model's "
                         f"rates, {v['zero']:.4g} at rate 0")
    if d.get("constant_prediction") is not None and d["train_loss"]["rates"] is not None:
        lines.append(f"  (predicting the targets' mean: {d['constant_prediction']:.4g})")
    shares = d["shared_share"]
    if len(shares.get("rates", {})) > 1:
        for key, words in (("rates", "at the model's rates"), ("zero", "at rate 0")):
            parts = ", ".join(f"{o} {100 * v:.1f}%" for o, v in shares[key].items()
                              if v is not None)
            lines.append(f"  shares of the gradient on the shared weights {words}: {parts}")
    for key, words in (("only_at_zero", "found only at rate 0"),
                       ("only_at_rates", "found only at the model's rates")):
        if d.get(key):
            lines.append(f"  {words}: " + "; ".join(d[key]))
    return lines
