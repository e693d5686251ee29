"""The panels of a diagnosis picture, each a function of the report.

Each ``*_panel(report)`` returns a :class:`Panel` (a title in words, the finding codes it
shows, and a function that draws it on a matplotlib axis) or None when it has nothing to
say for this report: a coverage panel where every loss reaches every sample, a saturation
panel where nothing saturates. :mod:`mlstm.diagnostics.plotting` puts the panels of the
findings raised first, titled with the finding, then the others.

Nothing here imports matplotlib: the draw functions receive the axis.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable

import numpy as np

from .._typing import Float64Array
from .summary import global_gradient_norms

if TYPE_CHECKING:
    from .findings import Finding, ReportFields

__all__ = ["Panel", "PANELS", "rolling_median"]


class Panel:
    """``title``: words; ``codes``: the findings it illustrates; ``draw(ax, colors)``."""

    def __init__(self, title: str, codes: Iterable[str],
                 draw: Callable[[Any, list[str]], None]) -> None:
        self.title, self.codes, self.draw = title, tuple(codes), draw


def rolling_median(values: Any, window: int) -> Float64Array:
    values = np.asarray(values, dtype=np.float64)
    if len(values) < window:
        return values
    pad = window // 2
    padded = np.pad(values, (pad, window - 1 - pad), mode="edge")
    with np.errstate(all="ignore"):
        windows = np.lib.stride_tricks.sliding_window_view(padded, window)
        finite = np.where(np.isfinite(windows), windows, np.nan)
        if np.isnan(finite).all(axis=1).any():
            return np.array([np.nanmedian(w) if np.isfinite(w).any() else np.nan
                             for w in finite])
        return np.nanmedian(finite, axis=1)


def _traced(r: ReportFields) -> bool:
    return r.trace is not None and len(r.trace) > 0


def _finding(r: ReportFields, *codes: str) -> Finding | None:
    return next((f for f in r.findings if f.code in codes), None)


def _color(r: ReportFields, output: str, colors: list[str]) -> str:
    return colors[r.output_names.index(output) % len(colors)]


# --------------------------------------------------------------------------- the loss
def loss_panel(r: ReportFields) -> Panel | None:
    curves, base = r.summary.get("curves"), r.summary.get("baseline") or {}
    if not curves or len(curves["steps"]) < 2:
        return None
    outputs = [o for o in r.active_outputs if o in curves["train"]]
    if not outputs:
        return None
    norm = {o: (base[o] if base.get(o) else (curves["train"][o][0] or 1.0)) for o in outputs}
    relative = all(base.get(o) for o in outputs)

    def draw(ax: Any, colors: list[str]) -> None:
        steps = curves["steps"]
        t = r.trace
        for o in outputs:
            c = _color(r, o, colors)
            if t is not None and _traced(r):
                k = t.output_names.index(o)
                ax.plot(t.iteration, rolling_median(t.output_loss[:, k], 9) / norm[o], color=c,
                        lw=0.8, alpha=0.35)
            ax.plot(steps, np.asarray(curves["train"][o]) / norm[o], color=c, lw=1.8,
                    marker="o", ms=3, label=f"{o} train")
            if "validation" in curves and o in curves["validation"]:
                ax.plot(steps, np.asarray(curves["validation"][o]) / norm[o], color=c, lw=1.4,
                        ls="--", label=f"{o} validation")
        if relative:
            ax.axhline(1.0, color="gray", ls=":", lw=1)
            ax.text(0.98, 1.0, "predicting a constant", ha="right", va="bottom", fontsize=7,
                    color="gray", transform=ax.get_yaxis_transform())
            ax.set_ylabel("loss ÷ loss of a constant\nprediction (targets' mean)", fontsize=8)
        else:
            ax.set_ylabel("loss ÷ loss at step 0", fontsize=8)
        ax.set_xlabel("optimizer step")
        ax.legend(fontsize=7, loc="best")

    return Panel("Each output's loss (thin: batch losses): does every head learn?",
                 ("loss_plateau", "mse_on_sigmoid", "single_unit_softmax",
                  "categorical_on_one_unit", "from_logits_on_activated",
                  "switched_off_output", "bce_targets", "categorical_target_sums"), draw)


def fix_panels(r: ReportFields) -> list[Panel]:
    """One panel per fix tried by retraining."""
    out = []
    for v in getattr(r, "verified", []):
        if "curves" not in v:
            continue
        outputs = [o for o, d in v["outputs"].items() if d["targeted"]][:3]
        codes = [f.code for f in r.findings if f.verification is v]

        def draw(ax: Any, colors: list[str], v: dict[str, Any] = v,
                 outputs: list[str] = outputs) -> None:
            steps = v["curves"]["steps"]
            relative = len(outputs) > 1          # losses on different scales: ÷ a reference
            for o in outputs:
                curve = np.asarray(v["curves"]["yardstick"][o], dtype=np.float64)
                ref = curve[0] if v["from_start"] else v["outputs"][o]["before"]
                scale = ref if relative and np.isfinite(ref) and ref > 0 else 1.0
                c = _color(r, o, colors)
                ax.plot(steps, curve / scale, color=c, lw=1.8, marker="o", ms=3,
                        label=f"{o} with the fix")
                if not v["from_start"] and np.isfinite(ref):
                    ax.axhline(ref / scale, color=c, ls="--", lw=1)
                    ax.plot([steps[-1]], [ref / scale], marker="x", color=c, ms=7,
                            label=f"{o} without it, after {v['steps']} steps")
            loss = v["outputs"][outputs[0]]["loss"] if outputs else "loss"
            ax.set_ylabel((f"loss ÷ loss without the fix" if relative else loss)
                          + f"\n({v['on']})", fontsize=8)
            ax.set_xlabel("optimizer step")
            ax.legend(fontsize=7, loc="best")

        verdict = "verified" if v["verified"] else "not verified"
        out.append(Panel(f"The fix, tried ({verdict}): {v['change']}", codes, draw))
    return out


# --------------------------------------------------------------------------- the gradient
def share_panel(r: ReportFields) -> Panel | None:
    t = r.trace
    if t is None or not _traced(r) or len(r.active_outputs) < 2 or not t.shared_names:
        return None
    shared = [t.param_names.index(p) for p in t.shared_names]
    with np.errstate(all="ignore"):
        per_output = np.sqrt(np.nansum(np.square(t.grad_norm[:, :, shared]), axis=2))
        share = per_output / np.nansum(per_output, axis=1, keepdims=True)

    def draw(ax: Any, colors: list[str]) -> None:
        for o in r.active_outputs:
            k = t.output_names.index(o)
            ax.plot(t.iteration, rolling_median(share[:, k], 5), color=_color(r, o, colors),
                    lw=1.8, label=o)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("share of the gradient norm", fontsize=8)
        ax.legend(fontsize=7, loc="best")

    layers = ", ".join(r.summary.get("shared_layers", []))
    return Panel(f"Who trains the shared weights ({layers})?",
                 ("dominant_output", "conflicting_outputs"), draw)


def updates_panel(r: ReportFields) -> Panel | None:
    t = r.trace
    if t is None or not _traced(r):
        return None
    matrices = [j for j, p in enumerate(t.param_names) if len(r.param_shapes[p]) >= 2]
    if not matrices:
        return None
    low, high = r.thresholds["lr_small_ratio"], r.thresholds["lr_large_ratio"]

    def draw(ax: Any, colors: list[str]) -> None:
        ratio = t.update_ratio
        drawn = 0
        for j in matrices[:8]:
            series = rolling_median(ratio[:, j], 9)
            if np.any(np.isfinite(series) & (series > 0)):
                ax.plot(t.iteration, series, lw=1.2, label=t.param_names[j])
                drawn += 1
        if not drawn:
            ax.text(0.5, 0.5, "no weight matrix moved: |Δθ| = 0 at every step",
                    ha="center", va="center", transform=ax.transAxes, fontsize=9)
            ax.set_yticks([])
        else:
            ax.axhspan(low, high, color="#3a9a5b", alpha=0.12, lw=0,
                       label=f"healthy: {100 * low:g}% to {100 * high:g}% per step")
            ax.set_yscale("log")
            ax.legend(fontsize=6, loc="best", ncol=2, framealpha=0.7)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("|Δθ| / |θ| per step", fontsize=8)

    return Panel("How fast each weight matrix moves",
                 ("learning_rate_too_large", "learning_rate_too_small", "not_moving"), draw)


def coverage_panel(r: ReportFields) -> Panel | None:
    f = _finding(r, "low_sample_coverage")
    t = r.trace
    if t is None or not _traced(r) or (f is None and np.nanmin(t.coverage) >= 0.999):
        return None

    def draw(ax: Any, colors: list[str]) -> None:
        for k, o in enumerate(t.output_names):
            if o in r.active_outputs:
                ax.plot(t.iteration, t.coverage[:, k], color=_color(r, o, colors),
                        lw=2.4 - 0.8 * min(k, 2), ls=("-", "--", ":")[min(k, 2)], label=o)
        ax.set_ylim(-0.03, 1.05)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("fraction of the batch", fontsize=8)
        ax.legend(fontsize=7, loc="center right")

    return Panel("Samples each output's loss gradient reaches", ("low_sample_coverage",), draw)


def saturation_panel(r: ReportFields) -> Panel | None:
    f = _finding(r, "saturated_gates", "saturated_head")
    t = r.trace
    if t is None or not _traced(r):
        return None
    gates, heads = t.gate_saturation, t.head_saturation
    worst = max([np.nanmax(gates) if gates.size else 0.0, np.nanmax(heads) if heads.size else 0.0])
    limit = r.thresholds["saturated_fraction"]
    if f is None and not worst > limit / 2:
        return None

    def draw(ax: Any, colors: list[str]) -> None:
        for l, name in enumerate(t.lstm_names):
            ax.plot(t.iteration, np.nanmax(gates[:, l, :], axis=1), lw=1.6,
                    label=f"{name} gates (worst gate)")
        for h, name in enumerate(t.head_names):
            ax.plot(t.iteration, heads[:, h], lw=1.4, ls="--", label=f"{name} head")
        ax.axhline(limit, color="gray", ls=":", lw=1)
        ax.text(0.02, limit, f"finding above {100 * limit:.0f}%", va="bottom", fontsize=7,
                color="gray", transform=ax.get_yaxis_transform())
        ax.set_ylim(-0.03, 1.05)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("pre-activations beyond ±5", fontsize=8)
        ax.legend(fontsize=7, loc="best")

    return Panel("Saturated gates and heads (they pass almost no gradient)",
                 ("saturated_gates", "saturated_head"), draw)


def through_time_panel(r: ReportFields) -> Panel | None:
    if r.static is None:            # mlstm refused the data: nothing measured on the model
        return None
    before = r.static["through_time_total"]
    after = (r.run or {}).get("static", {}).get("through_time_total", {})
    if not before:
        return None
    f = _finding(r, "vanishing_gradient")
    tt, tta = r.summary["through_time"], r.summary.get("through_time_after", {})
    changed = any(lstm in tta and tt[lstm]["ratio"] > 0 and np.isfinite(tta[lstm]["ratio"])
                  and abs(np.log10(max(tta[lstm]["ratio"], 1e-300) / tt[lstm]["ratio"])) >= 1
                  for lstm in tt)
    if f is None and not changed:
        return None
    limit = r.thresholds["vanishing_ratio"]

    reversed_ = r.static.get("through_time_reversed", {})

    def draw(ax: Any, colors: list[str]) -> None:
        # x: the time step in the user's order, so that a Bidirectional's two directions
        # share one axis; the gradient enters a forward track at the last step and a
        # reversed one (the backward direction, go_backwards) at the first
        for k, (lstm, norms) in enumerate(before.items()):
            c = colors[(k + 3) % len(colors)]
            back = reversed_.get(lstm, False)
            label = lstm + (" (runs T-1 -> 0, drawn in time order)" if back else "")
            for series, ls, when in ((norms, ":", "at the current weights"),
                                     (after.get(lstm), "-", "after training")):
                if series is None or not series[-1] > 0:
                    continue
                steps = np.arange(len(series))
                time = steps[::-1] if back else steps       # processing step -> time step
                with np.errstate(divide="ignore"):
                    ax.plot(time, series / series[-1], color=c, ls=ls, lw=1.6,
                            label=f"{label} {when}")
        ax.axhline(limit, color="gray", ls=":", lw=1)
        ax.text(0.02, limit, f"finding when the first step is below {limit:g}", va="bottom",
                fontsize=7, color="gray", transform=ax.get_yaxis_transform())
        ax.set_yscale("log")
        ax.set_xlabel("time step t (the inputs' order)")
        ax.set_ylabel("|dL/dh_t| ÷ |dL/dh| at the step the gradient enters", fontsize=8)
        ax.legend(fontsize=7, loc="best")

    return Panel("How much gradient reaches back through time", ("vanishing_gradient",), draw)


# --------------------------------------------------------------------------- what a finding shows
def input_scale_panel(r: ReportFields) -> Panel | None:
    if _finding(r, "input_scale") is None:
        return None
    feats = []
    for name, st in r.data["inputs"].items():
        for j, (m, s) in enumerate(zip(st["mean"], st["std"])):
            if np.isfinite(m) and np.isfinite(s):
                feats.append((f"{name}[{j}]", name, float(np.hypot(m, s))))

    def draw(ax: Any, colors: list[str]) -> None:
        names = list(dict.fromkeys(f[1] for f in feats))
        for k, name in enumerate(names):
            idx = [i for i, f in enumerate(feats) if f[1] == name]
            ax.bar(idx, [max(feats[i][2], 1e-12) for i in idx], color=colors[(k + 5) % len(colors)],
                   label=name)
        ax.axhspan(0.5, 2.0, color="#3a9a5b", alpha=0.12, lw=0,
                   label="standardized: scale about 1")
        ax.set_yscale("log")
        ax.set_xticks(range(len(feats)))
        ax.set_xticklabels([f[0] for f in feats], rotation=90, fontsize=6)
        ax.set_ylabel("sqrt(mean² + std²)", fontsize=8)
        ax.legend(fontsize=7, loc="best")

    return Panel("Scale of each input feature", ("input_scale",), draw)


def target_scale_panel(r: ReportFields) -> Panel | None:
    if _finding(r, "target_scale") is None:
        return None
    rows = [(o, r.data["targets"][o]) for o in r.active_outputs if o in r.data["targets"]]

    def draw(ax: Any, colors: list[str]) -> None:
        x = np.arange(len(rows))
        ax.bar(x - 0.2, [max(t["max_abs_mean"], 1e-12) for _, t in rows], 0.4, label="|mean|",
               color="#4c8bd6")
        ax.bar(x + 0.2, [max(t["max_std"], 1e-12) for _, t in rows], 0.4, label="std",
               color="#d9534f")
        ax.axhline(r.thresholds["target_scale_max"], color="gray", ls=":", lw=1)
        ax.text(0.02, r.thresholds["target_scale_max"], "finding above this", va="bottom",
                fontsize=7, color="gray", transform=ax.get_yaxis_transform())
        ax.set_yscale("log")
        ax.set_xticks(x)
        ax.set_xticklabels([o for o, _ in rows], fontsize=8)
        ax.legend(fontsize=7)

    return Panel("Scale of each output's targets", ("target_scale",), draw)


def gradient_norm_panel(r: ReportFields) -> Panel | None:
    f = _finding(r, "exploding_gradient", "clipping_always_active")
    t = r.trace
    if f is None or t is None or not _traced(r):
        return None
    norms = global_gradient_norms(t)
    clip = r.optimizer_config.get("global_clipnorm") or r.optimizer_config.get("clipnorm")

    def draw(ax: Any, colors: list[str]) -> None:
        ax.plot(t.iteration, norms, lw=1.4, color="#222222", label="whole gradient")
        if clip:
            ax.axhline(clip, color="#d9534f", ls="--", lw=1)
            ax.text(t.iteration[0], clip, " the clip", va="bottom", fontsize=7,
                    color="#d9534f")
        ax.set_yscale("log")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("gradient norm (before clipping)", fontsize=8)

    return Panel("Size of the gradient at each step", ("exploding_gradient",
                                                        "clipping_always_active"), draw)


def dead_units_panel(r: ReportFields) -> Panel | None:
    if _finding(r, "dead_relu") is None:
        return None
    before, after = r.summary.get("dead_units", {}), r.summary.get("dead_units_after", {})
    layers = list(before)

    def draw(ax: Any, colors: list[str]) -> None:
        x = np.arange(len(layers))
        ax.bar(x - 0.2, [len(before[l]["dead"]) / before[l]["units"] for l in layers], 0.4,
               label="at the current weights", color="#8e5cc2")
        if after:
            ax.bar(x + 0.2, [len(after[l]["dead"]) / after[l]["units"] if l in after else 0
                             for l in layers], 0.4, label="after training", color="#d9534f")
        ax.set_ylim(0, 1.05)
        ax.set_xticks(x)
        ax.set_xticklabels(layers, fontsize=8)
        ax.set_ylabel("units at 0 on every sample", fontsize=8)
        ax.legend(fontsize=7)

    return Panel("Dead ReLU units", ("dead_relu",), draw)


def dropout_panel(r: ReportFields) -> Panel | None:
    """The total loss along the run at the model's dropout rates and at rate 0
    (:mod:`mlstm.diagnostics.dropout`), over the loss of a constant prediction."""
    comparison = getattr(r, "dropout", None) or {}      # (a DiagnosisReport's)
    zero = comparison.get("report")
    curves = r.summary.get("curves")
    zero_curves = zero.summary.get("curves") if zero is not None else None
    if not curves or not zero_curves or len(curves["steps"]) < 2:
        return None
    base = (r.summary.get("baseline") or {}).get("total") or curves["train"]["total"][0] or 1.0
    rates = ", ".join(f"{n}={v:g}" for n, v in comparison["rates"].items())

    def draw(ax: Any, colors: list[str]) -> None:
        for k, (name, words) in enumerate((("train", "training samples"),
                                           ("validation", "validation data"))):
            if name not in curves:
                continue
            for series, ls, when in ((curves, "-", "at the model's rates"),
                                     (zero_curves, "--", "at rate 0")):
                ax.plot(series["steps"], np.asarray(series[name]["total"]) / base,
                        color=colors[(k + 6) % len(colors)], ls=ls, lw=1.6, marker="o", ms=3,
                        label=f"{words}, {when}")
        ax.axhline(1.0, color="gray", ls=":", lw=1)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("total loss ÷ loss of a\nconstant prediction", fontsize=8)
        ax.text(0.98, 0.98, f"rates: {rates}", fontsize=7, color="gray", ha="right",
                va="top", transform=ax.transAxes)
        ax.legend(fontsize=7, loc="best")

    return Panel("Dropout: the loss at the model's rates and with every rate at 0",
                 ("dropout_underfits", "dropout_hides"), draw)


#: Every panel maker, in the order used when no finding ranks them.
PANELS = (loss_panel, share_panel, updates_panel, coverage_panel, saturation_panel,
          through_time_panel, input_scale_panel, target_scale_panel, gradient_norm_panel,
          dead_units_panel, dropout_panel)
