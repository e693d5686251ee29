"""``ModelCheckpoint``: save the model as training goes, atomically, resumable."""
from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

from .. import io as io_module
from .base import Callback
from .monitor import MonitorCallback

if TYPE_CHECKING:
    from ..model_protocol import TrainableModel

__all__ = ["ModelCheckpoint", "training_state", "checkpoint_callbacks"]

#: What ModelCheckpoint writes, by the end of ``filepath``.
MODEL_SUFFIX = ".npz"
WEIGHTS_SUFFIX = ".weights.npz"


def training_state(model: TrainableModel, epoch: int) -> dict[str, Any]:
    """``fit`` keyword arguments that resume after ``epoch`` (0-based) has finished.

    Epoch ``e``'s batches depend only on ``(seed, e)`` (and ``steps_per_epoch``), so
    restarting at ``initial_epoch = epoch + 1`` with the same seed, batch size and shuffle
    sees the same batches as the run that was interrupted.
    """
    params = model.history.params
    state = {"initial_epoch": int(epoch) + 1, "epochs": int(params["epochs"]),
             "batch_size": int(params["batch_size"]), "seed": int(params["seed"]),
             "shuffle": bool(params.get("shuffle", True))}
    if params.get("steps_per_epoch") is not None:
        state["steps_per_epoch"] = int(params["steps_per_epoch"])
    return state


class ModelCheckpoint(MonitorCallback):
    """Save the model (weights, optimizer state, compile settings) at the end of epochs.

    Keras' ``ModelCheckpoint`` arguments. Each save is atomic (:func:`mlstm.io.save_model`):
    an interruption leaves the previous checkpoint intact. A model file (``.npz``) also
    records ``training_state``, so ``m = mlstm.load_model(path); m.fit(x, y,
    **m.training_state)`` resumes, bit-identical to a run that was never interrupted.

    Parameters
    ----------
    filepath : str or os.PathLike
        Ends with ``.npz`` (mlstm's model file) or, with ``save_weights_only``,
        ``.weights.npz``. May hold Keras-style fields: ``{epoch}`` (1-based, as Keras) and
        any log key, e.g. ``"ckpt-{epoch:02d}-{val_loss:.3f}.npz"``; without fields, one
        file is overwritten every epoch. (``.keras`` is refused: a Keras file cannot resume
        mlstm's training; call ``model.save("m.keras")`` after training.)
    monitor : str
        The log value that ``save_best_only`` compares.
    verbose : int
        1 prints a line per save.
    save_best_only : bool
        Save only when ``monitor`` improves (compared in float32, as Keras); a NaN or
        infinite value never counts as an improvement.
    save_weights_only : bool
        Write only the weights (:meth:`mlstm.Model.save_weights`).
    mode : {"auto", "min", "max"}
    save_freq : "epoch"
        Only "epoch" (a save after a number of batches would not be resumable).
    initial_value_threshold : float, optional
        The value ``monitor`` must beat for the first save (``save_best_only``).
    """

    def __init__(self, filepath: str | os.PathLike[str], monitor: str = "val_loss",
                 verbose: int = 0, save_best_only: bool = False,
                 save_weights_only: bool = False, mode: str = "auto", save_freq: str = "epoch",
                 initial_value_threshold: float | None = None) -> None:
        if not isinstance(filepath, (str, os.PathLike)):
            raise TypeError(f"ModelCheckpoint: filepath must be a path, got "
                            f"{type(filepath).__name__}")
        super().__init__(monitor, mode)
        self.filepath = os.fspath(filepath)
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        if save_freq != "epoch":
            raise ValueError(f"ModelCheckpoint: save_freq must be 'epoch' (mlstm saves at "
                             f"epoch ends, where training can resume), got {save_freq!r}")
        self.save_freq = save_freq
        self.initial_value_threshold = (None if initial_value_threshold is None
                                        else float(initial_value_threshold))
        self.verbose = verbose
        self.best = self.initial_value_threshold
        self.last_saved: str | None = None
        self._check_filepath()

    def _check_filepath(self) -> None:
        path = self.filepath
        if path.endswith(".keras"):
            raise ValueError(f"ModelCheckpoint: {path!r} is a Keras file name; mlstm's "
                             f"checkpoints are {MODEL_SUFFIX!r} files (atomic, and they resume "
                             "training exactly). Save a .keras file after training with "
                             "model.save('m.keras')")
        wanted = WEIGHTS_SUFFIX if self.save_weights_only else MODEL_SUFFIX
        if not path.endswith(wanted) or (not self.save_weights_only
                                         and path.endswith(WEIGHTS_SUFFIX)):
            raise ValueError(
                f"ModelCheckpoint: filepath must end with {wanted!r}"
                + (" with save_weights_only=True" if self.save_weights_only else
                   f" ({WEIGHTS_SUFFIX!r} goes with save_weights_only=True)")
                + f", got {path!r}")
        directory = os.path.dirname(os.path.abspath(path))
        if "{" not in directory and not os.path.isdir(directory):   # refuse before training
            raise ValueError(f"ModelCheckpoint: directory {directory!r} does not exist")

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        self.best = self.initial_value_threshold

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = logs or {}
        path = self._path(epoch, logs)
        if self.save_best_only:
            current = self.monitor_value(logs, "saving the best model")
            if current is not None:
                if not math.isfinite(current) or not self.is_improvement(current, self.best):
                    if self.verbose:
                        print(f"Epoch {epoch + 1}: {self.monitor} did not improve from "
                              f"{self.best}")
                    return
                self.best = current
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            io_module.save_model(self.model, path,
                                 training_state=training_state(self.model, epoch))
        self.last_saved = path
        if self.verbose:
            print(f"Epoch {epoch + 1}: saved the model to {path}")

    def _path(self, epoch: int, logs: dict[str, float]) -> str:
        try:
            return self.filepath.format(epoch=epoch + 1, **logs)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"ModelCheckpoint: cannot fill {self.filepath!r} from epoch and "
                             f"the logs {sorted(logs)}: {exc}") from None


def checkpoint_callbacks(checkpoint: str | os.PathLike[str] | ModelCheckpoint | None,
                         ) -> list[Callback]:
    """``fit(checkpoint=...)``: ``[]`` for None, else ``[ModelCheckpoint]`` for a path (or it)."""
    if checkpoint is None:
        return []
    if isinstance(checkpoint, ModelCheckpoint):
        return [checkpoint]
    return [ModelCheckpoint(checkpoint)]
