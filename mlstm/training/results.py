"""What training returns: :class:`History` (per epoch) and :class:`LossResult` (per batch)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..callbacks.history import History

if TYPE_CHECKING:
    from .._typing import Array

__all__ = ["History", "LossResult"]


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
    labelled, entries : list of int or None
        With missing labels (``missing_targets="mask"``): per output, how many loss entries
        of the batch are labelled (and valid under the output's mask), and how many are
        valid; loss_k is the mean over the labelled ones (0 when there is none). None
        otherwise, and for outputs without a loss.
    """

    def __init__(self, total: float, per_output: list[float | None], d_outputs: dict[int, Array],
                 d_logits: dict[int, Array], labelled: list[int | None] | None = None,
                 entries: list[int | None] | None = None) -> None:
        self.total, self.per_output = total, per_output
        self.d_outputs, self.d_logits = d_outputs, d_logits
        self.labelled, self.entries = labelled, entries

    def for_output(self, k: int) -> tuple[dict[int, Array], dict[int, Array]]:
        """Only output ``k``'s seeds: ``(d_outputs, d_logits)`` for a per-output backward."""
        return ({k: self.d_outputs[k]} if k in self.d_outputs else {},
                {k: self.d_logits[k]} if k in self.d_logits else {})
