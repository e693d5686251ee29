"""Fixes tried before they are advised: ``diagnose(..., verify=True)``.

For each finding with a concrete fix (a :class:`~mlstm.diagnostics.remedies.Remedy`) that
no other finding explains, a copy of the model is rebuilt from the **same weights** with
the fix and trained for the **same steps, batches and seed** as the diagnosis' own run.
Both runs are then measured with the same yardstick:

* the losses of the fixed setup, unweighted, per output (a fix that changes an output's
  loss, say MSE to binary cross-entropy, is judged by the loss it advises, for both runs);
* on the validation data when ``diagnose`` was given some, else on the training data (at
  most 512 samples, the ones the loss curves use);
* in the targets' units: a copy trained on standardized targets has its predictions mapped
  back before the loss is computed.

The fix is **verified** when the outputs it is meant to help end with losses lower by at
least ``verify_gain`` (5 %, geometric mean of the after/before ratios); otherwise it is
reported as not verified, with the figures. When the setup could not train at all (mlstm
refused its data, or the fix is marked ``from_start``), the fixed run's own loss at its
start is the "before", and the fix is verified when that loss falls by ``plateau_drop``
(1 %): the setup trains now. Findings that follow from another (``caused_by``) are not tried on
their own: their cause's fix is.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from .._typing import Array
from ..losses import reduce_output_loss
from .measurements import EVAL_BATCH, evaluation_sets, run_copy

if TYPE_CHECKING:
    from ..losses import Loss
    from ..model import Model
    from .remedies import Remedy
    from .report import DiagnosisReport

__all__ = ["verify_findings", "try_remedy", "yardstick_losses"]


def verify_findings(report: DiagnosisReport, model: Model, data: dict[str, Any], steps: int,
                    batch_size: int, seed: int) -> DiagnosisReport:
    """Try every root finding's remedy; sets ``finding.verification`` in place.

    Parameters
    ----------
    report : DiagnosisReport
        With its findings ranked (``caused_by`` set).
    model : Model
        The model as given (the copies start from its weights).
    data : dict
        ``xs``, ``ys``: the training arrays, checked by the model (``accepted``) or as the
        user gave them (a refusal, ``accepted`` False); ``validation``: checked
        ``(xs, ys)`` or None.
    """
    tried: dict[str, dict[str, Any]] = {}
    for finding in report.findings:
        remedy = finding.remedy
        if remedy is None or finding.caused_by is not None:
            continue
        if remedy.key not in tried:
            tried[remedy.key] = try_remedy(report, model, remedy, data, steps, batch_size,
                                           seed)
        finding.verification = tried[remedy.key]
    report.verified = list(tried.values())
    return report


def try_remedy(report: DiagnosisReport, model: Model, remedy: Remedy, data: dict[str, Any],
               steps: int, batch_size: int, seed: int) -> dict[str, Any]:
    """Retrain a copy with ``remedy``; the verification dict (see the module docstring)."""
    base = {"change": remedy.words, "steps": steps, "verified": False}
    if steps == 0:
        return dict(base, words=f"not verified: no training steps to repeat (steps=0); "
                                f"the change would be {remedy.words}")
    from_start = remedy.from_start or report.run is None
    try:
        fixed = remedy.build(model)
        xs = fixed._inputs(data["xs"])
        ys = fixed._targets(remedy.targets_for(model, fixed, data["ys"]), xs[0].shape[0])
    except (ValueError, TypeError) as refusal:
        return dict(base, words=f"not verified: the change ({remedy.words}) could not be "
                                f"applied: {' '.join(str(refusal).split())}")
    prepared = remedy.prepare(fixed, xs, ys)
    losses = {n: l for n, l in zip(fixed.output_names, fixed._losses) if l is not None}
    validation = data.get("validation") if not from_start else None
    on = "validation data" if validation is not None else "training data"
    eval_x, eval_y = (validation if validation is not None else
                      evaluation_sets(xs, ys, None, seed)["train"])
    fixed_x = prepared.transform_x(eval_x)

    def measure(m: Model) -> dict[str, dict[str, float]]:
        return {"yardstick": yardstick_losses(m, losses, fixed_x, eval_y, prepared.inverse,
                                              EVAL_BATCH)}

    with np.errstate(all="ignore"):
        checkpoints, stopped = run_copy(fixed, prepared.xs, prepared.ys, steps,
                                        remedy.batch_size or batch_size, seed, measure)
        curves = checkpoints.curves["yardstick"]
        after = {n: curves[n][-1] for n in losses}
        if from_start:
            before = {n: curves[n][0] for n in losses}
        else:
            trained = report.trained_model
            assert trained is not None          # not from_start: report.run trained it
            before = yardstick_losses(trained, losses, eval_x, eval_y, {}, EVAL_BATCH)
    targeted = [n for n in (remedy.outputs or list(losses)) if n in losses]
    gain = _gain([(before[n], after[n]) for n in targeted])
    # Against another run, the fix must beat it by verify_gain; against its own start (the
    # setup could not train), it must train: fall by as much as a loss that is not on a
    # plateau does (plateau_drop).
    needed = report.thresholds["plateau_drop" if from_start else "verify_gain"]
    verified = gain is not None and gain <= 1 - needed
    result = dict(base, verified=verified, on=on, from_start=from_start, gain=gain,
                  outputs={n: {"loss": losses[n].name, "before": before[n], "after": after[n],
                               "targeted": n in targeted} for n in losses},
                  curves=checkpoints.curves, stopped=None if stopped is None else
                  stopped["message"].splitlines()[0])
    result["words"] = _words(result, needed)
    return result


def yardstick_losses(model: Model, losses: dict[str, Loss], xs: Sequence[Array],
                     ys: Sequence[Array], inverse: dict[str, Callable[[Array], Array]],
                     batch_size: int) -> dict[str, float]:
    """``{output: unweighted loss}`` of ``model`` on ``(xs, ys)`` with ``losses`` (by output
    name), predictions mapped back through ``inverse[output]`` first; the loss is taken
    from the logits where the output is the activation the loss takes them from, as in
    training."""
    N = xs[0].shape[0]
    sums = {n: 0.0 for n in losses}
    for start in range(0, N, batch_size):
        xb = [a[start:start + batch_size] for a in xs]
        tape = model.forward(xb)
        n_rows = xb[0].shape[0]
        for k, name in enumerate(model.output_names):
            loss = losses.get(name)
            if loss is None:
                continue
            y = ys[k][start:start + batch_size]
            pred = tape.outputs[k]
            logits = None
            if name in inverse:
                pred = inverse[name](pred).astype(pred.dtype)
            elif loss.logits_activation is not None:
                logits = model.output_logits(tape, k, loss.logits_activation)
            value, _, _ = reduce_output_loss(loss, y, pred, tape.output_masks[k], logits)
            sums[name] += value * n_rows
    return {n: v / N for n, v in sums.items()}


def _gain(pairs: Sequence[tuple[float, float]]) -> float | None:
    """Geometric mean of after/before over the targeted outputs (0 for a loss that was not
    finite before and is after; None when nothing can be compared)."""
    ratios: list[float] = []
    for before, after in pairs:
        if not np.isfinite(after):
            ratios.append(np.inf)
        elif not np.isfinite(before):
            ratios.append(0.0)
        elif before > 0:
            ratios.append(after / before)
        elif after == 0:
            ratios.append(1.0)
        else:
            ratios.append(np.inf)
    if not ratios:
        return None
    if any(r == np.inf for r in ratios):
        return float("inf")
    if any(r == 0 for r in ratios):
        return 0.0
    return float(np.exp(np.mean(np.log(ratios))))


def _fmt(v: float) -> str:
    return f"{v:.4g}" if np.isfinite(v) else str(v)


def _words(result: dict[str, Any], gain_needed: float) -> str:
    start = "its own loss at step 0" if result["from_start"] else "the run without it"
    parts = []
    for name, o in result["outputs"].items():
        mark = "" if o["targeted"] else " (not targeted)"
        parts.append(f"{name} ({o['loss']}) {_fmt(o['before'])} -> {_fmt(o['after'])}{mark}")
    figures = "; ".join(parts)
    head = (f"retrained from the same weights for {result['steps']} steps with "
            f"{result['change']}, against {start}, on the {result['on']}: {figures}")
    if result["verified"]:
        return f"verified: {head}."
    gain = result["gain"]
    why = ("the loss did not fall" if gain is None or not np.isfinite(gain) or gain >= 1 else
           f"the loss fell by {100 * (1 - gain):.2f}%, less than the {100 * gain_needed:.0f}% "
           "asked for")
    if result.get("stopped"):
        why += f"; the run stopped: {result['stopped']}"
    return f"not verified ({why}): {head}."
