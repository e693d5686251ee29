"""Findings on outputs meant to be switched off: a head at loss weight 0, or without a loss,
that still changes weights.

Multiplying a loss by 0 does not always take it out of training. Three ways it stays in,
each measured:

* its loss is not finite on the batch: ``0 × inf`` is NaN, and the NaN reaches the total
  loss and every weight the output shares;
* its own layer lies on the path to another output that has a loss: that loss trains it,
  so its predictions serve the other output, not its own targets;
* its own weights move during the run though no loss reaches them: weight decay (or
  another optimizer rule that moves weights without a gradient) changes them every step.

Each check reads a :class:`~mlstm.diagnostics.report.DiagnosisReport` ``r`` and returns a
list of :class:`~mlstm.diagnostics.findings.Finding`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import numpy as np

from ..findings import Finding
from ..remedies import Remedy

if TYPE_CHECKING:
    from ..report import DiagnosisReport

__all__ = ["check_switched_off"]


def _switched_off(r: DiagnosisReport) -> list[str]:
    return [o for o in r.output_names if r.losses[o] is None or r.loss_weights[o] == 0]


def _reach(r: DiagnosisReport, outputs: Iterable[str]) -> set[str]:
    """The layers whose weights the outputs ``outputs`` depend on (their own included)."""
    layers: set[str] = set()
    for o in outputs:
        head = r.output_layers[o]
        layers |= {head} | r.upstream_of_layer.get(head, set())
    return layers


def _median_ratio(r: DiagnosisReport, layer: str) -> float | None:
    """Median |Δθ|/|θ| per step of ``layer``'s traced weights (None when not traced)."""
    ups = r.summary.get("updates", {})
    values = [u["median_ratio"] for p, u in ups.items() if p.split("/", 1)[0] == layer
              and np.isfinite(u["median_ratio"])]
    return max(values) if values else None


def check_switched_off(r: DiagnosisReport, found: list[Finding]) -> list[Finding]:
    out = []
    active = [o for o in r.output_names if r.losses[o] is not None and r.loss_weights[o] != 0]
    trained_by_others = _reach(r, active)
    for name in _switched_off(r):
        how = "has loss weight 0" if r.losses[name] is not None else "has no loss"
        head = r.output_layers[name]
        k = r.output_names.index(name)
        value = r.static["output_losses"][k] if r.static is not None else None
        if value is not None and not np.isfinite(value):
            out.append(Finding(
                "switched_off_output", "warning",
                f"Output {name!r} at loss weight 0 still reaches the shared weights",
                f"Output {name!r} {how}, but its loss on the batch is {value}: 0 x {value} "
                "is NaN, so the total loss and the gradient of every weight it shares are NaN.",
                f"To switch an output off, give it no loss (compile(loss={{..., {name!r}: "
                "None})) instead of weight 0; and check its targets (a loss that overflows "
                "means targets or predictions far beyond the dtype's range).",
                {"output": name, "loss": value, "nonfinite_loss": True},
                remedy=Remedy(f"no-loss:{name}", f"no loss for {name!r} (loss=None)",
                              outputs=active or None, losses={name: None})))
            continue
        ratio = _median_ratio(r, head)
        if head in trained_by_others and ratio:
            users = [o for o in active if head in _reach(r, [o])]
            out.append(Finding(
                "switched_off_output", "warning",
                f"Output {name!r} {how}, but other losses train its layer",
                f"Output {name!r} {how}, yet its layer {head!r} lies on the path to "
                f"{', '.join(map(repr, users))}, whose loss trains it: its weights moved "
                f"{ratio:.2g} of their norm per step (median over the run). Its predictions "
                f"are whatever {users[0]!r} needs, not its own targets.",
                f"If {name!r} is an auxiliary head, give the other outputs their own path (a "
                f"separate layer after the shared ones); if {head!r} is meant to be shared, "
                f"read {name!r}'s predictions as a by-product.",
                {"output": name, "layer": head, "trained_by": users, "update_ratio": ratio},
                why_not_tried="the fix changes the architecture"))
            continue
        own = {p for p in r.trainable_names if p.split("/", 1)[0] not in trained_by_others
               and p.split("/", 1)[0] in _reach(r, [name])}
        moved = {p: r.summary["updates"][p]["median_ratio"] for p in sorted(own)
                 if p in r.summary.get("updates", {})
                 and r.summary["updates"][p]["median_ratio"] > 0}
        if moved:
            decay = r.optimizer_config.get("weight_decay")
            out.append(Finding(
                "switched_off_output", "warning",
                f"Output {name!r} {how}, but its weights still change",
                f"Output {name!r} {how}, so no gradient reaches its own weights, yet they "
                "moved: " + ", ".join(f"{p} {v:.2g} of its norm per step" for p, v in
                                      moved.items())
                + (f". The optimizer's weight_decay={decay:g} shrinks every weight each step, "
                   "with or without a gradient." if decay else "."),
                f"Mark {name!r}'s layers trainable=False to keep them as they are, or "
                "leave the output out of the model while it has no loss.",
                {"output": name, "moved": moved, "weight_decay": decay},
                why_not_tried="freezing layers is a choice about what they are for"))
    return out
