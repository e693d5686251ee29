"""compile / fit / evaluate / predict / train_on_batch / gradients, with Keras' conventions.

Mixed into :class:`mlstm.Model`. The one place where losses meet the graph is
:meth:`Trainer.loss_and_output_grads`: it applies each output's loss to that output alone,
weights it, and returns the gradients to seed the backward pass with.

History keys follow Keras 3: ``loss`` (weighted total), ``<output>_loss`` (unweighted, only
for several outputs), ``<output>_<metric>`` (``<metric>`` for one output), and the same with
``val_`` for validation data. Epoch values are means over the epoch's batches weighted by
batch size (losses) or over all samples (metrics), as Keras computes them.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from . import initializers
from . import losses as losses_module
from . import metrics as metrics_module
from . import optimizers as optimizers_module
from . import validation
from .callbacks import checkpoint_callbacks
from .layers import _format_shape

__all__ = ["Trainer", "History", "LossResult"]


class History:
    """What ``fit`` returns: ``history`` (dict of lists per key) and ``epoch``."""

    def __init__(self):
        self.history = {}
        self.epoch = []
        self.params = {}

    def append(self, epoch, logs):
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self):
        return f"<History epochs={len(self.epoch)} keys={list(self.history)}>"


class LossResult:
    """The losses of one batch and the gradients that seed the backward pass.

    Attributes
    ----------
    total : float
        Σ_k loss_weight_k · loss_k.
    per_output : list of float
        Unweighted loss_k (None for outputs without a loss).
    d_outputs, d_logits : dict output index -> ndarray
        Gradients of the *weighted* losses with respect to each output (or its logits).
    """

    def __init__(self, total, per_output, d_outputs, d_logits):
        self.total, self.per_output = total, per_output
        self.d_outputs, self.d_logits = d_outputs, d_logits

    def for_output(self, k):
        """Only output ``k``'s seeds: ``(d_outputs, d_logits)`` for a per-output backward."""
        return ({k: self.d_outputs[k]} if k in self.d_outputs else {},
                {k: self.d_logits[k]} if k in self.d_logits else {})


