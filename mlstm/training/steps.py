"""One batch: the per-output losses, the gradients and one optimizer step.

The one place where losses meet the graph is :meth:`StepsMixin.loss_and_output_grads`: it
applies each output's loss to that output alone, with that output's entry weights and
labelled entries (:mod:`mlstm.training.weights`), weights it, and returns the gradients
to seed the backward pass with.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import initializers
from .. import losses as losses_module
from .. import metrics as metrics_module
from .. import validation
from .arguments import refuse_unknown
from .epoch import EpochSums, return_logs
from .memory import check_batch_memory
from .nonfinite import attribute_update_error, check_step_finite
from .results import LossResult
from .weights import Arrays, class_weights, sample_weights

if TYPE_CHECKING:
    from .._typing import Array, BoolArray
    from ..graph import Tape
    from ..model_protocol import TrainableModel
    from ..ops.embedding import SparseRowsGradient
    from .host import StepInfo

if TYPE_CHECKING:
    from .host import TrainerHost as _Host
else:           # the declarations are for mypy; at run time a mixin is a plain class
    _Host = object

__all__ = ["StepsMixin"]


def _shared_layer_rng(model: TrainableModel) -> np.random.Generator | None:
    """A child of the shared stream (:func:`mlstm.initializers.default_rng`) for one
    training pass of ``model``, or None when no layer draws random numbers (then the
    stream is left as it is)."""
    if not any(node.layer.uses_rng for node in model.nodes):
        return None
    return initializers.default_rng().spawn(1)[0]


class StepsMixin(_Host):
    """Batch-level training (part of :class:`Trainer`)."""

    # ------------------------------------------------------------------ the loss
    def loss_and_output_grads(self, tape: Tape, ys: Sequence[Array],
                              weights: Sequence[Array | None] | None = None,
                              labelled: Sequence[BoolArray | None] | None = None,
                              ) -> LossResult:
        """Each output's loss on its own ``y_true``/``y_pred``, weighted, and its gradients.

        Parameters
        ----------
        tape : Tape
        ys : list of ndarray
            Targets in output order.
        weights : list of (ndarray or None), optional
            Per output, one weight per loss entry, (N,) or (N, T): Keras' weighted
            reduction ``Σ w·l / N``.
        labelled : list of (bool ndarray or None), optional
            Given (even as all None) when missing labels are on: per output, the labelled
            entries (None: all). The loss is then the mean over the labelled entries (as
            over a mask's valid steps), 0 with no gradient when there is none, and the
            result counts them.

        Returns
        -------
        LossResult
        """
        count_labels = labelled is not None
        total = 0.0
        per_output: list[float | None] = []
        d_out: dict[int, Array] = {}
        d_log: dict[int, Array] = {}
        counts: list[int | None] = []
        entries: list[int | None] = []
        for k, (loss, weight) in enumerate(zip(self._losses, self._loss_weights)):
            if loss is None:
                per_output.append(None)
                counts.append(None)
                entries.append(None)
                continue
            mask = tape.output_masks[k]
            validation.check_masked_targets(self, k, ys[k], mask)
            sw = None if weights is None else weights[k]
            if labelled is not None:            # count_labels
                shape = ys[k].shape[:-1]
                valid = mask if mask is not None and mask.shape == shape else None
                given = labelled[k]
                lab = given if given is not None else np.ones(shape, bool)
                mask = lab if valid is None else lab & valid
                counts.append(int(np.count_nonzero(mask)))
                entries.append(int(np.count_nonzero(valid)) if valid is not None
                               else int(np.prod(shape)))
                if sw is None:      # ones: the reduction then checks the per-entry shape
                    sw = np.ones(shape, tape.outputs[k].dtype)
            value, g_pred, g_logits = losses_module.reduce_output_loss(
                loss, ys[k], tape.outputs[k], mask, self.loss_logits(tape, k),
                sample_weight=sw)
            per_output.append(value)
            total += weight * value
            scale = tape.outputs[k].dtype.type(weight)
            if g_pred is not None:
                d_out[k] = g_pred * scale
            if g_logits is not None:
                d_log[k] = g_logits * scale
        return LossResult(total, per_output, d_out, d_log,
                          labelled=counts if count_labels else None,
                          entries=entries if count_labels else None)

    def loss_logits(self, tape: Tape, k: int) -> Array | None:
        """The logits output ``k``'s loss is computed from, or None.

        A loss that takes logits from an activation (``Loss.logits_activation``: sigmoid for
        binary cross-entropy) gets them when output ``k`` is that activation of its logits,
        as Keras' TensorFlow backend does.
        """
        loss = self._losses[k]
        if loss is None or loss.logits_activation is None:
            return None
        return self.output_logits(tape, k, loss.logits_activation)

    def _metric_sums(self, tape: Tape, ys: list[Array],
                     labelled: Sequence[BoolArray | None] | None = None,
                     ) -> list[tuple[float, float]]:
        """``[(Σ m·value, Σ m)]`` per metric, m the mask (and 0 at missing labels).

        Sample and class weights do not reach the metrics: Keras applies them only to
        ``weighted_metrics``, not to ``metrics``.
        """
        sums: list[tuple[float, float]] = []
        for k, metrics in enumerate(self._metrics):
            mask = tape.output_masks[k]
            lab = None if labelled is None else labelled[k]
            if lab is not None:
                mask = lab if mask is None or mask.shape != lab.shape else mask & lab
            for fn, _ in metrics:
                sums.append(metrics_module.metric_sums(fn, ys[k], tape.outputs[k], mask))
        return sums

    def _logs(self, result_sums: tuple[float, Sequence[float]], batch_counts: float,
              metric_sums: Sequence[Sequence[float]], prefix: str = "") -> dict[str, float]:
        """Epoch (or batch) logs from accumulated sums, keys in ``metrics_names`` order."""
        loss_total, per_output = result_sums
        values = [loss_total / batch_counts]
        if len(self.outputs) > 1:
            values += [v / batch_counts for v, l in zip(per_output, self._losses) if l is not None]
        values += [s / c if c else 0.0 for s, c in metric_sums]
        return {prefix + name: float(v) for name, v in zip(self.metrics_names, values)}

    # ------------------------------------------------------------------ public API
    def gradients(self, x: Any, y: Any) -> dict[str, Array]:
        """``{"layer/weight": dL/dθ}`` of the total weighted loss on the whole batch."""
        self._require_compiled("gradients")
        xs = self._inputs(x)
        ys = self._targets(y, xs[0].shape[0])
        check_batch_memory(self, [a.shape for a in xs], len(xs[0]), "train", "gradients")
        tape = self.forward(xs, training=True)
        result = self.loss_and_output_grads(tape, ys)
        return self.backward(tape, result.d_outputs, result.d_logits)

    def train_on_batch(self, x: Any, y: Any, sample_weight: Any = None,
                       class_weight: Mapping[Any, Any] | None = None, return_dict: bool = False,
                       **unknown: Any) -> dict[str, float] | float | list[float]:
        """One optimizer step on one batch; returns the batch's loss (and metrics).

        Returns a scalar when there is a single value, else a list in ``metrics_names``
        order, or a dict with ``return_dict=True`` (Keras' convention). Values are those
        computed before the step. ``sample_weight`` and ``class_weight`` as in ``fit``.

        Dropout is active, as in Keras' ``train_on_batch``: layers that draw random numbers
        (``Layer.uses_rng``) get a child of :func:`mlstm.set_random_seed`'s shared stream
        (as Keras draws from ``keras.utils.set_random_seed``'s), so the same seed followed
        by the same calls gives the same masks, bit for bit. A model without such layers
        leaves the stream untouched.
        """
        refuse_unknown("train_on_batch", unknown,
                       ("x", "y", "sample_weight", "class_weight", "return_dict"))
        self._require_compiled("train_on_batch")
        data = self._arrays(x, y, sample_weight, class_weight)
        check_batch_memory(self, [a.shape for a in data.xs], data.n, "train",
                           "train_on_batch")
        logs, _ = self._train_step(data, rng=_shared_layer_rng(self))
        return return_logs(logs, return_dict)

    def _arrays(self, x: Any, y: Any, sample_weight: Any = None,
                class_weight: Mapping[Any, Any] | None = None, missing: bool = False,
                label: str = "sample_weight") -> Arrays:
        """:class:`Arrays` from the user's ``x``, ``y`` and weights, every part checked."""
        xs = self._inputs(x)
        labelled: list[BoolArray | None] | None = [] if missing else None
        ys = self._targets(y, xs[0].shape[0], labelled)
        if sample_weight is not None and class_weight is not None:
            raise ValueError("give sample_weight or class_weight, not both (as in Keras); "
                             "class_weight means sample_weight = class_weight[label], so "
                             "multiply them yourself to combine them")
        weights = sample_weights(self, sample_weight, ys, label)
        if class_weight is not None:
            weights = class_weights(self, class_weight, ys)
        return Arrays(xs, ys, weights, labelled)

    def _batch_loss(self, tape: Tape, batch: Arrays) -> LossResult:
        """:meth:`loss_and_output_grads` for an :class:`Arrays` batch."""
        return self.loss_and_output_grads(tape, batch.ys, batch.weights,
                                          batch.labelled if batch.count_labels else None)

    def _train_step(self, batch: Arrays, before_update: Callable[[StepInfo], None] | None = None,
                    rng: np.random.Generator | None = None,
                    ) -> tuple[dict[str, float], StepInfo]:
        """One step on an :class:`Arrays` batch: ``(batch logs, info)``.

        ``before_update(info)`` is called with the tape, loss result and gradients while
        the weights are still those of the forward pass; ``rng`` is the run's seeded stream
        for layers that draw random numbers (dropout).
        """
        tape = self.forward(batch.xs, training=True, rng=rng)
        result = self._batch_loss(tape, batch)
        # Embedding tables per token occurrence, as Keras' optimizers
        sparse_grads: dict[str, SparseRowsGradient] = {}
        grads = self.backward(tape, result.d_outputs, result.d_logits,
                              sparse_grads=sparse_grads)
        check_step_finite(self, tape, batch.ys, result, grads)
        info = dict(tape=tape, result=result, grads=grads)
        if before_update is not None:
            # The tape's caches refer to the live weights: this is the last moment at which
            # they are the weights the tape was computed with.
            before_update(info)
        trainable = self.trainable_params
        assert self.optimizer is not None       # a training step: the model is compiled
        try:
            updates = self.optimizer.apply(
                trainable, {k: grads[k] for k in trainable},
                sparse_grads={k: g for k, g in sparse_grads.items() if k in trainable})
        except validation.NonFiniteError as error:   # the update overflowed; nothing applied
            raise attribute_update_error(self, tape, result, error)
        metric_sums = self._metric_sums(tape, batch.ys, batch.labelled)
        sums = EpochSums(self, batch.count_labels)
        sums.add(result, batch.n, metric_sums)
        info.update(updates=updates, metric_sums=metric_sums,
                    learning_rate=self.optimizer.current_learning_rate)
        return sums.logs(), info
