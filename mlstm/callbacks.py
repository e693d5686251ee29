"""Callbacks for :meth:`mlstm.Model.fit`: saving checkpoints as training goes.

A callback is any object with some of the hooks ``on_train_begin(model)``,
``on_before_update(model, step, info)``, ``on_batch_end(model, step, info)``,
``on_epoch_end(model, epoch, logs)`` and ``on_train_end(model)`` (see ``fit``).
:class:`Callback` is an empty base to inherit from.

The stop on a non-finite loss or gradient is not a callback: ``fit`` checks every step
before any hook sees it and before its update, and raises
:class:`mlstm.validation.NonFiniteError`, leaving the last good weights (Keras'
``TerminateOnNaN`` runs after the update and stops one step too late, with NaN weights).
"""
from __future__ import annotations

import math
import os
import warnings

from . import io as io_module
from . import validation

__all__ = ["Callback", "ModelCheckpoint", "training_state", "checkpoint_callbacks"]


class Callback:
    """Base class with every hook a no-op."""

    def on_train_begin(self, model):
        pass

    def on_before_update(self, model, step, info):
        pass

    def on_batch_end(self, model, step, info):
        pass

    def on_epoch_end(self, model, epoch, logs):
        pass

    def on_train_end(self, model):
        pass


def training_state(model, epoch):
    """``fit`` keyword arguments that resume after ``epoch`` (0-based) has finished.

    Epoch ``e``'s batches depend only on ``(seed, e)``, so restarting at
    ``initial_epoch = epoch + 1`` with the same seed, batch size and shuffle sees the
    same batches as the run that was interrupted.
    """
    params = model.history.params
    return {"initial_epoch": int(epoch) + 1, "epochs": int(params["epochs"]),
            "batch_size": int(params["batch_size"]), "seed": int(params["seed"]),
            "shuffle": bool(params.get("shuffle", True))}


class ModelCheckpoint(Callback):
    """Save the model (weights, optimizer state, compile settings) at the end of epochs.

    Like Keras' ``ModelCheckpoint``. Each save is atomic (:func:`mlstm.io.save_model`): an
    interruption leaves the previous checkpoint intact. The file also records
    ``training_state``, so ``m = mlstm.load_model(path); m.fit(x, y, **m.training_state)``
    resumes, bit-identical to a run that was never interrupted.

    Parameters
    ----------
    filepath : str or os.PathLike
        May hold Keras-style fields: ``{epoch}`` (1-based, as Keras) and any log key,
        e.g. ``"ckpt-{epoch:02d}-{val_loss:.3f}.npz"``; without fields, one file is
        overwritten every epoch.
    monitor : str
        The log value that ``save_best_only`` compares.
    save_best_only : bool
        Save only when ``monitor`` improves.
    mode : {"auto", "min", "max"}
        Whether lower or higher is better; "auto" means max for accuracies, else min.
    verbose : int
        1 prints a line per save.
    """

    def __init__(self, filepath, monitor="val_loss", save_best_only=False, mode="auto",
                 verbose=0):
        if not isinstance(filepath, (str, os.PathLike)):
            raise TypeError(f"ModelCheckpoint: filepath must be a path, got "
                            f"{type(filepath).__name__}")
        self.filepath = os.fspath(filepath)
        if not isinstance(monitor, str):
            raise TypeError(f"ModelCheckpoint: monitor must be a log key, got {monitor!r}")
        self.monitor = monitor
        self.save_best_only = bool(save_best_only)
        self.mode = validation.check_choice(mode, ("auto", "min", "max"),
                                            "ModelCheckpoint: mode")
        if self.mode == "auto":
            self.mode = "max" if "acc" in monitor else "min"
        self.verbose = verbose
        self.best = None
        self.last_saved = None
        self._check_directory()

    def _check_directory(self):
        directory = os.path.dirname(os.path.abspath(self.filepath))
        if "{" not in directory and not os.path.isdir(directory):   # refuse before training
            raise ValueError(f"ModelCheckpoint: directory {directory!r} does not exist")

    def on_train_begin(self, model):
        self.best = None

    def on_epoch_end(self, model, epoch, logs):
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None:
                warnings.warn(f"ModelCheckpoint: {self.monitor!r} is not in the logs "
                              f"{list(logs)}; saving every epoch", RuntimeWarning, stacklevel=2)
            elif not math.isfinite(current) or (
                    self.best is not None and
                    not (current < self.best if self.mode == "min" else current > self.best)):
                return
            else:
                self.best = current
        path = self._path(epoch, logs)
        io_module.save_model(model, path, training_state=training_state(model, epoch))
        self.last_saved = path
        if self.verbose:
            print(f"Epoch {epoch + 1}: saved the model to {path}")

    def _path(self, epoch, logs):
        try:
            return self.filepath.format(epoch=epoch + 1, **logs)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"ModelCheckpoint: cannot fill {self.filepath!r} from epoch and "
                             f"the logs {sorted(logs)}: {exc}") from None


def checkpoint_callbacks(checkpoint):
    """``fit(checkpoint=...)``: ``[]`` for None, else ``[ModelCheckpoint]`` for a path (or it)."""
    if checkpoint is None:
        return []
    if isinstance(checkpoint, ModelCheckpoint):
        return [checkpoint]
    return [ModelCheckpoint(checkpoint)]
