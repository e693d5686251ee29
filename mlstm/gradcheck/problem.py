"""The checked function: a compiled model's total loss in float64, and the five-point stencil.

Everything a gradient check perturbs (parameters and inputs) is an array that
:class:`Float64Problem` owns; :meth:`Float64Problem.evaluate` runs one forward pass and
returns the loss together with the masks the forward pass computed, so that a perturbation
that changes a mask (a padded step of a ``Masking`` input that stops being padding) is
seen without another forward pass.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import validation

if TYPE_CHECKING:
    from .._typing import Array, BoolArray, Float64Array
    from ..graph import Tape
    from ..model import Model
    from ..training.results import LossResult

#: The masks of a forward pass, one per tensor (None where a tensor has no mask).
Masks = tuple["BoolArray | None", ...]
#: What a check compares: ``(name, array, analytic gradient, is_input)``.
CheckedArray = tuple[str, "Array", "Array", bool]

__all__ = ["Float64Problem", "numerical_gradient", "stencil", "masks_changed"]


class Float64Problem:
    """A compiled model in float64 (a clone when it is float32) with its checked data.

    ``loss()`` is the total loss at the current parameter and input values (both may be
    perturbed in place); ``evaluate()`` the same with the forward pass's masks;
    ``analytic()`` the backward pass: ``(tape, result, grads, d_inputs)``. Shared by
    :func:`mlstm.gradcheck.gradcheck` and ``mlstm.testing.gradcheck_caveats``.

    Attributes
    ----------
    model : Model
        float64.
    xs : list of ndarray
        The inputs, float64 copies (perturbed in place by the checks); token ids are
        copied as they are and never perturbed.
    ids : list of bool
        Per input, whether it holds token ids (:func:`mlstm.validation.token_id_inputs`).
    ys : list of ndarray
        The targets.
    evaluations : int
        Forward passes run by :meth:`evaluate` so far.
    """

    def __init__(self, model: Model, x: Any, y: Any) -> None:
        model._require_compiled("gradcheck")
        self.model = model if model.dtype == "float64" else model.clone(dtype="float64")
        # token ids are not perturbed: integer inputs, and float inputs that only
        # Embedding-like layers read (decided by the graph: the token_id_inputs hook)
        self.ids = validation.token_id_inputs(self.model)
        self.xs = [a.copy() if ids else np.array(a, dtype=np.float64)
                   for a, ids in zip(self.model._inputs(x), self.ids)]
        self.ys = self.model._targets(y, self.xs[0].shape[0])
        self.evaluations = 0

    def evaluate(self) -> tuple[float, Masks]:
        """``(loss, masks)``: the total loss and the forward pass's masks (a tuple, None
        where a tensor has no mask), at the current values."""
        tape = self.model.forward(self.xs, training=True)
        self.evaluations += 1
        total = self.model.loss_and_output_grads(tape, self.ys).total
        return total, tuple(tape.masks.values())

    def loss(self) -> float:
        """The total loss at the current values."""
        return self.evaluate()[0]

    def analytic(self) -> tuple[Tape, LossResult, dict[str, Array], list[Array | None]]:
        tape = self.model.forward(self.xs, training=True)
        result = self.model.loss_and_output_grads(tape, self.ys)
        grads, d_inputs = self.model.backward(tape, result.d_outputs, result.d_logits,
                                              input_grads=True)
        return tape, result, grads, d_inputs

    def arrays(self, grads: dict[str, Array], d_inputs: Sequence[Array | None],
               inputs: bool = True) -> list[CheckedArray]:
        """What a check compares: ``[(name, array, analytic gradient, is_input), ...]``,
        parameters (``"layer/weight"``) first, then inputs (``"input:<name>"``)."""
        found = [(name, p, grads[name], False) for name, p in self.model.params.items()]
        if inputs:
            found += [(f"input:{name}", a, g, True)          # token ids have no gradient
                      for name, a, g, ids in zip(self.model.input_names, self.xs, d_inputs,
                                                 self.ids)
                      if g is not None and not ids]
        return found


def masks_changed(base: Masks, masks: Masks,
                  ) -> list[tuple[BoolArray | None, BoolArray | None]]:
    """The masks of ``masks`` that differ from ``base``: ``[(old, new), ...]``."""
    changed: list[tuple[BoolArray | None, BoolArray | None]] = []
    for old, new in zip(base, masks):
        if old is None and new is None:
            continue
        if old is None or new is None or not np.array_equal(old, new):
            changed.append((old, new))
    return changed


def stencil(evaluate: Callable[[float], float], h: float) -> float:
    """Five-point derivative of ``evaluate(delta)`` at 0::

        (-f(2h) + 8 f(h) - 8 f(-h) + f(-2h)) / (12 h)        (truncation error O(h^4))
    """
    # Differences first: exact (zero) when the loss does not move, and no rounding of 7·L.
    return (8 * (evaluate(h) - evaluate(-h)) - (evaluate(2 * h) - evaluate(-2 * h))) / (12 * h)


def numerical_gradient(f: Callable[[], float], array: Array, h: float = 1e-4,
                       entries: Iterable[int] | None = None) -> Float64Array:
    """Five-point numerical gradient of scalar ``f()`` with respect to ``array`` (in place).

    ``array`` is perturbed in place and restored. ``entries`` limits the flat indices.
    """
    flat = array.reshape(-1)
    grad = np.zeros(flat.size)
    for j in (range(flat.size) if entries is None else entries):
        original = flat[j]

        def evaluate(delta: float, j: int = j, original: Any = original) -> float:
            flat[j] = original + delta
            return f()

        grad[j] = stencil(evaluate, h)
        flat[j] = original
    return grad.reshape(array.shape)
