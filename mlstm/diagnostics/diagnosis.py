"""``diagnose(model, x, y)``: measure why a model does not learn, and say it in words.

Two kinds of measurement (:mod:`mlstm.diagnostics.measurements`):

1. **On the model as it is** (one batch of ``batch_size`` samples drawn from the data):
   each output's gradient on each layer, which samples each output's loss reaches, the
   gradient through time of each recurrent layer, gate and head saturation; plus the data
   (scales, NaN/inf, BCE targets) and the compile settings (MSE on a sigmoid head).
2. **On a copy trained for** ``steps`` optimizer steps (the model passed in is not
   changed): a :class:`~mlstm.measure.Trace` of every step's per-output gradients,
   updates and update-to-weight ratios, and the loss before and after.

A model with dropout is measured with masks, as training draws them, and the whole
diagnosis is repeated on a copy with every rate at 0 (:mod:`mlstm.diagnostics.dropout`);
what changes becomes findings too. The measurements' training passes leave the model's
moving statistics (BatchNormalization) as they were.

The figures (:mod:`~mlstm.diagnostics.summary`) become findings
(:mod:`~mlstm.diagnostics.checks`) when they cross a threshold (:data:`THRESHOLDS`, which
can be overridden per call); each finding carries the figure that triggered it and a
suggested fix. Findings that follow from another are linked to it, causes first
(:mod:`~mlstm.diagnostics.causes`). With ``verify=True`` each cause's fix is tried: a copy
is retrained from the same weights with it, for the same steps and seed, and the fix is
reported verified or not (:mod:`~mlstm.diagnostics.verify`). The report also suggests loss
weights that balance the outputs' gradients on the shared weights
(:mod:`~mlstm.diagnostics.loss_weights`).
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Mapping, Sequence, Union

import numpy as np

from .. import validation
from .._typing import Array, ArrayLike
from ..model import Model
from .causes import rank_causes
from .checks import run_checks
from .dropout import (at_rate_zero, dropout_summary, finding_differences, mask_stream,
                      model_rates)
from .findings import FINDING_CODES, THRESHOLDS, Finding
from .loss_weights import TargetShares, check_target_shares
from .measurements import data_measurements, named_arrays, static_measurements, training_run
from .report import DiagnosisReport
from .verify import verify_findings

__all__ = ["diagnose", "DiagnosisReport", "Finding", "THRESHOLDS", "FINDING_CODES", "ModelData"]

#: What ``fit`` takes as ``x`` or ``y``: one array, a list (one per model input or output, in
#: order) or a dict by input or output name.
ModelData = Union[ArrayLike, Sequence[ArrayLike], Mapping[str, ArrayLike]]


def diagnose(model: Model, x: ModelData, y: ModelData, steps: int = 50, batch_size: int = 32,
             seed: int = 0, thresholds: dict[str, float] | None = None,
             target_shares: TargetShares = None,
             validation_data: tuple[ModelData, ModelData] | None = None,
             verify: bool = False) -> DiagnosisReport:
    """Measure why ``model`` is not learning on ``(x, y)``.

    Parameters
    ----------
    model : Model
        Compiled (loss, loss weights and optimizer are part of what is diagnosed). It is not
        modified: the training run uses a copy (weights and optimizer state included).
    x, y : array, list of arrays or dict of arrays by name, as for ``fit``
        Inputs (N, T, D) and targets (N, ...) per model input and output.
    steps : int, default 50
        Optimizer steps to trace on the copy (0: only the measurements on the model as it
        is). Batches of ``batch_size``, shuffled with ``seed``.
    batch_size : int, default 32
        Also the size of the batch the static measurements use (Keras' default, 32).
    seed : int, default 0
        Draws that batch and shuffles the training run.
    thresholds : dict str -> float, optional
        Overrides for :data:`THRESHOLDS` (when a figure becomes a finding), by name; an
        unknown name is a ValueError listing the known ones.
    target_shares : dict str -> float or sequence of float, optional
        The share of the gradient norm on the shared weights each output with a loss should
        get, for ``report.suggested_loss_weights`` (default: equal shares).
    validation_data : (x_val, y_val), optional
        Measured along the training run (the loss curves) and used to judge the fixes
        tried by ``verify``.
    verify : bool, default False
        Try each fix before advising it: retrain a copy from the same weights with the fix
        for the same ``steps`` and ``seed``, and report each output's loss before and after
        (``finding.verification``; ``report.verified``). One extra training run per
        distinct fix. The command line does this by default.

    Returns
    -------
    DiagnosisReport
        ``str(report)`` reads as text; ``report.to_dict()`` is JSON-serializable;
        ``report.findings`` lists :class:`Finding`; ``report.suggested_loss_weights`` gives
        balancing loss weights; ``report.plot(path)`` draws it.

    Raises
    ------
    TypeError, ValueError
        For arguments it refuses (naming the argument), and for data mlstm refuses when no
        finding explains the refusal (a wrong shape, a missing input). Data with NaN/inf or
        BCE targets outside [0, 1] gives a report with that finding instead. A keyword
        ``diagnose`` does not take is a TypeError naming it.

    Examples
    --------
    Two outputs on one LSTM, the second at loss weight 0 (switched off), traced for a few
    steps: the weights only the second output uses get no gradient.

    >>> import numpy as np, mlstm
    >>> x = mlstm.Input(shape=(5, 3), name="x")
    >>> h = mlstm.LSTM(4, name="lstm", seed=0)(x)
    >>> a = mlstm.Dense(1, name="a", seed=1)(h)
    >>> b = mlstm.Dense(1, name="b", seed=2)(h)
    >>> model = mlstm.Model(x, [a, b])
    >>> model.compile(optimizer="adam", loss=["mse", "mse"], loss_weights=[1.0, 0.0])
    >>> rng = np.random.default_rng(0)
    >>> xs = rng.normal(size=(64, 5, 3))
    >>> report = mlstm.diagnose(model, xs, [xs[:, -1, :1], xs[:, 0, :1]], steps=4, seed=0)
    >>> report.active_outputs
    ['a']
    >>> "no_gradient" in report.codes
    True
    >>> print(report)                                    # doctest: +ELLIPSIS
    Diagnosis of model 'model'
      loss:      1 * mean_squared_error(a) + 0 * mean_squared_error(b)
    ...
    """
    limits = _checked_arguments(model, steps, batch_size, seed, thresholds)
    if not isinstance(verify, (bool, np.bool_)):
        raise TypeError(f"diagnose: verify must be True or False, got {verify!r}")
    target = check_target_shares(target_shares, [n for n, loss in
                                                 zip(model.output_names, model._losses)
                                                 if loss is not None])
    # The data is measured as given, before mlstm's checks refuse NaN/inf or BCE targets
    # outside [0, 1]: those refusals become findings instead of an exception.
    data = data_measurements(model, named_arrays(x, model.input_names),
                             named_arrays(y, model.output_names))
    try:
        xs = model._inputs(x)
        ys = model._targets(y, xs[0].shape[0])
    except (ValueError, TypeError) as refusal:
        with np.errstate(all="ignore"):
            report = DiagnosisReport(model, data, None, None, limits, stopped=str(refusal),
                                     target_shares=target)
            report.findings = run_checks(report)
            rank_causes(report)
        if not any(f.code in EXPLAINS_REFUSAL for f in report.findings):
            raise
        if verify:
            raw = {"xs": _as_list(x, model.input_names), "ys": _as_list(y, model.output_names),
                   "validation": None}
            verify_findings(report, model, raw, steps, batch_size, seed)
        return report
    val = _checked_validation(model, validation_data)
    N = xs[0].shape[0]

    rng = np.random.default_rng(seed)
    batch = np.sort(rng.choice(N, size=min(batch_size, N), replace=False))
    x_batch, y_batch = [a[batch] for a in xs], [a[batch] for a in ys]
    # dropout draws masks in the batch measurements as in training (a stream seeded by
    # ``seed``); the whole diagnosis is repeated at rate 0 below
    rates = model_rates(model)
    with np.errstate(over="ignore", invalid="ignore"):   # overflowing losses are reported
        static = static_measurements(model, x_batch, y_batch, rng=mask_stream(seed))
    # A copy of weights holding NaN/inf cannot be made (set_weights refuses them), and would
    # train nothing: the nonfinite finding names them, on the batch only.
    finite = not any(data["nonfinite_weights"].values())
    trainable = steps and finite
    run = training_run(model, xs, ys, steps, batch_size, seed, val) if trainable else None
    if run:
        with np.errstate(over="ignore", invalid="ignore"):   # a diverged copy overflows
            run["static"] = static_measurements(run["model"], x_batch, y_batch,
                                                rng=mask_stream(seed))

    # Figures from diverged weights may be inf or nan: they are measured and reported (the
    # nonfinite finding), not warned about.
    with np.errstate(all="ignore"):
        report = DiagnosisReport(model, data, static, run, limits, target_shares=target)
        if rates and finite:
            zero = at_rate_zero(model, data, x_batch, y_batch, xs, ys, steps if run else 0,
                                batch_size, seed, val, limits, target)
            report.dropout = {"report": zero, "rates": rates}
            report.summary["dropout"] = dropout_summary(report, zero, rates)
        report.findings = run_checks(report)
        rank_causes(report)
        if report.dropout:
            report.summary["dropout"].update(finding_differences(report, zero))
        if verify and (run is not None or not steps):   # steps=0: says it cannot
            verify_findings(report, model, {"xs": xs, "ys": ys, "validation": val}, steps,
                            batch_size, seed)
    return report


#: Findings that say why mlstm refused the data (the others found on refused data, such as
#: constant inputs, do not: the refusal is raised then).
EXPLAINS_REFUSAL = ("nonfinite", "bce_targets", "class_target_format", "single_unit_softmax",
                    "categorical_on_one_unit", "categorical_target_sums")


def _as_list(data: Any, names: Sequence[str]) -> list[Array]:
    """The user's arrays in the model's order (a refusal's data, as given)."""
    if isinstance(data, dict):
        return [np.asarray(data.get(n)) for n in names]
    if isinstance(data, (list, tuple)) and not (len(names) == 1 and len(data) != 1):
        return [np.asarray(a) for a in data]
    return [np.asarray(data)]


def _checked_validation(model: Model, validation_data: Any
                        ) -> tuple[list[Array], list[Array]] | None:
    """``(xs, ys)`` checked as ``fit`` checks its validation data, or None."""
    if validation_data is None:
        return None
    if not isinstance(validation_data, (list, tuple)) or len(validation_data) != 2:
        raise ValueError("diagnose: validation_data must be a pair (x_val, y_val)")
    with validation.prefixed("validation_data"):
        vx = model._inputs(validation_data[0])
        return vx, model._targets(validation_data[1], vx[0].shape[0])


def _checked_arguments(model: object, steps: object, batch_size: object, seed: object,
                       thresholds: object) -> dict[str, float]:
    """The thresholds to use; TypeError/ValueError naming any argument refused."""
    if not isinstance(model, Model):
        raise TypeError(f"diagnose: model must be an mlstm.Model, got {type(model).__name__}")
    model._require_compiled("diagnose")
    for name, value, least in (("steps", steps, 0), ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise ValueError(f"diagnose: {name} must be an int >= {least}, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"diagnose: seed must be a non-negative int, got {seed!r}")
    limits = dict(THRESHOLDS)
    if thresholds:
        if not isinstance(thresholds, dict):
            raise TypeError("diagnose: thresholds must be a dict by name, got "
                            f"{type(thresholds).__name__}")
        unknown = sorted(set(thresholds) - set(THRESHOLDS))
        if unknown:
            raise ValueError(f"diagnose: unknown thresholds {unknown}; known: {sorted(THRESHOLDS)}")
        for name, value in thresholds.items():
            if (isinstance(value, bool) or not isinstance(value, numbers.Real)
                    or not math.isfinite(value)):
                raise ValueError(f"diagnose: threshold {name!r} must be a finite number, "
                                 f"got {value!r}")
        limits.update(thresholds)
    return limits
