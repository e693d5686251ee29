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

The math of the decompositions is in :mod:`mlstm.measure.gradients`; the measurements are
re-exported here for convenience. The diagnosis, by responsibility:

========================  ==================================================================
``diagnosis``             :func:`diagnose`: checks the arguments, runs the rest in order
``measurements``          the data as given, one batch at the current weights, a training
                          run on a copy, the loss curves on fixed data
``summary``               the measurements as named figures (``report.summary``)
``findings``              :class:`Finding`, :data:`THRESHOLDS`, :data:`FINDING_CODES`
``checks``                the figures that become findings (``data``, ``classification``,
                          ``gradients``, ``outputs``, ``training``), run in a fixed order
``causes``                which finding explains which: causes first
``remedies``, ``verify``  fixes as concrete changes, tried by retraining (``verify=True``)
``loss_weights``          suggested loss weights (``report.suggested_loss_weights``)
``report``, ``text``      :class:`DiagnosisReport` and its text
``plotting``, ``panels``  ``report.plot(path)`` (matplotlib): the panels that have
                          something to say, the findings' first
``cli``, ``datafile``,    ``python -m mlstm diagnose``: the command, its ``.npz`` data
``seed``, ``seed_text``   file, and the seed article's setups side by side
========================  ==================================================================
"""
from typing import Sequence

from .diagnosis import FINDING_CODES, THRESHOLDS, DiagnosisReport, Finding, diagnose
from ..measure.gradients import (gate_saturation, gradient_contributions, gradient_through_time,
                        head_saturation, per_sample_gradient_norms, sample_coverage,
                        shared_parameters)
from ..measure.trace import Trace

__all__ = ["gradient_contributions", "per_sample_gradient_norms", "gradient_through_time",
           "sample_coverage", "shared_parameters", "gate_saturation", "head_saturation",
           "Trace", "diagnose", "DiagnosisReport", "Finding", "THRESHOLDS", "FINDING_CODES",
           "cli_main"]


def cli_main(argv: Sequence[str] | None = None) -> int:
    """``python -m mlstm diagnose ...`` (see :mod:`mlstm.diagnostics.cli`)."""
    from .cli import main
    return main(argv)
