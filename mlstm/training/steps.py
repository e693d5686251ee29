"""One batch: the per-output losses, the gradients, a step, predictions and evaluation.

The one place where losses meet the graph is :meth:`StepsMixin.loss_and_output_grads`: it
applies each output's loss to that output alone, weights it, and returns the gradients to
seed the backward pass with.
"""
from __future__ import annotations

import numpy as np

from .. import losses as losses_module
from .. import metrics as metrics_module
from .. import validation
from .nonfinite import attribute_update_error, check_step_finite
from .results import LossResult

__all__ = ["StepsMixin", "return_logs", "check_batch_size", "EpochSums"]


class StepsMixin:
    """Batch-level training and inference (part of :class:`Trainer`)."""

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
                loss, ys[k], tape.outputs[k], tape.output_masks[k], self.loss_logits(tape, k))
            per_output.append(value)
            total += weight * value
            scale = tape.outputs[k].dtype.type(weight)
            if g_pred is not None:
                d_out[k] = g_pred * scale
            if g_logits is not None:
                d_log[k] = g_logits * scale
        return LossResult(total, per_output, d_out, d_log)

    def loss_logits(self, tape, k):
        """The logits output ``k``'s loss is computed from, or None.

        A loss that takes logits from an activation (``Loss.logits_activation``: sigmoid for
        binary cross-entropy) gets them when output ``k`` is that activation of its logits,
        as Keras' TensorFlow backend does.
        """
        loss = self._losses[k]
        if loss is None or loss.logits_activation is None:
            return None
        return self.output_logits(tape, k, loss.logits_activation)

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
        return return_logs(logs, return_dict)

    def _train_step(self, xs, ys, before_update=None, rng=None):
        # rng: the run's seeded stream for layers that draw random numbers (dropout)
        tape = self.forward(xs, training=True, rng=rng)
        result = self.loss_and_output_grads(tape, ys)
        grads = self.backward(tape, result.d_outputs, result.d_logits)
        check_step_finite(self, tape, ys, result, grads)
        if before_update is not None:
            # The tape's caches refer to the live weights: this is the last moment at which
            # they are the weights the tape was computed with.
            before_update(dict(tape=tape, result=result, grads=grads))
        trainable = self.trainable_params
        try:
            updates = self.optimizer.apply(trainable, {k: grads[k] for k in trainable})
        except validation.NonFiniteError as error:   # the update overflowed; nothing applied
            raise attribute_update_error(self, tape, result, error)
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
        batch_size = check_batch_size(batch_size)
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
        logs = self._evaluate_arrays(xs, ys, check_batch_size(batch_size))
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
        return return_logs(logs, return_dict)

    def _evaluate_arrays(self, xs, ys, batch_size, prefix=""):
        N = xs[0].shape[0]
        totals = EpochSums(len(self.outputs))
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
        :meth:`gradients`. See :func:`mlstm.measure.gradient_contributions`.
        """
        from ..measure import gradient_contributions
        return gradient_contributions(self, x, y, per_sample=per_sample)


class EpochSums:
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



def return_logs(logs, return_dict):
    if return_dict:
        return logs
    values = list(logs.values())
    return values[0] if len(values) == 1 else values



def check_batch_size(batch_size):
    if (not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool)
            or batch_size <= 0):
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    return int(batch_size)

