"""The report's figures (``report.summary``): what the text, the checks and the plot read.

:func:`summarize` turns the raw measurements (:mod:`mlstm.diagnostics.measurements`) into
named figures per layer, output and parameter, JSON-ready except where a docstring says
otherwise: gradient norms and shares per layer, each output's share of the gradient norm on
the shared weights, cosines between outputs, sample coverage, gradient through time,
saturation, and over the training run the medians of the same and the updates.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .._typing import Array, ArrayLike, Float64Array
from ..measure import gradients as G
from .measurements import norm_over

if TYPE_CHECKING:
    from ..measure.trace import Trace
    from .findings import ReportFields

__all__ = ["summarize", "shares", "nanmedian", "nanmean", "global_gradient_norms"]


def summarize(r: ReportFields) -> dict[str, Any]:
    """``report.summary`` from the measurements ``r.static`` (and ``r.run``, if any).

    Parameters
    ----------
    r : DiagnosisReport
        Its ``static``, ``run``, ``trace``, ``shared_names``, ``param_shapes``,
        ``output_names`` and ``loss_outputs`` are read.

    Returns
    -------
    dict
        Figures by name; the keys starting with ``run_`` and ending with ``_after`` come
        from the training run.
    """
    s: dict[str, Any] = {}
    st = r.static
    assert st is not None       # summarized only when the batch was measured
    layers = list(dict.fromkeys(n.split("/", 1)[0] for n in r.param_shapes))
    norms = {out: G.layer_norms(g) for out, g in st["contributions"].items()}
    s["gradient_norm"] = {layer: {out: norms[out].get(layer, 0.0) for out in norms}
                          for layer in layers}
    s["gradient_share"] = {layer: shares(v) for layer, v in s["gradient_norm"].items()}
    s["shared_layers"] = list(dict.fromkeys(n.split("/", 1)[0] for n in r.shared_names))
    s["shared_norm"] = {out: norm_over(g, r.shared_names)
                        for out, g in st["contributions"].items()}
    s["shared_share"] = shares(s["shared_norm"])
    s["unweighted_shared_norm"] = dict(st["unweighted_shared_norm"])
    s["shared_cosine"] = _pair_cosines(st["contributions"], r.shared_names)
    cov: dict[str, dict[str, Any]] = {}
    for out, reached in st["coverage"].items():
        cov[out] = {"reached": int(reached.sum()), "batch": int(reached.size),
                    "fraction": float(reached.mean())}
    s["coverage"] = cov
    totals = {out: _sample_totals(v) for out, v in st["per_sample"].items()}
    s["per_sample_norm"] = {
        out: {"median": float(np.median(t)), "max": float(np.max(t)),
              "nonzero": int(np.count_nonzero(t))}
        for out, t in totals.items()}
    s["through_time"] = _through_time_summary(st)
    s["gate_saturation"] = st["gates"]
    s["head_saturation"] = st["heads"]
    s["dead_units"] = st["relu"]
    if r.run:
        after = r.run["static"]
        s["through_time_after"] = _through_time_summary(after)
        s["gate_saturation_after"] = after["gates"]
        s["head_saturation_after"] = after["heads"]
        s["dead_units_after"] = after["relu"]
    s["loss"] = {"total": st["loss"], **{f"{n}_loss": v for n, v in
                                         zip(r.output_names, st["output_losses"])}}
    if r.run:
        s.update(_summarize_run(r))
    return s


def _summarize_run(r: ReportFields) -> dict[str, Any]:
    """The figures of the training run: updates, medians over the steps, losses."""
    t = r.trace
    assert t is not None and r.run is not None     # called when there was a run
    s: dict[str, Any] = {}
    S = len(t)
    s["steps"] = S
    s["loss_before"], s["loss_after"] = r.run["before"], r.run["after"]
    s["curves"], s["baseline"] = r.run["curves"], r.run["baseline"]
    if S == 0:
        return s
    ratio = t.update_ratio
    with np.errstate(all="ignore"):
        s["updates"] = {
            p: {"median_ratio": nanmedian(ratio[:, j]),
                "early_ratio": nanmedian(ratio[:max(S // 5, 1), j]),
                "median_update": float(np.median(t.update_norm[:, j])),
                "weight_norm_start": float(t.weight_norm[0, j]),
                "max_grad": float(np.nanmax(t.total_grad_norm[:, j]))
                if np.isfinite(t.total_grad_norm[:, j]).any() else float("nan")}
            for j, p in enumerate(t.param_names)}
    shared = [t.param_names.index(p) for p in t.shared_names]
    if shared:
        per_output = np.sqrt(np.nansum(np.square(t.grad_norm[:, :, shared]), axis=2))
        with np.errstate(all="ignore"):
            share = per_output / np.nansum(per_output, axis=1, keepdims=True)
        s["run_shared_share"] = {out: nanmedian(share[:, k])
                                 for k, out in enumerate(t.output_names)
                                 if out in r.loss_outputs}
        pairs: dict[str, float] = {}
        for a, out_a in enumerate(t.output_names):
            for b in range(a + 1, len(t.output_names)):
                values = t.shared_cosine[:, a, b]
                if np.isfinite(values).any():
                    pairs[f"{out_a}|{t.output_names[b]}"] = nanmedian(values)
        s["run_shared_cosine"] = pairs
    s["run_coverage"] = {out: nanmean(t.coverage[:, k])
                         for k, out in enumerate(t.output_names) if out in r.loss_outputs}
    s["run_nonfinite_steps"] = int(np.sum(t.nonfinite))
    s["gradient_norm_steps"] = [float(v) for v in global_gradient_norms(t)]
    s["run_output_loss"] = {out: {"first": float(t.output_loss[0, k]),
                                  "last": float(t.output_loss[-1, k])}
                            for k, out in enumerate(t.output_names)
                            if out in r.loss_outputs}
    return s


def global_gradient_norms(trace: Trace) -> Array:
    """(S,) norm of the whole gradient the optimizer received at each step (before any
    clipping), over the traced parameters."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.sqrt(np.sum(np.square(trace.total_grad_norm), axis=1))


