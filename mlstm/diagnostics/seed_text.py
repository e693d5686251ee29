"""The seed scenario's text: the three setups side by side, and what the figures say.

:func:`format_side_by_side` is a table with one column per setup and one row per measured
figure; :func:`explain_seed_results` puts the figures into words (built from what was
measured, not canned); :func:`format_findings` lists every finding in full. The runs come
from :func:`mlstm.diagnostics.seed.run_seed_scenario`.
"""
from __future__ import annotations

import argparse
import textwrap
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from .seed import SCENARIO

if TYPE_CHECKING:
    from .findings import Finding
    from .report import DiagnosisReport

__all__ = ["format_side_by_side", "explain_seed_results", "format_findings", "format_example3"]


def format_side_by_side(results: dict[str, dict[str, Any]],
                        args: argparse.Namespace | None = None) -> str:
    """The seed scenario's table: one column per setup, one row per measured figure."""
    names = list(results)
    reports = {n: results[n]["report"] for n in names}
    first = reports[names[0]]
    outs = first.loss_outputs
    label_w, col_w = 38, 22
    rows: list[str] = []

    def row(label: str, cells: Iterable[object]) -> None:
        rows.append(label.ljust(label_w) + "".join(str(c).rjust(col_w) for c in cells))

    steps = first.summary.get("steps", 0)
    epochs = getattr(args, "epochs", None)
    head = _wrap(
        f"The seed article's model on built-in data: two inputs (T={SCENARIO['timesteps']}, "
        f"8 features each), an LSTM({SCENARIO['units']}) on each, concatenated; out1 = "
        "Dense(1) linear (regression target), out2 = Dense(1, sigmoid) (binary target). "
        f"Batches of {first.static['batch_size']}, {first.setup['optimizer'].split(',')[0]}), "
        f"{steps} steps" + (f" ({epochs} epochs)" if epochs else "")
        + ", the same data and initial weights for every setup.")
    row("", [results[n]["label"] for n in names])
    row("loss per output (as Keras applies it)", [_short_loss(reports[n]) for n in names])
    row("inputs", [results[n]["inputs"] for n in names])
    rows.append("")
    rows.append("samples of each batch the loss gradient reaches (first batch; mean in training)")
    for o in outs:
        row(f"  {o}", [_coverage_cell(reports[n], o) for n in names])
    rows.append("each output's share of the gradient norm on the shared LSTM weights "
                "(median over training)")
    for o in outs:
        row(f"  {o}", [_pct(reports[n].summary.get("run_shared_share", {}).get(o, float("nan")))
                       for n in names])
    row("cosine(out1, out2) on shared weights",
        [f"{_first_cosine(reports[n]):+.2f}" for n in names])
    row("|Δθ|/|θ| per step, LSTM kernels", [f"{_lstm_ratio(reports[n]):.1e}"
                                                     for n in names])
    row("|dL/dh| step 1 / step T, at the end",
        [f"{_through_time_after(reports[n]):.2g}" for n in names])
    row("saturation gates / head, at the end", [_saturation_cell(reports[n]) for n in names])
    rows.append("")
    rows.append(f"on {SCENARIO['val_samples']} validation samples after training")
    variance = results[names[0]]["metrics"]["out1_target_variance"]
    row(f"  out1 MSE (target variance {variance:.2f})",
        [f"{results[n]['metrics']['out1_mse']:.3f}" for n in names])
    row("  out2 accuracy (chance 0.5)", [f"{results[n]['metrics']['out2_accuracy']:.3f}"
                                        for n in names])
    row("  out2 binary cross-entropy", [f"{results[n]['metrics']['out2_bce']:.3f}"
                                       for n in names])
    rows.append("")
    rows.append("findings (causes first; errors before warnings)")
    width = max(len(reports[n].findings) for n in names)
    for k in range(max(width, 1)):
        cells = []
        for n in names:
            fs = reports[n].findings
            if k < len(fs):
                cells.append(f"{'!' if fs[k].severity == 'error' else '~'} {fs[k].code}")
            else:
                cells.append("none" if k == 0 else "")
        row("", cells)
    rows.append("  (! error, ~ warning; in full below)")
    return "\n".join(head + rows)


def _short_loss(report: DiagnosisReport) -> str:
    names = {"mean_squared_error": "mse", "binary_crossentropy": "bce"}
    parts = []
    for o in report.loss_outputs:
        loss = report.losses[o]
        assert loss is not None             # loss_outputs have one
        label = names.get(loss.name, loss.name)
        parts.append(label)
    weights = report.setup["loss"]
    if "custom" in weights:
        return "custom, custom"
    w = [p.split(" * ")[0] for p in weights.split(" + ")]
    if all(x == "1" for x in w):
        return ", ".join(parts)
    return ", ".join(f"{a}·{b}" for a, b in zip(w, parts))


