"""Suggested loss weights: each output a chosen share of the gradient on the shared weights.

The total loss is ``L = Σ_k w_k L_k``, and on the parameters several outputs share (the
LSTMs and whatever lies before the heads split) each output pushes with
``n_k = ||∇_shared (w_k L_k)|| = |w_k| u_k``, where ``u_k = ||∇_shared L_k||`` does not
depend on the weights. Output k's share of that push is ``n_k / Σ_j n_j``. Weights

    w_k' = c · t_k / u_k,      c such that Σ_k w_k' = Σ_k w_k,

give each output exactly the share ``t_k`` at the current parameters (equal shares,
``t_k = 1/K``, is the balancing target of GradNorm, Chen et al. 2018). The prediction is
exact at the weights it was measured at, because a contribution is linear in its loss
weight; as training moves the parameters, the shares drift, so the suggestion is a place to
start, measured again after some training.

Reweighting changes how much each output counts, not the direction it pulls in: when two
outputs' gradients on the shared weights point against each other (negative cosine), no
choice of weights removes that conflict, and the text says so.
"""
from __future__ import annotations

import math
import textwrap
from typing import TYPE_CHECKING, Any, Sequence, Union

import numpy as np

from .findings import jsonable, run_or_static, where

if TYPE_CHECKING:
    from .findings import ReportFields

#: ``target_shares``: one share per output with a loss, by output name or in the model's
#: order (None: equal shares).
TargetShares = Union[dict[str, float], Sequence[float], "np.ndarray[Any, Any]", None]

__all__ = ["LossWeightSuggestion", "suggest_loss_weights", "check_target_shares", "TargetShares"]


def check_target_shares(target_shares: object, loss_outputs: list[str]) -> dict[str, float]:
    """``{output: share}`` summing to 1 from a dict by output name or a sequence (one per
    output with a loss, in the model's order); ValueError/TypeError naming the problem."""
    if target_shares is None:
        return {o: 1.0 / len(loss_outputs) for o in loss_outputs} if loss_outputs else {}
    if isinstance(target_shares, dict):
        unknown = sorted(set(map(str, target_shares)) - set(loss_outputs))
        missing = [o for o in loss_outputs if o not in target_shares]
        if unknown or missing:
            raise ValueError(f"target_shares: give one share for each output with a loss, "
                             f"{loss_outputs}; unknown {unknown}, missing {missing}")
        values = [target_shares[o] for o in loss_outputs]
    elif isinstance(target_shares, (list, tuple, np.ndarray)):
        values = list(target_shares)
        if len(values) != len(loss_outputs):
            raise ValueError(f"target_shares: {len(values)} values for {len(loss_outputs)} "
                             f"outputs with a loss ({loss_outputs})")
    else:
        raise TypeError("target_shares must be a dict by output name or a list (one share per "
                        f"output with a loss), got {type(target_shares).__name__}")
    shares: list[float] = []
    for output, value in zip(loss_outputs, values):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer,
                                                             np.floating)):
            raise TypeError(f"target_shares[{output!r}] must be a number, got {value!r}")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"target_shares[{output!r}] must be finite and >= 0, got {value}")
        shares.append(float(value))
    if sum(shares) <= 0:
        raise ValueError(f"target_shares must not all be 0, got {values}")
    return {o: v / sum(shares) for o, v in zip(loss_outputs, shares)}


