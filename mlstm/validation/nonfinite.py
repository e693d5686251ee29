"""The stop on NaN/inf in training: :class:`NonFiniteError`, and the checks that raise it.

Part of :mod:`mlstm.validation` (which re-exports every name here). A training step is
checked twice before anything changes: the losses, gradients and weights between the
backward pass and the optimizer (:func:`check_step_finite`), and the new weights and
optimizer state the update would give, by the optimizer itself before it commits them
(:meth:`NonFiniteError.from_update`; ``fit`` adds where: :func:`attribute_update_error`
and :meth:`NonFiniteError.locate`). Weights set from outside (``load_model``,
``set_weights``) go through :func:`check_finite_weights`.
"""
from __future__ import annotations

import math

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._typing import Array, ArrayLike, IntArray

from .finite import _describe_entries, all_finite

__all__ = ["NonFiniteError", "check_step_finite", "check_finite_weights",
           "attribute_update_error", "describe_nonfinite_entries"]


def describe_nonfinite_entries(a: Array) -> str:
    """``"inf at index [0, 3], 12 of 96 entries"``: the first NaN/inf of ``a`` and the count."""
    return _describe_entries(a)


def check_finite_weights(array: ArrayLike, label: str, hint: str = "") -> None:
    """Refuse a weight array holding NaN or inf: ValueError naming ``label`` and the index.

    For weights that come from outside training (``load_model``, ``set_weights``): a NaN
    weight makes every output and gradient NaN, and an inf one can saturate the gates and
    stay inf for ever while the loss looks finite. ``hint`` is appended to the message (how
    the caller lets such weights through, if it does).

    Parameters
    ----------
    array : ndarray
        Any shape; integer and bool arrays are always finite.
    label : str
        What the array is, e.g. ``"load_model: 'm.npz': weight 'lstm_a/kernel'"``.
    hint : str, optional
    """
    array = np.asarray(array)
    if not all_finite(array):
        raise ValueError(f"{label} holds {_describe_entries(array)}; mlstm refuses non-finite "
                         "weights" + (f" ({hint})" if hint else ""))


