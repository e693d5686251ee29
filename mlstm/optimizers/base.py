"""The optimizer base: one step = pure transforms, computed in full, checked, then committed.

``apply(params, grads)`` updates the arrays in ``params`` in place and returns the update
it made to each (``new - old``), so every step can be inspected. State (moments, step
count) lives in plain dicts keyed by parameter name: :meth:`Optimizer.get_state` /
:meth:`Optimizer.set_state` give and take it as arrays, for saving and resuming.

One step is the composition, in Keras' order (``BaseOptimizer.apply``)::

    1. clip the gradients: clip_by_norm (each tensor) | clip_by_global_norm | clip_by_value
    2. decoupled weight decay:   θ ← θ - θ · weight_decay · lr
    3. the rule of the optimizer (:meth:`Optimizer.rule`: Adam, SGD)

and it is **all or nothing**:

compute
    every new parameter and every new state array goes into a new array; nothing the
    caller or the optimizer holds is modified, so an exception or a Ctrl-C here leaves the
    step not taken;
check
    every new value is finite, else :class:`mlstm.validation.NonFiniteError` names the
    parameter (or state entry), the first bad index and the optimizer's settings, and
    nothing has changed;
commit
    the new values are copied into the live parameters, the new state swapped in and
    ``iterations`` incremented, in a block where SIGINT is deferred
    (:func:`mlstm.optimizers._interrupts.deferred_sigint`): an interrupt lands before the
    step or after it, never inside.

An Embedding table's gradient may come as a
:class:`mlstm.ops.embedding.SparseRowsGradient` too (``apply(..., sparse_grads=...)``, as
the training step passes it): one row per token occurrence, as Keras' TensorFlow backend
hands its optimizers ``tf.IndexedSlices``. Clipping then works on the occurrences
(clipnorm and global_clipnorm measure their norm, clipvalue clips each), and the rules take
``g²`` and ``|g|`` per occurrence before summing them (:func:`gradient_squares`,
:func:`gradient_magnitudes`), the linear terms from the sum (:func:`gradient_sum`): see
docs/optimizers.md, "Embedding tables". global_clipnorm makes the gradient dense, as Keras'
``v * scale`` does.

Hyperparameters that cannot be finite in the weights' dtype (a learning rate of 1e39 in
float32, or ``weight_decay · learning_rate`` beyond its range) are refused by
:meth:`Optimizer.check_dtype`, which ``compile`` calls and every ``apply`` repeats.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import schedules, validation
from .._typing import DTypeLike, FloatArray, JSONDict
from ..schedules import LearningRateSchedule, is_schedule
from ._gradients import (Gradient, clip_by_global_norm, clip_by_norm, clip_by_value,
                         gradient_magnitudes, gradient_squares, gradient_sum, with_sparse_rows)
from ._interrupts import deferred_sigint

if TYPE_CHECKING:
    from ..ops.embedding import SparseRowsGradient

__all__ = ["Optimizer", "clip_by_norm", "clip_by_global_norm", "clip_by_value",
           "decoupled_weight_decay", "gradient_sum", "gradient_squares",
           "gradient_magnitudes", "MAX_ITERATIONS"]

#: The largest step count: 2**53, the last integer float64 (the bias corrections use it)
#: counts exactly. A saved file claiming more is refused.
MAX_ITERATIONS = 2 ** 53


# --------------------------------------------------------------------------- transforms
# The clipping transforms and the gradient terms the rules take: ._gradients
def decoupled_weight_decay(theta: FloatArray, weight_decay: float, learning_rate: float
                           ) -> FloatArray:
    """``θ - θ · wd · lr`` as a new array, in Keras' order and roundings: ``(θ · wd) · lr``,
    with ``wd`` taken through float32 (Keras' ``ops.cast`` of a Python float) even for
    float64 weights."""
    dtype = theta.dtype.type
    return theta - theta * dtype(np.float32(weight_decay)) * dtype(learning_rate)


# --------------------------------------------------------------------------- the base
class Optimizer:
    """Base: gradient clipping, weight decay, the step counter and the all-or-nothing step.

    Subclasses define :meth:`rule` (and list their state in ``_slots``).

    Parameters
    ----------
    learning_rate : float or mlstm.schedules.LearningRateSchedule
        A schedule is evaluated at the step count before the update, as Keras does: the
        rule of step ``t`` uses :meth:`learning_rate_at` ``(t - 1)``; after each step
        ``current_learning_rate`` holds the rate it used.
    clipnorm : float, optional
        Clip each gradient to this L2 norm.
    global_clipnorm : float, optional
        Clip all gradients together to this joint L2 norm.
    clipvalue : float, optional
        Clip each gradient entry to [-clipvalue, clipvalue].
    weight_decay : float, optional
        Decoupled weight decay ``θ ← θ - θ · weight_decay · lr``.
    """

    name = "optimizer"
    #: Whether :meth:`rule` takes a :class:`SparseRowsGradient` (the built-in rules do,
    #: through :func:`gradient_sum` and friends). A rule that does not gets its sum.
    handles_sparse_rows = False

    def __init__(self, learning_rate: float | LearningRateSchedule = 0.001,
                 clipnorm: float | None = None, global_clipnorm: float | None = None,
                 clipvalue: float | None = None, weight_decay: float | None = None) -> None:
        self.learning_rate = learning_rate
        if sum(c is not None for c in (clipnorm, global_clipnorm, clipvalue)) > 1:
            raise ValueError("Only one of clipnorm, global_clipnorm and clipvalue can be set "
                             "(as in Keras)")
        self.clipnorm = None if clipnorm is None else _positive("clipnorm", clipnorm)
        self.global_clipnorm = (None if global_clipnorm is None
                                else _positive("global_clipnorm", global_clipnorm))
        self.clipvalue = None if clipvalue is None else _positive("clipvalue", clipvalue)
        self.weight_decay = (None if weight_decay is None
                             else _positive("weight_decay", weight_decay, allow_zero=True))
        self.iterations = 0
        #: The rate the last step taken used (None before any).
        self.current_learning_rate: float | None = None

    @property
    def learning_rate(self) -> float | LearningRateSchedule:
        """The step size: a positive finite float or a schedule (checked whenever set)."""
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float | LearningRateSchedule) -> None:
        self._learning_rate: float | LearningRateSchedule = (value if is_schedule(value)
                               else _positive("learning_rate", value, allow_zero=True))

    def learning_rate_at(self, iterations: int) -> float:
        """The rate of the step taken after ``iterations`` steps: the constant, or the
        schedule at ``iterations`` (the count before the update, as Keras does)."""
        lr = self._learning_rate
        return float(lr(int(iterations))) if isinstance(lr, LearningRateSchedule) else lr

    # ------------------------------------------------------------------ the step
    def apply(self, params: Mapping[str, FloatArray], grads: Mapping[str, FloatArray],
              sparse_grads: Mapping[str, SparseRowsGradient] | None = None
              ) -> dict[str, FloatArray]:
        """One step on every parameter named in ``grads``, all or nothing (module docstring).

        Parameters
        ----------
        params : dict name -> ndarray
            Updated in place.
        grads : dict name -> ndarray
            Same names and shapes as the parameters they update.
        sparse_grads : dict name -> SparseRowsGradient, optional
            For some of ``grads`` (Embedding tables), the same gradient per token
            occurrence (``grads[name]`` is their sum): the step then treats the occurrences
            as Keras does (module docstring). ``Model.fit`` passes them.

        Returns
        -------
        updates : dict name -> ndarray
            What the step changed: ``θ_new - θ_old`` (weight decay included).

        Raises
        ------
        ValueError
            A gradient for an unknown parameter or of the wrong shape, a hyperparameter
            beyond the range of a parameter's dtype, or ``iterations`` at its limit.
        mlstm.validation.NonFiniteError
            A new parameter or state value would be NaN or inf. Nothing was changed.
        """
        merged = with_sparse_rows(self.name, grads, sparse_grads)
        for name, g in merged.items():
            if name not in params:
                raise ValueError(f"{self.name}: gradient for unknown parameter {name!r}")
            if g.shape != params[name].shape:
                raise ValueError(f"{self.name}: gradient for {name!r} has shape {g.shape}, "
                                 f"parameter has {params[name].shape}")
        for dtype in {params[name].dtype for name in merged}:
            self.check_dtype(dtype)
        step = _check_iterations(self.iterations, f"{self.name}: iterations") + 1
        if step > MAX_ITERATIONS:
            raise ValueError(f"{self.name}: iterations is at its limit {MAX_ITERATIONS} "
                             "(2**53); no further step can be counted exactly")
        # Overflow is not an error while computing: the new values are checked next, with
        # names (and v·v may overflow where the values do not).
        with np.errstate(over="ignore", invalid="ignore"):
            new_params, new_state = self._compute(params, merged, step)
            bad = self._nonfinite(new_params, new_state)
        if bad:
            raise validation.NonFiniteError.from_update(bad, step, repr(self))
        updates: dict[str, FloatArray] = {name: new - params[name]
                                          for name, new in new_params.items()}
        slots = self._slots()
        with deferred_sigint():
            for name, new in new_params.items():
                params[name][...] = new
            for (slot, name), value in new_state.items():
                slots[slot][name] = value
            self.iterations = step
            self.current_learning_rate = self.learning_rate_at(step - 1)
        return updates

    def _compute(self, params: Mapping[str, FloatArray], grads: Mapping[str, Gradient],
                 step: int) -> tuple[dict[str, FloatArray], dict[tuple[str, str], FloatArray]]:
        """``(new parameters, new state)``: new arrays only; nothing held is modified."""
        slots = self._slots()
        new_params: dict[str, FloatArray] = {}
        new_state: dict[tuple[str, str], FloatArray] = {}
        for name, g in self.clip_gradients(grads).items():
            theta = params[name]
            g = g.astype(theta.dtype, copy=False)
            start = (decoupled_weight_decay(theta, self.weight_decay,
                                            self.learning_rate_at(step - 1))
                     if self.weight_decay else theta.copy())
            current = {slot: arrays.get(name) for slot, arrays in slots.items()}
            if not self.handles_sparse_rows:
                g = gradient_sum(g)
            new_params[name], new_slots = self.rule(start, g, current, step)
            for slot, value in new_slots.items():
                new_state[(slot, name)] = value
        return new_params, new_state

    def rule(self, theta: FloatArray, g: Gradient, state: Mapping[str, FloatArray | None],
             step: int) -> tuple[FloatArray, dict[str, FloatArray]]:
        """The optimizer's update of one parameter.

        Parameters
        ----------
        theta : ndarray
            The parameter after weight decay: a new array the rule may modify.
        g : ndarray or SparseRowsGradient
            Its (clipped) gradient, in theta's dtype. Not to be modified. Per token
            occurrence (an Embedding table's) only when the class sets
            ``handles_sparse_rows``; the rule then takes its terms through
            :func:`gradient_sum`, :func:`gradient_squares`, :func:`gradient_magnitudes`.
        state : dict slot -> ndarray or None
            This parameter's state before the step (None before its first step). Not to be
            modified.
        step : int
            The step being taken, 1-based.

        Returns
        -------
        (new_theta, new_state) : ndarray, dict slot -> ndarray
            New arrays (``new_theta`` may be ``theta``).
        """
        raise NotImplementedError

    @staticmethod
    def _nonfinite(new_params: Mapping[str, FloatArray],
                   new_state: Mapping[tuple[str, str], FloatArray]) -> dict[str, str]:
        """``{"name" or "slot/name": description}`` of the new arrays holding NaN or inf."""
        arrays = list(new_params.items()) + [(f"{slot}/{name}", v)
                                             for (slot, name), v in new_state.items()]
        # v·v (BLAS, one pass, no temporary) is finite exactly when every entry of v is,
        # unless it overflows (entries beyond ~1e19 in float32); only then, or when
        # something is wrong, are the entries looked at one by one.
        total = 0.0
        for _, v in arrays:
            flat = v.reshape(-1)
            total += float(np.dot(flat, flat))
        if math.isfinite(total):
            return {}
        return {name: validation.describe_nonfinite_entries(v) for name, v in arrays
                if not validation.all_finite(v)}

    def clip_gradients(self, grads: Mapping[str, Gradient]) -> Mapping[str, Gradient]:
        """Gradients after clipnorm / global_clipnorm / clipvalue (new arrays when changed)."""
        if self.clipnorm is not None:
            return clip_by_norm(grads, self.clipnorm)
        if self.global_clipnorm is not None:
            return clip_by_global_norm(grads, self.global_clipnorm)
        if self.clipvalue is not None:
            return clip_by_value(grads, self.clipvalue)
        return grads

    def check_dtype(self, dtype: DTypeLike) -> None:
        """Refuse hyperparameters that cannot be finite in ``dtype`` (ValueError naming them).

        ``compile`` calls this with the model's dtype, and :meth:`apply` with each
        parameter's, so a setting changed after compiling is caught before a step.
        """
        dtype = np.dtype(dtype)
        largest = float(np.finfo(dtype).max)
        for label, value in self._float_settings():
            if abs(value) > largest:
                raise ValueError(
                    f"{type(self).__name__}: {label} = {value:g} is beyond the range of "
                    f"{dtype.name} (largest {largest:g}): in {dtype.name} it is inf, and the "
                    "first step would make the weights inf or NaN")

    def _float_settings(self) -> list[tuple[str, float]]:
        """``[(label, value)]`` of the settings that enter the step cast to the weights' dtype."""
        rate = self.learning_rate_at(self.iterations)     # a schedule: at the next step
        settings = [("learning_rate", rate)]
        if self.weight_decay:
            settings.append(("weight_decay * learning_rate", self.weight_decay * rate))
        for label in ("clipnorm", "clipvalue"):
            if getattr(self, label) is not None:
                settings.append((label, getattr(self, label)))
        return settings

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict[str, Any]:
        """``{"iterations": int, "<slot>/<param name>": ndarray, ...}`` (copies)."""
        state: dict[str, Any] = {"iterations": self.iterations}
        for slot, arrays in self._slots().items():
            for name, arr in arrays.items():
                state[f"{slot}/{name}"] = arr.copy()
        return state

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`get_state` returned (all of it is checked before any is set)."""
        if not isinstance(state, dict) or "iterations" not in state:
            raise ValueError(f"{self.name}: set_state takes the dict get_state returns, with "
                             "'iterations'")
        iterations = _check_iterations(state["iterations"], f"{self.name}: iterations")
        slots = self._slots()
        entries: dict[tuple[str, str], FloatArray] = {}
        for key, value in state.items():
            if key == "iterations":
                continue
            slot, _, name = key.partition("/")
            if slot not in slots or not name:
                raise ValueError(f"{self.name}: unknown optimizer state entry {key!r}; its "
                                 f"slots are {sorted(slots)}")
            entries[(slot, name)] = np.array(value)
        for arrays in slots.values():
            arrays.clear()
        for (slot, name), value in entries.items():
            slots[slot][name] = value
        self.iterations = iterations

    def _slots(self) -> dict[str, dict[str, FloatArray]]:
        return {}

    def get_config(self) -> JSONDict:
        lr = self.learning_rate
        return {"name": self.name,
                "learning_rate": schedules.serialize(lr) if is_schedule(lr) else lr,
                "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm,
                "clipvalue": self.clipvalue, "weight_decay": self.weight_decay}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Optimizer:
        config = dict(config)
        config.pop("name", None)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"])
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items()
                         if k != "name" and v is not None)
        return f"{type(self).__name__}({args})"


def _check_iterations(value: Any, label: str) -> int:
    if (not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_))
            or not 0 <= value <= MAX_ITERATIONS):
        raise ValueError(f"{label} must be an int in [0, 2**53], got "
                         f"{_short(value)}")
    return int(value)


def _short(value: object) -> str:
    """``repr(value)``, shortened (a file may hold a 400-digit number)."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...{text[-8:]} ({len(text)} characters)"


def _positive(label: str, value: Any, allow_zero: bool = False) -> float:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{label} must be a number, got {value!r}")
    try:
        value = float(value)
    except OverflowError:       # an int beyond float64 (10**400)
        raise ValueError(f"{label} must be finite, got {_short(value)}") from None
    except (TypeError, ValueError):
        raise TypeError(f"{label} must be a number, got {_short(value)}") from None
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{label} must be {'non-negative' if allow_zero else 'positive'} "
                         f"and finite, got {value}")
    return value
