"""``python -m mlstm diagnose``: the seed article's three setups, or your own model.

Without arguments: the seed scenario (:mod:`mlstm.diagnostics.seed`) on built-in data,
Example 1, Example 2 and a sound setup side by side, with an explanation of what the
measurements show. With ``MODEL.keras DATA.npz``: :func:`mlstm.diagnose` on that model.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

__all__ = ["main", "format_side_by_side", "explain_seed_results", "format_findings",
           "load_arrays"]

_DESCRIPTION = """\
Measure why a model is not learning.

  python -m mlstm diagnose                       the seed article's three setups, side by side
  python -m mlstm diagnose MODEL.keras DATA.npz  your model (needs the keras extra)

DATA.npz holds the inputs and targets: arrays named like the model's inputs and outputs,
or x0, x1, ... and y0, y1, ... in order (x and y for one of each)."""


def _parser():
    p = argparse.ArgumentParser(prog="python -m mlstm diagnose", description=_DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", help="a .keras file (Keras 3)")
    p.add_argument("data", nargs="?", help="a .npz file with the inputs and targets")
    p.add_argument("--steps", type=int, default=None,
                   help="training steps traced on a copy of your model (default 50); the "
                        "seed scenario traces its whole training (--epochs)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", metavar="PNG", help="draw the report(s) to this PNG (matplotlib)")
    p.add_argument("--json", metavar="PATH", help="write the report(s) as JSON")
    g = p.add_argument_group("seed scenario")
    g.add_argument("--epochs", type=int, default=15)
    g.add_argument("--samples", type=int, default=512)
    g.add_argument("--raw-inputs", action="store_true",
                   help="record the second input in raw units (per-feature scales 0.05 to 20, "
                        "offsets up to 10) for Examples 1 and 2; the sound setup standardizes")
    g.add_argument("--details", action="store_true", help="print each setup's full report")
    g = p.add_argument_group("your model, when the .keras file is not compiled")
    g.add_argument("--loss", help="comma-separated, one per output (mse, binary_crossentropy)")
    g.add_argument("--loss-weights", help="comma-separated floats, one per output")
    g.add_argument("--optimizer", default="adam", choices=["adam", "sgd"])
    g.add_argument("--learning-rate", type=float, default=1e-3)
    return p


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.plot:
        from .plotting import require_matplotlib
        try:
            require_matplotlib()
        except ImportError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.model is None:
        return _run_seed(args)
    if args.data is None:
        print("error: give both MODEL.keras and DATA.npz (or neither, for the seed scenario)",
              file=sys.stderr)
        return 2
    return _run_user(args)


# --------------------------------------------------------------------------- seed scenario
def _run_seed(args):
    from . import seed as seed_module
    from .plotting import plot_reports

    t0 = time.perf_counter()
    results = seed_module.run_seed_scenario(epochs=args.epochs, samples=args.samples,
                                            batch_size=args.batch_size, seed=args.seed,
                                            raw_inputs=args.raw_inputs)
    seconds = time.perf_counter() - t0
    print(format_side_by_side(results, args))
    print()
    print(explain_seed_results(results))
    print(format_findings(results))
    if args.details:
        for res in results.values():
            print("\n" + "=" * 100 + f"\n{res['title']}\n" + "=" * 100)
            print(res["report"])
    print(f"\n({len(results)} setups trained and diagnosed in {seconds:.1f} s)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({name: {"title": r["title"], "metrics": r["metrics"],
                              "report": r["report"].to_dict()} for name, r in results.items()},
                      fh, indent=1)
        print(f"wrote {args.json}")
    if args.plot:
        plot_reports([r["report"] for r in results.values()], args.plot,
                     titles=[r["title"] for r in results.values()])
        print(f"wrote {args.plot}")
    return 0


def _pct(v):
    return f"{100 * v:.1f}%"


def format_side_by_side(results, args=None):
    """The seed scenario's table: one column per setup, one row per measured figure."""
    from .seed import SCENARIO

    names = list(results)
    reports = {n: results[n]["report"] for n in names}
    first = reports[names[0]]
    outs = first.loss_outputs
    label_w, col_w = 38, 22
    rows = []

    def row(label, cells):
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
    rows.append("findings (errors first)")
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


def _short_loss(report):
    names = {"mean_squared_error": "mse", "binary_crossentropy": "bce"}
    parts = []
    for o in report.loss_outputs:
        loss = report.losses[o]
        label = names.get(loss.name, loss.name)
        parts.append(label)
    weights = report.setup["loss"]
    if "custom" in weights:
        return "custom, custom"
    w = [p.split(" * ")[0] for p in weights.split(" + ")]
    if all(x == "1" for x in w):
        return ", ".join(parts)
    return ", ".join(f"{a}·{b}" for a, b in zip(w, parts))