class NonFiniteError(FloatingPointError):
    """A training step produced a NaN or inf loss, gradient or update; it was not applied.

    Raised by ``train_on_batch`` and ``fit`` (which first calls the callbacks'
    ``on_train_end``). The weights and the optimizer state are those after the last good
    step. The message says where it went wrong; the same facts are attributes.

    Attributes
    ----------
    losses : dict output name -> float
        Outputs whose loss is not finite.
    total : float
        The weighted total loss of the step.
    parameters : dict "layer/weight" -> str
        Trainable parameters whose gradient is not finite, with the first bad position.
    sources : dict "layer/weight" -> list of output names
        Which outputs' losses send the non-finite gradient to each parameter.
    first_layer : str or None
        The first layer (in forward order) whose output holds NaN/inf, if any.
    bad_weights : dict "layer/weight" -> str
        Parameters that already held NaN/inf before the step (set by hand).
    samples : list of int
        Positions in the batch whose loss is not finite (data indices once ``fit`` has
        located the step).
    updates : dict "layer/weight" (or "slot/layer/weight") -> str
        Parameters (or optimizer state entries) that the update would have made NaN or
        inf, with the first bad position: the loss and gradients were finite, the step was
        not (a learning rate or weight decay too large for the dtype, a huge gradient).
    optimizer : str or None
        The optimizer and its settings, for an update that was refused.
    epoch, step : int or None
        Set by ``fit``: the epoch and the batch within it.
    iteration : int
        The optimizer step that was refused (1-based, as ``optimizer.iterations`` counts).
    """

    def __init__(self, losses: Mapping[str, float], total: float | None,
                 parameters: Mapping[str, str], sources: Mapping[str, Sequence[str]],
                 first_layer: str | None, bad_weights: Mapping[str, str], samples: Sequence[int],
                 iteration: int, updates: Mapping[str, str] | None = None,
                 optimizer: str | None = None) -> None:
        self.losses, self.total = losses, total
        self.parameters, self.sources = parameters, sources
        self.first_layer, self.bad_weights = first_layer, bad_weights
        self.samples, self.iteration = samples, iteration
        self.updates, self.optimizer = updates or {}, optimizer
        self.epoch: int | None = None
        self.step: int | None = None
        super().__init__()

    @classmethod
    def from_update(cls, updates: Mapping[str, str], iteration: int, optimizer: str
                    ) -> NonFiniteError:
        """The error an optimizer raises when the new values of a step are not all finite.

        Parameters
        ----------
        updates : dict name -> str
            ``{"lstm_a/kernel": "inf at index [0, 0], 8 of 8 entries", "v/lstm_a/kernel": ...}``
        iteration : int
            The step that was refused (1-based).
        optimizer : str
            ``repr(optimizer)``: its class and settings.
        """
        return cls({}, None, {}, {}, None, {}, [], iteration, updates=updates,
                   optimizer=optimizer)

    def locate(self, epoch: int, step: int, batch_indices: Sequence[int] | IntArray) -> None:
        """Record where ``fit`` was; map batch positions to indices in the training data."""
        self.epoch, self.step = int(epoch), int(step)
        self.samples = [int(batch_indices[k]) for k in self.samples]
        self.args = (str(self),)

    def __str__(self) -> str:
        where = (f"epoch {self.epoch}, step {self.step} (optimizer iteration {self.iteration})"
                 if self.epoch is not None else f"optimizer iteration {self.iteration}")
        parts = [f"non-finite values in training at {where}:"]
        for name, value in self.losses.items():
            parts.append(f"the loss of output {name!r} is {value}")
        if not self.losses and self.total is not None and not math.isfinite(self.total):
            parts.append(f"the weighted total loss is {self.total}")
        if self.parameters:
            items = list(self.parameters.items())
            shown = "; ".join(
                f"{name!r} ({what}" + (f", from output {', '.join(map(repr, self.sources[name]))}"
                                       if self.sources.get(name) else "") + ")"
                for name, what in items[:4])
            more = f"; and {len(items) - 4} more" if len(items) > 4 else ""
            parts.append(f"non-finite gradient of {shown}{more}")
        if self.updates:
            items = list(self.updates.items())
            shown = "; ".join(
                f"{name!r} ({what}" + (f", gradient from output"
                                       f"{'s' if len(self.sources[name]) > 1 else ''} "
                                       f"{', '.join(map(repr, self.sources[name]))}"
                                       if self.sources.get(name) else "") + ")"
                for name, what in items[:4])
            more = f"; and {len(items) - 4} more" if len(items) > 4 else ""
            parts.append(f"the update would make non-finite {shown}{more}, with finite "
                         f"loss and gradients: the step of {self.optimizer} overflows the "
                         "weights' dtype (lower the learning rate or weight decay, or clip "
                         "the gradients)")
        if self.first_layer:
            parts.append(f"the first NaN/inf in the forward pass is in the output of "
                         f"{self.first_layer}")
        if self.bad_weights:
            parts.append("weights already non-finite before the step (set by hand, or by "
                         "an earlier update): " +
                         "; ".join(f"{n!r} ({w})" for n, w in self.bad_weights.items()))
        if self.samples:
            label = "training samples" if self.epoch is not None else "batch positions"
            first = list(self.samples[:10])
            parts.append(f"{label} with a non-finite loss: {first}"
                         + (f" and {len(self.samples) - 10} more" if len(self.samples) > 10
                            else ""))
        parts.append("the update of this step was not applied: the weights and optimizer "
                     "state are those after the previous step" +
                     (" (which already hold the non-finite weights above)"
                      if self.bad_weights else ""))
        return " ".join([parts[0]] + ["; ".join(parts[1:])]) + "."
