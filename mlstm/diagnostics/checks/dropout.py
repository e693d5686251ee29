"""Findings from the diagnosis of a model with dropout, repeated at rate 0
(:mod:`mlstm.diagnostics.dropout`).

* ``dropout_hides``: a finding the diagnosis raises with every rate at 0 and not at the
  model's rates. The measurements at the model's rates see the random sub-networks dropout
  trains; at inference there is no dropout, and the problem is there. The finding carries
  the hidden one's figures, fix and remedy.
* ``dropout_underfits``: over the same steps from the same weights, the loss on the
  training data falls below that of a constant prediction by less than a quarter
  (``dropout_learned_fraction``) of what it falls at rate 0, and not because dropout keeps
  the validation loss lower: the rates keep the model from learning (in this many steps).

Each check reads ``r.dropout`` (``{"report": the report at rate 0, "rates": {...}}``, None
for a model without dropout) and ``r.summary["dropout"]``.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..findings import Finding, indent
from ..remedies import Remedy

if TYPE_CHECKING:
    from ..report import DiagnosisReport

__all__ = ["check_dropout_hides", "check_dropout_underfits", "DROPOUT_CODES"]

#: The findings of this module (left out when comparing the two diagnoses).
DROPOUT_CODES = ("dropout_hides", "dropout_underfits")


def _rates_words(rates: Mapping[str, float]) -> str:
    return ", ".join(f"{name}={rate:g}" for name, rate in rates.items())


def check_dropout_hides(r: DiagnosisReport, found: list[Finding]) -> list[Finding]:
    comparison = getattr(r, "dropout", None)
    if not comparison:
        return []
    zero = comparison["report"]
    here = {f.title for f in found}
    out = []
    for hidden in zero.findings:
        if hidden.title in here or hidden.code in DROPOUT_CODES:
            continue
        cause = hidden.cause            # at rate 0; its fix is the one to try
        because = ("" if cause is None else
                   f"\nAt rate 0 it follows from {cause.code} ({cause.title}): "
                   f"{hidden.cause_reason}.")
        fix = hidden.fix if cause is None else f"{cause.fix} (the cause, {cause.code})"
        source = hidden if cause is None else cause
        out.append(Finding(
            "dropout_hides", hidden.severity, f"With dropout off: {hidden.title}",
            f"With every dropout rate at 0 ({_rates_words(comparison['rates'])} set to 0, on a "
            "copy: same weights, batch, training steps and seed), diagnose finds this; at the "
            "model's rates, where the measurements draw dropout masks as training does, it "
            "does not. Dropout's noise hides it, and at inference, without dropout, the model "
            f"runs as at rate 0. At rate 0 ({hidden.code}):\n{indent(hidden.message, '  ')}"
            + because,
            fix,
            {"hidden": hidden.code, "hidden_title": hidden.title,
             "hidden_measured": hidden.measured, "cause": None if cause is None else cause.code,
             "rates": comparison["rates"]},
            remedy=_own_key(source.remedy), why_not_tried=source.why_not_tried))
    return out


def _own_key(remedy: Remedy | None) -> Remedy | None:
    """The remedy under a key of its own: the finding at rate 0 may name other units or
    figures than a finding of the same kind at the model's rates, so it is tried apart."""
    if remedy is None:
        return None
    mine = copy.copy(remedy)
    mine.key = "dropout-off:" + remedy.key
    return mine


def check_dropout_underfits(r: DiagnosisReport, found: list[Finding]) -> list[Finding]:
    comparison = getattr(r, "dropout", None)
    figures = r.summary.get("dropout")
    if not comparison or not figures:
        return []
    train, base = figures["train_loss"], figures["constant_prediction"]
    at_rates, at_zero = train["rates"], train["zero"]
    if at_rates is None or at_zero is None or not base or base <= 0:
        return []
    # what each run learned: how far its loss fell below that of a constant prediction
    if not at_zero <= r.thresholds["dropout_underfit_ratio"] * base:
        return []                       # at rate 0 it does not learn either
    learned = (base - at_rates) / (base - at_zero)
    if learned >= r.thresholds["dropout_learned_fraction"]:
        return []
    val = figures["validation_loss"]
    if val["rates"] is not None and val["zero"] is not None and val["zero"] >= val["rates"]:
        return []                       # dropout does its work: it generalizes better
    rates = comparison["rates"]
    val_words = ""
    if val["rates"] is not None and val["zero"] is not None:
        val_words = (f" On the validation data: {val['rates']:.4g} at the model's rates, "
                     f"{val['zero']:.4g} at rate 0.")
    halved = {name: rate / 2 for name, rate in rates.items()}
    return [Finding(
        "dropout_underfits", "warning", "Dropout keeps the model from learning",
        f"Trained for {figures['steps']} steps from the same weights on the same batches, "
        f"the loss on a fixed set of training samples ends at {at_rates:.4g} with the "
        f"model's dropout rates ({_rates_words(rates)}) and at {at_zero:.4g} with every rate "
        f"at 0; predicting the targets' mean scores {base:.4g}. At its rates the model "
        f"gains {100 * learned:.0f}% of what it gains at rate 0.{val_words} Each step trains "
        "a random sub-network too thinned to fit the data: the model underfits.",
        "Lower the dropout rates (halved: " + _rates_words(halved) + "), most of all the "
        "largest. Keep dropout where "
        "the validation loss at rate 0 rises while the training loss falls (overfitting); "
        "it may also simply need more steps than diagnose ran.",
        {"rates": rates, "train_loss": at_rates, "train_loss_zero": at_zero,
         "constant_prediction": base, "learned_fraction": learned,
         "validation_loss": val["rates"],
         "validation_loss_zero": val["zero"]},
        remedy=Remedy("dropout-halved", "dropout rates halved (" + _rates_words(halved) + ")",
                      dropout_rates=halved))]
