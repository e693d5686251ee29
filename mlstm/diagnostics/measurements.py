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

from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import numpy as np

from .._typing import Array, Float64Array
from ..losses import reduce_output_loss
from ..measure import gradients as G
from ..measure.trace import Trace
from .. import validation
from ..validation import NonFiniteError

if TYPE_CHECKING:
    from ..graph import Tape
    from ..layers.base import Layer
    from ..model import Model

#: ``{set name: {key: value}}``: what a :class:`Checkpoints` records at a step.
Measure = Callable[["Model"], dict[str, dict[str, Any]]]

__all__ = ["named_arrays", "data_measurements", "static_measurements", "training_run",
           "unweighted_shared_norms", "norm_over", "output_losses", "constant_prediction_losses",
           "checkpoint_steps", "Checkpoints", "StopAfter", "dead_units", "losses_on", "run_copy",
           "EVAL_BATCH", "layer_states", "restore_states", "batch_statistics",
           "run_batch_sizes",
           "evaluation_sets"]


def named_arrays(data: Any, names: Sequence[str]) -> dict[str, Float64Array]:
    """``{name: float64 array}`` from an array, a list or a dict (what can be read; the
    model's own checks report anything malformed)."""
    if isinstance(data, dict):
        arrays: list[Any] = [data.get(n) for n in names]
    elif isinstance(data, (list, tuple)) and not (len(names) == 1 and len(data) != 1):
        arrays = list(data)
    else:
        arrays = [data]
    out: dict[str, Float64Array] = {}
    for name, a in zip(names, arrays):
        try:
            arr = np.asarray(a, dtype=np.float64)
        except (TypeError, ValueError):
            continue
        if arr.ndim >= 1 and arr.size:
            out[name] = arr
    return out


def data_measurements(model: Model, xs: dict[str, Float64Array],
                      ys: dict[str, Float64Array]) -> dict[str, Any]:
    """Per-feature statistics of the inputs, target ranges, NaN/inf counts.

    ``xs``, ``ys``: ``{name: float64 array}`` as given by the user.
    """
    inputs: dict[str, dict[str, Any]] = {}
    try:        # token ids (integer inputs, float ones only an Embedding reads)
        ids = validation.token_id_inputs(model)
    except ValueError:      # read both as ids and as values: refused with the data
        ids = [np.dtype(t.dtype).kind in "iu" for t in model.inputs]
    integer = dict(zip(model.input_names, ids))
    for name, a in xs.items():
        if integer.get(name):           # token ids: not a scale to judge
            continue
        flat = a.reshape(-1, a.shape[-1])
        finite = np.isfinite(flat)
        clean = np.where(finite, flat, np.nan)
        with np.errstate(invalid="ignore"):
            mean = np.nanmean(clean, axis=0) if finite.any() else np.full(flat.shape[1], np.nan)
            std = np.nanstd(clean, axis=0) if finite.any() else np.full(flat.shape[1], np.nan)
        inputs[name] = {"mean": mean, "std": std, "nonfinite": int(np.size(flat) - finite.sum())}
    targets = {name: _target_stats(a) for name, a in ys.items()}
    weights = {name: int(p.size - np.isfinite(p).sum()) for name, p in model.params.items()}
    return {"inputs": inputs, "targets": targets, "nonfinite_weights": weights}


def _target_stats(a: Float64Array) -> dict[str, Any]:
    """Range, NaN/inf count, scale per unit, and the format of class targets."""
    finite = np.isfinite(a)
    stats: dict[str, Any] = {"min": float(np.min(a[finite])) if finite.any() else float("nan"),
             "max": float(np.max(a[finite])) if finite.any() else float("nan"),
             "nonfinite": int(a.size - finite.sum()),
             "outside_01": float(np.mean((a < 0) | (a > 1))),
             "samples": int(a.shape[0]), "shape": [int(d) for d in a.shape],
             "whole_numbers": bool(finite.any() and np.all(a[finite] == np.round(a[finite])))}
    units = a.reshape(-1, a.shape[-1]) if a.ndim > 1 else a.reshape(-1, 1)
    clean = np.where(np.isfinite(units), units, np.nan)
    with np.errstate(invalid="ignore"):
        if finite.any():
            mean, std = np.nanmean(clean, axis=0), np.nanstd(clean, axis=0)
        else:
            mean = std = np.full(units.shape[1], np.nan)
    stats["max_abs_mean"] = (float(np.nanmax(np.abs(mean))) if np.isfinite(mean).any()
                             else float("nan"))
    stats["max_std"] = float(np.nanmax(std)) if np.isfinite(std).any() else float("nan")
    # rows that are one-hot: several units, each 0 or 1, summing to 1
    if a.ndim > 1 and a.shape[-1] > 1:
        binary = np.all((units == 0) | (units == 1), axis=1)
        stats["one_hot_rows"] = float(np.mean(binary & (np.sum(units, axis=1) == 1)))
        stats["row_sums"] = _row_sums(units)
    else:
        stats["one_hot_rows"] = 0.0
    return stats


