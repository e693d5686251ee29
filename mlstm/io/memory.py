"""The memory a batch implies, estimated from the graph and the data's shapes before any is
allocated, and the refusal beyond :data:`mlstm.io.limits.MAX_BATCH_BYTES`.

Every node answers for its own call (``Layer.activation_bytes``, :mod:`mlstm.layers.memory`):
the bytes it keeps from its forward pass until the backward pass is over, and its scratch
forward and backward. The graph adds what the passes hold together (docs/reliability.md,
section 6, has the formulas and the measured ratios):

- **forward** (``predict``, ``evaluate``): the tape keeps every node's outputs and cache
  until the batch is done, so the peak is ``Σ kept + max forward scratch``; ``evaluate``
  adds the loss's temporaries (:data:`LOSS_COPIES` output-sized arrays per output), and
  ``predict`` the outputs of all samples (each batch's, then their concatenation);
- **training step** (``fit``, ``train_on_batch``): the batch itself (``fit`` gathers its
  rows), the tape, and the largest of: the loss; the backward pass (the gradient of every
  tensor, kept until the pass ends, the gradients of the weights and the largest node's
  backward scratch); the optimizer's step (:data:`OPTIMIZER_COPIES` parameter-sized arrays:
  gradients, new weights, new moments, scratch).

The weights and the optimizer state themselves are not counted: they exist before the call
(and a file's are bounded by ``MAX_MODEL_BYTES``).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from ..layers.memory import ActivationBytes, CallShapes, concrete_shape
from . import limits

if TYPE_CHECKING:
    from ..model_protocol import TrainableModel

__all__ = ["MemoryEstimate", "estimate_memory", "check_memory", "LOSS_COPIES",
           "OPTIMIZER_COPIES", "OVERHEAD"]

#: Output-sized arrays a loss (and the metrics after it) holds at once: the error, its
#: square or log terms, the gradient and the gradient scaled by the loss weight.
LOSS_COPIES = 6
#: Parameter-sized arrays a training step holds besides the weights and the optimizer
#: state: the gradients, their clipped copies, the new weights, two new moments and scratch.
OPTIMIZER_COPIES = 6
#: The call's Python objects (tape, dicts) and arrays too small to count: a constant.
OVERHEAD = 256 * 2 ** 10

_WHAT = {"train": "one training step", "evaluate": "evaluating one batch",
         "predict": "predicting"}


class MemoryEstimate(NamedTuple):
    """The estimate for one batch: ``total`` bytes at the peak, and its parts.

    Attributes
    ----------
    total : int
        The peak, in bytes.
    parts : list of (str, int)
        What it is made of, largest first (e.g. ``("kept for backward by the layers", ...)``).
    dominant : (str, int)
        The largest single node's ``kept``, in words (its ``note``) and bytes.
    mode : {"train", "evaluate", "predict"}
    batch_size : int
    """

    total: int
    parts: List[Tuple[str, int]]
    dominant: Tuple[str, int]
    mode: str
    batch_size: int


def _concrete_shapes(model: TrainableModel, input_shapes: Sequence[Tuple[int, ...]]
                     ) -> Dict[int, Tuple[int, ...]]:
    """``{id(tensor): shape without N}`` for every tensor, from the data's shapes (T known)."""
    shapes = {id(t): tuple(int(d) for d in s[1:]) for t, s in zip(model.inputs, input_shapes)}
    for node in model.nodes:
        if node.layer.is_input:
            continue
        given = [shapes[id(t)] for t in node.inputs]
        try:
            specs = node.layer.output_specs([(s, t.has_mask) for s, t in
                                             zip(given, node.inputs)], dict(node.call_kwargs))
            out = [concrete_shape(s) for s, _ in specs]
        except (TypeError, ValueError):
            # a layer that cannot say for concrete shapes: its symbolic ones, a free
            # dimension taken as the first input's time axis
            fill = given[0][0] if given[0] else 1
            out = [tuple(fill if d is None else d for d in t.shape) for t in node.outputs]
        for t, s in zip(node.outputs, out):
            shapes[id(t)] = s
    return shapes


def _nbytes(shape: Tuple[int, ...], batch_size: int, dtype: Any) -> int:
    return int(batch_size) * math.prod(shape) * np.dtype(dtype).itemsize


