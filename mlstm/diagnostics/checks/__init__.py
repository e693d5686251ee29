"""The checks that turn a report's figures into findings, run in a fixed order.

================  ==========================================================================
``data``          the data and the compile settings (NaN/inf, nothing trainable, BCE
                  targets, input scales, MSE on a sigmoid head)
``gradients``     where the gradient goes (coverage, parameters without gradient, dominance,
                  conflict, saturation, gradient through time)
``training``      how the weights moved over the training run (learning rate, not moving)
================  ==========================================================================

A check may look at what earlier checks found (``not_moving`` leaves out the parameters
``no_gradient`` named), so the order below matters.
"""
from __future__ import annotations

from ..findings import SEVERITY_ORDER
from .data import (check_bce_targets, check_input_scale, check_mse_on_sigmoid, check_nonfinite,
                   check_nothing_trainable)
from .gradients import (check_conflict, check_coverage, check_dominance, check_no_gradient,
                        check_saturated_gates, check_saturated_heads, check_vanishing)
from .training import check_learning_rate, check_not_moving

__all__ = ["run_checks", "CHECKS", "DATA_CHECKS"]

#: Every check, in the order they run on a report with measurements.
CHECKS = (check_nonfinite, check_nothing_trainable, check_coverage, check_no_gradient, check_bce_targets,
          check_learning_rate, check_not_moving, check_dominance, check_conflict,
          check_saturated_heads, check_saturated_gates, check_vanishing, check_input_scale,
          check_mse_on_sigmoid)
#: The checks that need only the data: what runs when mlstm refused the data.
DATA_CHECKS = (check_nonfinite, check_nothing_trainable, check_bce_targets, check_input_scale)


def run_checks(report):
    """Every check on ``report``, in order; the findings, errors first.

    Returns
    -------
    list of Finding
    """
    found = []
    for check in (CHECKS if report.static is not None else DATA_CHECKS):
        found.extend(check(report, found))
    found.sort(key=lambda f: SEVERITY_ORDER[f.severity])
    return found
