"""``EarlyStopping``: stop when a monitored value has stopped improving (Keras 3.15's rules)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .monitor import MonitorCallback

if TYPE_CHECKING:
    from .._typing import Array

__all__ = ["EarlyStopping"]


class EarlyStopping(MonitorCallback):
    """Stop training when ``monitor`` has not improved for ``patience`` epochs.

    The same decisions as Keras 3.15's ``EarlyStopping`` on the same run (the same stopping
    epoch): improvements are judged in float32 (:meth:`MonitorCallback.is_improvement`);
    the wait counter counts epochs since the last improvement, and training stops when it
    reaches ``patience`` (never at the first epoch); ``baseline``, when given, must also be
    beaten for the counter to reset; epochs before ``start_from_epoch`` are ignored.

    Parameters
    ----------
    monitor : str
    min_delta : float
    patience : int
    verbose : int
        1 prints the stopping epoch and the restore.
    mode : {"auto", "min", "max"}
    baseline : float, optional
    restore_best_weights : bool
        At the end of training, set the weights of the best epoch, even when training ran to
        the end without stopping early (as Keras does).
    start_from_epoch : int

    Attributes
    ----------
    stopped_epoch : int
        The epoch (0-based) training stopped at, 0 when it did not stop early.
    best_epoch : int
    best : float or None
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0) -> None:
        super().__init__(monitor, mode, min_delta)
        for label, value in (("patience", patience), ("start_from_epoch", start_from_epoch)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"EarlyStopping: {label} must be a non-negative int, got "
                                 f"{value!r}")
        self.patience = patience
        self.verbose = verbose
        self.baseline = None if baseline is None else float(baseline)
        self.restore_best_weights = bool(restore_best_weights)
        self.start_from_epoch = start_from_epoch
        self.wait = 0
        self.stopped_epoch = 0
        self.best_epoch = 0
        self.best_weights: list[Array] | None = None

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        # a callback may be used for several fits, as in Keras
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        current = self.monitor_value(logs, "early stopping")
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()    # the first candidate
            self.best_epoch = epoch
        self.wait += 1
        if self.is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            # reset only when the baseline is beaten too
            if self.baseline is None or self.is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict[str, float] | None = None) -> None:
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print("Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)
