"""What one call of a layer costs in memory, answered by the layer (``Layer.activation_bytes``).

Before ``fit``, ``evaluate`` or ``predict`` touch a batch, :mod:`mlstm.io.memory` asks every
node of the graph what its call will hold for a batch of that size, and adds it up; each
layer answers for itself, so a new layer is covered without an edit anywhere else. A layer
answers from :class:`CallShapes` (its concrete input and output shapes for the data given)
with an :class:`ActivationBytes`:

- ``kept``: bytes its outputs and its cache hold from its forward pass until the backward
  pass is over (the tape keeps them; in ``predict`` until the batch's outputs are taken);
- ``forward``: bytes its forward pass needs on top, freed when it returns;
- ``backward``: bytes its backward pass needs on top, freed when it returns (the gradients
  of its inputs and weights are counted by the graph, not here);
- ``note``: what dominates ``kept``, with its formula, for the refusal's message.

The default (:func:`default_activation_bytes`) assumes an output-sized cache next to each
output (Dense keeps its logits and its output), as much again as scratch, and at backward
two output-sized arrays: right for the elementwise and affine layers, and an upper bound
for the layers whose outputs are views. Layers whose memory is not output-sized (LSTM:
gates and states of every step; the wrappers: their wrapped layers) override the hook.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple, Optional, Sequence, Tuple

__all__ = ["CallShapes", "ActivationBytes", "concrete_shape", "default_activation_bytes",
           "shape_bytes"]


class CallShapes(NamedTuple):
    """One call of a layer on a batch, shapes without the batch axis (concrete: T known).

    Attributes
    ----------
    inputs, outputs : list of tuple of int
    masked : list of bool
        Whether a time mask travels with each input.
    batch_size : int
        N, the rows of the batch.
    itemsize : int
        Bytes per value of the layer's dtype (4 for float32, 8 for float64).
    training : bool
        A training step (caches for backward, dropout masks) rather than a forward pass.
    concurrent : bool
        The call runs alongside other work that already holds the threads (a
        Bidirectional's two directions): no backward helper thread, so no buffer for it.
    """

    inputs: Sequence[Tuple[int, ...]]
    outputs: Sequence[Tuple[int, ...]]
    masked: Sequence[bool]
    batch_size: int
    itemsize: int
    training: bool
    concurrent: bool = False

    def nbytes(self, shape: Sequence[int]) -> int:
        """Bytes of a batch of arrays of this per-sample ``shape``."""
        return shape_bytes(shape, self.batch_size, self.itemsize)


class ActivationBytes(NamedTuple):
    """A layer's answer: bytes ``kept`` until backward, scratch at ``forward`` and at
    ``backward``, and a ``note`` on what dominates (see the module docstring)."""

    kept: int
    forward: int = 0
    backward: int = 0
    note: str = ""

    def plus(self, other: "ActivationBytes", note: Optional[str] = None) -> "ActivationBytes":
        """Both parts at once (a wrapper's layers may run at the same time): every field
        summed; the note of the larger ``kept`` unless ``note`` is given."""
        return ActivationBytes(self.kept + other.kept, self.forward + other.forward,
                               self.backward + other.backward,
                               note or (self.note if self.kept >= other.kept else other.note))


def shape_bytes(shape: Sequence[int], batch_size: int, itemsize: int) -> int:
    """``batch_size · prod(shape) · itemsize`` (exact integers, however large)."""
    return int(batch_size) * math.prod(int(d) for d in shape) * int(itemsize)


def concrete_shape(shape: Sequence[Optional[int]]) -> Tuple[int, ...]:
    """``shape`` as ints, every dimension known (a layer's output for concrete inputs);
    TypeError for a free (None) one, as :func:`shape_bytes` would raise on it."""
    dims = []
    for d in shape:
        if d is None:
            raise TypeError(f"a concrete shape was expected, got {tuple(shape)}")
        dims.append(int(d))
    return tuple(dims)


def default_activation_bytes(layer: Any, call: CallShapes) -> ActivationBytes:
    """Outputs and an output-sized cache kept; as much scratch forward; two output-sized
    arrays backward."""
    outputs = sum(call.nbytes(s) for s in call.outputs)
    return ActivationBytes(kept=2 * outputs, forward=outputs, backward=2 * outputs,
                           note=f"{type(layer).__name__} {layer.name!r} keeps its outputs "
                                "and an output-sized cache")
