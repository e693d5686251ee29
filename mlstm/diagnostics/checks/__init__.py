"""The checks that turn a report's figures into findings, run in a fixed order.

==================  ========================================================================
``data``            the data and the compile settings (NaN/inf, nothing trainable, BCE
                    targets, constant inputs, input scales, target scales, MSE on a
                    sigmoid head)
``classification``  classification heads (a softmax over one unit, categorical
                    cross-entropy on one unit, ``from_logits`` on probabilities, class
                    targets in the other loss's format; ``target_sums``: CCE targets whose
                    rows do not sum to 1, multi-hot ones)
``gradients``       where the gradient goes (coverage, parameters without gradient,
                    dominance, conflict, saturation, dead ReLU units, gradient through time)
``outputs``         outputs at loss weight 0 or without a loss that still change weights
``training``        how the weights moved over the training run (learning rate, not moving,
                    a growing gradient, a clip always active, a loss that stops falling)
``normalization``   batch statistics over too few values (BatchNormalization, small batches)
``dropout``         what changes with every dropout rate at 0 (a finding only found there,
                    a model that learns only there); last: it compares with all the others
==================  ========================================================================

A check may look at what earlier checks found (``not_moving`` leaves out the parameters
``no_gradient`` named), so the order below matters. Which finding explains which is
decided afterwards (:mod:`mlstm.diagnostics.causes`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..findings import SEVERITY_ORDER, Finding
from .classification import (check_categorical_on_one_unit, check_class_targets,
                             check_from_logits_on_activated, check_single_unit_softmax)
from .data import (check_bce_targets, check_constant_inputs, check_input_scale,
                   check_mse_on_sigmoid, check_nonfinite, check_nothing_trainable,
                   check_target_scale)
from .gradients import (check_conflict, check_coverage, check_dead_relu, check_dominance,
                        check_no_gradient, check_saturated_gates, check_saturated_heads,
                        check_vanishing)
from .dropout import check_dropout_hides, check_dropout_underfits
from .normalization import check_batchnorm_small_batch
from .outputs import check_switched_off
from .target_sums import check_categorical_target_sums
from .training import (check_clipping, check_exploding, check_learning_rate, check_not_moving,
                       check_plateau)

if TYPE_CHECKING:
    from ..report import DiagnosisReport

__all__ = ["run_checks", "CHECKS", "DATA_CHECKS"]

#: Every check, in the order they run on a report with measurements.
CHECKS = (check_nonfinite, check_nothing_trainable, check_class_targets,
          check_categorical_target_sums, check_single_unit_softmax, check_categorical_on_one_unit,
          check_from_logits_on_activated, check_coverage, check_no_gradient, check_bce_targets,
          check_learning_rate, check_not_moving, check_exploding, check_clipping,
          check_dominance, check_conflict, check_switched_off, check_saturated_heads,
          check_saturated_gates, check_dead_relu, check_vanishing, check_constant_inputs,
          check_input_scale, check_target_scale, check_mse_on_sigmoid, check_plateau,
          check_batchnorm_small_batch, check_dropout_hides, check_dropout_underfits)
#: The checks that need only the data and the compile settings: what runs when mlstm
#: refused the data.
DATA_CHECKS = (check_nonfinite, check_nothing_trainable, check_class_targets,
               check_categorical_target_sums, check_single_unit_softmax, check_categorical_on_one_unit,
               check_from_logits_on_activated, check_bce_targets, check_constant_inputs,
               check_input_scale, check_target_scale)


def run_checks(report: DiagnosisReport) -> list[Finding]:
    """Every check on ``report``, in order; the findings, errors first (the causes are
    ranked afterwards by :func:`mlstm.diagnostics.causes.rank_causes`).

    Returns
    -------
    list of Finding
    """
    found: list[Finding] = []
    for check in (CHECKS if report.static is not None else DATA_CHECKS):
        found.extend(check(report, found))
    found.sort(key=lambda f: SEVERITY_ORDER[f.severity])
    return found
