"""The cross-check's verdicts and its plain-text table."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..._typing import ArrayLike

__all__ = ["diff", "format_report"]


def diff(mine: ArrayLike, theirs: ArrayLike, rtol: float, atol: float,
         keep_values: bool = False) -> dict[str, Any]:
    """max |Δ|, max relative |Δ| (relative to max(|keras|, atol)) and the allclose verdict."""
    a = np.asarray(mine, dtype=np.float64)
    b = np.asarray(theirs, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: mlstm {a.shape}, Keras {b.shape}")
    d = np.abs(a - b)
    out: dict[str, Any] = {"max_abs": float(d.max()) if d.size else 0.0,
           "max_rel": float((d / np.maximum(np.abs(b), atol)).max()) if d.size else 0.0,
           "ok": bool(np.all(d <= atol + rtol * np.abs(b)))}
    if keep_values:
        out.update(mlstm=float(a), keras=float(b))
    return out


def format_report(report: dict[str, Any]) -> str:
    """The plain-text table of a :func:`crosscheck` dict."""
    lines = [f"crosscheck: mlstm vs Keras {report['keras']} (TensorFlow {report['tensorflow']}), "
             f"{report['dtype']}, {report['samples']} samples, started as {report['started_as']}, "
             f"Keras {'eager' if report['run_eagerly'] else 'graph (tf.function)'}",
             f"verdict per entry: |mlstm - keras| <= {report['atol']:g} + {report['rtol']:g} "
             "|keras|"]
    if report.get("dropout_rates_zeroed"):
        lines.append("dropout: training compared with the rates set to 0 on both sides "
                     "(Keras' random masks cannot be reproduced; mlstm draws none without "
                     "fit's generator): " + ", ".join(report["dropout_rates_zeroed"])
                     + "; inference does not depend on them")
    sums = report.get("target_sums")
    if sums:
        for name, info in sums["outputs"].items():
            lines.append(f"targets of {name!r}: {info['rows']} of {info['of']} rows do not sum "
                         f"to 1 (sums from {info['min_sum']:g} to {info['max_sum']:g}); "
                         f"the gradient of each such row's loss differs by up to "
                         f"{info['max_logit_gradient_gap']:.3g} per logit")
        lines.append(sums["rule"] + ". " + (
            f"Checked: mlstm trained with TensorFlow's rule matches Keras in all "
            f"{sums['checked']} gradient and step comparisons, so every row marked "
            "'NO, explained' is that rule" if sums["rule_failed"] == 0 else
            f"Checked: mlstm trained with TensorFlow's rule still differs from Keras in "
            f"{sums['rule_failed']} of {sums['checked']} gradient and step comparisons: "
            "something else differs too"))
    lines.append("")
    header = f"{'what':<26} {'name':<34} {'max |diff|':>11} {'max rel':>10}  ok"
    lines += [header, "-" * len(header)]

    def row(what: str, name: str, d: dict[str, Any], extra: str = "") -> None:
        verdict = "yes" if d["ok"] else "NO, explained" if d.get("explained") else "NO"
        lines.append(f"{what:<26} {name:<34} {d['max_abs']:>11.3e} {d['max_rel']:>10.3e}  "
                     f"{verdict}{extra}")

    def values(d: dict[str, Any]) -> str:
        return f"  (mlstm {d['mlstm']:.8g}, keras {d['keras']:.8g})"

    for name, d in report.get("inference", {}).items():
        row("inference", name, d)
    for name, d in report["forward"].items():
        row("forward", name, d)
    for name, d in report["loss"].items():
        row("loss" if name == "total" else "loss (unweighted)", name, d, values(d))
    for group, table in report["gradients"].items():
        what = "gradient of total" if group == "total" else f"gradient of {group} (wtd)"
        for name, d in table.items():
            row(what, name, d)
    for s in report["steps"]:
        for key, d in s["loss"].items():
            row(f"step {s['step']} loss", key, d, values(d))
        for name, d in s["weights"].items():
            row(f"step {s['step']} weights", name, d)
    lines.append("-" * len(header))
    lines.append("max |diff|: " + ", ".join(f"{k} {v:.3e}" for k, v in report["max_abs"].items()))
    if report["ok"]:
        lines.append(f"OK: all {report['checked']} comparisons within tolerance")
    else:
        lines.append(f"MISMATCH: {report['failed']} of {report['checked']} comparisons outside "
                     "tolerance (rows marked NO)")
        if sums:
            lines.append(f"explained: {sums['explained']} of them by TensorFlow's gradient of "
                         f"CCE for targets that do not sum to 1, {sums['unexplained']} not")
    return "\n".join(lines)
