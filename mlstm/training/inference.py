"""predict and evaluate, batch by batch, with Keras' arguments, callbacks and progress."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .. import validation
from ..callbacks.base import CallbackList
from .arguments import (EVALUATE_ARGUMENTS, PREDICT_ARGUMENTS, check_missing_targets,
                        check_verbose, refuse_unknown, resolve_batch_size)
from .epoch import EpochSums, return_logs
from .memory import check_batch_memory
from .progress import Progress

if TYPE_CHECKING:
    from .._typing import Array
    from .weights import Arrays

if TYPE_CHECKING:
    from .host import TrainerHost as _Host
else:           # the declarations are for mypy; at run time a mixin is a plain class
    _Host = object

__all__ = ["InferenceMixin"]


class InferenceMixin(_Host):
    """Inference and evaluation (part of :class:`Trainer`)."""

    def predict(self, x: Any, batch_size: int | None = None, verbose: int | str = 0,
                callbacks: Sequence[Any] | None = None, **unknown: Any) -> Array | list[Array]:
        """Outputs for ``x``, batch by batch: an array (one output) or a list of arrays.

        Parameters
        ----------
        x : array, list of arrays, or dict by input name
        batch_size : int, optional
            32 by default, as Keras.
        verbose : {"auto", 0, 1, 2}
            As Keras: 1 (or "auto") a progress bar, 2 one line, 0 nothing. mlstm's default
            is 0 (Keras' is "auto").
        callbacks : list, optional
            Their ``on_predict_*`` hooks are called (batch logs ``{"outputs": ...}``).
        """
        refuse_unknown("predict", unknown, PREDICT_ARGUMENTS)
        verbose = check_verbose(verbose, "predict")
        xs = self._inputs(x)
        N = xs[0].shape[0]
        batch_size = resolve_batch_size(batch_size, N)
        check_batch_memory(self, [a.shape for a in xs], batch_size, "predict", "predict",
                           samples=N)
        steps = -(-N // batch_size)
        hooks = CallbackList(callbacks, self, {"verbose": verbose, "epochs": 1,
                                               "steps": steps})
        progress = Progress(verbose, steps)
        hooks.call("on_predict_begin", {})
        chunks: list[list[Array]] = [[] for _ in self.outputs]
        for step, start in enumerate(range(0, N, batch_size)):
            hooks.call("on_predict_batch_begin", step, {})
            tape = self.forward([a[start:start + batch_size] for a in xs])
            for k, out in enumerate(tape.outputs):
                chunks[k].append(out)
            hooks.call("on_predict_batch_end", step, {"outputs": self._as_given(tape.outputs)})
            progress.update(step + 1, {})
            del tape             # let this batch's tape go before the next one is built
        progress.finish({})
        hooks.call("on_predict_end", {})
        return self._as_given([np.concatenate(c, axis=0) for c in chunks])

    def _as_given(self, outs: Sequence[Array]) -> Array | list[Array]:
        """One array for a single-output model, else the list (Keras' structure)."""
        return outs[0] if self._single_output or len(outs) == 1 else list(outs)

    def predict_on_batch(self, x: Any) -> Array | list[Array]:
        """Outputs for one batch, without splitting it."""
        xs = self._inputs(x)
        check_batch_memory(self, [a.shape for a in xs], len(xs[0]), "predict",
                           "predict_on_batch")
        return self._as_given(self.forward(xs).outputs)

    def evaluate(self, x: Any, y: Any, batch_size: int | None = None, verbose: int | str = 0,
                 sample_weight: Any = None, callbacks: Sequence[Any] | None = None,
                 return_dict: bool = False, missing_targets: Literal["mask"] | None = None,
                 **unknown: Any) -> dict[str, float] | float | list[float]:
        """Loss and metrics over ``(x, y)``; Keras' order ``total, per-output losses, metrics``.

        Parameters
        ----------
        x, y : array, list of arrays, or dict by input/output name
        batch_size : int, optional
            32 by default.
        verbose : {"auto", 0, 1, 2}
            As Keras (see :meth:`predict`); mlstm's default is 0.
        sample_weight : array, list or dict by output name, optional
            As in ``fit`` (Keras' weighted reduction).
        callbacks : list, optional
            Their ``on_test_*`` hooks are called.
        return_dict : bool
        missing_targets : {None, "mask"}
            As in ``fit``: NaN target rows are missing labels.
        """
        refuse_unknown("evaluate", unknown, EVALUATE_ARGUMENTS)
        self._require_compiled("evaluate")
        verbose = check_verbose(verbose, "evaluate")
        missing = check_missing_targets(missing_targets, "evaluate")
        data = self._arrays(x, y, sample_weight, missing=missing)
        batch_size = resolve_batch_size(batch_size, data.n)
        check_batch_memory(self, [a.shape for a in data.xs], batch_size, "evaluate",
                           "evaluate")
        steps = -(-data.n // batch_size)
        hooks = CallbackList(callbacks, self, {"verbose": verbose, "epochs": 1,
                                               "steps": steps})
        logs = self._evaluate_arrays(data, batch_size, hooks=hooks,
                                     progress=Progress(verbose, steps))
        return return_logs(logs, return_dict)

    def _evaluate_arrays(self, data: Arrays, batch_size: int, prefix: str = "",
                         hooks: CallbackList | None = None,
                         progress: Progress | None = None) -> dict[str, float]:
        """Logs over an :class:`Arrays` in batches, with the ``on_test_*`` hooks."""
        totals = EpochSums(self, data.count_labels)
        call: Callable[..., None] = (hooks.call if hooks is not None
                                     else (lambda *args: None))
        call("on_test_begin", {})
        for step, start in enumerate(range(0, data.n, batch_size)):
            call("on_test_batch_begin", step, {})
            batch = data.take(slice(start, start + batch_size))
            tape = self.forward(batch.xs)
            with validation.batch_rows(range(start, data.n)):   # refusals name rows of x, y
                result = self._batch_loss(tape, batch)
            totals.add(result, batch.n,
                       self._metric_sums(tape, batch.ys, batch.labelled))
            running = totals.logs()
            call("on_test_batch_end", step, running)
            if progress is not None:
                progress.update(step + 1, running)
            del tape, result     # let this batch's tape go before the next one is built
        logs = totals.logs()
        if progress is not None:
            progress.finish(logs)
        call("on_test_end", logs)
        return {prefix + k: v for k, v in logs.items()} if prefix else logs

    def gradient_contributions(self, x: Any, y: Any, per_sample: bool = False,
                               ) -> dict[str, dict[str, Array]]:
        """Each output's share of the gradient: ``{output: {"layer/weight": ndarray}}``.

        The gradient of ``loss_weight_k · loss_k`` for each output k; they sum to
        :meth:`gradients`. See :func:`mlstm.measure.gradient_contributions`.
        """
        from ..measure import gradient_contributions
        return gradient_contributions(self, x, y, per_sample=per_sample)
