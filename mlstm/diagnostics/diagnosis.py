"""``diagnose(model, x, y)``: measure why a model does not learn, and say it in words.

Two kinds of measurement:

1. **On the model as it is** (one batch of ``batch_size`` samples drawn from the data):
   each output's gradient on each layer, which samples each output's loss reaches, the
   gradient through time of each LSTM, gate and head saturation; plus the data (scales,
   NaN/inf, BCE targets) and the compile settings (MSE on a sigmoid head).
2. **On a copy trained for** ``steps`` optimizer steps (the model passed in is not
   changed): a :class:`~mlstm.measure.Trace` of every step's per-output gradients,
   updates and update-to-weight ratios, and the loss before and after.

Each finding carries the figure that triggered it and a suggested fix. The thresholds
(:data:`THRESHOLDS`) can be overridden per call.
"""
from __future__ import annotations

import json
import math

import numpy as np

from .. import losses as losses_module
from ..ops.activations import sigmoid
from ..validation import NonFiniteError
from ..measure import gradients as G
from ..measure.trace import Trace

__all__ = ["diagnose", "DiagnosisReport", "Finding", "THRESHOLDS", "FINDING_CODES"]

#: When a figure becomes a finding. Healthy update/weight ratios sit near 1e-3 per step.
THRESHOLDS = {
    "min_coverage": 0.5,        # fraction of the batch an output's loss gradient reaches
    "dominant_share": 0.98,     # one output's share of the gradient norm on shared weights
    "conflict_cosine": -0.3,    # median cosine between outputs' gradients on shared weights
    "saturated_fraction": 0.25, # fraction of gate / head pre-activations beyond ±5
    "vanishing_ratio": 1e-3,    # |dL/dh| at the first step over |dL/dh| at the last
    "input_scale_ratio": 20.0,  # largest over smallest per-feature scale (RMS)
    "input_scale_max": 5.0,     # largest per-feature |mean| or std
    "not_moving_ratio": 1e-5,   # a parameter's median |Δθ|/|θ| per step
    "lr_small_ratio": 1e-4,     # median |Δθ|/|θ| over weight matrices
    "lr_large_ratio": 3e-2,
}

FINDING_CODES = ("nonfinite", "low_sample_coverage", "no_gradient", "bce_targets",
                 "learning_rate_too_large", "learning_rate_too_small", "not_moving",
                 "dominant_output", "conflicting_outputs", "saturated_head", "saturated_gates",
                 "vanishing_gradient", "input_scale", "mse_on_sigmoid")
_SEVERITY_ORDER = {"error": 0, "warning": 1}


class Finding:
    """One thing measured to be wrong.

    Attributes
    ----------
    code : str
        One of :data:`FINDING_CODES`.
    severity : {"error", "warning"}
    title : str
    message : str
        What was measured, with the figure.
    fix : str
        What to change.
    measured : dict
        The figures (JSON-serializable).
    """

    def __init__(self, code, severity, title, message, fix, measured):
        self.code, self.severity, self.title = code, severity, title
        self.message, self.fix, self.measured = message, fix, measured

    def to_dict(self):
        return {"code": self.code, "severity": self.severity, "title": self.title,
                "message": self.message, "fix": self.fix, "measured": _jsonable(self.measured)}

    def __str__(self):
        return (f"[{self.severity}] {self.title} ({self.code})\n"
                + _indent(self.message, "    ") + "\n" + _indent("fix: " + self.fix, "    "))

    def __repr__(self):
        return f"<Finding {self.code}: {self.title}>"


# --------------------------------------------------------------------------- entry point
def diagnose(model, x, y, steps=50, batch_size=32, seed=0, thresholds=None):
    """Measure why ``model`` is not learning on ``(x, y)``.

    Parameters
    ----------
    model : Model
        Compiled (loss, loss weights and optimizer are part of what is diagnosed). It is not
        modified: the training run uses a copy (weights and optimizer state included).
    x, y : arrays, lists or dicts, as for ``fit``
    steps : int
        Optimizer steps to trace on the copy (0: only the measurements on the model as it
        is). Batches of ``batch_size``, shuffled with ``seed``.
    batch_size : int
        Also the size of the batch the static measurements use (Keras' default, 32).
    seed : int
    thresholds : dict, optional
        Overrides for :data:`THRESHOLDS`.

    Returns
    -------
    DiagnosisReport
        ``str(report)`` reads as text; ``report.to_dict()`` is JSON-serializable;
        ``report.findings`` lists :class:`Finding`; ``report.plot(path)`` draws it.
    """
    limits = dict(THRESHOLDS)
    if thresholds:
        unknown = sorted(set(thresholds) - set(THRESHOLDS))
        if unknown:
            raise ValueError(f"diagnose: unknown thresholds {unknown}; known: {sorted(THRESHOLDS)}")
        limits.update(thresholds)
    if not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"diagnose: steps must be a non-negative int, got {steps!r}")
    model._require_compiled("diagnose")
    # The data is measured as given, before mlstm's checks refuse NaN/inf or BCE targets
    # outside [0, 1]: those refusals become findings instead of an exception.
    data = _data_measurements(model, _named_arrays(x, model.input_names),
                              _named_arrays(y, model.output_names))
    try:
        xs = model._inputs(x)
        ys = model._targets(y, xs[0].shape[0])
    except (ValueError, TypeError) as refusal:
        report = DiagnosisReport(model, data, None, None, limits, stopped=str(refusal))
        report.findings = _findings(report)
        if not report.findings:
            raise
        return report
    N = xs[0].shape[0]

    rng = np.random.default_rng(seed)
    batch = np.sort(rng.choice(N, size=min(batch_size, N), replace=False))
    static = _static_measurements(model, [a[batch] for a in xs], [a[batch] for a in ys])
    run = _training_run(model, xs, ys, steps, batch_size, seed) if steps else None
    if run:
        with np.errstate(over="ignore", invalid="ignore"):   # a diverged copy overflows
            run["static"] = _static_measurements(run["model"], [a[batch] for a in xs],
                                                 [a[batch] for a in ys])

    report = DiagnosisReport(model, data, static, run, limits)
    report.findings = _findings(report)
    return report


