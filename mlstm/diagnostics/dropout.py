"""The diagnosis of a model with dropout, run twice: at the model's rates and at rate 0.

Dropout changes what is measured: a training pass draws masks, so gate pre-activations,
ReLU units, head logits and gradients are those of a random sub-network, and the training
run learns under that noise. At inference there is no dropout: the network that predicts is
the one at rate 0. So for a model with a dropout rate above 0 (``Layer`` options declared
as ``KerasOptions.dropout_rates``: Dropout's ``rate``, LSTM's ``dropout`` and
``recurrent_dropout``, wrapped layers included; :func:`mlstm.layers.dropout.dropout_rates`),
:func:`~mlstm.diagnostics.diagnose`

1. measures the model as it trains: the batch measurements draw masks from a stream seeded
   with ``seed`` (as ``fit`` does), and the training run draws them as ``fit`` does;
2. repeats the whole diagnosis on a copy with every rate set to 0 (same weights, optimizer
   state, data, batches and seed; the model passed in is not changed): :func:`at_rate_zero`;
3. reports what changes (:func:`dropout_summary`): the losses on the training and the
   validation data after the run, each output's share of the gradient on the shared
   weights, the findings raised at only one of the two. The checks
   (:mod:`mlstm.diagnostics.checks.dropout`) turn them into findings: a problem found only
   with dropout off (``dropout_hides``), and a model that learns with dropout off but not
   at its rates (``dropout_underfits``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..layers.dropout import dropout_rates, zero_dropout_rates
from .causes import rank_causes
from .checks import run_checks
from .measurements import static_measurements, training_run
from .report import DiagnosisReport

if TYPE_CHECKING:
    from .._typing import Array
    from ..model import Model
    from .loss_weights import TargetShares

__all__ = ["model_rates", "mask_stream", "at_rate_zero", "dropout_summary",
           "finding_differences"]


def model_rates(model: Model) -> dict[str, float]:
    """``{"layer: option": rate}`` of every dropout rate above 0 in ``model``."""
    return dropout_rates(model.layers)


def mask_stream(seed: int) -> np.random.Generator:
    """The stream the batch measurements draw dropout masks from (seeded by ``seed``)."""
    return np.random.default_rng([seed, 2])


def at_rate_zero(model: Model, data: dict[str, Any], x_batch: list[Array],
                 y_batch: list[Array], xs: list[Array], ys: list[Array], steps: int,
                 batch_size: int, seed: int,
                 validation: tuple[list[Array], list[Array]] | None,
                 limits: dict[str, float], target_shares: TargetShares) -> DiagnosisReport:
    """The diagnosis of a copy of ``model`` with every dropout rate at 0: the same batch,
    the same training run (weights, optimizer state, batches, seed), the same checks."""
    twin = model.clone()
    if model.optimizer.iterations:
        twin.optimizer.set_state(model.optimizer.get_state())
    zero_dropout_rates(twin.layers)
    with np.errstate(over="ignore", invalid="ignore"):
        static = static_measurements(twin, x_batch, y_batch)
    run = training_run(twin, xs, ys, steps, batch_size, seed, validation) if steps else None
    if run:
        with np.errstate(over="ignore", invalid="ignore"):
            run["static"] = static_measurements(run["model"], x_batch, y_batch)
    with np.errstate(all="ignore"):
        report = DiagnosisReport(twin, data, static, run, limits, target_shares=target_shares)
        report.findings = run_checks(report)
        rank_causes(report)
    return report


def _last(curves: dict[str, Any] | None, name: str, key: str = "total") -> float | None:
    values = ((curves or {}).get(name) or {}).get(key)
    return float(values[-1]) if values else None


def dropout_summary(r: DiagnosisReport, zero: DiagnosisReport,
                    rates: dict[str, float]) -> dict[str, Any]:
    """What changes between the diagnosis at the model's rates (``r``) and at rate 0.

    ``rates``; ``steps``; ``train_loss`` / ``validation_loss``: ``{"rates": value at the end
    of the run at the model's rates, "zero": at rate 0}`` (weighted totals on the fixed
    training samples and on the validation data, in inference mode; None without a run or
    validation data); ``constant_prediction``: the training loss of predicting the
    targets' mean; ``shared_share``: ``{"rates": {output: share}, "zero": {...}}``;
    ``only_at_zero`` / ``only_at_rates``: the titles of the findings raised at one only.
    """
    curves, zero_curves = r.summary.get("curves"), zero.summary.get("curves")
    shares: dict[str, Any] = {}
    for key, report in (("rates", r), ("zero", zero)):
        s = report.summary
        shares[key] = s.get("run_shared_share") or s.get("shared_share") or {}
    return {
        "rates": dict(rates),
        "steps": r.summary.get("steps", 0),
        "train_loss": {"rates": _last(curves, "train"), "zero": _last(zero_curves, "train")},
        "validation_loss": {"rates": _last(curves, "validation"),
                            "zero": _last(zero_curves, "validation")},
        "constant_prediction": (r.summary.get("baseline") or {}).get("total"),
        "shared_share": shares,
    }


def finding_differences(r: DiagnosisReport, zero: DiagnosisReport) -> dict[str, list[str]]:
    """``{"only_at_zero": [title, ...], "only_at_rates": [...]}``: the findings raised by
    one of the two diagnoses only (the dropout findings themselves left out)."""
    skip = ("dropout_hides", "dropout_underfits")
    mine = [f.title for f in r.findings if f.code not in skip]
    theirs = [f.title for f in zero.findings if f.code not in skip]
    return {"only_at_zero": [t for t in theirs if t not in mine],
            "only_at_rates": [t for t in mine if t not in theirs]}