def estimate_memory(model: TrainableModel, input_shapes: Sequence[Tuple[int, ...]],
                    batch_size: int, mode: str, samples: Optional[int] = None) -> MemoryEstimate:
    """Peak bytes of one batch of ``mode``, before anything is allocated.

    Parameters
    ----------
    model : mlstm.Model
    input_shapes : list of tuple
        Each input array's shape, batch axis first (only the other axes are used).
    batch_size : int
        Rows per batch (the largest batch).
    mode : {"train", "evaluate", "predict"}
    samples : int, optional
        All the rows: ``predict`` gathers their outputs (default ``batch_size``), ``fit``
        draws their order.

    Returns
    -------
    MemoryEstimate
    """
    if mode not in _WHAT:
        raise ValueError(f"mode must be one of {sorted(_WHAT)}, got {mode!r}")
    training = mode == "train"
    shapes = _concrete_shapes(model, input_shapes)
    kept = forward = backward = 0
    dominant = ("", -1)
    consumers: Dict[int, int] = {}
    for node in model.nodes:
        if node.layer.is_input:
            continue
        for t in node.inputs:
            consumers[id(t)] = consumers.get(id(t), 0) + 1
        layer = node.layer
        call = CallShapes([shapes[id(t)] for t in node.inputs],
                          [shapes[id(t)] for t in node.outputs],
                          [bool(t.has_mask) for t in node.inputs], int(batch_size),
                          np.dtype(layer.dtype or model.dtype).itemsize, training)
        answer = layer.activation_bytes(call)
        if not isinstance(answer, ActivationBytes):
            raise TypeError(f"{type(layer).__name__} {layer.name!r}: activation_bytes must "
                            f"return an ActivationBytes, got {type(answer).__name__}")
        kept += answer.kept
        forward = max(forward, answer.forward)
        backward = max(backward, answer.backward)
        if answer.kept > dominant[1]:
            dominant = (answer.note, answer.kept)
    dtype = model.dtype
    outputs = sum(_nbytes(shapes[id(t)], batch_size, dtype) for t in model.outputs)
    parts = [("kept for backward by the layers" if training else "kept by the layers "
              "(outputs and caches)", kept)]
    if mode == "predict":
        gathered = 2 * sum(_nbytes(shapes[id(t)], samples or batch_size, dtype)
                           for t in model.outputs)
        parts += [("the layers' scratch", forward), ("the outputs gathered", gathered)]
    elif mode == "evaluate":
        parts += [("the layers' scratch and the loss", max(forward, LOSS_COPIES * outputs))]
    else:
        params = sum(p.nbytes for p in model.params.values())
        tensors = sum(_nbytes(shapes[id(t)], batch_size, dtype) * max(1, consumers.get(id(t), 0))
                      for node in model.nodes if not node.layer.is_input for t in node.outputs)
        # fit gathers the batch's rows (and draws an order of all ``samples``)
        batch = (sum(_nbytes(s[1:], batch_size, dtype) for s in input_shapes) + outputs
                 + 8 * (samples or 0))
        step = max(forward, LOSS_COPIES * outputs, tensors + params + backward,
                   OPTIMIZER_COPIES * params)
        parts += [("the batch's rows", batch),
                  ("the largest of the loss, the backward pass (gradients of every tensor "
                   "and weight) and the optimizer's step", step)]
    parts.append(("Python objects and small arrays", OVERHEAD))
    parts.sort(key=lambda part: -part[1])
    return MemoryEstimate(sum(b for _, b in parts), parts, dominant, mode, int(batch_size))


def check_memory(model: TrainableModel, input_shapes: Sequence[Tuple[int, ...]],
                 batch_size: int, mode: str, where: str, samples: Optional[int] = None,
                 max_bytes: Optional[int] = None) -> MemoryEstimate:
    """:func:`estimate_memory`, refused with a ValueError beyond ``max_bytes``
    (:data:`mlstm.io.limits.MAX_BATCH_BYTES` when None); returns the estimate.

    The message gives the estimate, the limit, what dominates, the largest batch size
    that fits, and how to raise the limit. ``where`` starts it (``"fit"``, a file name).
    """
    limit = limits.MAX_BATCH_BYTES if max_bytes is None else int(max_bytes)
    found = estimate_memory(model, input_shapes, batch_size, mode, samples)
    if found.total <= limit:
        return found
    note, dominant = found.dominant
    parts = "; ".join(f"{label} {limits.format_bytes(b)}" for label, b in found.parts if b)
    fits = _largest_batch(model, input_shapes, batch_size, mode, samples, limit)
    advice = (f"pass batch_size={fits} or less" if fits else
              "even batch_size=1 does not fit: shorten the sequences or make the model smaller")
    raise ValueError(
        f"{where}: {_WHAT[mode]} at batch_size {batch_size} would need about "
        f"{limits.format_bytes(found.total)} ({parts}), beyond "
        f"{limits.format_bytes(limit)} (mlstm.io.limits.MAX_BATCH_BYTES); refused before "
        f"allocating. Most of it: {note}: {limits.format_bytes(dominant)}. To go on, "
        f"{advice}, or raise the limit (mlstm.io.limits.MAX_BATCH_BYTES = "
        f"{_suggested_limit(found.total)})")


def _largest_batch(model: TrainableModel, input_shapes: Sequence[Tuple[int, ...]],
                   batch_size: int, mode: str, samples: Optional[int], limit: int) -> int:
    """The largest batch size up to ``batch_size`` whose estimate fits (0: none)."""
    low, high = 0, int(batch_size)
    while low < high:
        middle = (low + high + 1) // 2
        if estimate_memory(model, input_shapes, middle, mode, samples).total <= limit:
            low = middle
        else:
            high = middle - 1
    return low


def _suggested_limit(total: int) -> str:
    gib = -(-total // 2 ** 30)
    return f"{gib} * 2**30"