class LossWeightSuggestion:
    """Loss weights for a target share of the gradient norm on the shared weights.

    Attributes
    ----------
    weights : dict output -> float
        The suggested loss weights, for every output with a loss (``compile(loss_weights=
        suggestion.weights)`` accepts the dict).
    current : dict output -> float
        The loss weights now.
    target : dict output -> float
        The shares asked for (sum 1).
    shares_before, shares_after : dict output -> float
        Each output's share of the gradient norm on the shared weights at the current
        parameters, measured with the current weights and predicted with the suggested ones
        (exact: a contribution is linear in its weight).
    unreachable : list of str
        Outputs whose loss sends no gradient to the shared weights (or a non-finite one):
        no weight gives them a share; their weight is left as it is.
    conflicts : dict "a|b" -> float
        Pairs of outputs whose gradients on the shared weights have a negative cosine
        (below ``conflict_cosine``, the threshold of the ``conflicting_outputs`` finding,
        the text calls it a conflict; above, a slight opposition).
    shared_layers : list of str
    measured_on : str
        Where the cosines come from (the batch, or the median over the training steps).
    """

    def __init__(self, weights: dict[str, float], current: dict[str, float],
                 target: dict[str, float], shares_before: dict[str, float | None],
                 shares_after: dict[str, float | None], unreachable: list[str],
                 conflicts: dict[str, float], shared_layers: list[str], measured_on: str,
                 conflict_cosine: float) -> None:
        self.weights, self.current, self.target = weights, current, target
        self.conflict_cosine = conflict_cosine
        self.shares_before, self.shares_after = shares_before, shares_after
        self.unreachable, self.conflicts = unreachable, conflicts
        self.shared_layers, self.measured_on = shared_layers, measured_on

    def to_dict(self) -> dict[str, Any]:
        return jsonable({k: v for k, v in vars(self).items()})

    def lines(self) -> list[str]:
        """The report's section, as lines of text."""
        equal = len(set(round(v, 12) for v in self.target.values())) == 1
        aim = ("the same share" if equal else "the target share")
        lines = textwrap.wrap(
            f"Suggested loss weights: each output {aim} of the gradient norm on the shared "
            f"weights ({', '.join(self.shared_layers)}), measured on the batch at the current "
            "weights; 'after' is predicted, and exact at these weights:", 96)
        width = max([len(o) for o in self.weights] + [len("output")])
        lines.append("  " + "output".ljust(width) + "   " + "weight now".rjust(10) + " -> "
                     + "suggested".ljust(10) + "   " + "share now".rjust(9) + " -> "
                     + ("after" if equal else "after      target"))
        for o, w in self.weights.items():
            lines.append("  " + o.ljust(width) + f"   {self.current[o]:10.3g} -> {w:<10.3g}   "
                         + _pct(self.shares_before.get(o)).rjust(9) + " -> "
                         + _pct(self.shares_after.get(o)).rjust(7)
                         + ("" if equal else "   " + _pct(self.target[o]).rjust(7)))
        lines.append("  compile(..., loss_weights=["
                     + ", ".join(f"{w:.3g}" for w in self.weights.values()) + "])")
        for o in self.unreachable:
            lines += textwrap.wrap(
                f"{o!r} sends no gradient to the shared weights at these weights: no loss "
                "weight gives it a share (see the findings); its weight is left as it is.",
                96, initial_indent="  ", subsequent_indent="    ")
        for pair, cos in self.conflicts.items():
            a, b = pair.split("|")
            if cos <= self.conflict_cosine:
                text = (f"{a!r} and {b!r} pull the shared weights in opposite directions "
                        f"(cosine {cos:+.2f}, {self.measured_on}): reweighting changes how much "
                        "each output counts, not where it pulls, so it cannot fix a conflict.")
            else:
                text = (f"{a!r} and {b!r} are slightly opposed on the shared weights (cosine "
                        f"{cos:+.2f}, {self.measured_on}): reweighting cannot remove that "
                        "opposition either; it only trades one output's progress for the "
                        "other's.")
            lines += textwrap.wrap(text, 96, initial_indent="  ", subsequent_indent="    ")
        return lines

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def __repr__(self) -> str:
        return f"<LossWeightSuggestion {self.weights}>"


def _pct(v: float | None) -> str:
    if v is None or not np.isfinite(v):
        return "n/a"
    return f"{100 * v:.1e}%" if 0 < v < 1e-4 else f"{100 * v:.2f}%"


def suggest_loss_weights(r: ReportFields, target_shares: TargetShares = None
                         ) -> LossWeightSuggestion | None:
    """Loss weights giving each output ``target_shares`` (default equal) of the gradient norm
    on the shared weights, from the report's measurements at the current weights.

    Parameters
    ----------
    r : DiagnosisReport
    target_shares : dict or sequence, optional
        One share per output with a loss (normalized to sum 1); equal shares by default.

    Returns
    -------
    LossWeightSuggestion or None
        None when there is nothing to balance: the measurements did not run, fewer than two
        outputs have a loss, or no parameter is shared by two of them.
    """
    outputs = list(r.loss_outputs)
    if r.static is None or len(outputs) < 2 or not r.shared_names:
        return None
    target = check_target_shares(target_shares, outputs)
    current = {o: r.loss_weights[o] for o in outputs}
    unweighted = r.summary["unweighted_shared_norm"]
    reachable = [o for o in outputs if np.isfinite(unweighted[o]) and unweighted[o] > 0]
    unreachable = [o for o in outputs if o not in reachable]
    weights = dict(current)
    if reachable and sum(target[o] for o in reachable) > 0:
        raw = {o: target[o] / unweighted[o] for o in reachable}
        total = sum(abs(current[o]) for o in reachable)
        scale = (total if total > 0 else len(reachable)) / sum(raw.values())
        weights.update({o: float(raw[o] * scale) for o in reachable})

    def shares_with(w: dict[str, float]) -> dict[str, float | None]:
        pushes = {o: abs(w[o]) * unweighted[o] if o in reachable else 0.0 for o in outputs}
        total = sum(pushes.values())
        return {o: (p / total if total > 0 else None) for o, p in pushes.items()}

    cosines = run_or_static(r, "run_shared_cosine", "shared_cosine")
    conflicts = {pair: float(c) for pair, c in cosines.items()
                 if c is not None and np.isfinite(c) and c < 0}
    return LossWeightSuggestion(
        weights=weights, current=current, target=target,
        shares_before={o: r.summary["shared_share"].get(o) for o in outputs},
        shares_after=shares_with(weights), unreachable=unreachable, conflicts=conflicts,
        shared_layers=list(r.summary["shared_layers"]),
        measured_on=where(r, "run_shared_cosine"),
        conflict_cosine=r.thresholds["conflict_cosine"])
