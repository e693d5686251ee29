"""Epoch means of batch losses and metrics, as Keras computes them, and the logs' keys.

Keras keeps a running mean per log key: the losses weighted by batch size (the last,
shorter batch counts less), the metrics by the weight of each entry (1, the sample
weight, or 0 at a masked step), so an epoch's value is

    loss   = Σ_b n_b · loss_b / Σ_b n_b          metric = Σ w · m / Σ w

With missing labels (``missing_targets="mask"``) an output's epoch loss is the mean over
its labelled entries, ``Σ_b L_kb · l_kb / Σ_b l_kb`` (``l_kb`` labelled entries of batch b),
which is the mean over every labelled entry of the epoch; ``loss`` is then
``Σ_k loss_weight_k · <output>_loss`` of those, and the share of labelled entries is
logged as ``labelled`` (one output) or ``<output>_labelled``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from ..model_protocol import TrainableModel
    from .results import LossResult

__all__ = ["EpochSums", "return_logs", "labelled_keys"]


def labelled_keys(model: TrainableModel, prefix: str = "") -> list[str]:
    """Log keys of the labelled shares: ``labelled`` or ``<output>_labelled``."""
    if len(model.outputs) == 1:
        return [prefix + "labelled"]
    return [f"{prefix}{name}_labelled" for name, loss in zip(model.output_names, model._losses)
            if loss is not None]


class EpochSums:
    """Running sums over the batches of an epoch (or of an evaluation).

    Parameters
    ----------
    model : Model
    count_labels : bool
        Missing labels are on: average each output over its labelled entries.
    """

    def __init__(self, model: TrainableModel, count_labels: bool = False) -> None:
        n = len(model.outputs)
        self.model, self.count_labels = model, count_labels
        self.total, self.per_output, self.count = 0.0, [0.0] * n, 0
        self.labelled, self.entries = [0] * n, [0] * n
        self.metrics: list[list[float]] | None = None

    def add(self, result: LossResult, batch_size: int,
            metric_sums: Sequence[Sequence[float]]) -> None:
        """Add one batch: its :class:`LossResult`, size and metric sums."""
        if self.count_labels:
            # counted labels: every output with a loss value has its counts (LossResult)
            labelled = cast("list[int]", result.labelled)
            entries = cast("list[int]", result.entries)
            for k, value in enumerate(result.per_output):
                if value is not None:
                    self.per_output[k] += value * labelled[k]
                    self.labelled[k] += labelled[k]
                    self.entries[k] += entries[k]
        else:
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

    def logs(self, prefix: str = "") -> dict[str, float]:
        """``{key: value}`` in ``metrics_names`` order (and the labelled shares)."""
        model = self.model
        if not self.count_labels:
            return model._logs((self.total, self.per_output), max(self.count, 1),
                               self.metrics or [], prefix)
        means = [s / n if n else 0.0 for s, n in zip(self.per_output, self.labelled)]
        total = sum(w * m for w, m, loss in zip(model._loss_weights, means, model._losses)
                    if loss is not None)
        logs = model._logs((total, means), 1, self.metrics or [], prefix)
        shares = [n / e if e else 0.0 for n, e, loss in
                  zip(self.labelled, self.entries, model._losses) if loss is not None]
        logs.update(zip(labelled_keys(model, prefix), shares))
        return logs


def return_logs(logs: dict[str, float], return_dict: bool,
                ) -> dict[str, float] | float | list[float]:
    """Keras' return value: the dict, a scalar for a single value, else a list."""
    if return_dict:
        return logs
    values = list(logs.values())
    return values[0] if len(values) == 1 else values