#: A target row sums to 1 within this (soft labels rounded to a few digits still do).
ROW_SUM_TOLERANCE = 1e-3


def _row_sums(units: Array) -> dict[str, Any]:
    """How the complete rows (no NaN) of class targets (R, C) sum: ``rows``, ``off`` (not
    within :data:`ROW_SUM_TOLERANCE` of 1), ``above`` (more than 1), ``empty`` (all 0),
    ``binary`` (every entry 0 or 1), ``min``, ``max``."""
    rows = units[np.all(np.isfinite(units), axis=1)]
    sums = rows.sum(axis=1)
    return {"rows": int(sums.size),
            "off": int(np.count_nonzero(np.abs(sums - 1) > ROW_SUM_TOLERANCE)),
            "above": int(np.count_nonzero(sums > 1 + ROW_SUM_TOLERANCE)),
            "empty": int(np.count_nonzero(np.all(rows == 0, axis=1))),
            "binary": bool(np.all((rows == 0) | (rows == 1))),
            "min": float(sums.min()) if sums.size else float("nan"),
            "max": float(sums.max()) if sums.size else float("nan")}


def dead_units(model: Model, tape: Tape) -> dict[str, dict[str, Any]]:
    """``{layer: {"units": U, "dead": [unit, ...], "dead_bias": median bias or None}}`` for
    every layer whose output is a ReLU of its logits (``Layer.output_activation``): units
    at 0 on every sample and step of the batch, at every place the layer is called."""
    alive: dict[str, Array] = {}
    layers: dict[str, Any] = {}
    for pos, node in enumerate(model.nodes):
        layer = node.layer
        for index in range(len(node.outputs)):
            if layer.output_activation(index) != "relu":
                continue
            z = layer.logits(tape.caches[pos], index)
            if z is None or z.size == 0:
                continue
            here = np.any(z.reshape(-1, z.shape[-1]) > 0, axis=0)
            alive[layer.name] = here if layer.name not in alive else alive[layer.name] | here
            layers[layer.name] = layer
    out: dict[str, dict[str, Any]] = {}
    for name, a in alive.items():
        dead = np.flatnonzero(~a)
        bias = layers[name].params.get("bias")
        out[name] = {"units": int(a.size), "dead": [int(j) for j in dead],
                     "dead_bias": (float(np.median(bias[dead])) if dead.size and bias is not None
                                   and bias.shape == a.shape else None)}
    return out


def layer_states(model: Model) -> list[tuple[Layer, dict[str, Array]]]:
    """A copy of every layer's non-trainable state (moving statistics)."""
    return [(layer, {k: np.array(v, copy=True) for k, v in layer.state.items()})
            for layer in model.layers]


def restore_states(saved: Sequence[tuple[Layer, dict[str, Array]]]) -> None:
    """Put back what :func:`layer_states` copied (in place: the arrays stay the layers')."""
    for layer, state in saved:
        for k, v in state.items():
            layer.state[k][...] = v


