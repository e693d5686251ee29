"""The object :func:`~mlstm.diagnostics.diagnose` returns: figures, findings, and views.

A :class:`DiagnosisReport` keeps what was measured (``data``, ``static``, ``run``), the
figures made from it (``summary``, :mod:`mlstm.diagnostics.summary`), the findings
(:mod:`mlstm.diagnostics.checks`) and the suggested loss weights
(:mod:`mlstm.diagnostics.loss_weights`). It reads as text (``str(report)``), as JSON
(:meth:`DiagnosisReport.to_dict`) and as a picture (:meth:`DiagnosisReport.plot`).
"""
from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from .. import losses as losses_module
from ..measure import gradients as G
from .findings import ReportFields, jsonable
from .loss_weights import TargetShares, suggest_loss_weights
from .summary import summarize
from .text import format_report

if TYPE_CHECKING:
    from ..model import Model
    from .loss_weights import LossWeightSuggestion

__all__ = ["DiagnosisReport"]


class DiagnosisReport(ReportFields):
    """What :func:`diagnose` measured and found.

    Attributes
    ----------
    findings : list of Finding
        Errors first.
    trace : Trace or None
        The training run on the copy.
    trained_model : Model or None
        That copy after the run.
    summary : dict
        The measured figures (also in :meth:`to_dict`).
    suggested_loss_weights : dict or None
        ``{output: weight}`` giving each output the same share (or ``diagnose``'s
        ``target_shares``) of the gradient norm on the shared weights; see
        :meth:`suggest_loss_weights`.
    stopped : str or None
        Why the measurements on the model could not run (mlstm refused the data).
    verified : list of dict
        The fixes tried by retraining (``diagnose(..., verify=True)``), one per distinct
        change; each finding they belong to holds its own in ``finding.verification``.
    """

    # The fields the checks read are declared by ReportFields.
    target_shares: TargetShares
    loss_weight_suggestion: LossWeightSuggestion | None

    def __init__(self, model: Model, data: dict[str, Any], static: dict[str, Any] | None,
                 run: dict[str, Any] | None, thresholds: dict[str, float],
                 stopped: str | None = None,
                 target_shares: TargetShares = None) -> None:
        self.model_name = model.name
        self.thresholds = thresholds
        self.output_names = list(model.output_names)
        self.loss_outputs = [n for n, l in zip(model.output_names, model._losses)
                             if l is not None]
        self.loss_weights = dict(zip(model.output_names, model._loss_weights))
        #: Outputs that train: a loss at a weight other than 0 (checks about how an output
        #: learns leave the others out; switched_off_output looks at those).
        self.active_outputs = [n for n in self.loss_outputs if self.loss_weights[n] != 0]
        self.setup = _describe_setup(model)
        self.data, self.static, self.run = data, static, run
        self.stopped = stopped
        self.target_shares = target_shares
        self.trace = run["trace"] if run else None
        self.trained_model = run["model"] if run else None
        self.shared_names = G.shared_parameters(model)
        self.trainable_names = list(model.trainable_params)
        self.param_shapes = {n: p.shape for n, p in model.params.items()}
        self.losses = {name: loss for name, loss in zip(model.output_names, model._losses)}
        self.head_activations = {name: model.output_activation(k)
                                 for k, name in enumerate(model.output_names)}
        self.output_layers = {name: t.node.layer.name
                              for name, t in zip(model.output_names, model.outputs)}
        self.output_shapes = {name: tuple(t.shape)
                              for name, t in zip(model.output_names, model.outputs)}
        self.upstream_of_layer, self.layer_inputs = _graph_reach(model)
        self.optimizer_config = dict(model.optimizer.get_config())
        self.verified = []
        self.sigmoid_heads = ([] if static is None else
                              [n for n, l in static["head_logits"].items() if l is not None])
        #: ``{"report": the diagnosis at rate 0, "rates": {...}}`` for a model with dropout
        #: (set by diagnose; :mod:`mlstm.diagnostics.dropout`), else None.
        self.dropout: dict[str, Any] | None = None
        self.summary = summarize(self) if static is not None else {}
        self.loss_weight_suggestion = self.suggest_loss_weights(target_shares)
        self.findings = []

    # ------------------------------------------------------------------ loss weights
    def suggest_loss_weights(self, target_shares: TargetShares = None
                             ) -> LossWeightSuggestion | None:
        """Loss weights that give each output ``target_shares`` of the gradient norm on the
        shared weights at the current parameters (equal shares by default).

        Parameters
        ----------
        target_shares : dict or sequence, optional
            One share per output with a loss, by name or in the model's order; normalized to
            sum 1.

        Returns
        -------
        LossWeightSuggestion or None
            ``.weights``, the shares before and after, outputs no weight can reach, and
            conflicts reweighting cannot fix; None when no parameter is shared by two
            outputs with a loss. See :mod:`mlstm.diagnostics.loss_weights`.
        """
        return suggest_loss_weights(self, target_shares)

    @property
    def suggested_loss_weights(self) -> dict[str, float] | None:
        """``{output: weight}`` (see :meth:`suggest_loss_weights`), or None."""
        s = self.loss_weight_suggestion
        return None if s is None else dict(s.weights)

    # ------------------------------------------------------------------ views
    @property
    def codes(self) -> list[str]:
        """The finding codes, in report order."""
        return [f.code for f in self.findings]

    def to_dict(self) -> dict[str, Any]:
        """Everything measured and found, as plain JSON-serializable values."""
        s = self.loss_weight_suggestion
        return jsonable({"model": self.model_name, "setup": self.setup,
                         "thresholds": self.thresholds, "summary": self.summary,
                         "suggested_loss_weights": None if s is None else s.to_dict(),
                         "stopped": self.stopped, "verified": self.verified,
                         "findings": [f.to_dict() for f in self.findings]})

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def plot(self, path: str | os.PathLike[str], title: str | None = None
             ) -> str | os.PathLike[str]:
        """Draw the report to a PNG (needs matplotlib; see :mod:`mlstm.diagnostics.plotting`)."""
        from .plotting import plot_reports
        return plot_reports([self], path, titles=[title or self.model_name])

    def __str__(self) -> str:
        return format_report(self)

    def __repr__(self) -> str:
        return f"<DiagnosisReport {self.model_name!r}: {len(self.findings)} findings {self.codes}>"