def _named_arrays(data, names):
    """``{name: float64 array}`` from an array, a list or a dict (what can be read; the
    model's own checks report anything malformed)."""
    if isinstance(data, dict):
        arrays = [data.get(n) for n in names]
    elif isinstance(data, (list, tuple)) and not (len(names) == 1 and len(data) != 1):
        arrays = list(data)
    else:
        arrays = [data]
    out = {}
    for name, a in zip(names, arrays):
        try:
            arr = np.asarray(a, dtype=np.float64)
        except (TypeError, ValueError):
            continue
        if arr.ndim >= 1 and arr.size:
            out[name] = arr
    return out


# --------------------------------------------------------------------------- measurements
def _data_measurements(model, xs, ys):
    """Per-feature statistics of the inputs, target ranges, NaN/inf counts.

    ``xs``, ``ys``: ``{name: float64 array}`` as given by the user.
    """
    inputs = {}
    for name, a in xs.items():
        flat = a.reshape(-1, a.shape[-1])
        finite = np.isfinite(flat)
        clean = np.where(finite, flat, np.nan)
        with np.errstate(invalid="ignore"):
            mean = np.nanmean(clean, axis=0) if finite.any() else np.full(flat.shape[1], np.nan)
            std = np.nanstd(clean, axis=0) if finite.any() else np.full(flat.shape[1], np.nan)
        inputs[name] = {"mean": mean, "std": std, "nonfinite": int(np.size(flat) - finite.sum())}
    targets = {}
    for name, a in ys.items():
        finite = np.isfinite(a)
        targets[name] = {"min": float(np.min(a[finite])) if finite.any() else float("nan"),
                         "max": float(np.max(a[finite])) if finite.any() else float("nan"),
                         "nonfinite": int(a.size - finite.sum()),
                         "outside_01": float(np.mean((a < 0) | (a > 1))),
                         "samples": int(a.shape[0])}
    weights = {name: int(p.size - np.isfinite(p).sum()) for name, p in model.params.items()}
    return {"inputs": inputs, "targets": targets, "nonfinite_weights": weights}


def _static_measurements(model, xb, yb):
    """Everything measured on one batch at the model's current weights."""
    tape = model.forward(xb, training=True)
    result = model.loss_and_output_grads(tape, yb)
    passes = G.output_passes(model, tape, result)       # shared by the per-output figures
    extras = {}
    total = model.backward(tape, result.d_outputs, result.d_logits, extras=extras)
    through_total = {
        layer.name: np.linalg.norm(layer.time_step_grads(extras[layer.name]), axis=(1, 2))
        for layer in model.layers
        if layer.recurrent and layer.time_step_grads(extras.get(layer.name, {})) is not None}
    lstm_masks = {node.layer.name: node.layer.step_mask(tape.caches[pos])
                  for pos, node in enumerate(model.nodes) if node.layer.recurrent}
    return {
        "batch_size": xb[0].shape[0],
        "loss": result.total, "output_losses": list(result.per_output),
        "contributions": {model.output_names[k]: grads for k, (grads, _) in passes.items()},
        "total": total,
        "per_sample": G.per_sample_from_tape(model, tape, result, passes),
        "coverage": G.sample_coverage(model, result),
        "through_time": G.through_time_from_tape(model, tape, result, passes),
        "through_time_total": through_total,
        "lstm_masks": lstm_masks,
        "gates": G.gate_saturation(model, tape),
        "heads": G.head_saturation(model, tape),
        "head_logits": {model.output_names[k]: model.output_logits(tape, k, "sigmoid")
                        for k in range(len(model.outputs))},
        "head_targets": {name: a for name, a in zip(model.output_names, yb)},
        "nonfinite_outputs": {name: int(o.size - np.isfinite(o).sum())
                              for name, o in zip(model.output_names, tape.outputs)},
        "nonfinite_grads": [n for n, g in total.items() if not np.all(np.isfinite(g))],
    }


class _StopAfter:
    """Callback: stop ``fit`` after a given number of optimizer steps."""

    def __init__(self, steps):
        self.steps, self.done = steps, 0

    def on_train_batch_end(self, batch, logs=None):
        self.done += 1
        if self.done >= self.steps:
            self.model.stop_training = True      # self.model: set by fit