def batch_statistics(model: Model, tape: Tape) -> dict[str, dict[str, Any]]:
    """``{layer: {"count": values per feature, "batch": N, "per_sample": count / N,
    "moving_variance": median}}`` for every layer that normalized with statistics of the
    batch in this training pass (``Layer.batch_statistics_count``: BatchNormalization);
    the smallest count where a layer is called more than once."""
    out: dict[str, dict[str, Any]] = {}
    N = tape.outputs[0].shape[0] if tape.outputs else 0
    for pos, node in enumerate(model.nodes):
        count = node.layer.batch_statistics_count(tape.caches[pos])
        if count is None:
            continue
        name = node.layer.name
        if name in out and out[name]["count"] <= count:
            continue
        variance = node.layer.state.get("moving_variance")
        out[name] = {"count": int(count), "batch": int(N),
                     "per_sample": count / N if N else float("nan"),
                     "moving_variance": (float(np.median(variance)) if variance is not None
                                         else None)}
    return out


def static_measurements(model: Model, xb: Sequence[Array], yb: Sequence[Array],
                        rng: np.random.Generator | None = None) -> dict[str, Any]:
    """Everything measured on one batch at the model's current weights.

    The pass is a training pass (dropout draws masks from ``rng`` when given; batch
    normalization uses the batch's statistics), but it leaves the model as it was: the
    moving statistics that a training pass moves are put back.
    """
    saved = layer_states(model)
    try:
        tape = model.forward(xb, training=True, rng=rng)
    finally:
        restore_states(saved)
    result = model.loss_and_output_grads(tape, yb)
    passes = G.output_passes(model, tape, result)       # shared by the per-output figures
    extras: dict[str, Any] = {}
    total = model.backward(tape, result.d_outputs, result.d_logits, extras=extras)
    # per track: a recurrent layer, or one direction of a Bidirectional
    through_total = {track: np.linalg.norm(g, axis=(1, 2))
                     for layer in model.layers if layer.recurrent and layer.name in extras
                     for track, g in G.time_step_tracks(layer, extras[layer.name]).items()}
    lstm_masks = {track: m for pos, node in enumerate(model.nodes) if node.layer.recurrent
                  for track, m in G.time_step_masks(node.layer, tape.caches[pos]).items()}
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
        "through_time_reversed": G.time_step_reversed(model),
        "lstm_masks": lstm_masks,
        "gates": G.gate_saturation(model, tape),
        "heads": G.head_saturation(model, tape),
        "relu": dead_units(model, tape),
        "batch_statistics": batch_statistics(model, tape),
        "head_logits": {model.output_names[k]: model.output_logits(tape, k, "sigmoid")
                        for k in range(len(model.outputs))},
        "head_targets": {name: a for name, a in zip(model.output_names, yb)},
        "predictions": {name: o for name, o in zip(model.output_names, tape.outputs)},
        "nonfinite_outputs": {name: int(o.size - np.isfinite(o).sum())
                              for name, o in zip(model.output_names, tape.outputs)},
        "nonfinite_grads": [n for n, g in total.items() if not np.all(np.isfinite(g))],
    }


def unweighted_shared_norms(model: Model, tape: Tape, ys: Sequence[Array],
                            contributions: dict[str, dict[str, Array]]) -> dict[str, float]:
    """``{output: ||∇_shared L_k||}``: each output's *unweighted* loss gradient on the
    parameters that several outputs share (:func:`mlstm.measure.gradients.shared_parameters`).

    A contribution is linear in its loss weight, ``∇(w_k L_k) = w_k ∇L_k``, so it is read
    off the weighted contribution where ``w_k != 0``; an output at loss weight 0 gets its
    own backward pass with the seed of ``L_k`` alone. This is what loss weights are
    suggested from (:mod:`mlstm.diagnostics.loss_weights`).
    """
    shared = G.shared_parameters(model)
    out: dict[str, float] = {}
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


def norm_over(grads: dict[str, Array], names: Iterable[str]) -> float:
    """sqrt(Σ ||g||²) over the parameters ``names`` (float64)."""
    return float(np.sqrt(sum(float(np.sum(np.square(grads[n], dtype=np.float64)))
                             for n in names)))


def output_losses(model: Model, xs: Sequence[Array], ys: Sequence[Array], batch_size: int
                  ) -> dict[str, float]:
    """``{output: unweighted loss, "total": weighted total}`` over ``(xs, ys)`` (checked
    arrays), batch by batch, averaged by batch size as ``evaluate`` does."""
    N = xs[0].shape[0]
    sums: dict[str, float] = {}
    total = 0.0
    for start in range(0, N, batch_size):
        xb = [a[start:start + batch_size] for a in xs]
        yb = [a[start:start + batch_size] for a in ys]
        result = model.loss_and_output_grads(model.forward(xb), yb)
        n = xb[0].shape[0]
        total += result.total * n
        for name, value in zip(model.output_names, result.per_output):
            if value is not None:
                sums[name] = sums.get(name, 0.0) + value * n
    return {**{name: v / N for name, v in sums.items()}, "total": total / N}