def _coverage_cell(report: DiagnosisReport, output: str) -> str:
    cov = report.summary["coverage"][output]
    run = report.summary.get("run_coverage", {}).get(output)
    text = f"{cov['reached']}/{cov['batch']}"
    if run is not None:
        text += f" ({_pct(run)})"
    return text


def _first_cosine(report: DiagnosisReport) -> float:
    cosines = report.summary.get("run_shared_cosine") or report.summary["shared_cosine"]
    value = next(iter(cosines.values()), None)
    return float("nan") if value is None else value


def _lstm_ratio(report: DiagnosisReport) -> float:
    ups = report.summary.get("updates", {})
    values = [u["median_ratio"] for p, u in ups.items() if p.endswith("/kernel")
              and p.split("/")[0] in {t.split(" ")[0] for t in report.summary["through_time"]}]
    return float(np.median(values)) if values else float("nan")


def _through_time_after(report: DiagnosisReport) -> float:
    tt = report.summary.get("through_time_after") or report.summary["through_time"]
    values = [t["ratio"] for t in tt.values()]
    return float(np.min(values)) if values else float("nan")


def _saturation_cell(report: DiagnosisReport) -> str:
    gates = report.summary.get("gate_saturation_after") or report.summary["gate_saturation"]
    heads = report.summary.get("head_saturation_after") or report.summary["head_saturation"]
    g = max((v for d in gates.values() for v in d.values() if np.isfinite(v)), default=0.0)
    h = max(heads.values(), default=0.0)
    return f"{_pct(g)} / {_pct(h)}"


def explain_seed_results(results: dict[str, dict[str, Any]]) -> str:
    """Plain words on what the three runs measured, built from the figures (not canned)."""
    lines = ["What the measurements say", "-------------------------"]
    ex1, ex2, sound = (results.get(k) for k in ("example1", "example2", "sound"))
    if ex2 is not None:
        rep = ex2["report"]
        m2 = ex2["metrics"]
        coverage = [f for f in rep.findings if f.code == "low_sample_coverage"]
        if coverage:
            reached = " and ".join(
                f"{_pct(f.measured['run_mean_fraction'])} of the samples for "
                f"{f.measured['output']}" if f.measured.get("run_mean_fraction") is not None
                else f"{f.measured['reached']} of {f.measured['batch']} samples for "
                f"{f.measured['output']}" for f in coverage)
            lines += _wrap(
                "Why Example 2 barely learns: Keras applies a loss given once to *each output "
                "separately*, with that output's y_true and y_pred of shape (batch, 1). Inside "
                "the seed's custom_loss, y_true[0] / y_pred[0] are therefore the first *sample* "
                "of the batch and y_true[1] / y_pred[1] the second, not the two outputs. "
                f"Measured over training: the loss gradient reaches {reached}; the "
                "others get exactly zero gradient, so every step learns from at most 2 "
                "samples of the batch of 32.")
            lin = [f for f in coverage if f.measured["output"] == "out1"]
            if lin and (lin[0].measured.get("run_mean_fraction") or 1) < 2 / 32 - 1e-9:
                lines += _wrap(
                    "out1 gets even less than 2 samples: its second term is a clipped binary "
                    "cross-entropy of a *linear* prediction, whose gradient is zero whenever "
                    "that prediction falls outside (0, 1).")
            text = (f"After training, out1's validation MSE is {m2['out1_mse']:.3f} against a "
                    f"target variance of {m2['out1_target_variance']:.3f} (predicting the mean "
                    f"would score the variance), and out2's accuracy is "
                    f"{m2['out2_accuracy']:.3f} (chance is 0.5).")
            if sound is not None:
                ms = sound["metrics"]
                text += (f" The sound setup reaches {ms['out1_mse']:.3f} and "
                         f"{ms['out2_accuracy']:.3f} from the same weights and data.")
            lines += _wrap(text)
            lines += _verification(coverage[0], "The fix, tried")
        else:
            lines += _wrap("Example 2's loss reaches every sample in this run; no coverage "
                           "problem was measured.")
    if ex1 is not None and sound is not None:
        m1, ms = ex1["metrics"], sound["metrics"]
        close = (abs(m1["out1_mse"] - ms["out1_mse"]) <= 0.15 * ms["out1_mse"]
                 and abs(m1["out2_accuracy"] - ms["out2_accuracy"]) <= 0.03)
        codes = ex1["report"].codes
        verdict = ("learns about as well as the sound setup" if close
                   else "learns less well than the sound setup")
        text = (f"Example 1 (loss='mse' on both heads), which the article calls incorrect, "
                f"{verdict}: out1 MSE {m1['out1_mse']:.3f} vs {ms['out1_mse']:.3f}, out2 "
                f"accuracy {m1['out2_accuracy']:.3f} vs {ms['out2_accuracy']:.3f}.")
        if "mse_on_sigmoid" in codes:
            text += (" MSE on the sigmoid head is flagged: its gradient carries a factor "
                     "p(1 - p) <= 0.25 and vanishes when the head saturates; binary "
                     "cross-entropy from the logits is the better loss there")
            tried = [f.verification for f in ex1["report"].findings
                     if f.code == "mse_on_sigmoid" and f.verification is not None]
            verified = bool(tried) and tried[0]["verified"]
            text += (" (trying it, below, lowers out2's loss further)." if verified else
                     ", but it is not what stops a model from learning." if close else ".")
        others = [c for c in codes if c != "mse_on_sigmoid"]
        if others:
            text += f" Other findings for Example 1: {', '.join(others)}."
        lines += _wrap(text)
        mse = [f for f in ex1["report"].findings if f.code == "mse_on_sigmoid"]
        if mse:
            lines += _verification(mse[0], "Binary cross-entropy for out2, tried")
    if sound is not None:
        codes = sound["report"].codes
        lines += _wrap("The sound setup (one loss per output: MSE and binary cross-entropy from "
                       "the logits, loss_weights [0.7, 0.3], standardized inputs) raises "
                       + ("no finding." if not codes else f"these findings: {', '.join(codes)}."))
    fix = ("The fix for the seed's model: compile(optimizer='adam', "
           "loss=['mse', 'binary_crossentropy'], loss_weights=[0.7, 0.3])")
    if any("input_scale" in r["report"].codes for r in results.values()):
        fix += ", and standardize each input feature, (x - mean) / std with training statistics"
    lines += _wrap(fix + ".")
    return "\n".join(lines)


