"""A training step that went non-finite: the cheap check every step, and the diagnosis
(which output, which layer, which samples) only when it fails.

The error itself, :class:`mlstm.validation.NonFiniteError`, lives with the checks; what
needs the model and its losses to explain the step lives here, in training.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..losses import reduce_output_loss
from ..validation import NonFiniteError, all_finite
from ..validation.finite import _describe_entries

if TYPE_CHECKING:
    from .._typing import Array
    from ..graph import Tape
    from ..model_protocol import TrainableModel
    from .results import LossResult

__all__ = ["check_step_finite", "attribute_update_error"]


def check_step_finite(model: TrainableModel, tape: Tape, ys: Sequence[Array],
                      result: LossResult, grads: Mapping[str, Array]) -> None:
    """Raise :class:`NonFiniteError` unless the step's losses, trainable gradients and
    trainable weights are all finite.

    Called between the backward pass and the optimizer, so a bad step changes nothing.
    The weights are checked too because an inf weight can leave loss and gradients finite
    (saturated gates) while every update keeps it inf. The cheap test (one pass per array)
    runs every step; the diagnosis (which output, which layer, which samples) only when
    something is wrong.
    """
    trainable = model.trainable_params
    losses_ok = math.isfinite(result.total) and all(
        v is None or math.isfinite(v) for v in result.per_output)
    if losses_ok and all(all_finite(grads[name]) and all_finite(p)
                         for name, p in trainable.items()):
        return
    with np.errstate(all="ignore"):
        raise _diagnose_step(model, tape, ys, result, grads, trainable)


def _diagnose_step(model: TrainableModel, tape: Tape, ys: Sequence[Array], result: LossResult,
                   grads: Mapping[str, Array], trainable: Mapping[str, Array]) -> NonFiniteError:
    losses = {name: v for name, v in zip(model.output_names, result.per_output)
              if v is not None and not math.isfinite(v)}
    parameters = {name: _describe_entries(grads[name]) for name in trainable
                  if not all_finite(grads[name])}
    bad_weights = {name: _describe_entries(p) for name, p in model.params.items()
                   if not all_finite(p)}
    # Per-output backward passes (linear in the seeds) attribute each bad gradient.
    sources: dict[str, list[str]] = {name: [] for name in parameters}
    if parameters and len(model.outputs) > 1:
        for k, out_name in enumerate(model.output_names):
            d_out, d_log = result.for_output(k)
            if not d_out and not d_log:
                continue
            part = model.backward(tape, d_out, d_log)
            for name in parameters:
                if not all_finite(part[name]):
                    sources[name].append(out_name)
    elif parameters:
        sources = {name: list(model.output_names) for name in parameters}
    first_layer = None
    for node, cache in zip(model.nodes, tape.caches):
        if cache is None:
            continue
        if any(not all_finite(tape.values[id(t)]) for t in node.outputs):
            first_layer = f"{type(node.layer).__name__} {node.layer.name!r}"
            break
    # Which samples of the batch give a non-finite loss: the loss of each sample alone.
    samples: set[int] = set()
    for k, loss in enumerate(model._losses):
        if loss is None or model.output_names[k] not in losses:
            continue
        pred, mask = tape.outputs[k], tape.output_masks[k]
        logits = model.loss_logits(tape, k)
        for n in range(pred.shape[0]):
            value = reduce_output_loss(loss, ys[k][n:n + 1], pred[n:n + 1],
                                       None if mask is None else mask[n:n + 1],
                                       None if logits is None else logits[n:n + 1])[0]
            if not math.isfinite(value):
                samples.add(n)
    assert model.optimizer is not None          # a training step: the model is compiled
    return NonFiniteError(losses, result.total, parameters, sources, first_layer, bad_weights,
                          sorted(samples), model.optimizer.iterations + 1)


def attribute_update_error(model: TrainableModel, tape: Tape, result: LossResult,
                           error: NonFiniteError) -> NonFiniteError:
    """Fill ``error.sources`` for a refused update: which outputs' losses send a gradient to
    each parameter the update would have made non-finite (one backward pass per output,
    only on failure; the tape is the step's)."""
    names = {name: name if name in model.params else name.partition("/")[2]
             for name in error.updates}
    if len(model.outputs) == 1:
        error.sources = {name: list(model.output_names) for name in names}
        return error
    sources: dict[str, list[str]] = {name: [] for name in names}
    error.sources = sources
    for k, out_name in enumerate(model.output_names):
        d_out, d_log = result.for_output(k)
        if not d_out and not d_log:
            continue
        part = model.backward(tape, d_out, d_log)
        for name, param in names.items():
            if param in part and np.any(part[param]):
                sources[name].append(out_name)
    return error