def _training_run(model, xs, ys, steps, batch_size, seed):
    """Train a copy for ``steps`` steps with a Trace; losses before and after."""
    twin = model.clone()
    if model.optimizer.iterations:
        twin.optimizer.set_state(model.optimizer.get_state())
    N = xs[0].shape[0]
    per_epoch = -(-N // batch_size)
    trace = Trace()
    stopped = None
    with np.errstate(all="ignore"):
        before = model.evaluate(xs, ys, batch_size=batch_size, return_dict=True)
        try:
            twin.fit(xs, ys, epochs=-(-steps // per_epoch), batch_size=batch_size, seed=seed,
                     verbose=0, callbacks=[trace, _StopAfter(steps)])
        except NonFiniteError as error:
            # The refused step changed nothing: the copy holds the last good weights.
            stopped = {"iteration": error.iteration, "message": str(error)}
        after = twin.evaluate(xs, ys, batch_size=batch_size, return_dict=True)
    return {"trace": trace, "before": before, "after": after, "model": twin,
            "stopped": stopped}


# --------------------------------------------------------------------------- the report
class DiagnosisReport:
    """What :func:`diagnose` measured and found.

    Attributes
    ----------
    findings : list of Finding
        Errors first.
    trace : Trace or None
        The training run on the copy.
    trained_model : Model or None
        That copy after the run.
    summary : dict
        The measured figures (also in :meth:`to_dict`).
    """

    def __init__(self, model, data, static, run, thresholds, stopped=None):
        self.model_name = model.name
        self.thresholds = thresholds
        self.output_names = list(model.output_names)
        self.loss_outputs = [n for n, l in zip(model.output_names, model._losses)
                             if l is not None]
        self.setup = _describe_setup(model)
        self.data, self.static, self.run = data, static, run
        #: Why the measurements on the model could not run (the data was refused), or None.
        self.stopped = stopped
        self.trace = run["trace"] if run else None
        self.trained_model = run["model"] if run else None
        self.shared_names = G.shared_parameters(model)
        self.trainable_names = list(model.trainable_params)
        self.param_shapes = {n: p.shape for n, p in model.params.items()}
        self.losses = {name: loss for name, loss in zip(model.output_names, model._losses)}
        self.sigmoid_heads = ([] if static is None else
                              [n for n, l in static["head_logits"].items() if l is not None])
        self.summary = self._summarize() if static is not None else {}
        self.findings = []

    # ------------------------------------------------------------------ figures
    def _summarize(self):
        s, st = {}, self.static
        layers = list(dict.fromkeys(n.split("/", 1)[0] for n in self.param_shapes))
        norms = {out: G.layer_norms(g) for out, g in st["contributions"].items()}
        s["gradient_norm"] = {layer: {out: norms[out].get(layer, 0.0) for out in norms}
                              for layer in layers}
        s["gradient_share"] = {layer: _shares(v) for layer, v in s["gradient_norm"].items()}
        s["shared_layers"] = list(dict.fromkeys(n.split("/", 1)[0] for n in self.shared_names))
        s["shared_share"] = _shares({out: _norm_over(g, self.shared_names)
                                     for out, g in st["contributions"].items()})
        s["shared_cosine"] = _pair_cosines(st["contributions"], self.shared_names)
        cov = {}
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
        if self.run:
            after = self.run["static"]
            s["through_time_after"] = _through_time_summary(after)
            s["gate_saturation_after"] = after["gates"]
            s["head_saturation_after"] = after["heads"]
        s["loss"] = {"total": st["loss"], **{f"{n}_loss": v for n, v in
                                             zip(self.output_names, st["output_losses"])}}
        if self.run:
            s.update(self._summarize_run())
        return s

    def _summarize_run(self):
        t, s = self.trace, {}
        S = len(t)
        s["steps"] = S
        s["loss_before"], s["loss_after"] = self.run["before"], self.run["after"]
        if S == 0:
            return s
        ratio = t.update_ratio
        with np.errstate(all="ignore"):
            s["updates"] = {
                p: {"median_ratio": _nanmedian(ratio[:, j]),
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
            s["run_shared_share"] = {out: _nanmedian(share[:, k])
                                     for k, out in enumerate(t.output_names)
                                     if out in self.loss_outputs}
            pairs = {}
            for a, out_a in enumerate(t.output_names):
                for b in range(a + 1, len(t.output_names)):
                    values = t.shared_cosine[:, a, b]
                    if np.isfinite(values).any():
                        pairs[f"{out_a}|{t.output_names[b]}"] = _nanmedian(values)
            s["run_shared_cosine"] = pairs
        s["run_coverage"] = {out: _nanmean(t.coverage[:, k])
                             for k, out in enumerate(t.output_names) if out in self.loss_outputs}
        s["run_nonfinite_steps"] = int(np.sum(t.nonfinite))
        s["run_output_loss"] = {out: {"first": float(t.output_loss[0, k]),
                                      "last": float(t.output_loss[-1, k])}
                                for k, out in enumerate(t.output_names)
                                if out in self.loss_outputs}
        return s

    # ------------------------------------------------------------------ views
    @property
    def codes(self):
        """The finding codes, in report order."""
        return [f.code for f in self.findings]

    def to_dict(self):
        """Everything measured and found, as plain JSON-serializable values."""
        return _jsonable({"model": self.model_name, "setup": self.setup,
                          "thresholds": self.thresholds, "summary": self.summary,
                          "findings": [f.to_dict() for f in self.findings]})

    def to_json(self, **kwargs):
        return json.dumps(self.to_dict(), **kwargs)

    def plot(self, path, title=None):
        """Draw the report to a PNG (needs matplotlib; see :mod:`mlstm.diagnostics.plotting`)."""
        from .plotting import plot_reports
        return plot_reports([self], path, titles=[title or self.model_name])

    def __str__(self):
        return format_report(self)

    def __repr__(self):
        return f"<DiagnosisReport {self.model_name!r}: {len(self.findings)} findings {self.codes}>"


def _describe_setup(model):
    parts = []
    for name, loss, w in zip(model.output_names, model._losses, model._loss_weights):
        if loss is None:
            continue
        label = loss.name
        if isinstance(loss, losses_module.FunctionLoss):
            label = f"{loss.name} (custom function)"
        parts.append(f"{w:g} * {label}({name})")
    return {"loss": " + ".join(parts), "optimizer": repr(model.optimizer),
            "inputs": {n: list((None,) + tuple(t.shape)) for n, t in
                       zip(model.input_names, model.inputs)},
            "outputs": {n: list((None,) + tuple(t.shape)) for n, t in
                        zip(model.output_names, model.outputs)}}


# --------------------------------------------------------------------------- findings
def _findings(report):
    """Run every check in order; a check may look at what earlier checks found."""
    found = []
    checks = (_check_nonfinite, _check_coverage, _check_no_gradient, _check_bce_targets,
              _check_learning_rate, _check_not_moving, _check_dominance, _check_conflict,
              _check_saturated_heads, _check_saturated_gates, _check_vanishing,
              _check_input_scale, _check_mse_on_sigmoid)
    if report.static is None:       # the data was refused: only the data can be judged
        checks = (_check_nonfinite, _check_bce_targets, _check_input_scale)
    for check in checks:
        found.extend(check(report, found))
    found.sort(key=lambda f: _SEVERITY_ORDER[f.severity])
    return found


def _check_nonfinite(r, found):
    where = []
    for name, stats in r.data["inputs"].items():
        if stats["nonfinite"]:
            where.append(f"input {name!r}: {stats['nonfinite']} values")
    for name, stats in r.data["targets"].items():
        if stats["nonfinite"]:
            where.append(f"target {name!r}: {stats['nonfinite']} values")
    for name, count in r.data["nonfinite_weights"].items():
        if count:
            where.append(f"weight {name!r}: {count} values")
    if r.static is not None:
        for name, count in r.static["nonfinite_outputs"].items():
            if count:
                where.append(f"output {name!r} on the batch: {count} values")
        if not np.isfinite(r.static["loss"]):
            where.append(f"the loss on the batch ({r.static['loss']})")
        if r.static["nonfinite_grads"]:
            where.append(f"gradients of {r.static['nonfinite_grads']}")
    if r.run and r.run["stopped"]:
        where.append(f"training, at step {r.run['stopped']['iteration']} (stopped there): "
                     + r.run["stopped"]["message"].splitlines()[0])
    bad_steps = r.summary.get("run_nonfinite_steps", 0)
    if bad_steps:
        first = int(np.argmax(r.trace.nonfinite)) + 1
        where.append(f"training: {bad_steps} of {len(r.trace)} steps (first at step {first})")
    if not where:
        return []
    return [Finding(
        "nonfinite", "error", "NaN or inf values",
        "NaN or inf found in " + "; ".join(where) + ".",
        "Remove or impute non-finite data (check np.isfinite(a).all() on every array); if "
        "the data is clean and training produces them, lower the learning rate or clip the "
        "gradients (Adam(clipnorm=1.0)).",
        {"where": where})]


def _check_coverage(r, found):
    out = []
    limit = r.thresholds["min_coverage"]
    run_cov = r.summary.get("run_coverage", {})
    for name, cov in r.summary["coverage"].items():
        fraction = cov["fraction"]
        run_fraction = run_cov.get(name)
        worst = fraction if run_fraction is None else min(fraction, run_fraction)
        if worst >= limit:
            continue
        loss = r.losses[name]
        message = (f"The loss of output {name!r} sends gradient to only {cov['reached']} of "
                   f"{cov['batch']} samples of the batch ({100 * fraction:.0f}%)")
        if run_fraction is not None:
            message += (f"; over the {len(r.trace)} training steps, {100 * run_fraction:.1f}% "
                        "of each batch on average")
        message += (". The other samples' predictions do not change the loss, so the weights "
                    "learn from a small part of the data and the error on the rest stays.")
        if isinstance(loss, (losses_module.MeanSquaredError, losses_module.BinaryCrossentropy)):
            fix = ("Built-in losses reach every sample unless its entries are masked or its "
                   "gradient is exactly zero (a probability clipped at 0 or 1: use a sigmoid "
                   "head, whose binary cross-entropy is computed from the logits). Check the "
                   "masks and the targets of the samples not reached.")
        else:
            fix = ("Keras calls a loss once per output, with that output's y_true and y_pred "
                   "of shape (batch, units): y_true[0] is the first *sample* of the batch, "
                   "not the first output. A custom loss must average over the batch, not "
                   "index it. For one loss per output with weights, write "
                   "compile(loss=['mse', 'binary_crossentropy'], loss_weights=[0.7, 0.3]).")
        out.append(Finding("low_sample_coverage", "error",
                           f"The loss of {name!r} reaches only part of each batch", message,
                           fix, {"output": name, "reached": cov["reached"],
                                 "batch": cov["batch"], "fraction": fraction,
                                 "run_mean_fraction": run_fraction}))
    return out


def _check_no_gradient(r, found):
    total = r.static["total"]
    dead = []
    for name in r.trainable_names:
        if np.any(total[name] != 0):
            continue
        if r.trace is not None and len(r.trace):
            j = r.trace.param_names.index(name)
            if np.nanmax(r.trace.total_grad_norm[:, j]) > 0:
                continue
        dead.append(name)
    if not dead:
        return []
    traced = r.trace is not None and len(r.trace)
    when = "on the batch" + (f" and at all {len(r.trace)} training steps" if traced else "")
    return [Finding(
        "no_gradient", "error", "Parameters that receive no gradient",
        f"The gradient of {', '.join(dead)} is exactly zero {when}: no loss gradient "
        "reaches them, so no optimizer can move them.",
        "If their output has no loss, give it one (no None for it in compile(loss=...)); "
        "remove layers whose output is not used; if what lies between them and the loss is "
        "saturated (a sigmoid at exactly 0 or 1) or masked, see those findings. Mark them "
        "trainable=False if they are meant to stay fixed.",
        {"parameters": dead})]


def _check_bce_targets(r, found):
    out = []
    for name, loss in r.losses.items():
        if not isinstance(loss, losses_module.BinaryCrossentropy):
            continue
        t = r.data["targets"][name]
        if t["outside_01"] > 0:
            out.append(Finding(
                "bce_targets", "error",
                f"Binary cross-entropy on targets outside [0, 1] ({name!r})",
                f"Output {name!r} is trained with binary_crossentropy, but "
                f"{100 * t['outside_01']:.1f}% of its targets lie outside [0, 1] (range "
                f"{t['min']:.3g} to {t['max']:.3g}). The cross-entropy is then unbounded below "
                "and its minimum is not at the target.",
                "Use mean squared error for a regression target, or rescale/binarize the "
                "targets to [0, 1].",
                {"output": name, "fraction_outside": t["outside_01"], "min": t["min"],
                 "max": t["max"]}))
    return out


def _weight_matrix_ratios(r):
    """``{param: median |Δθ|/|θ|}`` for the traced weight matrices (biases start at 0)."""
    ups = r.summary.get("updates", {})
    return {p: u["median_ratio"] for p, u in ups.items()
            if len(r.param_shapes[p]) >= 2 and np.isfinite(u["median_ratio"])}


def _check_learning_rate(r, found):
    ratios = _weight_matrix_ratios(r)
    if not ratios:
        return []
    median = float(np.median(list(ratios.values())))
    optimizer = r.setup["optimizer"]
    if median < r.thresholds["lr_small_ratio"]:
        return [Finding(
            "learning_rate_too_small", "warning", "Updates too small for the weights' scale",
            f"Over {len(r.trace)} steps the median update of a weight matrix is "
            f"{median:.2g} of its norm per step (healthy: about 1e-3); at this pace the "
            f"weights change by 1% only after ~{0.01 / median:.0f} steps. "
            f"Optimizer: {optimizer}.",
            f"Raise the learning rate, roughly x{1e-3 / median:.0f} (Adam's usual start is "
            "1e-3), after checking that the gradient is not starved (see the other findings).",
            {"median_update_ratio": median, "per_parameter": ratios})]
    if median > r.thresholds["lr_large_ratio"]:
        return [Finding(
            "learning_rate_too_large", "warning", "Updates too large for the weights' scale",
            f"Over {len(r.trace)} steps the median update of a weight matrix is "
            f"{median:.2g} of its norm per step (healthy: about 1e-3): each step rewrites a "
            "large part of the weights, so training jumps around instead of descending. "
            f"Optimizer: {optimizer}.",
            f"Lower the learning rate, roughly /{median / 1e-3:.0f}; clip the gradients "
            "(clipnorm=1.0) if the loss spikes.",
            {"median_update_ratio": median, "per_parameter": ratios})]
    return []


def _check_not_moving(r, found):
    ups = r.summary.get("updates")
    if not ups or any(f.code == "learning_rate_too_small" for f in found):
        return []
    dead = {p for f in found if f.code == "no_gradient" for p in f.measured["parameters"]}
    limit = r.thresholds["not_moving_ratio"]
    still = {p: u["median_ratio"] for p, u in ups.items()
             if p not in dead and np.isfinite(u["median_ratio"]) and u["median_ratio"] < limit}
    if not still:
        return []
    listed = ", ".join(f"{p} ({v:.1e})" for p, v in still.items())
    typical = float(np.median(list(_weight_matrix_ratios(r).values())))
    return [Finding(
        "not_moving", "warning", "Parameters that barely move",
        f"Median update per step relative to the weight's norm, over {len(r.trace)} steps: "
        f"{listed}; the weight matrices typically move {typical:.1e} per step, and about "
        "1e-3 is healthy.",
        "Their gradient is negligible next to the optimizer's scale: look for what starves "
        "them (saturated gates or heads, gradient vanishing through time, a tiny loss "
        "weight), or give them a larger learning rate.",
        {"parameters": still, "typical_ratio": typical})]


def _run_or_static(r, run_key, static_key):
    value = r.summary.get(run_key)
    return value if value else r.summary[static_key]


def _where(r, run_key):
    return "median over the training steps" if r.summary.get(run_key) else "on the batch"


def _check_dominance(r, found):
    shares = _run_or_static(r, "run_shared_share", "shared_share")
    shares = {k: v for k, v in shares.items() if v is not None and np.isfinite(v)}
    if len(shares) < 2:
        return []
    top = max(shares, key=shares.get)
    if shares[top] < r.thresholds["dominant_share"]:
        return []
    others = {k: v for k, v in shares.items() if k != top}
    weakest = min(others, key=others.get)
    factor = shares[top] / others[weakest] if others[weakest] > 0 else float("inf")
    return [Finding(
        "dominant_output", "warning", f"Output {top!r} dominates the shared weights",
        f"On the weights all outputs share ({', '.join(r.summary['shared_layers'])}), "
        f"{top!r} provides {100 * shares[top]:.1f}% of the gradient norm "
        f"({_where(r, 'run_shared_share')}); its gradient there is {factor:.0f}x that of "
        f"{weakest!r}. The shared layers learn almost only what {top!r} needs.",
        f"Rebalance the loss weights (raise {weakest!r}'s weight, roughly x{factor:.0f}, or "
        f"lower {top!r}'s), and put the losses on comparable scales (standardize regression "
        "targets).",
        {"shares": shares, "dominant": top, "factor": factor})]


def _check_conflict(r, found):
    cos = _run_or_static(r, "run_shared_cosine", "shared_cosine")
    out = []
    for pair, value in cos.items():
        if value is None or not np.isfinite(value) or value >= r.thresholds["conflict_cosine"]:
            continue
        a, b = pair.split("|")
        out.append(Finding(
            "conflicting_outputs", "warning",
            f"Outputs {a!r} and {b!r} pull the shared weights in opposite directions",
            f"Cosine between their gradients on the shared weights: {value:.2f} "
            f"({_where(r, 'run_shared_cosine')}). What one output's gradient builds, the "
            "other's takes down, and their sum, which the optimizer follows, is smaller than "
            "either.",
            "Check that the targets mean what you think (signs, scaling, one derived from "
            "the other); give each head its own layers after the merge so they compete less; "
            "reweight the losses.",
            {"pair": [a, b], "cosine": value}))
    return out


def _before_after(r, key):
    """``{name: (value at the current weights, value after the run or None)}``."""
    before = r.summary[key]
    after = r.summary.get(key + "_after", {})
    return {name: (v, after.get(name)) for name, v in before.items()}


def _when(before, after, steps, fmt):
    text = f"{fmt(before)} at the current weights"
    if after is not None:
        text += f", {fmt(after)} after {steps} training steps"
    return text


def _check_saturated_heads(r, found):
    out = []
    limit = r.thresholds["saturated_fraction"]
    for name, (before, after) in _before_after(r, "head_saturation").items():
        worst = before if after is None else max(before, after)
        if worst <= limit:
            continue
        logits = r.static["head_logits"][name]
        t = r.static["head_targets"][name]
        wrong = float(np.mean((np.abs(logits) > 5) & ((logits > 0) != (t > 0.5))))
        out.append(Finding(
            "saturated_head", "warning", f"Sigmoid head {name!r} is saturated",
            f"Fraction of the logits of {name!r} beyond ±5 (where σ' < 0.007): "
            f"{_when(before, after, r.summary.get('steps'), lambda v: f'{100 * v:.0f}%')}; "
            f"{100 * wrong:.0f}% of the batch is saturated on the wrong side. A loss on the "
            "probability (MSE, clipped cross-entropy) passes almost no gradient there.",
            "Standardize the inputs; use binary_crossentropy (computed from the logits, "
            "whose gradient σ(x) - t does not vanish on wrong answers); lower the learning "
            "rate if the logits grew during training.",
            {"output": name, "fraction": before, "fraction_after": after,
             "wrong_side_fraction": wrong}))
    return out


def _check_saturated_gates(r, found):
    out = []
    limit = r.thresholds["saturated_fraction"]
    names = {"i": "input", "f": "forget", "c": "cell", "o": "output"}
    for lstm, (before, after) in _before_after(r, "gate_saturation").items():
        def worst(g):
            values = [v for v in (before[g], None if after is None else after[g])
                      if v is not None and np.isfinite(v)]
            return max(values) if values else float("nan")

        if not any(worst(g) > limit for g in before):
            continue

        def listed(gates):
            return ", ".join(f"{names[g]} {100 * v:.0f}%" for g, v in gates.items()
                             if np.isfinite(v))

        text = f"{listed(before)} at the current weights"
        if after is not None:
            text += f"; {listed(after)} after {r.summary.get('steps')} training steps"
        out.append(Finding(
            "saturated_gates", "warning", f"LSTM {lstm!r} has saturated gates",
            f"Fraction of gate pre-activations beyond ±5 in {lstm!r}: {text}. A saturated "
            "gate passes almost no gradient (σ'(5) = 0.007), so these units barely learn.",
            "Standardize the inputs (per feature: subtract the mean, divide by the std); "
            "check the input's units; keep the default glorot/orthogonal initializers.",
            {"lstm": lstm, "fractions": before, "fractions_after": after}))
    return out


def _check_vanishing(r, found):
    out = []
    after_all = r.summary.get("through_time_after", {})
    for lstm, tt in r.summary["through_time"].items():
        after = after_all.get(lstm)
        ratios = [x["ratio"] for x in (tt, after) if x is not None and np.isfinite(x["ratio"])]
        if not ratios or max(ratios) >= r.thresholds["vanishing_ratio"]:
            continue
        text = _when(tt["ratio"], None if after is None else after["ratio"],
                     r.summary.get("steps"), lambda v: f"{v:.1e}")
        out.append(Finding(
            "vanishing_gradient", "warning", f"Gradient vanishes through time in {lstm!r}",
            f"|dL/dh| at the first of {tt['steps']} steps over its value at the last step: "
            f"{text}. What happens early in the sequence barely changes the weights.",
            "Shorten or subsample the sequences; keep unit_forget_bias=True (the default); "
            "standardize the inputs so the gates are not saturated; if the early steps "
            "matter, put a loss on every step (return_sequences=True) or feed a summary.",
            {"lstm": lstm, "ratio": tt["ratio"],
             "ratio_after": None if after is None else after["ratio"], "steps": tt["steps"]}))
    return out


def _check_input_scale(r, found):
    features = []
    for name, st in r.data["inputs"].items():
        for j, (m, s) in enumerate(zip(st["mean"], st["std"])):
            if np.isfinite(m) and np.isfinite(s):
                features.append((f"{name}[{j}]", float(m), float(s), math.hypot(m, s)))
    scaled = [f for f in features if f[3] > 0]
    if not scaled:
        return []
    largest = max(scaled, key=lambda f: f[3])
    smallest = min(scaled, key=lambda f: f[3])
    ratio = largest[3] / smallest[3]
    biggest = max(max(abs(f[1]), f[2]) for f in scaled)
    if ratio <= r.thresholds["input_scale_ratio"] and biggest <= r.thresholds["input_scale_max"]:
        return []
    stds = [f[2] for f in scaled]
    means = [abs(f[1]) for f in scaled]
    return [Finding(
        "input_scale", "warning", "Inputs on very different scales",
        f"Per-feature scale sqrt(mean² + std²) ranges from {smallest[3]:.3g} ({smallest[0]}) "
        f"to {largest[3]:.3g} ({largest[0]}), a ratio of {ratio:.0f}; std from "
        f"{min(stds):.3g} to {max(stds):.3g}, |mean| up to {max(means):.3g}. Large features "
        "saturate the gates they feed; small ones are drowned out.",
        "Standardize each feature with training-set statistics: x = (x - mean) / std, per "
        "input and feature (mean and std over samples and time steps).",
        {"ratio": ratio, "largest": largest[0], "largest_scale": largest[3],
         "smallest": smallest[0], "smallest_scale": smallest[3], "max_abs_mean": max(means),
         "std_range": [min(stds), max(stds)]})]


def _check_mse_on_sigmoid(r, found):
    out = []
    for name in r.sigmoid_heads:
        if not isinstance(r.losses.get(name), losses_module.MeanSquaredError):
            continue
        p = sigmoid(r.static["head_logits"][name].astype(np.float64))
        attenuation = float(np.mean(p * (1 - p)))
        out.append(Finding(
            "mse_on_sigmoid", "warning", f"Mean squared error on sigmoid head {name!r}",
            f"{name!r} outputs a probability but is trained with MSE: its gradient with "
            f"respect to the logit is 2(p - t)·p(1 - p), with p(1 - p) = {attenuation:.3f} on "
            "average on this batch (at most 0.25), falling to 0 as the head saturates, even "
            "on wrong answers.",
            "Use binary_crossentropy for this output (mlstm and Keras compute it from the "
            "logits of a sigmoid head), e.g. loss=['mse', 'binary_crossentropy'].",
            {"output": name, "mean_p_1_minus_p": attenuation}))
    return out


# --------------------------------------------------------------------------- text
def format_report(r):
    """The report as text (what ``str(report)`` returns)."""
    s = r.summary
    steps = s.get("steps", 0)
    lines = [f"Diagnosis of model {r.model_name!r}",
             f"  loss:      {r.setup['loss']}",
             f"  optimizer: {r.setup['optimizer']}"]
    if r.static is None:
        lines += ["", "Stopped before measuring gradients: mlstm refuses this data:",
                  _indent(r.stopped, "  "), ""]
        lines += [f"Findings ({len(r.findings)}):"] + [_indent(str(f), "  ") for f in r.findings]
        return "\n".join(lines)
    lines += [f"  measured on a batch of {r.static['batch_size']} samples at the current "
              "weights" + (f", then over {steps} training steps of a copy" if r.run else ""),
              ""]
    lines += _gradient_table(r)
    lines += ["", "Sample coverage (samples of the batch that each output's loss gradient "
              "reaches):"]
    for o, cov in s["coverage"].items():
        run = s.get("run_coverage", {}).get(o)
        extra = f"; {100 * run:.1f}% of each batch on average over training" if run is not None \
            else ""
        lines.append(f"  {o}: {cov['reached']} of {cov['batch']}{extra}")
    if s["through_time"]:
        lines += ["", "Gradient through time, |dL/dh| at the first step / at the last step:"]
        for lstm, tt in s["through_time"].items():
            text = f"  {lstm}: {tt['ratio']:.2g} ({tt['steps']} steps) at the current weights"
            after = s.get("through_time_after", {}).get(lstm)
            if after is not None:
                text += f", {after['ratio']:.2g} after training"
            lines.append(text)
    lines += ["", "Saturation (fraction of pre-activations beyond ±5; before -> after training):"]
    for lstm, gates in s["gate_saturation"].items():
        after = s.get("gate_saturation_after", {}).get(lstm)
        cells = [f"{g} {v:.2f}" + ("" if after is None else f"->{after[g]:.2f}")
                 for g, v in gates.items()]
        lines.append(f"  LSTM {lstm} gates: " + "  ".join(cells))
    for head, v in s["head_saturation"].items():
        after = s.get("head_saturation_after", {}).get(head)
        lines.append(f"  sigmoid head {head}: {v:.2f}" + ("" if after is None
                                                          else f" -> {after:.2f}"))
    if s.get("updates"):
        lines += ["", f"Updates (median per step over {steps} steps; |Δθ|/|θ| near 1e-3 is "
                  "healthy):"]
        pw = max(len(p) for p in s["updates"])
        for p, u in s["updates"].items():
            lines.append(f"  {p.ljust(pw)}  |Δθ|/|θ| {u['median_ratio']:8.1e}   |Δθ| "
                         f"{u['median_update']:8.1e}   |θ| at start {u['weight_norm_start']:.3g}")
    if r.run:
        lines += ["", f"Loss on all {_n_samples(r)} samples, before -> after the {steps} steps "
                  "(per output: unweighted):"]
        for key, before in s["loss_before"].items():
            after = s["loss_after"].get(key, float("nan"))
            lines.append(f"  {key}: {before:.4f} -> {after:.4f}")
    lines.append("")
    if r.findings:
        lines.append(f"Findings ({len(r.findings)}):")
        for f in r.findings:
            lines.append(_indent(str(f), "  "))
    else:
        lines.append("Findings: none. Nothing measured here explains a model that does not "
                     "learn.")
    return "\n".join(lines)


def _gradient_table(r):
    """Rows: layers; columns: each output's gradient norm and its share of the layer's."""
    s = r.summary
    outs = [o for o in r.output_names if o in r.loss_outputs]
    width = max([len(l) for l in s["gradient_norm"]] + [5])
    lines = ["Gradient norm per layer and output (share of the layer's sum), on the batch:",
             "  " + "layer".ljust(width) + "".join(o.rjust(20) for o in outs)]
    for layer, by_out in s["gradient_norm"].items():
        cells = []
        for o in outs:
            share = s["gradient_share"][layer].get(o)
            cells.append((f"{by_out.get(o, 0.0):.3g}" + ("" if share is None
                                                          else f" ({100 * share:3.0f}%)")
                          ).rjust(20))
        shared = "   shared" if layer in s["shared_layers"] else ""
        lines.append("  " + layer.ljust(width) + "".join(cells) + shared)
    if s["shared_layers"]:
        share = _run_or_static(r, "run_shared_share", "shared_share")
        lines.append(f"  shared weights, each output's share of the gradient norm "
                     f"({_where(r, 'run_shared_share')}): "
                     + ", ".join(f"{o} {100 * v:.1f}%" for o, v in share.items()
                                 if v is not None))
        cos = _run_or_static(r, "run_shared_cosine", "shared_cosine")
        if cos:
            lines.append(f"  cosine between outputs' gradients on the shared weights "
                         f"({_where(r, 'run_shared_cosine')}): "
                         + ", ".join(f"{p.replace('|', ' vs ')} {v:+.2f}"
                                     for p, v in cos.items() if v is not None))
    return lines


def _n_samples(r):
    return next(iter(r.data["targets"].values()))["samples"]


# --------------------------------------------------------------------------- helpers
def _through_time_summary(static):
    """Per LSTM: |dL/dh| at the first and last valid step, their ratio, per-output curves."""
    out = {}
    for lstm, norms_t in static["through_time_total"].items():
        valid = _valid_steps(static["lstm_masks"].get(lstm), len(norms_t))
        first, last = norms_t[valid[0]], norms_t[valid[-1]]
        out[lstm] = {"first": float(first), "last": float(last), "steps": len(norms_t),
                     "ratio": float(first / last) if last > 0 else float("nan"),
                     "per_output": {o: d.get(lstm) for o, d in static["through_time"].items()}}
    return out


def _shares(norms):
    """``{k: v / Σ v}`` (None for all when the sum is 0)."""
    total = sum(v for v in norms.values() if v is not None and np.isfinite(v))
    return {k: (float(v / total) if total > 0 and v is not None else None)
            for k, v in norms.items()}


def _norm_over(grads, names):
    return float(np.sqrt(sum(float(np.sum(np.square(grads[n], dtype=np.float64)))
                             for n in names)))


def _pair_cosines(contributions, names):
    """``{"a|b": cosine or None}`` for each pair of outputs (None where a gradient is 0)."""
    outs = list(contributions)
    if not names:
        return {}
    cos = G.shared_cosines(contributions, outs, names)
    return {f"{outs[a]}|{outs[b]}": None if np.isnan(cos[a, b]) else float(cos[a, b])
            for a in range(len(outs)) for b in range(a + 1, len(outs))}


def _sample_totals(per_param):
    """Per-sample norm over all parameters from ``{param: (N,) norms}``."""
    return np.sqrt(sum(np.square(v.astype(np.float64)) for v in per_param.values()))


def _valid_steps(step_mask, T):
    """Processing-order steps where some sample is valid (all steps without a mask)."""
    if step_mask is None:
        return [0, T - 1]
    valid = np.flatnonzero(step_mask.reshape(T, -1).any(axis=1))
    return [int(valid[0]), int(valid[-1])] if valid.size else [0, T - 1]


def _nanmedian(values):
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else float("nan")


def _nanmean(values):
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(np.mean(values)) if values.size else float("nan")


def _indent(text, prefix):
    return "\n".join(prefix + line for line in text.splitlines())


def _jsonable(value):
    """Plain Python values (lists, floats, None for nan/inf) for ``json.dumps``."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)
