"""What EarlyStopping, ReduceLROnPlateau and ModelCheckpoint share: a monitored log value
and Keras' test of an improvement.

Keras 3.15 (``MonitorCallback._is_improvement``) compares ``current - min_delta`` with the
best value through ``ops.less`` / ``ops.greater`` on Python floats, which become float32
tensors, so the comparison is made in float32 even in a float64 run (the subtraction itself
is a Python float64 one). :func:`is_improvement` does exactly that, so that mlstm stops at
the same epoch and cuts the learning rate at the same epochs as Keras on the same run.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Literal

import numpy as np

from .. import validation
from .base import Callback

__all__ = ["MonitorCallback", "monitor_direction"]

#: Metric names (without ``val_``) whose larger values are better.
_HIGHER_IS_BETTER = ("acc", "accuracy", "binary_accuracy", "auc", "precision", "recall")


def monitor_direction(monitor: str) -> Literal["min", "max"] | None:
    """``"min"`` or ``"max"`` for a log key in ``mode="auto"``; None when it is not known.

    Losses (``loss``, ``<output>_loss``) and error metrics go down, accuracies up.
    """
    name = monitor[4:] if monitor.startswith("val_") else monitor
    if name == "loss" or name.endswith("_loss"):
        return "min"
    for known in _HIGHER_IS_BETTER:
        if name == known or name.endswith("_" + known):
            return "max"
    for known in ("mae", "mse", "mean_absolute_error", "mean_squared_error",
                  "crossentropy", "rmse", "mape", "msle"):
        if name == known or name.endswith("_" + known):
            return "min"
    return None


class MonitorCallback(Callback):
    """A callback watching ``logs[monitor]`` at each epoch's end.

    Parameters
    ----------
    monitor : str
        A key of the epoch logs (``"val_loss"``, ``"loss"``, ``"out1_loss"``, ...).
    mode : {"auto", "min", "max"}
        "auto" infers the direction from the name (:func:`monitor_direction`); a name it
        cannot place is an error (pass mode), as in Keras.
    min_delta : float
        Changes smaller than this do not count as an improvement.
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "auto",
                 min_delta: float = 0.0) -> None:
        super().__init__()
        owner = type(self).__name__
        if not isinstance(monitor, str):
            raise TypeError(f"{owner}: monitor must be a log key (a str), got {monitor!r}")
        self.monitor = monitor
        self.mode = validation.check_choice(mode, ("auto", "min", "max"), f"{owner}: mode")
        direction = self.mode if self.mode != "auto" else monitor_direction(monitor)
        if direction is None:
            raise ValueError(f"{owner}: cannot tell whether {monitor!r} should go up or down; "
                             "pass mode='min' or mode='max'")
        self.direction = direction
        try:
            min_delta = float(min_delta)
        except (TypeError, ValueError):
            raise TypeError(f"{owner}: min_delta must be a number, got {min_delta!r}") from None
        if not np.isfinite(min_delta):
            raise ValueError(f"{owner}: min_delta must be finite, got {min_delta}")
        self.min_delta = abs(min_delta)
        self.best: float | None = None

    def is_improvement(self, current: float, reference: float | None) -> bool:
        """Keras' test, in float32: ``current ∓ min_delta`` beats ``reference`` (None: yes)."""
        if reference is None:
            return True
        if self.direction == "min":
            return bool(np.less(np.float32(current + self.min_delta), np.float32(reference)))
        return bool(np.greater(np.float32(current - self.min_delta), np.float32(reference)))

    def monitor_value(self, logs: Mapping[str, float] | None, action: str) -> float | None:
        """``logs[monitor]``, or None with a warning naming the keys there are."""
        value = (logs or {}).get(self.monitor)
        if value is None:
            warnings.warn(f"{type(self).__name__}: {action} is conditioned on {self.monitor!r}, "
                          f"which is not in the logs; available: {', '.join(logs or {})}",
                          RuntimeWarning, stacklevel=3)
        return value