def constant_prediction_losses(model: Model, ys: Sequence[Array]) -> dict[str, float | None]:
    """``{output: loss of the best constant prediction, "total": weighted}``: the loss a
    model reaches by predicting, for every sample, the targets' mean (the class frequencies
    for class ids): what it scores having learned nothing from its inputs. Computed from
    the loss's values (masks are not applied); None where the loss refuses it."""
    out: dict[str, float | None] = {}
    total: float | None = 0.0
    for k, (name, loss, w, y) in enumerate(zip(model.output_names, model._losses,
                                              model._loss_weights, ys)):
        if loss is None:
            continue
        shape = (y.shape[0],) + tuple(model.outputs[k].shape)
        dtype = np.float64
        value: float | None
        try:
            if getattr(loss, "sparse_targets", False):
                ids = np.asarray(y, dtype=np.int64).ravel()
                mean = np.bincount(ids, minlength=shape[-1])[:shape[-1]] / max(ids.size, 1)
            else:
                mean = np.asarray(y, dtype=dtype).reshape(-1, shape[-1]).mean(axis=0)
            pred = np.broadcast_to(mean, shape).astype(y.dtype if y.dtype.kind == "f" else dtype)
            if getattr(loss, "from_logits", False):
                pred = _as_logits(pred, loss.logits_activation)
            with np.errstate(all="ignore"):
                value = float(np.mean(np.asarray(loss.call(y, pred), dtype=np.float64)))
        except (ArithmeticError, ValueError, TypeError, IndexError):
            value = None
        out[name] = value if value is None or np.isfinite(value) else None
        term = out[name]
        total = None if total is None or term is None else total + w * term
    out["total"] = total
    return out


def _as_logits(p: Array, activation: str | None) -> Array:
    """Logits whose ``activation`` (sigmoid or softmax) is ``p``."""
    q = np.clip(p, 1e-7, 1 - 1e-7)
    return np.log(q / (1 - q)) if activation == "sigmoid" else np.log(q)


def checkpoint_steps(steps: int, count: int = 12) -> list[int]:
    """The optimizer steps (0 to ``steps``) at which the loss curves are evaluated."""
    return sorted(set(int(round(v)) for v in np.linspace(0, steps, count + 1)))


class Checkpoints:
    """Callback: losses measured at chosen steps of a run.

    ``measure(model)`` returns ``{set name: {key: value}}`` (e.g. per-output losses on the
    training and validation data); step 0 (the weights the run starts from) is recorded by
    :meth:`record` before ``fit``. ``curves``: ``{"steps": [...], set name: {key: [...]}}``.
    """

    model: Model      # set by fit

    def __init__(self, at: Iterable[int], measure: Measure) -> None:
        self.at, self.measure = set(at), measure
        self.done = 0
        self.curves: dict[str, Any] = {"steps": []}

    def record(self, model: Model, step: int) -> None:
        self.curves["steps"].append(step)
        with np.errstate(all="ignore"):
            for name, values in self.measure(model).items():
                for key, value in values.items():
                    self.curves.setdefault(name, {}).setdefault(key, []).append(
                        float(value) if value is not None else float("nan"))

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.done += 1
        if self.done in self.at:
            self.record(self.model, self.done)        # self.model: set by fit


#: Batch size of the loss measurements along a run (forward passes only: larger batches
#: cost less per sample; the batch-size-weighted mean does not depend on it).
EVAL_BATCH = 256


def losses_on(sets: dict[str, tuple[list[Array], list[Array]]]) -> Measure:
    """A ``measure`` for :class:`Checkpoints`: :func:`output_losses` on each set."""
    return lambda model: {name: output_losses(model, x, y, EVAL_BATCH)
                          for name, (x, y) in sets.items()}


