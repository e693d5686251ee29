"""``History``: what ``fit`` returns, the epoch logs as lists."""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .base import Callback

if TYPE_CHECKING:
    from ..measure.trace import Trace

__all__ = ["History"]


class History(Callback):
    """The epoch logs of a ``fit``: ``history[key]`` is a list, one value per epoch.

    ``fit`` adds one as its last callback (after the user's, so that keys a callback adds to
    the logs, such as ReduceLROnPlateau's ``learning_rate``, are recorded) and returns it;
    ``model.history`` is the same object.

    Attributes
    ----------
    history : dict key -> list of float
    epoch : list of int
    params : dict
        ``epochs``, ``steps``, ``verbose`` (Keras') and ``batch_size``, ``seed``,
        ``shuffle``, ``steps_per_epoch`` (where training can resume).
    trace : mlstm.measure.Trace, optional
        With ``fit(trace=True)``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[Any]] = {}
        self.epoch: list[int] = []
        self.params: dict[str, Any] = {}
        self.trace: Trace | None

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        self.epoch = []

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self.append(epoch, logs or {})
        if self.model is not None:
            self.model.history = self

    def append(self, epoch: int, logs: Mapping[str, Any]) -> None:
        """Record one epoch's logs."""
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self) -> str:
        return f"<History epochs={len(self.epoch)} keys={list(self.history)}>"