def _through_time_summary(static: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per LSTM: |dL/dh| at the first and last valid step, their ratio, per-output curves."""
    out: dict[str, dict[str, Any]] = {}
    for lstm, norms_t in static["through_time_total"].items():
        valid = _valid_steps(static["lstm_masks"].get(lstm), len(norms_t))
        first, last = norms_t[valid[0]], norms_t[valid[-1]]
        out[lstm] = {"first": float(first), "last": float(last), "steps": len(norms_t),
                     "ratio": float(first / last) if last > 0 else float("nan"),
                     "per_output": {o: d.get(lstm) for o, d in static["through_time"].items()}}
    return out


def shares(norms: dict[str, float | None]) -> dict[str, float | None]:
    """``{k: v / Σ v}`` (None for all when the sum is 0)."""
    total = sum(v for v in norms.values() if v is not None and np.isfinite(v))
    return {k: (float(v / total) if total > 0 and v is not None else None)
            for k, v in norms.items()}


def _pair_cosines(contributions: dict[str, dict[str, Array]], names: list[str]
                  ) -> dict[str, float | None]:
    """``{"a|b": cosine or None}`` for each pair of outputs (None where a gradient is 0)."""
    outs = list(contributions)
    if not names:
        return {}
    cos = G.shared_cosines(contributions, outs, names)
    return {f"{outs[a]}|{outs[b]}": None if np.isnan(cos[a, b]) else float(cos[a, b])
            for a in range(len(outs)) for b in range(a + 1, len(outs))}


def _sample_totals(per_param: dict[str, Array]) -> Float64Array:
    """Per-sample norm over all parameters from ``{param: (N,) norms}``."""
    return np.sqrt(sum(np.square(v.astype(np.float64)) for v in per_param.values()))


def _valid_steps(step_mask: Array | None, T: int) -> list[int]:
    """Processing-order steps where some sample is valid (all steps without a mask)."""
    if step_mask is None:
        return [0, T - 1]
    valid = np.flatnonzero(step_mask.reshape(T, -1).any(axis=1))
    return [int(valid[0]), int(valid[-1])] if valid.size else [0, T - 1]


def nanmedian(values: ArrayLike) -> float:
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(np.median(finite)) if finite.size else float("nan")


def nanmean(values: ArrayLike) -> float:
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(np.mean(finite)) if finite.size else float("nan")
