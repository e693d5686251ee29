"""``fit``: epochs of batches with Keras' arguments, validation, callbacks and progress."""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .. import initializers, validation
from ..callbacks.base import CallbackList, check_callbacks
from ..callbacks.checkpoint import checkpoint_callbacks
from ..callbacks.history import History
from .arguments import (FIT_ARGUMENTS, check_missing_targets, check_steps_per_epoch,
                        check_validation_freq, check_validation_split, check_verbose,
                        refuse_unknown, resolve_batch_size, should_validate)
from .epoch import EpochSums
from .memory import check_batch_memory
from .progress import Progress
from .weights import class_weights

if TYPE_CHECKING:
    from ..callbacks.checkpoint import ModelCheckpoint
    from .host import StepInfo
    from .weights import Arrays

if TYPE_CHECKING:
    from .host import TrainerHost as _Host
else:           # the declarations are for mypy; at run time a mixin is a plain class
    _Host = object

__all__ = ["FitMixin", "batch_positions"]


def batch_positions(epoch: int, steps_per_epoch: int | None,
                    batches: int) -> tuple[int, int, int]:
    """``(pass, first batch, batch count)`` of ``epoch`` over data of ``batches`` batches.

    Without ``steps_per_epoch`` an epoch is one pass. With it, as Keras does for arrays,
    epochs walk on through the data: each takes the next ``steps_per_epoch`` batches, the
    one that reaches the end of the data stops there (shorter; Keras warns that the input
    ran out), and the next pass starts with the next epoch. It depends on ``epoch`` alone, so
    a run resumed at ``initial_epoch`` takes the same batches (Keras restarts the data at
    ``initial_epoch``).
    """
    if steps_per_epoch is None:
        return epoch, 0, batches
    per_pass = -(-batches // steps_per_epoch)
    first = (epoch % per_pass) * steps_per_epoch
    return epoch // per_pass, first, min(steps_per_epoch, batches - first)


class FitMixin(_Host):
    """The training loop (part of :class:`Trainer`)."""

    def fit(self, x: Any = None, y: Any = None, batch_size: int | None = None,
            epochs: int = 1, verbose: int | str = "auto", callbacks: Sequence[Any] | None = None,
            validation_split: float = 0.0, validation_data: Sequence[Any] | None = None,
            shuffle: bool = True, class_weight: Mapping[Any, Any] | None = None,
            sample_weight: Any = None, initial_epoch: int = 0,
            steps_per_epoch: int | None = None, validation_batch_size: int | None = None,
            validation_freq: int | Sequence[int] = 1, seed: int | None = None,
            trace: bool = False,
            checkpoint: str | os.PathLike[str] | ModelCheckpoint | None = None,
            missing_targets: Literal["mask"] | None = None, **unknown: Any) -> History:
        """Train for ``epochs`` epochs, with Keras' arguments and numbers.

        Parameters
        ----------
        x, y : array, list of arrays, or dict by input/output name
        batch_size : int, optional
            32 by default, or ``ceil(N / steps_per_epoch)`` when only that is given (Keras).
        epochs : int
            Index of the last epoch (Keras' meaning, with ``initial_epoch``).
        verbose : {"auto", 0, 1, 2}
            "auto" and 1: a progress bar per epoch (steps, elapsed, ETA, running losses);
            2: one line per epoch; 0: silent.
        callbacks : list, optional
            :class:`mlstm.callbacks.Callback` objects (Keras' hooks and signatures, plus
            mlstm's ``on_before_update_step``, ``on_after_update_step`` and
            ``on_nonfinite_step``; see :mod:`mlstm.callbacks.base`), checked before training
            starts. ``self.model.stop_training = True`` ends training after the batch.
        validation_split : float
            The last ``N - floor(N · (1 - split))`` samples (taken before any shuffling,
            with their sample weights) validate, as in Keras.
        validation_data : (x_val, y_val) or (x_val, y_val, sample_weight_val), optional
        shuffle : bool
            Reshuffle before each pass. The order of pass ``p`` depends only on ``(seed,
            p)``, so a run resumed at ``initial_epoch`` sees the same batches.
        class_weight : dict, optional
            ``{class: weight}`` for one output (Keras); ``{output: {class: weight}}`` for
            several, meaning exactly ``sample_weight[output] = class_weight[output][label]``
            (see :mod:`mlstm.training.weights`). Not applied to validation data (Keras).
        sample_weight : array, list per output, or dict by output name, optional
            Keras' weighted reduction: ``Σ w·l / N`` (not divided by Σ w); with a mask,
            ``Σ w·m·l / Σ m``.
        initial_epoch : int
        steps_per_epoch : int, optional
            At most the number of batches; epochs then walk on through the data
            (:func:`batch_positions`).
        validation_batch_size : int, optional
            ``batch_size`` by default.
        validation_freq : int or list of int
            Validate every n-th epoch, or at these 1-based epochs (Keras).
        seed : int, optional
            Seeds the shuffling and the random draws of layers that make them (dropout):
            epoch ``e`` uses streams derived from ``(seed, e)`` only. When omitted, drawn
            from :func:`mlstm.set_random_seed`'s stream.
        trace : bool
            Record every step's per-output gradient norms, updates, learning rate and gate
            saturation on ``history.trace`` (an :class:`mlstm.measure.Trace` callback).
        checkpoint : str, os.PathLike or mlstm.callbacks.ModelCheckpoint, optional
            Save the model (weights, optimizer state, where training is) atomically at the
            end of every epoch; ``m = mlstm.load_model(path); m.fit(x, y,
            **m.training_state)`` resumes bit-identically.
        missing_targets : {None, "mask"}
            "mask": a target row of NaN is a missing label, left out of that output's loss,
            gradient and metrics (the mean runs over the labelled entries); the logs gain
            the labelled share, ``labelled`` / ``<output>_labelled``. None: NaN is an error.

        Returns
        -------
        History

        Raises
        ------
        mlstm.validation.NonFiniteError
            When a step's loss or gradient is NaN/inf (unless a callback, such as
            :class:`mlstm.callbacks.TerminateOnNaN`, stops training on it); that step's
            update is not applied, so the model keeps the weights of the last good step.
        """
        refuse_unknown("fit", unknown, FIT_ARGUMENTS)
        self._require_compiled("fit")
        if x is None or y is None:
            raise ValueError("fit needs x and y: in-memory arrays (a list or a dict by name "
                             "for several inputs or outputs)")
        verbose = check_verbose(verbose, "fit")
        missing = check_missing_targets(missing_targets, "fit")
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"epochs must be a non-negative int, got {epochs!r}")
        validation.check_fit_options(initial_epoch, seed, shuffle)
        validation_freq = check_validation_freq(validation_freq)
        if sample_weight is not None and class_weight is not None:
            raise ValueError("fit: give sample_weight or class_weight, not both (as in Keras); "
                             "class_weight means sample_weight = class_weight[label], so "
                             "multiply them yourself to combine them")
        data = self._arrays(x, y, sample_weight, missing=missing)
        val = None
        if validation_split:
            # Keras splits x, y and sample_weight before class_weight is applied
            data, val = data.split(check_validation_split(validation_split, data.n,
                                                          validation_data is not None))
        elif validation_data is not None:
            val = self._validation_arrays(validation_data, missing)
        if class_weight is not None:
            data.weights = class_weights(self, class_weight, data.ys)
        batch_size = resolve_batch_size(batch_size, data.n, steps_per_epoch)
        batches = -(-data.n // batch_size)
        steps_per_epoch = check_steps_per_epoch(steps_per_epoch, batches)
        validation_batch_size = resolve_batch_size(validation_batch_size or batch_size, 1)
        check_batch_memory(self, [a.shape for a in data.xs], batch_size, "train", "fit",
                           samples=data.n)
        if val is not None:
            check_batch_memory(self, [a.shape for a in val.xs], validation_batch_size,
                               "evaluate", "fit: validation_data")
        if seed is None:
            seed = int(initializers.default_rng().integers(2 ** 31))
        history, hooks = self._fit_callbacks(callbacks, checkpoint, trace, dict(
            verbose=verbose, epochs=epochs, steps=steps_per_epoch or batches,
            batch_size=batch_size, seed=seed, shuffle=bool(shuffle),
            steps_per_epoch=steps_per_epoch))
        self.stop_training = False
        hooks.call("on_train_begin", {})
        progress = Progress(verbose, steps_per_epoch or batches)
        training_logs = {}
        for epoch in range(initial_epoch, epochs):
            epoch_logs = self._fit_epoch(data, val, epoch, epochs, hooks, progress, dict(
                seed=seed, shuffle=shuffle, batch_size=batch_size, batches=batches,
                steps_per_epoch=steps_per_epoch, validation_freq=validation_freq,
                validation_batch_size=validation_batch_size))
            if epoch_logs is None:           # a non-finite step stopped training
                break
            training_logs = epoch_logs
            if self.stop_training:
                break
        hooks.call("on_train_end", training_logs)
        return history

    def _validation_arrays(self, validation_data: Sequence[Any], missing: bool) -> Arrays:
        if not isinstance(validation_data, (list, tuple)) or len(validation_data) not in (2, 3):
            raise ValueError("validation_data must be a pair (x_val, y_val) or a triple "
                             "(x_val, y_val, sample_weight_val)")
        with validation.prefixed("validation_data"):
            weights = validation_data[2] if len(validation_data) == 3 else None
            return self._arrays(validation_data[0], validation_data[1], weights,
                                missing=missing)

    def _fit_callbacks(self, callbacks: Sequence[Any] | None,
                       checkpoint: str | os.PathLike[str] | ModelCheckpoint | None, trace: bool,
                       params: dict[str, Any]) -> tuple[History, CallbackList]:
        """The History and the checked callback list: the user's, the checkpoint, the trace,
        then the History (last, so that it records keys the others add to the logs)."""
        callbacks = check_callbacks(callbacks)
        history = next((cb for cb in callbacks if isinstance(cb, History)), None)
        extra = checkpoint_callbacks(checkpoint)
        tracer = None
        if trace:
            from ..measure import Trace
            tracer = Trace()
            extra.append(tracer)
        if history is None:
            history = History()
            extra.append(history)
        hooks = CallbackList(callbacks + extra, self, params)
        history.params = dict(params)
        if tracer is not None:
            history.trace = tracer
        self.history = history
        return history, hooks

    def _fit_epoch(self, data: Arrays, val: Arrays | None, epoch: int, epochs: int,
                   hooks: CallbackList, progress: Progress,
                   run: dict[str, Any]) -> dict[str, float] | None:
        """One epoch; its logs, or None when a non-finite step stopped training."""
        hooks.call("on_epoch_begin", epoch, {})
        progress.start(f"Epoch {epoch + 1}/{epochs}")
        data_pass, first, count = batch_positions(epoch, run["steps_per_epoch"],
                                                  run["batches"])
        order = (np.random.default_rng([run["seed"], data_pass]).permutation(data.n)
                 if run["shuffle"] else np.arange(data.n))
        # layers that draw (dropout) get an epoch's stream of its own, so that a run
        # resumed at initial_epoch draws the same bits
        layer_rng = np.random.default_rng([run["seed"], epoch, 1])
        totals = EpochSums(self, data.count_labels)
        batch_size, done = run["batch_size"], 0
        for step in range(count):
            at = (first + step) * batch_size
            idx = order[at:at + batch_size]
            batch = data.take(idx)
            hooks.call("on_train_batch_begin", step, {})

            def before_update(info: StepInfo, step: int = step) -> None:
                info.update(epoch=epoch, batch=step)
                hooks.call("on_before_update_step", step, info)

            try:
                with validation.batch_rows(idx):   # refusals name rows of x and y
                    logs, info = self._train_step(batch, before_update=before_update,
                                                  rng=layer_rng)
            except validation.NonFiniteError as error:
                error.locate(epoch, step, idx)
                hooks.call("on_nonfinite_step", step, error)
                if self.stop_training:       # a callback (TerminateOnNaN) took it
                    progress.finish(totals.logs(), step=done)
                    return None
                hooks.call("on_train_end", {})
                raise
            totals.add(info["result"], batch.n, info["metric_sums"])
            info.update(batch_logs=logs, indices=idx)
            hooks.call("on_after_update_step", step, info)
            done = step + 1
            running = totals.logs()
            hooks.call("on_train_batch_end", step, running)
            progress.update(done, running)
            # let this step's tape go before the next step builds its own (the LSTM buffer
            # pool can then reuse its arrays instead of holding two steps' worth)
            del info, logs
            if self.stop_training:
                break
        epoch_logs = totals.logs()
        if val is not None and should_validate(epoch, run["validation_freq"]):
            epoch_logs.update(self._evaluate_arrays(val, run["validation_batch_size"],
                                                    prefix="val_", hooks=hooks))
        hooks.call("on_epoch_end", epoch, epoch_logs)
        progress.finish(epoch_logs, step=done)
        return epoch_logs

