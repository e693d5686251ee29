"""The one known, documented difference from Keras, explained to float precision by
:func:`mlstm.interop.keras.crosscheck`: categorical cross-entropy from logits on targets
whose rows do not sum to 1.

Keras' TensorFlow backend computes CCE from logits (``from_logits=True``, or on a softmax
head, whose cached logits it reads) with ``tf.nn.softmax_cross_entropy_with_logits``. The
loss is ``Σ_j t_j (lse(a) - a_j)`` in both, but TensorFlow's gradient is
``softmax(a) - t``, the derivative of that loss only when ``Σ_j t_j = 1``; mlstm trains
with the derivative ``softmax(a) Σ_j t_j - t`` (docs/losses.md). Per row the two differ by
``softmax(a) (Σ_j t_j - 1)`` times the row's reduction weight.

The check: a copy of the mlstm model whose CCE takes TensorFlow's gradient instead
(the loss's ``tensorflow_gradient_logits`` hook) is run beside the two. When its
gradients and its weights after each optimizer step agree with Keras' at the
cross-check's tolerances, the whole difference between mlstm and Keras is that rule: each
comparison that fails and whose TensorFlow-rule counterpart passes is marked
``explained``. mlstm's own numbers are not changed.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..._typing import Array
    from ...graph import Tape
    from ...model import Model

__all__ = ["target_sum_outputs", "tensorflow_rule_twin", "RULE"]

#: The rule, in words, for the report.
RULE = ("Keras (TensorFlow's softmax_cross_entropy_with_logits) differentiates CCE from "
        "logits as softmax(a) - t; mlstm as the loss's derivative softmax(a)*sum(t) - t. "
        "They differ by softmax(a)*(sum(t) - 1) on rows whose targets do not sum to 1 "
        "(docs/losses.md)")


def target_sum_outputs(model: Model, tape: Tape, ys: Sequence[Array]
                       ) -> dict[int, dict[str, Any]]:
    """``{k: {"output", "rows", "of", "min_sum", "max_sum", "max_logit_gradient_gap"}}``
    for each output whose loss has a TensorFlow gradient of its own
    (``tensorflow_gradient_logits``), computed from logits (a softmax head or
    ``from_logits=True``), with target rows that do not sum to 1 (to within
    sqrt(machine epsilon) of the dtype).

    ``max_logit_gradient_gap`` is the largest ``|softmax(a) (Σ t - 1)|`` entry over those
    rows (unweighted): how far apart the two rules put the gradient of each row's loss.
    """
    out: dict[int, dict[str, Any]] = {}
    for k, loss in enumerate(model._losses):
        rule = getattr(loss, "tensorflow_gradient_logits", None)
        if rule is None or loss is None:
            continue
        logits = model.loss_logits(tape, k)
        if logits is None:
            if not getattr(loss, "from_logits", False):
                continue          # on probabilities Keras differentiates the loss itself
            logits = tape.outputs[k]
        y = np.asarray(ys[k], dtype=np.float64)
        sums = y.sum(axis=-1)
        tol = float(np.sqrt(np.finfo(tape.outputs[k].dtype).eps))
        off = np.abs(sums - 1) > tol
        if not off.any():
            continue
        with np.errstate(all="ignore"):
            gap = np.abs(loss.gradient_logits(ys[k], logits) - rule(ys[k], logits))
        out[k] = {"output": model.output_names[k], "rows": int(np.count_nonzero(off)),
                  "of": int(off.size), "min_sum": float(sums.min()),
                  "max_sum": float(sums.max()),
                  "max_logit_gradient_gap": float(np.max(gap[off]))}
    return out


def tensorflow_rule_twin(model: Model, outputs: Iterable[int]) -> Model:
    """A copy of ``model`` (weights, compile settings, fresh optimizer state) whose losses
    at ``outputs`` (indices) are trained with TensorFlow's gradient
    (``gradient_logits`` replaced by ``tensorflow_gradient_logits`` on a copy of the
    loss); ``model`` itself is not touched."""
    twin = model.clone()
    twin._losses = list(twin._losses)
    for k in outputs:
        loss: Any = copy.copy(twin._losses[k])      # Any: a method replaced on the copy
        loss.gradient_logits = loss.tensorflow_gradient_logits    # this copy only
        twin._losses[k] = loss
    return twin