def _describe_setup(model: Model) -> dict[str, Any]:
    parts = []
    for name, loss, w in zip(model.output_names, model._losses, model._loss_weights):
        if loss is None:
            continue
        label = loss.name
        if isinstance(loss, losses_module.FunctionLoss):
            label = f"{loss.name} (custom function)"
        parts.append(f"{w:g} * {label}({name})")
    optimizer = model.optimizer
    return {"loss": " + ".join(parts), "optimizer": repr(optimizer),
            "optimizer_name": type(optimizer).__name__,
            "learning_rate": getattr(optimizer, "learning_rate", None),
            "inputs": {n: list((None,) + tuple(t.shape)) for n, t in
                       zip(model.input_names, model.inputs)},
            "outputs": {n: list((None,) + tuple(t.shape)) for n, t in
                        zip(model.output_names, model.outputs)}}


def _graph_reach(model: Model) -> tuple[dict[str, set[str]], dict[str, list[str]]]:
    """``({layer: set of the layers upstream of it}, {layer: [model inputs it reads]})``."""
    upstream: dict[str, set[str]] = {}
    for node in model.nodes:
        reach = upstream.setdefault(node.layer.name, set())
        for t in node.inputs:
            source = t.node.layer.name
            reach |= {source} | upstream.get(source, set())
    inputs = set(model.input_names)
    return upstream, {layer: sorted(reach & inputs) for layer, reach in upstream.items()}
