"""The callback contract: Keras' hooks and signatures, plus mlstm's hooks around each update.

Keras' hooks (the same names, arguments and ``logs`` keys as Keras 3.15)::

    on_train_begin(logs)              on_train_end(logs)       logs: the last epoch's logs
    on_epoch_begin(epoch, logs)       on_epoch_end(epoch, logs)
    on_train_batch_begin(batch, logs) on_train_batch_end(batch, logs)
                                      (logs: the epoch's running means so far, as Keras)
    on_batch_begin / on_batch_end     what :class:`Callback`'s on_train_batch_* call
    on_test_begin / on_test_end / on_test_batch_begin / on_test_batch_end
                                      around ``evaluate`` and fit's validation
    on_predict_begin / on_predict_end / on_predict_batch_begin / on_predict_batch_end

``self.model`` is the model (set before training starts, by ``set_model``), ``self.params``
the run's parameters (``epochs``, ``steps``, ``verbose``, and mlstm's ``batch_size``,
``seed``, ``shuffle``); ``self.model.stop_training = True`` ends training after the
current batch.

mlstm's hooks, which Keras does not have::

    on_before_update_step(step, info)  the step's gradients, before the optimizer moves
                                       the weights: info = {tape, result, grads, epoch, batch}
    on_after_update_step(step, info)   after the update: info adds updates, batch_logs,
                                       metric_sums and learning_rate (the step's rate)
    on_nonfinite_step(step, error)     a step's loss or gradient is NaN/inf (its update was
                                       not applied); setting model.stop_training = True
                                       ends training cleanly instead of raising ``error``

:func:`check_callbacks` checks every callback before training starts: each ``on_*`` method
must be one of these hooks and take its arguments, so a mistake (a misspelt hook, an
``on_epoch_end(model, epoch, logs)`` of the old mlstm form, a Keras callback object) is an
error before the first weight changes.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

if TYPE_CHECKING:
    from ..model_protocol import TrainableModel
    from ..validation import NonFiniteError

__all__ = ["Callback", "CallbackList", "check_callbacks", "HOOKS", "KERAS_HOOKS",
           "MLSTM_HOOKS"]

_C = TypeVar("_C")

#: Keras' hooks and their positional arguments.
KERAS_HOOKS = {
    "on_train_begin": ("logs",), "on_train_end": ("logs",),
    "on_epoch_begin": ("epoch", "logs"), "on_epoch_end": ("epoch", "logs"),
    "on_train_batch_begin": ("batch", "logs"), "on_train_batch_end": ("batch", "logs"),
    "on_batch_begin": ("batch", "logs"), "on_batch_end": ("batch", "logs"),
    "on_test_begin": ("logs",), "on_test_end": ("logs",),
    "on_test_batch_begin": ("batch", "logs"), "on_test_batch_end": ("batch", "logs"),
    "on_predict_begin": ("logs",), "on_predict_end": ("logs",),
    "on_predict_batch_begin": ("batch", "logs"), "on_predict_batch_end": ("batch", "logs"),
}
#: mlstm's hooks around each update, and their positional arguments.
MLSTM_HOOKS = {
    "on_before_update_step": ("step", "info"),
    "on_after_update_step": ("step", "info"),
    "on_nonfinite_step": ("step", "error"),
}
HOOKS = {**KERAS_HOOKS, **MLSTM_HOOKS}
#: Hook names of earlier mlstm versions, and what replaced them.
_RENAMED = {
    "on_before_update": "on_before_update_step(step, info) (the model is self.model)",
}
#: mlstm's counterpart of each Keras callback class.
_MLSTM_NAMES = {
    "EarlyStopping": "mlstm.callbacks.EarlyStopping",
    "ReduceLROnPlateau": "mlstm.callbacks.ReduceLROnPlateau",
    "ModelCheckpoint": "mlstm.callbacks.ModelCheckpoint",
    "CSVLogger": "mlstm.callbacks.CSVLogger",
    "LambdaCallback": "mlstm.callbacks.LambdaCallback",
    "TerminateOnNaN": "mlstm.callbacks.TerminateOnNaN",
    "History": "mlstm.callbacks.History",
    "Callback": "mlstm.callbacks.Callback (subclass it)",
}


class Callback:
    """Base class: every hook a no-op, ``self.model`` and ``self.params`` (Keras' contract).

    Examples
    --------
    >>> import mlstm
    >>> class PrintLoss(mlstm.callbacks.Callback):
    ...     def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
    ...         print(f"epoch {epoch}: loss {logs['loss']:.3f}")
    """

    def __init__(self) -> None:
        # the mlstm.Model being trained (mlstm.model is above the callbacks' level, so it
        # cannot be named here; user callbacks may use any of its methods)
        self.model: Any = None
        self.params: dict[str, Any] | None = None

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        pass

    def on_train_end(self, logs: dict[str, float] | None = None) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        pass

    def on_train_batch_begin(self, batch: int, logs: dict[str, float] | None = None) -> None:
        self.on_batch_begin(batch, logs=logs)     # as Keras: the older names still work

    def on_train_batch_end(self, batch: int, logs: dict[str, float] | None = None) -> None:
        self.on_batch_end(batch, logs=logs)

    def on_batch_begin(self, batch: int, logs: dict[str, float] | None = None) -> None:
        pass

    def on_batch_end(self, batch: int, logs: dict[str, float] | None = None) -> None:
        pass

    def on_test_begin(self, logs: dict[str, float] | None = None) -> None:
        pass

    def on_test_end(self, logs: dict[str, float] | None = None) -> None:
        pass

    def on_test_batch_begin(self, batch: int, logs: dict[str, float] | None = None) -> None:
        pass

    def on_test_batch_end(self, batch: int, logs: dict[str, float] | None = None) -> None:
        pass

    def on_predict_begin(self, logs: dict[str, float] | None = None) -> None:
        pass

    def on_predict_end(self, logs: dict[str, float] | None = None) -> None:
        pass

    def on_predict_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_predict_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_before_update_step(self, step: int, info: dict[str, Any]) -> None:
        pass

    def on_after_update_step(self, step: int, info: dict[str, Any]) -> None:
        pass

    def on_nonfinite_step(self, step: int, error: NonFiniteError) -> None:
        pass


def _from_keras(cb: object) -> bool:
    """Whether ``cb`` is an object of Keras (or tf.keras): judged by its class's module, so
    that mlstm's core never imports Keras."""
    for cls in type(cb).__mro__:
        root = (getattr(cls, "__module__", "") or "").split(".")[0]
        if root in ("keras", "tf_keras", "tensorflow"):
            return True
    return False


def _refuse_keras(cb: object, where: str) -> NoReturn:
    name = type(cb).__name__
    mine = _MLSTM_NAMES.get(name)
    hint = (f"use {mine} (same arguments)" if mine else
            "mlstm has no counterpart; write an mlstm.callbacks.Callback with the same hooks")
    raise ValueError(f"{where} is a Keras callback ({type(cb).__module__}.{name}); mlstm "
                     f"cannot drive Keras objects: {hint}")


def _accepts(method: Callable[..., Any], count: int) -> bool:
    """Whether ``method`` can be called with ``count`` positional arguments."""
    try:
        signature = inspect.signature(method)
    except (TypeError, ValueError):      # a builtin without a signature: trust it
        return True
    try:
        signature.bind(*([None] * count))
    except TypeError:
        return False
    return True


def _is_default(cb: object, name: str) -> bool:
    """Whether ``cb.name`` is :class:`Callback`'s own no-op (not worth checking)."""
    own = getattr(type(cb), name, None)
    return own is not None and own is getattr(Callback, name, None) and name not in vars(cb)


def check_callbacks(callbacks: Sequence[_C] | None) -> list[_C]:
    """The list of callbacks, each checked (see the module docstring); raises before training.

    Parameters
    ----------
    callbacks : list or tuple of callback objects, or None

    Returns
    -------
    list
    """
    if callbacks is None:
        return []
    if not isinstance(callbacks, (list, tuple)):
        if type(callbacks).__name__ == "CallbackList" and _from_keras(callbacks):
            _refuse_keras(callbacks, "callbacks")
        raise TypeError(f"callbacks must be a list of callback objects, got "
                        f"{type(callbacks).__name__}")
    out = []
    for k, cb in enumerate(callbacks):
        where = f"callbacks[{k}] ({type(cb).__name__})"
        if _from_keras(cb):
            _refuse_keras(cb, where)
        if isinstance(cb, type):
            raise TypeError(f"{where} is a class; pass an instance: {cb.__name__}(...)")
        names = [n for n in dir(cb) if n.startswith("on_") and callable(getattr(cb, n, None))]
        for name in names:
            if name in _RENAMED:
                raise ValueError(f"{where}: the hook {name} was renamed {_RENAMED[name]}")
            if name not in HOOKS:
                raise ValueError(f"{where}: {name} is not a callback hook; hooks are "
                                 f"{sorted(HOOKS)}")
            if _is_default(cb, name):
                continue
            expected = HOOKS[name]
            if not _accepts(getattr(cb, name), len(expected)):
                old = (" (mlstm's hooks used to take the model first; it is self.model now)"
                       if name in ("on_train_begin", "on_train_end", "on_epoch_end",
                                   "on_batch_end") else "")
                raise ValueError(f"{where}: {name} must take ({', '.join(expected)}), as "
                                 f"{'Keras' if name in KERAS_HOOKS else 'mlstm'} calls it; "
                                 f"its signature is {inspect.signature(getattr(cb, name))}"
                                 + old)
        if not names:
            raise TypeError(f"{where} has none of the callback hooks {sorted(HOOKS)}")
        out.append(cb)
    return out


class CallbackList:
    """Calls every callback's hook in order (the callbacks checked first).

    Parameters
    ----------
    callbacks : list
    model : Model
        Given to each callback (``set_model``, or the ``model`` attribute).
    params : dict
        Given to each callback (``set_params``, or the ``params`` attribute).
    """

    def __init__(self, callbacks: Sequence[Any] | None, model: TrainableModel,
                 params: dict[str, Any]) -> None:
        self.callbacks = check_callbacks(callbacks)
        for cb in self.callbacks:
            for method, attribute, value in (("set_model", "model", model),
                                             ("set_params", "params", params)):
                setter = getattr(cb, method, None)
                if setter is not None:
                    setter(value)
                else:
                    setattr(cb, attribute, value)

    def call(self, hook: str, *args: Any) -> None:
        """``hook(*args)`` on every callback that has it."""
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is None and hook.startswith(("on_train_batch_")):
                # a duck-typed callback with Keras' older names only
                fn = getattr(cb, hook.replace("on_train_batch_", "on_batch_"), None)
            if fn is not None:
                fn(*args)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.callbacks)