class StopAfter:
    """Callback: stop ``fit`` after a given number of optimizer steps."""

    model: Model      # set by fit

    def __init__(self, steps: int) -> None:
        self.steps, self.done = steps, 0

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.done += 1
        if self.done >= self.steps:
            self.model.stop_training = True      # self.model: set by fit


def run_copy(twin: Model, xs: Sequence[Array], ys: Sequence[Array], steps: int,
             batch_size: int, seed: int, measure: Measure, trace: Trace | None = None
             ) -> tuple[Checkpoints, dict[str, Any] | None]:
    """Train ``twin`` for ``steps`` steps (batches of ``batch_size`` shuffled with
    ``seed``), recording ``measure(twin)`` at :func:`checkpoint_steps`;
    ``(checkpoints, stopped)``, where ``stopped`` describes a refused non-finite step (the
    copy then holds the last good weights)."""
    N = xs[0].shape[0]
    per_epoch = -(-N // batch_size)
    checkpoints = Checkpoints(checkpoint_steps(steps), measure)
    checkpoints.record(twin, 0)
    stopped: dict[str, Any] | None = None
    callbacks: list[Any] = ([trace] if trace is not None else []) + [checkpoints, StopAfter(steps)]
    with np.errstate(all="ignore"):
        try:
            twin.fit(xs, ys, epochs=-(-steps // per_epoch), batch_size=batch_size, seed=seed,
                     verbose=0, callbacks=callbacks)
        except NonFiniteError as error:
            stopped = {"iteration": error.iteration, "message": str(error)}
    if checkpoints.curves["steps"][-1] != checkpoints.done:   # stopped early
        checkpoints.record(twin, checkpoints.done)
    return checkpoints, stopped


def run_batch_sizes(N: int, steps: int, batch_size: int) -> dict[int, int]:
    """``{size: steps}``: how many of the run's ``steps`` use a batch of each size (fit
    cuts each epoch of ``N`` samples into batches of ``batch_size`` and a last, smaller
    one of ``N mod batch_size``)."""
    sizes = [min(batch_size, N - start) for start in range(0, N, batch_size)]
    out: dict[int, int] = {}
    for step in range(steps):
        size = sizes[step % len(sizes)]
        out[size] = out.get(size, 0) + 1
    return out


def evaluation_sets(xs: Sequence[Array], ys: Sequence[Array],
                    validation: tuple[list[Array], list[Array]] | None, seed: int,
                    limit: int = 512) -> dict[str, tuple[list[Array], list[Array]]]:
    """The fixed data the loss curves are measured on: the training data (a fixed random
    subset of ``limit`` samples when there are more) and the validation data, if any."""
    N = xs[0].shape[0]
    keep = (np.arange(N) if N <= limit
            else np.sort(np.random.default_rng(seed + 1).choice(N, limit, replace=False)))
    sets = {"train": ([a[keep] for a in xs], [a[keep] for a in ys])}
    if validation is not None:
        sets["validation"] = validation
    return sets


def training_run(model: Model, xs: Sequence[Array], ys: Sequence[Array], steps: int,
                 batch_size: int, seed: int,
                 validation: tuple[list[Array], list[Array]] | None = None) -> dict[str, Any]:
    """Train a copy for ``steps`` steps with a Trace; losses before and after, and the loss
    curves on fixed data (:func:`evaluation_sets`)."""
    twin = model.clone()
    if model.optimizer.iterations:
        twin.optimizer.set_state(model.optimizer.get_state())
    trace = Trace()
    sets = evaluation_sets(xs, ys, validation, seed)
    with np.errstate(all="ignore"):
        before = model.evaluate(xs, ys, batch_size=batch_size, return_dict=True)
        checkpoints, stopped = run_copy(twin, xs, ys, steps, batch_size, seed,
                                        losses_on(sets), trace)
        after = twin.evaluate(xs, ys, batch_size=batch_size, return_dict=True)
    return {"trace": trace, "before": before, "after": after, "model": twin,
            "stopped": stopped, "curves": checkpoints.curves,
            "batch_sizes": run_batch_sizes(xs[0].shape[0], steps, batch_size),
            "samples": int(xs[0].shape[0]),
            "baseline": constant_prediction_losses(model, sets["train"][1])}
