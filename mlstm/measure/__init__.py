"""Measure what training does: every gradient and update, split by output and sample.

=================================  =====================================================
:func:`gradient_contributions`     each output's share of each weight's gradient
                                   (``per_sample=True``: per-sample gradient norms)
:func:`per_sample_gradient_norms`  the same, per sample: ``{output: {param: (N,)}}``
:func:`gradient_through_time`      ``||dL/dh_t||`` per recurrent layer, step and output
:func:`gate_saturation`            fraction of gate pre-activations beyond ±5
:class:`Trace`                     ``fit(trace=True)``: per-step gradients, updates, ratios
=================================  =====================================================

These are measurements, part of the core: training uses them (``fit(trace=True)``,
``model.gradient_contributions``). What they mean for a model that does not learn is the
business of :mod:`mlstm.diagnostics`, which sits above training.
"""
from .gradients import (gate_saturation, gradient_contributions, gradient_through_time,
                        head_saturation, per_sample_gradient_norms, sample_coverage,
                        shared_parameters)
from .trace import Trace

__all__ = ["gradient_contributions", "per_sample_gradient_norms", "gradient_through_time",
           "sample_coverage", "shared_parameters", "gate_saturation", "head_saturation",
           "Trace"]