def _coverage_cell(report, output):
    cov = report.summary["coverage"][output]
    run = report.summary.get("run_coverage", {}).get(output)
    text = f"{cov['reached']}/{cov['batch']}"
    if run is not None:
        text += f" ({_pct(run)})"
    return text


def _first_cosine(report):
    cosines = report.summary.get("run_shared_cosine") or report.summary["shared_cosine"]
    value = next(iter(cosines.values()), None)
    return float("nan") if value is None else value


def _lstm_ratio(report):
    ups = report.summary.get("updates", {})
    values = [u["median_ratio"] for p, u in ups.items() if p.endswith("/kernel")
              and p.split("/")[0] in report.summary["through_time"]]
    return float(np.median(values)) if values else float("nan")


def _through_time_after(report):
    tt = report.summary.get("through_time_after") or report.summary["through_time"]
    values = [t["ratio"] for t in tt.values()]
    return float(np.min(values)) if values else float("nan")


def _saturation_cell(report):
    gates = report.summary.get("gate_saturation_after") or report.summary["gate_saturation"]
    heads = report.summary.get("head_saturation_after") or report.summary["head_saturation"]
    g = max((v for d in gates.values() for v in d.values() if np.isfinite(v)), default=0.0)
    h = max(heads.values(), default=0.0)
    return f"{_pct(g)} / {_pct(h)}"


def explain_seed_results(results):
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
            text += ", but it is not what stops a model from learning." if close else "."
        others = [c for c in codes if c != "mse_on_sigmoid"]
        if others:
            text += f" Other findings for Example 1: {', '.join(others)}."
        lines += _wrap(text)
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


def format_findings(results):
    """Every setup's findings in full: the measured figure and the suggested fix."""
    lines = ["Findings in full", "----------------"]
    for res in results.values():
        fs = res["report"].findings
        lines.append(f"{res['title']}: " + (f"{len(fs)} finding(s)" if fs else "no finding"))
        lines += [_indent_wrapped(str(f)) for f in fs]
        lines.append("")
    return "\n".join(lines)


def _indent_wrapped(text, width=96):
    import textwrap
    out = []
    for line in text.splitlines():
        stripped = line.lstrip()
        indent = " " * (2 + len(line) - len(stripped))
        out += textwrap.wrap(stripped, width, initial_indent=indent,
                             subsequent_indent=indent + ("     " if stripped.startswith("fix:")
                                                         else ""))
    return "\n".join(out)


def _wrap(text, width=96):
    import textwrap
    return textwrap.wrap(text, width) + [""]


# --------------------------------------------------------------------------- your model
def load_arrays(path, input_names, output_names):
    """Inputs and targets from a ``.npz`` (no pickle): by name, else x0.. / y0.., else x / y."""
    with np.load(path, allow_pickle=False) as data:
        keys = set(data.files)

        def pick(names, prefix, role):
            if all(n in keys for n in names):
                return [data[n] for n in names]
            numbered = [f"{prefix}{k}" for k in range(len(names))]
            if all(n in keys for n in numbered):
                return [data[n] for n in numbered]
            if len(names) == 1 and prefix in keys:
                return [data[prefix]]
            raise ValueError(f"{path}: no {role} found; expected arrays named {names} or "
                             f"{numbered}" + (f" or {prefix!r}" if len(names) == 1 else "")
                             + f"; the file holds {sorted(keys)}")

        return (pick(input_names, "x", "inputs"), pick(output_names, "y", "targets"))


def _run_user(args):
    import mlstm

    try:
        model = mlstm.load_keras(args.model)
    except ImportError as exc:
        print(f"error: loading a .keras file needs Keras: {exc} (pip install 'mlstm[keras]')",
              file=sys.stderr)
        return 2
    if not model.compiled:
        if not args.loss:
            print(f"error: {args.model} has no compile config (loss, optimizer): give --loss "
                  "(and --loss-weights, --optimizer, --learning-rate)", file=sys.stderr)
            return 2
        losses = args.loss.split(",")
        weights = ([float(w) for w in args.loss_weights.split(",")] if args.loss_weights
                   else None)
        optimizer = mlstm.optimizers.get(args.optimizer)
        optimizer.learning_rate = args.learning_rate
        model.compile(optimizer=optimizer, loss=losses if len(losses) > 1 else losses[0],
                      loss_weights=weights)
    x, y = load_arrays(args.data, model.input_names, model.output_names)
    report = mlstm.diagnose(model, x, y, steps=50 if args.steps is None else args.steps,
                            batch_size=args.batch_size, seed=args.seed)
    print(report)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report.to_dict(), fh, indent=1)
        print(f"wrote {args.json}")
    if args.plot:
        report.plot(args.plot)
        print(f"wrote {args.plot}")
    return 1 if any(f.severity == "error" for f in report.findings) else 0
