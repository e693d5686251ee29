"""What :func:`~mlstm.diagnostics.diagnose` measures, before any judgement.

Three sources, each a plain dict of figures:

* :func:`data_measurements`: the arrays as the user gave them (scales, target ranges,
  NaN/inf counts), read before mlstm's own checks could refuse them;
* :func:`static_measurements`: one batch at the model's current weights (each output's
  gradient, the samples it reaches, the gradient through time, saturation);
* :func:`training_run`: a copy trained for a few steps with a
  :class:`~mlstm.measure.Trace`, and the loss before and after.

The decompositions themselves are in :mod:`mlstm.measure.gradients`.
"""
from __future__ import annotations

import numpy as np

from ..losses import reduce_output_loss
from ..measure import gradients as G
from ..measure.trace import Trace
from ..validation import NonFiniteError

__all__ = ["named_arrays", "data_measurements", "static_measurements", "training_run",
           "unweighted_shared_norms", "norm_over"]


def named_arrays(data, names):
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


def data_measurements(model, xs, ys):
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


def static_measurements(model, xb, yb):
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
    contributions = {model.output_names[k]: grads for k, (grads, _) in passes.items()}
    return {
        "batch_size": xb[0].shape[0],
        "loss": result.total, "output_losses": list(result.per_output),
        "contributions": contributions,
        "unweighted_shared_norm": unweighted_shared_norms(model, tape, yb, contributions),
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


def unweighted_shared_norms(model, tape, ys, contributions):
    """``{output: ||∇_shared L_k||}``: each output's *unweighted* loss gradient on the
    parameters that several outputs share (:func:`mlstm.measure.gradients.shared_parameters`).

    A contribution is linear in its loss weight, ``∇(w_k L_k) = w_k ∇L_k``, so it is read
    off the weighted contribution where ``w_k != 0``; an output at loss weight 0 gets its
    own backward pass with the seed of ``L_k`` alone. This is what loss weights are
    suggested from (:mod:`mlstm.diagnostics.loss_weights`).
    """
    shared = G.shared_parameters(model)
    out = {}
    for k, (loss, weight) in enumerate(zip(model._losses, model._loss_weights)):
        name = model.output_names[k]
        if loss is None:
            continue
        if weight != 0 and name in contributions:
            out[name] = norm_over(contributions[name], shared) / abs(weight)
            continue
        _, d_pred, d_logits = reduce_output_loss(loss, ys[k], tape.outputs[k],
                                                 tape.output_masks[k], model.loss_logits(tape, k))
        grads = model.backward(tape, {} if d_pred is None else {k: d_pred},
                               {} if d_logits is None else {k: d_logits})
        out[name] = norm_over(grads, shared)
    return out


def norm_over(grads, names):
    """sqrt(Σ ||g||²) over the parameters ``names`` (float64)."""
    return float(np.sqrt(sum(float(np.sum(np.square(grads[n], dtype=np.float64)))
                             for n in names)))


class _StopAfter:
    """Callback: stop ``fit`` after a given number of optimizer steps."""

    def __init__(self, steps):
        self.steps, self.done = steps, 0

    def on_train_batch_end(self, batch, logs=None):
        self.done += 1
        if self.done >= self.steps:
            self.model.stop_training = True      # self.model: set by fit


def training_run(model, xs, ys, steps, batch_size, seed):
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
