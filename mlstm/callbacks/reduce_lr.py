"""``ReduceLROnPlateau``: cut the learning rate when a monitored value stops improving."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..schedules import is_schedule
from .monitor import MonitorCallback

__all__ = ["ReduceLROnPlateau"]


class ReduceLROnPlateau(MonitorCallback):
    """Multiply the optimizer's learning rate by ``factor`` after ``patience`` epochs without
    an improvement of ``monitor`` (Keras 3.15's rules and numbers).

    As in Keras: the wait counter starts at 0 and resets after each cut; an improvement must
    beat the best value by ``min_delta`` (1e-4 by default), compared in float32; the rate the
    epoch ran with is written to the epoch logs as ``learning_rate`` (so it reaches the
    History when this callback comes before it, which fit arranges); a cut never goes below
    ``min_lr``; ``cooldown`` epochs after a cut do not count.

    Parameters
    ----------
    monitor : str
    factor : float
        In (0, 1).
    patience : int
    verbose : int
    mode : {"auto", "min", "max"}
    min_delta : float
    cooldown : int
    min_lr : float
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 verbose: int = 0, mode: str = "auto", min_delta: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0) -> None:
        super().__init__(monitor, mode, min_delta)
        factor = float(factor)
        if not 0.0 <= factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be in [0, 1), got {factor}")
        for label, value in (("patience", patience), ("cooldown", cooldown)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"ReduceLROnPlateau: {label} must be a non-negative int, got "
                                 f"{value!r}")
        self.factor = factor
        self.min_lr = float(min_lr)
        self.patience = patience
        self.verbose = verbose
        self.cooldown = cooldown
        self.cooldown_counter = 0
        self.wait = 0

    def set_model(self, model: Any) -> None:
        if is_schedule(getattr(model.optimizer, "learning_rate", None)):
            raise TypeError("ReduceLROnPlateau: the optimizer's learning rate is a schedule "
                            f"({model.optimizer.learning_rate!r}), which a callback cannot "
                            "change (as in Keras); give the optimizer a float learning_rate")
        super().set_model(model)

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        self.best = None
        self.cooldown_counter = 0
        self.wait = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = logs if logs is not None else {}
        optimizer = self.model.optimizer
        logs["learning_rate"] = float(optimizer.learning_rate)
        current = self.monitor_value(logs, "learning rate reduction")
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.cooldown_counter > 0:
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = float(optimizer.learning_rate)
                # Keras' test, a Python float against a float32 (compared in float32)
                if old_lr > np.float32(self.min_lr):
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    optimizer.learning_rate = new_lr
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate "
                              f"to {new_lr}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0
