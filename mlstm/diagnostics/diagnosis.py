"""``diagnose(model, x, y)``: measure why a model does not learn, and say it in words.

Two kinds of measurement (:mod:`mlstm.diagnostics.measurements`):

1. **On the model as it is** (one batch of ``batch_size`` samples drawn from the data):
   each output's gradient on each layer, which samples each output's loss reaches, the
   gradient through time of each recurrent layer, gate and head saturation; plus the data
   (scales, NaN/inf, BCE targets) and the compile settings (MSE on a sigmoid head).
2. **On a copy trained for** ``steps`` optimizer steps (the model passed in is not
   changed): a :class:`~mlstm.measure.Trace` of every step's per-output gradients,
   updates and update-to-weight ratios, and the loss before and after.

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

import numbers

import numpy as np

from .. import validation
from ..model import Model
from .causes import rank_causes
from .checks import run_checks
from .findings import FINDING_CODES, THRESHOLDS, Finding
from .loss_weights import check_target_shares
from .measurements import data_measurements, named_arrays, static_measurements, training_run
from .report import DiagnosisReport
from .verify import verify_findings

__all__ = ["diagnose", "DiagnosisReport", "Finding", "THRESHOLDS", "FINDING_CODES"]


def diagnose(model, x, y, steps=50, batch_size=32, seed=0, thresholds=None,
             target_shares=None, validation_data=None, verify=False):
    """Measure why ``model`` is not learning on ``(x, y)``.

    Parameters
    ----------
    model : Model
        Compiled (loss, loss weights and optimizer are part of what is diagnosed). It is not
        modified: the training run uses a copy (weights and optimizer state included).
    x, y : arrays, lists or dicts, as for ``fit``
        Inputs (N, T, D) and targets (N, ...) per model input and output.
    steps : int
        Optimizer steps to trace on the copy (0: only the measurements on the model as it
        is). Batches of ``batch_size``, shuffled with ``seed``.
    batch_size : int
        Also the size of the batch the static measurements use (Keras' default, 32).
    seed : int
        Draws that batch and shuffles the training run.
    thresholds : dict, optional
        Overrides for :data:`THRESHOLDS` (when a figure becomes a finding).
    target_shares : dict or sequence, optional
        The share of the gradient norm on the shared weights each output with a loss should
        get, for ``report.suggested_loss_weights`` (default: equal shares).
    validation_data : (x_val, y_val), optional
        Measured along the training run (the loss curves) and used to judge the fixes
        tried by ``verify``.
    verify : bool
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
        BCE targets outside [0, 1] gives a report with that finding instead.
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
    with np.errstate(over="ignore", invalid="ignore"):   # overflowing losses are reported
        static = static_measurements(model, x_batch, y_batch)
    # A copy of weights holding NaN/inf cannot be made (set_weights refuses them), and would
    # train nothing: the nonfinite finding names them, on the batch only.
    trainable = steps and not any(data["nonfinite_weights"].values())
    run = training_run(model, xs, ys, steps, batch_size, seed, val) if trainable else None
    if run:
        with np.errstate(over="ignore", invalid="ignore"):   # a diverged copy overflows
            run["static"] = static_measurements(run["model"], x_batch, y_batch)

    # Figures from diverged weights may be inf or nan: they are measured and reported (the
    # nonfinite finding), not warned about.
    with np.errstate(all="ignore"):
        report = DiagnosisReport(model, data, static, run, limits, target_shares=target)
        report.findings = run_checks(report)
        rank_causes(report)
        if verify and (run is not None or not steps):   # steps=0: says it cannot
            verify_findings(report, model, {"xs": xs, "ys": ys, "validation": val}, steps,
                            batch_size, seed)
    return report


#: Findings that say why mlstm refused the data (the others found on refused data, such as
#: constant inputs, do not: the refusal is raised then).
EXPLAINS_REFUSAL = ("nonfinite", "bce_targets", "class_target_format", "single_unit_softmax",
                    "categorical_on_one_unit", "categorical_target_sums")


def _as_list(data, names):
    """The user's arrays in the model's order (a refusal's data, as given)."""
    if isinstance(data, dict):
        return [np.asarray(data.get(n)) for n in names]
    if isinstance(data, (list, tuple)) and not (len(names) == 1 and len(data) != 1):
        return [np.asarray(a) for a in data]
    return [np.asarray(data)]


def _checked_validation(model, validation_data):
    """``(xs, ys)`` checked as ``fit`` checks its validation data, or None."""
    if validation_data is None:
        return None
    if not isinstance(validation_data, (list, tuple)) or len(validation_data) != 2:
        raise ValueError("diagnose: validation_data must be a pair (x_val, y_val)")
    with validation.prefixed("validation_data"):
        vx = model._inputs(validation_data[0])
        return vx, model._targets(validation_data[1], vx[0].shape[0])


def _checked_arguments(model, steps, batch_size, seed, thresholds):
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
                    or not np.isfinite(value)):
                raise ValueError(f"diagnose: threshold {name!r} must be a finite number, "
                                 f"got {value!r}")
        limits.update(thresholds)
    return limits
