"""``fit``: epochs of shuffled batches, validation, callbacks, progress."""
from __future__ import annotations

import sys
import time

import numpy as np

from .. import initializers, validation
from ..callbacks import checkpoint_callbacks
from .results import History
from .steps import EpochSums, check_batch_size

__all__ = ["FitMixin"]


class FitMixin:
    """The training loop (part of :class:`Trainer`)."""

    def fit(self, x, y, epochs=1, batch_size=32, shuffle=True, seed=None,
            validation_data=None, verbose=1, callbacks=None, initial_epoch=0, trace=False,
            checkpoint=None):
        """Train for ``epochs`` passes over the data.

        Parameters
        ----------
        x, y : array, list of arrays, or dict by input/output name
        epochs : int
            Index of the last epoch (Keras' meaning, with ``initial_epoch``).
        batch_size : int
        shuffle : bool
            Reshuffle before each epoch. The order of epoch ``e`` depends only on
            ``(seed, e)``, so a run resumed at ``initial_epoch`` sees the same batches.
        seed : int, optional
            Seeds the shuffling and the random draws of layers that make them (dropout):
            epoch ``e`` uses streams derived from ``(seed, e)`` only. When omitted, drawn
            from :func:`mlstm.set_random_seed`'s stream.
        validation_data : (x_val, y_val), optional
        verbose : {0, 1, 2}
            0 silent, 1 a progress line (updated in place on a terminal), 2 one line per epoch.
        callbacks : list, optional
            Objects with any of ``on_train_begin(model)``, ``on_epoch_end(model, epoch, logs)``,
            ``on_before_update(model, step, info)`` (tape, loss result and gradients, with
            the weights still those of the forward pass), ``on_batch_end(model, step, info)``
            (the same plus ``updates``), ``on_train_end(model)``;
            ``model.stop_training = True`` ends training after the current batch.
        initial_epoch : int
        trace : bool
            Record every step's per-output gradient norms, updates and gate saturation on
            ``history.trace`` (an :class:`mlstm.measure.Trace` callback).
        checkpoint : str, os.PathLike or mlstm.callbacks.ModelCheckpoint, optional
            Save the model (weights, optimizer state, where training is) atomically at the
            end of every epoch; ``m = mlstm.load_model(path); m.fit(x, y,
            **m.training_state)`` resumes bit-identically.

        Returns
        -------
        History

        Raises
        ------
        mlstm.validation.NonFiniteError
            When a step's loss or gradient is NaN/inf; that step's update is not applied,
            so the model keeps the weights of the last good step.
        """
        self._require_compiled("fit")
        xs = self._inputs(x)
        ys = self._targets(y, xs[0].shape[0])
        batch_size = check_batch_size(batch_size)
        if not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"epochs must be a non-negative int, got {epochs!r}")
        if verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
        validation.check_fit_options(initial_epoch, seed, shuffle)
        checkpointer = checkpoint_callbacks(checkpoint)
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (list, tuple)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a pair (x_val, y_val)")
            with validation.prefixed("validation_data"):
                vx = self._inputs(validation_data[0])
                val = (vx, self._targets(validation_data[1], vx[0].shape[0]))
        if seed is None:
            seed = int(initializers.default_rng().integers(2 ** 31))
        callbacks = list(callbacks or []) + checkpointer
        tracer = None
        if trace:
            from ..measure import Trace
            tracer = Trace()
            callbacks.append(tracer)
        N = xs[0].shape[0]
        steps = -(-N // batch_size)
        history = History()
        history.params = dict(epochs=epochs, steps=steps, batch_size=batch_size, seed=seed,
                              shuffle=bool(shuffle))
        self.history = history
        if tracer is not None:
            history.trace = tracer
        self.stop_training = False
        _call(callbacks, "on_train_begin", self)
        progress = _Progress(verbose, steps)
        for epoch in range(initial_epoch, epochs):
            order = (np.random.default_rng([seed, epoch]).permutation(N) if shuffle
                     else np.arange(N))
            # layers that draw (dropout) get an epoch's stream of its own, so that a run
            # resumed at initial_epoch draws the same bits
            layer_rng = np.random.default_rng([seed, epoch, 1])
            progress.start_epoch(epoch, epochs)
            totals = EpochSums(len(self.outputs))
            for step in range(steps):
                idx = order[step * batch_size:(step + 1) * batch_size]
                xb, yb = [a[idx] for a in xs], [a[idx] for a in ys]
                try:
                    with validation.batch_rows(idx):   # refusals name rows of x and y
                        logs, info = self._train_step(
                            xb, yb, before_update=lambda pre: _call(
                                callbacks, "on_before_update", self, step, pre), rng=layer_rng)
                except validation.NonFiniteError as error:
                    error.locate(epoch, step, idx)
                    _call(callbacks, "on_train_end", self)
                    raise
                totals.add(info["result"], len(idx), info["metric_sums"])
                info.update(epoch=epoch, step=step, batch_logs=logs)
                _call(callbacks, "on_batch_end", self, step, info)
                progress.update(step + 1, totals.logs(self))
                if self.stop_training:
                    break
            epoch_logs = totals.logs(self)
            if val is not None:
                epoch_logs.update(self._evaluate_arrays(val[0], val[1], batch_size,
                                                        prefix="val_"))
            history.append(epoch, epoch_logs)
            progress.end_epoch(epoch_logs)
            _call(callbacks, "on_epoch_end", self, epoch, epoch_logs)
            if self.stop_training:
                break
        _call(callbacks, "on_train_end", self)
        return history


class _Progress:
    def __init__(self, verbose, steps):
        self.verbose, self.steps = verbose, steps
        self.tty = verbose == 1 and sys.stdout.isatty()

    def start_epoch(self, epoch, epochs):
        self.t0 = time.perf_counter()
        if self.verbose == 1:
            print(f"Epoch {epoch + 1}/{epochs}", flush=True)
        self.epoch, self.epochs = epoch, epochs

    def _line(self, step, logs):
        elapsed = time.perf_counter() - self.t0
        values = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
        return (f"{step}/{self.steps} - {elapsed:.1f}s "
                f"{1000 * elapsed / max(step, 1):.0f}ms/step - {values}")

    def update(self, step, logs):
        if self.tty:
            sys.stdout.write("\r" + self._line(step, logs))
            sys.stdout.flush()

    def end_epoch(self, logs):
        if self.verbose == 1:
            sys.stdout.write(("\r" if self.tty else "") + self._line(self.steps, logs) + "\n")
            sys.stdout.flush()
        elif self.verbose == 2:
            print(f"Epoch {self.epoch + 1}/{self.epochs} - " + self._line(self.steps, logs),
                  flush=True)



def _call(callbacks, hook, *args):
    for cb in callbacks:
        fn = getattr(cb, hook, None)
        if fn is not None:
            fn(*args)

