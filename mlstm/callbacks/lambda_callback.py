"""``LambdaCallback`` (hooks from functions) and ``TerminateOnNaN``."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .base import HOOKS, Callback

if TYPE_CHECKING:
    from ..validation import NonFiniteError

__all__ = ["LambdaCallback", "TerminateOnNaN"]


class LambdaCallback(Callback):
    """A callback made of functions, one per hook, with the hooks' arguments.

    Parameters
    ----------
    on_epoch_begin, on_epoch_end, on_train_begin, on_train_end, on_train_batch_begin,
    on_train_batch_end : callable, optional
        Keras' arguments: ``(epoch, logs)``, ``(logs)``, ``(batch, logs)``.
    **hooks : callable
        Any other hook by name (``on_test_end``, ``on_after_update_step``, ...); an unknown
        name is an error.

    Examples
    --------
    >>> from mlstm.callbacks import LambdaCallback
    >>> seen = []
    >>> cb = LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch))
    """

    def __init__(self, on_epoch_begin: Callable[[int, dict[str, float]], Any] | None = None,
                 on_epoch_end: Callable[[int, dict[str, float]], Any] | None = None,
                 on_train_begin: Callable[[dict[str, float]], Any] | None = None,
                 on_train_end: Callable[[dict[str, float]], Any] | None = None,
                 on_train_batch_begin: Callable[[int, dict[str, float]], Any] | None = None,
                 on_train_batch_end: Callable[[int, dict[str, float]], Any] | None = None,
                 **hooks: Callable[..., Any] | None) -> None:
        super().__init__()
        unknown = sorted(set(hooks) - set(HOOKS))
        if unknown:
            raise ValueError(f"LambdaCallback: {unknown} are not callback hooks; hooks are "
                             f"{sorted(HOOKS)}")
        hooks.update(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end,
                     on_train_begin=on_train_begin, on_train_end=on_train_end,
                     on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end)
        for name, fn in hooks.items():
            if fn is None:
                continue
            if not callable(fn):
                raise TypeError(f"LambdaCallback: {name} must be callable, got {fn!r}")
            setattr(self, name, fn)


class TerminateOnNaN(Callback):
    """Stop training cleanly when a step's loss or gradient is NaN or infinite.

    Keras' ``TerminateOnNaN`` looks at the loss after the update, so the model it leaves has
    taken the bad step (NaN weights). In mlstm the check comes before the update
    (:class:`mlstm.validation.NonFiniteError`): with this callback, ``fit`` stops at that
    step, returns normally, and the weights are those of the last good step; the epoch in
    progress is not recorded in the History. Without it, ``fit`` raises the error.

    Parameters
    ----------
    raise_error : bool
        Raise the :class:`~mlstm.validation.NonFiniteError` instead (Keras raises a
        RuntimeError here).

    Attributes
    ----------
    error : mlstm.validation.NonFiniteError or None
        What stopped training: where, which outputs and parameters.
    """

    def __init__(self, raise_error: bool = False) -> None:
        super().__init__()
        self.raise_error = bool(raise_error)
        self.error: NonFiniteError | None = None

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        self.error = None

    def on_nonfinite_step(self, step: int, error: NonFiniteError) -> None:
        self.error = error
        if not self.raise_error:
            print(f"Batch {step}: Invalid loss, terminating training")
            self.model.stop_training = True