def _verification(finding: Finding, lead: str) -> list[str]:
    """A paragraph on the fix tried for ``finding`` (nothing when it was not tried)."""
    v = finding.verification
    if v is None or "outputs" not in v:
        return []
    parts = [f"{o}'s {d['loss']} {d['before']:.3f} -> {d['after']:.3f}"
             for o, d in v["outputs"].items()]
    return _wrap(f"{lead} (retrained from the same weights for {v['steps']} steps with "
                 f"{v['change']}): {'; '.join(parts)} on the {v['on']}, "
                 + ("verified." if v["verified"] else "not verified: " + v["words"].split(
                     "(", 1)[1].split(")", 1)[0] + "."))


def format_example3(results: dict[str, dict[str, Any]]) -> str:
    """Example 3 next to its sound version: coverage, validation MSE, findings."""
    names = list(results)
    label_w, col_w = 40, 30
    rows = _wrap("The seed's Example 3: the model of Examples 1 and 2 with out2 = "
                 "Reshape((2, 2))(Dense(4)(merged)), four regression targets per sample; "
                 "the seed's custom loss 0.6·mean((y_true[0] - y_pred[0])²) + "
                 "0.4·mean((y_true[1] - y_pred[1])²) given once, against one MSE per "
                 "output. Same data and initial weights.")

    def row(label: str, cells: Iterable[object]) -> None:
        rows.append(label.ljust(label_w) + "".join(str(c).rjust(col_w) for c in cells))

    row("", ["Example 3" if n == "example3" else "sound" for n in names])
    first = results[names[0]]["report"]
    for o in first.loss_outputs:
        row(f"samples reached by {o}'s loss", [_coverage_cell(results[n]["report"], o)
                                               for n in names])
    variance = results[names[0]]["metrics"]["out2_target_variance"]
    row("out1 validation MSE", [f"{results[n]['metrics']['out1_mse']:.3f}" for n in names])
    row(f"out2 validation MSE (variance {variance:.2f})",
        [f"{results[n]['metrics']['out2_mse']:.3f}" for n in names])
    def codes(report: DiagnosisReport) -> str:
        counts = {c: report.codes.count(c) for c in report.codes}
        return ", ".join(f"{n} x {c}" if n > 1 else c for c, n in counts.items()) or "none"

    row("findings", [codes(results[n]["report"]) for n in names])
    rows.append("")
    return "\n".join(rows)


def format_findings(results: dict[str, dict[str, Any]]) -> str:
    """Every setup's findings in full: the measured figure and the suggested fix."""
    lines = ["Findings in full", "----------------"]
    for res in results.values():
        fs = res["report"].findings
        lines.append(f"{res['title']}: " + (f"{len(fs)} finding(s)" if fs else "no finding"))
        lines += [_indent_wrapped(str(f)) for f in fs]
        lines.append("")
    return "\n".join(lines)


def _indent_wrapped(text: str, width: int = 96) -> str:
    out: list[str] = []
    for line in text.splitlines():
        stripped = line.lstrip()
        indent = " " * (2 + len(line) - len(stripped))
        hanging = stripped.startswith(("fix:", "cause:", "verified:", "not verified",
                                       "advice not verified", "fix the cause"))
        out += textwrap.wrap(stripped, width, initial_indent=indent,
                             subsequent_indent=indent + ("     " if hanging else ""))
    return "\n".join(out)


def _wrap(text: str, width: int = 96) -> list[str]:
    return textwrap.wrap(text, width) + [""]


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"
