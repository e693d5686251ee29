"""Pictures of a diagnosis (matplotlib, the ``plot`` extra; imported only here).

One column per report, three panels each:

1. each output's share of the gradient norm on each layer (median over the traced
   steps, or on the batch when nothing was traced): who trains what;
2. the update-to-weight ratio ``|Δθ|/|θ|`` of every weight matrix over training, on a log
   scale, with the healthy 1e-3 marked: which weights move and how fast;
3. the fraction of each batch that each output's loss gradient reaches, per step.
"""
from __future__ import annotations

import numpy as np

__all__ = ["require_matplotlib", "plot_reports", "layer_shares"]


def require_matplotlib():
    """Import matplotlib with a file-only backend, or raise ImportError saying what to do."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plots need matplotlib, which is not installed: "
                          "pip install 'mlstm[plot]' (or pip install matplotlib)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def layer_shares(report):
    """``{layer: {output: share}}``: median over traced steps, else on the batch."""
    trace = report.trace
    if trace is None or len(trace) == 0:
        return {layer: {o: (v if v is not None else 0.0) for o, v in shares.items()}
                for layer, shares in report.summary["gradient_share"].items()}
    layers = list(dict.fromkeys(p.split("/", 1)[0] for p in trace.param_names))
    norms = trace.grad_norm                                      # (S, O, P)
    out = {}
    for layer in layers:
        cols = [j for j, p in enumerate(trace.param_names) if p.split("/", 1)[0] == layer]
        per_output = np.sqrt(np.nansum(np.square(norms[:, :, cols]), axis=2))   # (S, O)
        total = per_output.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(total > 0, per_output / np.where(total > 0, total, 1), np.nan)
        out[layer] = {o: float(np.nanmedian(share[:, k])) if np.isfinite(share[:, k]).any()
                      else 0.0 for k, o in enumerate(trace.output_names)
                      if o in report.loss_outputs}
    return out


def _rolling_median(values, window):
    if len(values) < window:
        return values
    pad = window // 2
    padded = np.pad(values, (pad, window - 1 - pad), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, window)
    return np.nanmedian(windows, axis=1)


def plot_reports(reports, path, titles=None):
    """Draw reports side by side to a PNG at ``path``; returns ``path``.

    Raises
    ------
    ImportError
        Without matplotlib, with the install command in the message.
    """
    plt = require_matplotlib()
    titles = list(titles) if titles else [r.model_name for r in reports]
    n = len(reports)
    fig, axes = plt.subplots(3, n, figsize=(5.2 * n, 10.5), squeeze=False,
                             gridspec_kw={"height_ratios": [1, 1.1, 0.7]})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for col, (report, title) in enumerate(zip(reports, titles)):
        ax = axes[0, col]
        shares = layer_shares(report)
        layers = list(shares)
        outputs = report.loss_outputs
        left = np.zeros(len(layers))
        for k, o in enumerate(outputs):
            widths = np.array([shares[l].get(o, 0.0) for l in layers])
            ax.barh(layers, widths, left=left, color=colors[k % len(colors)], label=o)
            for y, (x0, w) in enumerate(zip(left, widths)):
                if w > 0.08:
                    ax.text(x0 + w / 2, y, f"{100 * w:.0f}%", ha="center", va="center",
                            fontsize=8, color="white")
            left += widths
        ax.set_xlim(0, 1)
        ax.invert_yaxis()
        ax.set_xlabel("share of the layer's gradient norm")
        coverage = ", ".join(f"{o} {c['reached']}/{c['batch']}"
                             for o, c in report.summary["coverage"].items())
        ax.set_title(f"{title}\nsamples reached: {coverage}", fontsize=9)
        ax.legend(fontsize=8, loc="lower right")

        ax = axes[1, col]
        trace = report.trace
        if trace is None or len(trace) == 0:
            ax.text(0.5, 0.5, "no training steps traced (steps=0)", ha="center",
                    va="center", transform=ax.transAxes)
        else:
            ratio = trace.update_ratio
            steps = trace.iteration
            for j, p in enumerate(trace.param_names):
                if len(report.param_shapes[p]) < 2:
                    continue
                ax.plot(steps, _rolling_median(ratio[:, j], 9), lw=1.2, label=p)
            ax.axhline(1e-3, color="gray", ls="--", lw=1)
            ax.text(steps[0], 1e-3, " 1e-3", va="bottom", fontsize=8, color="gray")
            ax.set_yscale("log")
            ax.set_xlabel("optimizer step")
            ax.set_ylabel("|Δθ| / |θ| per step (rolling median)")
            ax.legend(fontsize=7, loc="upper right")
        found = ", ".join(dict.fromkeys(report.codes)) or "no findings"
        ax.set_title(found if len(found) < 60 else found[:57] + "...", fontsize=9)

        ax = axes[2, col]
        if trace is not None and len(trace):
            for k, o in enumerate(trace.output_names):
                if o in report.loss_outputs:
                    # Dashed, thinner lines on top: outputs with equal coverage stay visible.
                    ax.plot(trace.iteration, trace.coverage[:, k], lw=2.4 - 0.8 * min(k, 2),
                            ls=("-", "--", ":")[min(k, 2)], color=colors[k % len(colors)],
                            label=o)
            ax.set_xlabel("optimizer step")
            ax.legend(fontsize=8, loc="center right")
        ax.set_ylim(-0.03, 1.05)
        ax.set_ylabel("fraction of batch")
        ax.set_title("samples each output's loss gradient reaches", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