class Trainer:
    """Training plumbing for :class:`mlstm.Model`."""

    def __init__(self):
        self.compiled = False
        self.optimizer = None
        self.stop_training = False
        self.training_state = None   # fit kwargs that resume, set by loading a checkpoint

    # ------------------------------------------------------------------ compile
    def compile(self, optimizer="adam", loss=None, loss_weights=None, metrics=None):
        """Configure training.

        Parameters
        ----------
        optimizer : str or Optimizer
        loss : str, Loss, callable, list or dict
            One loss for every output (applied to each separately), a list in output order,
            or a dict by output name (outputs without a loss are not trained by it).
        loss_weights : list or dict, optional
            Multiplies each output's loss in the total; 1.0 by default.
        metrics : list, list of lists, or dict, optional
            A flat list of names applies to every output.
        """
        n = len(self.outputs)
        if loss is None:
            raise ValueError("compile needs a loss: a name, a losses.Loss, a function, or a "
                             f"list/dict for the outputs {self.output_names}")
        per_output = self._per_output(loss, "loss", allow_missing=True)
        resolved = [None if spec is None else losses_module.get(spec) for spec in per_output]
        if all(l is None for l in resolved):
            raise ValueError("compile: no output has a loss")
        if loss_weights is None:
            weights = [1.0] * n
        else:
            if not isinstance(loss_weights, (list, tuple, dict)):
                raise TypeError("loss_weights must be a list or a dict by output name, got "
                                f"{type(loss_weights).__name__}")
            weights = [1.0 if w is None else w for w in
                       self._per_output(loss_weights, "loss_weights", allow_missing=True)]
            for name, w in zip(self.output_names, weights):
                if (not isinstance(w, (int, float, np.number)) or isinstance(w, bool)
                        or not np.isfinite(w)):
                    raise ValueError(f"loss_weights for output {name!r} must be a finite "
                                     f"number, got {w!r}")
        if metrics is None:
            metric_specs = [[] for _ in range(n)]
        elif isinstance(metrics, dict):
            metric_specs = self._per_output(metrics, "metrics", allow_missing=True)
            metric_specs = [[] if m is None else ([m] if isinstance(m, str) else list(m))
                            for m in metric_specs]
        elif isinstance(metrics, (list, tuple)):
            if metrics and all(isinstance(m, (list, tuple)) for m in metrics):
                if len(metrics) != n:
                    raise ValueError(f"metrics: got {len(metrics)} lists for {n} outputs "
                                     f"{self.output_names}")
                metric_specs = [list(m) for m in metrics]
            else:
                metric_specs = [list(metrics) for _ in range(n)]
        else:
            raise TypeError("metrics must be a list, a list of lists or a dict by output name")
        resolved_metrics = [[metrics_module.get(m) for m in specs] for specs in metric_specs]
        optimizer = optimizers_module.get(optimizer)
        optimizer.check_dtype(self.dtype)     # a learning rate of 1e39 is inf in float32
        self.optimizer = optimizer
        self._losses = resolved
        self._loss_weights = [float(w) for w in weights]
        self._metrics = resolved_metrics
        self.compiled = True

    @property
    def _compile_config(self):
        """The compiled losses, loss weights and metric keys (a plain, comparable dict)."""
        return {"loss": [None if l is None else l.get_config() for l in self._losses],
                "loss_weights": list(self._loss_weights),
                "metrics": [[key for _, key in ms] for ms in self._metrics]}

    def _per_output(self, spec, label, allow_missing=False):
        """Expand a spec (single, list or dict by output name) to one entry per output."""
        n = len(self.outputs)
        if isinstance(spec, dict):
            unknown = sorted(set(spec) - set(self.output_names))
            if unknown:
                raise ValueError(f"{label}: unknown output names {unknown}; outputs are "
                                 f"{self.output_names}")
            return [spec.get(name) for name in self.output_names]
        if isinstance(spec, (list, tuple)):
            if len(spec) != n:
                raise ValueError(f"{label}: got {len(spec)} entries for {n} outputs "
                                 f"{self.output_names}")
            return list(spec)
        return [spec] * n

    def _copy_compile_settings(self, other):
        self._losses = list(other._losses)
        self._loss_weights = list(other._loss_weights)
        self._metrics = [list(m) for m in other._metrics]
        self.optimizer = type(other.optimizer).from_config(other.optimizer.get_config())
        self.compiled = True

    def _require_compiled(self, what):
        if not self.compiled:
            raise RuntimeError(f"{what} needs a compiled model: call model.compile(...) first")

    @property
    def metrics_names(self):
        """Names in the order ``evaluate`` and ``train_on_batch`` return values (Keras')."""
        self._require_compiled("metrics_names")
        names = ["loss"]
        if len(self.outputs) > 1:
            names += [f"{name}_loss" for name, l in zip(self.output_names, self._losses)
                      if l is not None]
        for name, metrics in zip(self.output_names, self._metrics):
            for _, key in metrics:
                names.append(key if len(self.outputs) == 1 else f"{name}_{key}")
        return names

    # ------------------------------------------------------------------ data
    def _standardize(self, data, role, tensors, names):
        """Arrays for ``tensors`` from an array, a list or a dict by name; shapes checked."""
        n = len(tensors)
        if isinstance(data, dict):
            missing = [nm for nm in names if nm not in data]
            unknown = sorted(set(data) - set(names))
            if missing or unknown:
                raise ValueError(f"{role}: dict keys must be {names}; missing {missing}, "
                                 f"unknown {unknown}")
            arrays = [data[nm] for nm in names]
        elif isinstance(data, (list, tuple)):
            if n == 1 and len(data) != 1:
                arrays = [data]
            else:
                arrays = list(data)
            if len(arrays) != n:
                raise ValueError(f"{role}: the model has {n} {role} {names}, got {len(arrays)} "
                                 "arrays")
        else:
            if n != 1:
                raise ValueError(f"{role}: the model has {n} {role} {names}; pass a list of "
                                 f"{n} arrays or a dict by name, got a single "
                                 f"{type(data).__name__}")
            arrays = [data]
        out = []
        for name, t, a in zip(names, tensors, arrays):
            a = validation.as_real_array(a, f"{role} {name!r}")
            expected = (None,) + tuple(t.shape)
            if a.ndim != len(expected) or any(e is not None and e != d
                                              for e, d in zip(expected[1:], a.shape[1:])):
                raise ValueError(f"{role} {name!r} expects shape {_format_shape(expected)}, got "
                                 f"{a.shape}" + validation.rank_hint(a.shape, expected) +
                                 (f"; it feeds {validation.feeds(self, t)}" if role == "inputs"
                                  else f"; it is the target of the output of "
                                       f"{type(t.node.layer).__name__} {t.node.layer.name!r}"))
            if any(d == 0 for d in a.shape):
                raise ValueError(f"{role} {name!r} is empty: shape {a.shape}")
            out.append(validation.cast_finite(a, t.dtype, f"{role} {name!r}"))
        sizes = {a.shape[0] for a in out}
        if len(sizes) > 1:
            raise ValueError(f"{role}: batch sizes differ: " +
                             ", ".join(f"{nm} has {a.shape[0]}" for nm, a in zip(names, out)))
        return out

    def _inputs(self, x):
        return self._standardize(x, "inputs", self.inputs, self.input_names)

    def _targets(self, y, batch_size):
        ys = self._standardize(y, "targets", self.outputs, self.output_names)
        if ys[0].shape[0] != batch_size:
            raise ValueError(f"targets have {ys[0].shape[0]} samples, inputs have {batch_size}")
        validation.check_targets(self, ys)
        return ys

    # ------------------------------------------------------------------ the loss
    def loss_and_output_grads(self, tape, ys):
        """Each output's loss on its own ``y_true``/``y_pred``, weighted, and its gradients.

        Returns
        -------
        LossResult
        """
        total, per_output, d_out, d_log = 0.0, [], {}, {}
        for k, (loss, weight) in enumerate(zip(self._losses, self._loss_weights)):
            if loss is None:
                per_output.append(None)
                continue
            validation.check_masked_targets(self, k, ys[k], tape.output_masks[k])
            value, g_pred, g_logits = losses_module.reduce_output_loss(
                loss, ys[k], tape.outputs[k], tape.output_masks[k], self.output_logits(tape, k))
            per_output.append(value)
            total += weight * value
            scale = tape.outputs[k].dtype.type(weight)
            if g_pred is not None:
                d_out[k] = g_pred * scale
            if g_logits is not None:
                d_log[k] = g_logits * scale
        return LossResult(total, per_output, d_out, d_log)

    def _metric_sums(self, tape, ys):
        sums = []
        for k, metrics in enumerate(self._metrics):
            for fn, _ in metrics:
                sums.append(metrics_module.metric_sums(fn, ys[k], tape.outputs[k],
                                                       tape.output_masks[k]))
        return sums

    def _logs(self, result_sums, batch_counts, metric_sums, prefix=""):
        """Epoch (or batch) logs from accumulated sums, keys in ``metrics_names`` order."""
        loss_total, per_output = result_sums
        values = [loss_total / batch_counts]
        if len(self.outputs) > 1:
            values += [v / batch_counts for v, l in zip(per_output, self._losses) if l is not None]
        values += [s / c if c else 0.0 for s, c in metric_sums]
        return {prefix + name: float(v) for name, v in zip(self.metrics_names, values)}

    # ------------------------------------------------------------------ public API
    def gradients(self, x, y):
        """``{"layer/weight": dL/dθ}`` of the total weighted loss on the whole batch."""
        self._require_compiled("gradients")
        xs = self._inputs(x)
        ys = self._targets(y, xs[0].shape[0])
        tape = self.forward(xs, training=True)
        result = self.loss_and_output_grads(tape, ys)
        return self.backward(tape, result.d_outputs, result.d_logits)

    def train_on_batch(self, x, y, return_dict=False):
        """One optimizer step on one batch; returns the batch's loss (and metrics).

        Returns a scalar when there is a single value, else a list in ``metrics_names``
        order, or a dict with ``return_dict=True`` (Keras' convention). Values are those
        computed before the step.
        """
        self._require_compiled("train_on_batch")
        xs = self._inputs(x)
        ys = self._targets(y, xs[0].shape[0])
        logs, _ = self._train_step(xs, ys)
        return _return_logs(logs, return_dict)

    def _train_step(self, xs, ys, before_update=None):
        tape = self.forward(xs, training=True)
        result = self.loss_and_output_grads(tape, ys)
        grads = self.backward(tape, result.d_outputs, result.d_logits)
        validation.check_step_finite(self, tape, ys, result, grads)
        if before_update is not None:
            # The tape's caches refer to the live weights: this is the last moment at which
            # they are the weights the tape was computed with.
            before_update(dict(tape=tape, result=result, grads=grads))
        trainable = self.trainable_params
        try:
            updates = self.optimizer.apply(trainable, {k: grads[k] for k in trainable})
        except validation.NonFiniteError as error:   # the update overflowed; nothing applied
            raise validation.attribute_update_error(self, tape, result, error)
        n = xs[0].shape[0]
        metric_sums = self._metric_sums(tape, ys)
        logs = self._logs((result.total * n, [0.0 if v is None else v * n
                                              for v in result.per_output]),
                          n, metric_sums)
        return logs, dict(tape=tape, result=result, grads=grads, updates=updates,
                          metric_sums=metric_sums)

    def predict(self, x, batch_size=32, verbose=0):
        """Outputs for ``x``, batch by batch: an array (one output) or a list of arrays."""
        xs = self._inputs(x)
        batch_size = _check_batch_size(batch_size)
        N = xs[0].shape[0]
        chunks = [[] for _ in self.outputs]
        for start in range(0, N, batch_size):
            tape = self.forward([a[start:start + batch_size] for a in xs])
            for k, out in enumerate(tape.outputs):
                chunks[k].append(out)
        outs = [np.concatenate(c, axis=0) for c in chunks]
        return outs[0] if self._single_output or len(outs) == 1 else outs

    def predict_on_batch(self, x):
        """Outputs for one batch, without splitting it."""
        xs = self._inputs(x)
        outs = self.forward(xs).outputs
        return outs[0] if self._single_output or len(outs) == 1 else list(outs)

    def evaluate(self, x, y, batch_size=32, verbose=0, return_dict=False):
        """Loss and metrics over ``(x, y)``; Keras' order ``total, per-output losses, metrics``."""
        self._require_compiled("evaluate")
        xs = self._inputs(x)
        ys = self._targets(y, xs[0].shape[0])
        logs = self._evaluate_arrays(xs, ys, _check_batch_size(batch_size))
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
        return _return_logs(logs, return_dict)

    def _evaluate_arrays(self, xs, ys, batch_size, prefix=""):
        N = xs[0].shape[0]
        totals = _EpochSums(len(self.outputs))
        for start in range(0, N, batch_size):
            sl = slice(start, start + batch_size)
            xb, yb = [a[sl] for a in xs], [a[sl] for a in ys]
            tape = self.forward(xb)
            with validation.batch_rows(range(start, N)):   # refusals name rows of x and y
                result = self.loss_and_output_grads(tape, yb)
            totals.add(result, xb[0].shape[0], self._metric_sums(tape, yb))
        return totals.logs(self, prefix)

    def gradient_contributions(self, x, y, per_sample=False):
        """Each output's share of the gradient: ``{output: {"layer/weight": ndarray}}``.

        The gradient of ``loss_weight_k · loss_k`` for each output k; they sum to
        :meth:`gradients`. See :func:`mlstm.inspect.gradient_contributions`.
        """
        from .inspect import gradient_contributions
        return gradient_contributions(self, x, y, per_sample=per_sample)

    def fit(self, x, y, epochs=1, batch_size=32, shuffle=True, seed=None,
            validation_data=None, verbose=1, callbacks=None, initial_epoch=0, trace=False,
            checkpoint=None):
        """Train for ``epochs`` passes over the data.

        Parameters
        ----------
        x, y : array, list of arrays, or dict by input/output name
        epochs : int
            Index of the last epoch (Keras' meaning, with ``initial_epoch``).
        batch_size : int
        shuffle : bool
            Reshuffle before each epoch. The order of epoch ``e`` depends only on
            ``(seed, e)``, so a run resumed at ``initial_epoch`` sees the same batches.
        seed : int, optional
            Seeds the shuffling; when omitted, drawn from :func:`mlstm.set_random_seed`'s
            stream.
        validation_data : (x_val, y_val), optional
        verbose : {0, 1, 2}
            0 silent, 1 a progress line (updated in place on a terminal), 2 one line per epoch.
        callbacks : list, optional
            Objects with any of ``on_train_begin(model)``, ``on_epoch_end(model, epoch, logs)``,
            ``on_before_update(model, step, info)`` (tape, loss result and gradients, with
            the weights still those of the forward pass), ``on_batch_end(model, step, info)``
            (the same plus ``updates``), ``on_train_end(model)``;
            ``model.stop_training = True`` ends training after the current batch.
        initial_epoch : int
        trace : bool
            Record every step's per-output gradient norms, updates and gate saturation on
            ``history.trace`` (an :class:`mlstm.inspect.Trace` callback).
        checkpoint : str, os.PathLike or mlstm.callbacks.ModelCheckpoint, optional
            Save the model (weights, optimizer state, where training is) atomically at the
            end of every epoch; ``m = mlstm.load_model(path); m.fit(x, y,
            **m.training_state)`` resumes bit-identically.

        Returns
        -------
        History

        Raises
        ------
        mlstm.validation.NonFiniteError
            When a step's loss or gradient is NaN/inf; that step's update is not applied,
            so the model keeps the weights of the last good step.
        """
        self._require_compiled("fit")
        xs = self._inputs(x)
        ys = self._targets(y, xs[0].shape[0])
        batch_size = _check_batch_size(batch_size)
        if not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"epochs must be a non-negative int, got {epochs!r}")
        if verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
        validation.check_fit_options(initial_epoch, seed, shuffle)
        checkpointer = checkpoint_callbacks(checkpoint)
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (list, tuple)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a pair (x_val, y_val)")
            with validation.prefixed("validation_data"):
                vx = self._inputs(validation_data[0])
                val = (vx, self._targets(validation_data[1], vx[0].shape[0]))
        if seed is None:
            seed = int(initializers.default_rng().integers(2 ** 31))
        callbacks = list(callbacks or []) + checkpointer
        tracer = None
        if trace:
            from .inspect import Trace
            tracer = Trace()
            callbacks.append(tracer)
        N = xs[0].shape[0]
        steps = -(-N // batch_size)
        history = History()
        history.params = dict(epochs=epochs, steps=steps, batch_size=batch_size, seed=seed,
                              shuffle=bool(shuffle))
        self.history = history
        if tracer is not None:
            history.trace = tracer
        self.stop_training = False
        _call(callbacks, "on_train_begin", self)
        progress = _Progress(verbose, steps)
        for epoch in range(initial_epoch, epochs):
            order = (np.random.default_rng([seed, epoch]).permutation(N) if shuffle
                     else np.arange(N))
            progress.start_epoch(epoch, epochs)
            totals = _EpochSums(len(self.outputs))
            for step in range(steps):
                idx = order[step * batch_size:(step + 1) * batch_size]
                xb, yb = [a[idx] for a in xs], [a[idx] for a in ys]
                try:
                    with validation.batch_rows(idx):   # refusals name rows of x and y
                        logs, info = self._train_step(
                            xb, yb, before_update=lambda pre: _call(
                                callbacks, "on_before_update", self, step, pre))
                except validation.NonFiniteError as error:
                    error.locate(epoch, step, idx)
                    _call(callbacks, "on_train_end", self)
                    raise
                totals.add(info["result"], len(idx), info["metric_sums"])
                info.update(epoch=epoch, step=step, batch_logs=logs)
                _call(callbacks, "on_batch_end", self, step, info)
                progress.update(step + 1, totals.logs(self))
                if self.stop_training:
                    break
            epoch_logs = totals.logs(self)
            if val is not None:
                epoch_logs.update(self._evaluate_arrays(val[0], val[1], batch_size,
                                                        prefix="val_"))
            history.append(epoch, epoch_logs)
            progress.end_epoch(epoch_logs)
            _call(callbacks, "on_epoch_end", self, epoch, epoch_logs)
            if self.stop_training:
                break
        _call(callbacks, "on_train_end", self)
        return history


class _EpochSums:
    """Running sums over batches: losses weighted by batch size, metrics by sample."""

    def __init__(self, n_outputs):
        self.total, self.per_output, self.count = 0.0, [0.0] * n_outputs, 0
        self.metrics = None

    def add(self, result, batch_size, metric_sums):
        self.total += result.total * batch_size
        self.per_output = [acc + (0.0 if v is None else v * batch_size)
                           for acc, v in zip(self.per_output, result.per_output)]
        self.count += batch_size
        if self.metrics is None:
            self.metrics = [list(s) for s in metric_sums]
        else:
            for acc, (s, c) in zip(self.metrics, metric_sums):
                acc[0] += s
                acc[1] += c

    def logs(self, model, prefix=""):
        return model._logs((self.total, self.per_output), max(self.count, 1),
                           self.metrics or [], prefix)


class _Progress:
    def __init__(self, verbose, steps):
        self.verbose, self.steps = verbose, steps
        self.tty = verbose == 1 and sys.stdout.isatty()

    def start_epoch(self, epoch, epochs):
        self.t0 = time.perf_counter()
        if self.verbose == 1:
            print(f"Epoch {epoch + 1}/{epochs}", flush=True)
        self.epoch, self.epochs = epoch, epochs

    def _line(self, step, logs):
        elapsed = time.perf_counter() - self.t0
        values = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
        return (f"{step}/{self.steps} - {elapsed:.1f}s "
                f"{1000 * elapsed / max(step, 1):.0f}ms/step - {values}")

    def update(self, step, logs):
        if self.tty:
            sys.stdout.write("\r" + self._line(step, logs))
            sys.stdout.flush()

    def end_epoch(self, logs):
        if self.verbose == 1:
            sys.stdout.write(("\r" if self.tty else "") + self._line(self.steps, logs) + "\n")
            sys.stdout.flush()
        elif self.verbose == 2:
            print(f"Epoch {self.epoch + 1}/{self.epochs} - " + self._line(self.steps, logs),
                  flush=True)


def _call(callbacks, hook, *args):
    for cb in callbacks:
        fn = getattr(cb, hook, None)
        if fn is not None:
            fn(*args)


def _return_logs(logs, return_dict):
    if return_dict:
        return logs
    values = list(logs.values())
    return values[0] if len(values) == 1 else values


def _check_batch_size(batch_size):
    if (not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool)
            or batch_size <= 0):
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    return int(batch_size)
