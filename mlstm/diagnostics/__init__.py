"""See why a model is not learning, in plain words (measurements: :mod:`mlstm.measure`).

=================================  =====================================================
:func:`gradient_contributions`     each output's share of each weight's gradient
                                   (``per_sample=True``: per-sample gradient norms)
:func:`per_sample_gradient_norms`  the same, per sample: ``{output: {param: (N,)}}``
:func:`gradient_through_time`      ``||dL/dh_t||`` per LSTM, step and output
:func:`gate_saturation`            fraction of LSTM gate pre-activations beyond ±5
:class:`Trace`                     ``fit(trace=True)``: per-step gradients, updates, ratios
:func:`diagnose`                   all of it, trained for a few steps, in plain words
:func:`cli_main`                   ``python -m mlstm diagnose``: the seed article's three
                                   setups side by side, or your ``.keras`` model
=================================  =====================================================

The math of the decompositions is in :mod:`mlstm.measure.gradients`; the findings and
their thresholds in :mod:`mlstm.diagnostics.diagnosis`. The measurements are re-exported
here for convenience.
"""
from .diagnosis import FINDING_CODES, THRESHOLDS, DiagnosisReport, Finding, diagnose
from ..measure.gradients import (gate_saturation, gradient_contributions, gradient_through_time,
                        head_saturation, per_sample_gradient_norms, sample_coverage,
                        shared_parameters)
from ..measure.trace import Trace

__all__ = ["gradient_contributions", "per_sample_gradient_norms", "gradient_through_time",
           "sample_coverage", "shared_parameters", "gate_saturation", "head_saturation",
           "Trace", "diagnose", "DiagnosisReport", "Finding", "THRESHOLDS", "FINDING_CODES",
           "cli_main"]


def cli_main(argv=None):
    """``python -m mlstm diagnose ...`` (see :mod:`mlstm.diagnostics.cli`)."""
    from .cli import main
    return main(argv)
