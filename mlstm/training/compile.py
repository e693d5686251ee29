"""``compile``: losses, loss weights and metrics per output, and the optimizer."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import losses as losses_module
from .. import metrics as metrics_module
from .. import optimizers as optimizers_module

if TYPE_CHECKING:
    from ..model_protocol import MetricFunction, TrainableModel

if TYPE_CHECKING:
    from .host import TrainerHost as _Host
else:           # the declarations are for mypy; at run time a mixin is a plain class
    _Host = object

__all__ = ["CompileMixin"]


class CompileMixin(_Host):
    """compile and the per-output settings it leaves (part of :class:`Trainer`)."""

    # ------------------------------------------------------------------ compile
    def compile(self, optimizer: Any = "adam", loss: Any = None,
                loss_weights: Sequence[float] | Mapping[str, float] | None = None,
                metrics: Any = None) -> None:
        """Configure training.

        Parameters
        ----------
        optimizer : str or Optimizer
        loss : str, Loss, callable, list or dict
            One loss for every output (applied to each separately), a list in output order,
            or a dict by output name (outputs without a loss are not trained by it).
        loss_weights : list or dict, optional
            Multiplies each output's loss in the total; 1.0 by default.
        metrics : list, list of lists, or dict, optional
            A flat list of names applies to every output.
        """
        n = len(self.outputs)
        if loss is None:
            raise ValueError("compile needs a loss: a name, a losses.Loss, a function, or a "
                             f"list/dict for the outputs {self.output_names}")
        per_output = self._per_output(loss, "loss", allow_missing=True)
        resolved = [None if spec is None else losses_module.get(spec) for spec in per_output]
        if all(l is None for l in resolved):
            raise ValueError("compile: no output has a loss")
        if loss_weights is None:
            weights = [1.0] * n
        else:
            if not isinstance(loss_weights, (list, tuple, dict)):
                raise TypeError("loss_weights must be a list or a dict by output name, got "
                                f"{type(loss_weights).__name__}")
            weights = [1.0 if w is None else w for w in
                       self._per_output(loss_weights, "loss_weights", allow_missing=True)]
            for name, w in zip(self.output_names, weights):
                if (not isinstance(w, (int, float, np.number)) or isinstance(w, bool)
                        or not np.isfinite(w)):
                    raise ValueError(f"loss_weights for output {name!r} must be a finite "
                                     f"number, got {w!r}")
        if metrics is None:
            metric_specs: list[list[Any]] = [[] for _ in range(n)]
        elif isinstance(metrics, dict):
            metric_specs = self._per_output(metrics, "metrics", allow_missing=True)
            metric_specs = [[] if m is None else ([m] if isinstance(m, str) else list(m))
                            for m in metric_specs]
        elif isinstance(metrics, (list, tuple)):
            if metrics and all(isinstance(m, (list, tuple)) for m in metrics):
                if len(metrics) != n:
                    raise ValueError(f"metrics: got {len(metrics)} lists for {n} outputs "
                                     f"{self.output_names}")
                metric_specs = [list(m) for m in metrics]
            else:
                metric_specs = [list(metrics) for _ in range(n)]
        else:
            raise TypeError("metrics must be a list, a list of lists or a dict by output name")
        # "accuracy" is resolved per output from its shape and its loss's targets, as Keras
        # does (mlstm.metrics.resolve)
        resolved_metrics: list[list[tuple[MetricFunction, str]]] = [
            [metrics_module.get(m, t.shape, getattr(l, "sparse_targets", False)) for m in specs]
            for t, l, specs in zip(self.outputs, resolved, metric_specs)]
        optimizer = optimizers_module.get(optimizer)
        optimizer.check_dtype(self.dtype)     # a learning rate of 1e39 is inf in float32
        self.optimizer = optimizer
        self._losses = resolved
        self._loss_weights = [float(w) for w in weights]
        self._metrics = resolved_metrics
        self.compiled = True

    @property
    def _compile_config(self) -> dict[str, Any]:
        """The compiled losses, loss weights and metric keys (a plain, comparable dict)."""
        return {"loss": [None if l is None else l.get_config() for l in self._losses],
                "loss_weights": list(self._loss_weights),
                "metrics": [[key for _, key in ms] for ms in self._metrics]}

    def _per_output(self, spec: Any, label: str, allow_missing: bool = False) -> list[Any]:
        """Expand a spec (single, list or dict by output name) to one entry per output."""
        n = len(self.outputs)
        if isinstance(spec, dict):
            unknown = sorted(set(spec) - set(self.output_names))
            if unknown:
                raise ValueError(f"{label}: unknown output names {unknown}; outputs are "
                                 f"{self.output_names}")
            return [spec.get(name) for name in self.output_names]
        if isinstance(spec, (list, tuple)):
            if len(spec) != n:
                raise ValueError(f"{label}: got {len(spec)} entries for {n} outputs "
                                 f"{self.output_names}")
            return list(spec)
        return [spec] * n

    def _copy_compile_settings(self, other: TrainableModel) -> None:
        assert other.optimizer is not None          # called for a compiled model only
        self._losses = list(other._losses)
        self._loss_weights = list(other._loss_weights)
        self._metrics = [list(m) for m in other._metrics]
        self.optimizer = type(other.optimizer).from_config(other.optimizer.get_config())
        self.compiled = True

    def _require_compiled(self, what: str) -> None:
        if not self.compiled:
            raise RuntimeError(f"{what} needs a compiled model: call model.compile(...) first")

    @property
    def metrics_names(self) -> list[str]:
        """Names in the order ``evaluate`` and ``train_on_batch`` return values (Keras')."""
        self._require_compiled("metrics_names")
        names = ["loss"]
        if len(self.outputs) > 1:
            names += [f"{name}_loss" for name, l in zip(self.output_names, self._losses)
                      if l is not None]
        for name, metrics in zip(self.output_names, self._metrics):
            for _, key in metrics:
                names.append(key if len(self.outputs) == 1 else f"{name}_{key}")
        return names

