"""What training returns: :class:`History` (per epoch) and :class:`LossResult` (per batch)."""
from __future__ import annotations

__all__ = ["History", "LossResult"]


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

