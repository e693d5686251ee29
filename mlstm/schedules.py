"""Learning-rate schedules: the learning rate as a function of the optimizer's step count.

A schedule is passed as ``learning_rate`` to any optimizer::

    lr = mlstm.schedules.ExponentialDecay(0.01, decay_steps=100, decay_rate=0.9)
    model.compile(mlstm.optimizers.Adam(learning_rate=lr), loss="mse")

The optimizer asks ``schedule(iterations)`` once per step, with the number of steps made
*before* the update (the first step uses ``schedule(0)``), as Keras does. Keras 3.15
evaluates its schedules in float32 even when the model and ``floatx`` are float64 (a Python
float becomes a float32 tensor), so these schedules do the same arithmetic in the same
order in float32, and the optimizer uses that float32 value.

Where Keras calls a transcendental function (``pow``, ``cos``, ``log``) on a float32 scalar,
TensorFlow calls the C library's float version (``powf``, ``cosf``, ``logf``), which is
within one unit in the last place (ulp) of the exact result but not always correctly
rounded. Here those functions are computed in float64 and rounded to float32, so a rate is
Keras' own or one float32 ulp (relative 1.2e-7) away from it: measured over steps 0-499 of
each schedule (tests/test_schedules.py), 0 to 3 of the 500 values differ, by one ulp.

The config of a schedule is JSON (:func:`serialize` / :func:`deserialize`), with Keras'
argument names, so an optimizer saved with a schedule restores it.

==========================  ====================================================================
ExponentialDecay            lr0 · rate^(t / steps)                 (floor(t/steps): staircase)
PiecewiseConstantDecay      values[i] for boundaries[i-1] < t <= boundaries[i]
InverseTimeDecay            lr0 / (1 + rate · t / steps)           (floor(t/steps): staircase)
PolynomialDecay             (lr0 - end) (1 - min(t, steps)/steps)^power + end    (cycle: Keras)
CosineDecay                 linear warmup to ``warmup_target`` over ``warmup_steps``, then
                            top · ((1 - α) · ½(1 + cos(π min(t', steps)/steps)) + α)
CosineDecayRestarts         SGDR: cosine periods growing by ``t_mul``, restarts scaled by ``m_mul``
==========================  ====================================================================
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

import numpy as np

from ._typing import JSONDict

from .registry import Registry

__all__ = ["LearningRateSchedule", "ExponentialDecay", "PiecewiseConstantDecay",
           "InverseTimeDecay", "PolynomialDecay", "CosineDecay", "CosineDecayRestarts",
           "SCHEDULES", "register_schedule", "serialize", "deserialize", "is_schedule"]

#: Schedule classes by name (Keras' class names), for :func:`deserialize`.
SCHEDULES = Registry("learning-rate schedule", hint=" (a schedule of your own must be "
                                                    "registered with "
                                                    "mlstm.schedules.register_schedule)")
register_schedule = SCHEDULES.register

_f32 = np.float32


def _pow(base: float | np.floating[Any], exponent: float | np.floating[Any]) -> np.float32:
    """float32 ``base ** exponent`` computed in float64 and rounded (see the module notes)."""
    return _f32(np.power(np.float64(base), np.float64(exponent)))


def _cos(x: float | np.floating[Any]) -> np.float32:
    return _f32(np.cos(np.float64(x)))


def _log(x: float | np.floating[Any]) -> np.float32:
    return _f32(np.log(np.float64(x)))


class LearningRateSchedule:
    """Base class: ``schedule(step) -> float`` and a JSON config.

    Subclasses implement ``__call__(step)`` (``step``: the optimizer's step count before the
    update, an int >= 0) and ``get_config()`` (the ``__init__`` arguments); register them
    with :func:`register_schedule` so that a saved optimizer can rebuild them.
    """

    #: (set by :func:`register_schedule` on a registered class; declared for the type checker)
    registered_name: str

    def __call__(self, step: int) -> float | np.floating[Any]:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(step)")

    def get_config(self) -> JSONDict:
        raise NotImplementedError(f"{type(self).__name__} must implement get_config()")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> LearningRateSchedule:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def is_schedule(value: object) -> TypeGuard[LearningRateSchedule]:
    """Whether ``value`` is a learning-rate schedule (a :class:`LearningRateSchedule`)."""
    return isinstance(value, LearningRateSchedule)


def serialize(schedule: LearningRateSchedule) -> JSONDict:
    """``{"class_name": ..., "config": {...}}`` (JSON-ready)."""
    return {"class_name": type(schedule).registered_name
            if "registered_name" in vars(type(schedule)) else type(schedule).__name__,
            "config": schedule.get_config()}


def deserialize(spec: Any) -> LearningRateSchedule:
    """The schedule :func:`serialize` described."""
    if not isinstance(spec, dict) or "class_name" not in spec or "config" not in spec:
        raise ValueError(f"a learning-rate schedule config must be {{'class_name': ..., "
                         f"'config': {{...}}}}, got {spec!r}")
    return SCHEDULES.get(spec["class_name"]).from_config(dict(spec["config"]))


def _number(owner: str, label: str, value: Any, positive: bool = False,
            nonnegative: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{owner}: {label} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {label} must be finite, got {value}")
    if positive and value <= 0:
        raise ValueError(f"{owner}: {label} must be > 0, got {value}")
    if nonnegative and value < 0:
        raise ValueError(f"{owner}: {label} must be >= 0, got {value}")
    return value


def _step(owner: str, step: Any) -> np.float32:
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
        raise ValueError(f"{owner}: the step must be a non-negative int, got {step!r}")
    return _f32(int(step))


class _StepDecay(LearningRateSchedule):
    """What ExponentialDecay and InverseTimeDecay share: their options, and the progress
    ``p = step / decay_steps`` (floored with ``staircase``), in float32."""

    def __init__(self, initial_learning_rate: float, decay_steps: float, decay_rate: float,
                 staircase: bool, name: str) -> None:
        owner = type(self).__name__
        self.initial_learning_rate = _number(owner, "initial_learning_rate",
                                             initial_learning_rate, nonnegative=True)
        self.decay_steps = _number(owner, "decay_steps", decay_steps, positive=True)
        self.decay_rate = _number(owner, "decay_rate", decay_rate, nonnegative=True)
        self.staircase = bool(staircase)
        self.name = name

    def _progress(self, step: int) -> np.float32:
        p = _step(type(self).__name__, step) / _f32(self.decay_steps)
        return np.floor(p) if self.staircase else p

    def get_config(self) -> JSONDict:
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


@register_schedule
class ExponentialDecay(_StepDecay):
    """``initial_learning_rate · decay_rate ^ (step / decay_steps)`` (float32, as Keras).

    Parameters
    ----------
    initial_learning_rate : float
    decay_steps : int or float > 0
    decay_rate : float
    staircase : bool
        Use ``floor(step / decay_steps)``: the rate changes every ``decay_steps`` steps.

    Examples
    --------
    >>> s = ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5, staircase=True)
    >>> [float(s(t)) for t in range(5)]       # float32 values, as Keras computes them
    [0.10000000149011612, 0.10000000149011612, 0.05000000074505806, 0.05000000074505806,
     0.02500000037252903]
    """

    def __init__(self, initial_learning_rate: float, decay_steps: float, decay_rate: float,
                 staircase: bool = False, name: str = "ExponentialDecay") -> None:
        _StepDecay.__init__(self, initial_learning_rate, decay_steps, decay_rate, staircase,
                            name)

    def __call__(self, step: int) -> np.float32:
        p = self._progress(step)
        return _f32(self.initial_learning_rate) * _pow(_f32(self.decay_rate), p)



@register_schedule
class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` while ``step <= boundaries[0]``, ``values[i]`` while
    ``boundaries[i-1] < step <= boundaries[i]``, ``values[-1]`` after ``boundaries[-1]``.

    Parameters
    ----------
    boundaries : list of int
        Strictly increasing step counts.
    values : list of float
        One more than ``boundaries``.
    """

    def __init__(self, boundaries: Sequence[int], values: Sequence[float],
                 name: str = "PiecewiseConstant") -> None:
        owner = type(self).__name__
        if not isinstance(boundaries, (list, tuple)) or not isinstance(values, (list, tuple)):
            raise TypeError(f"{owner}: boundaries and values must be lists")
        if len(boundaries) != len(values) - 1:
            raise ValueError(f"{owner}: the length of boundaries ({len(boundaries)}) must be "
                             f"one less than the length of values ({len(values)})")
        ints = []
        for b in boundaries:
            if isinstance(b, bool) or not isinstance(b, (int, np.integer, float, np.floating)) \
                    or float(b) != int(b):
                raise ValueError(f"{owner}: boundaries are step counts (integers), got {b!r}")
            ints.append(int(b))
        if any(a >= b for a, b in zip(ints, ints[1:])):
            raise ValueError(f"{owner}: boundaries must be strictly increasing, got {ints}")
        self.boundaries = ints
        self.values = [_number(owner, "values", v, nonnegative=True) for v in values]
        self.name = name

    def __call__(self, step: int) -> np.float32:
        _step(type(self).__name__, step)
        for boundary, value in zip(self.boundaries, self.values):
            if step <= boundary:
                return _f32(value)
        return _f32(self.values[-1])

    def get_config(self) -> JSONDict:
        return {"boundaries": list(self.boundaries), "values": list(self.values),
                "name": self.name}


@register_schedule
class InverseTimeDecay(_StepDecay):
    """``initial_learning_rate / (1 + decay_rate · step / decay_steps)`` (float32).

    Parameters
    ----------
    initial_learning_rate : float
    decay_steps : int or float > 0
    decay_rate : float
    staircase : bool
        Use ``floor(step / decay_steps)``.
    """

    def __init__(self, initial_learning_rate: float, decay_steps: float, decay_rate: float,
                 staircase: bool = False, name: str = "InverseTimeDecay") -> None:
        _StepDecay.__init__(self, initial_learning_rate, decay_steps, decay_rate, staircase,
                            name)

    def __call__(self, step: int) -> np.float32:
        p = self._progress(step)
        return _f32(self.initial_learning_rate) / (_f32(1) + _f32(self.decay_rate) * p)



@register_schedule
class PolynomialDecay(LearningRateSchedule):
    """From ``initial_learning_rate`` to ``end_learning_rate`` over ``decay_steps`` (float32)::

        (initial - end) · (1 - min(step, decay_steps) / decay_steps) ^ power + end

    With ``cycle``, ``decay_steps`` is multiplied by ``ceil(step / decay_steps)`` (1 at step 0).
    """

    def __init__(self, initial_learning_rate: float, decay_steps: float,
                 end_learning_rate: float = 0.0001, power: float = 1.0, cycle: bool = False,
                 name: str = "PolynomialDecay") -> None:
        owner = type(self).__name__
        self.initial_learning_rate = _number(owner, "initial_learning_rate",
                                             initial_learning_rate, nonnegative=True)
        self.decay_steps = _number(owner, "decay_steps", decay_steps, positive=True)
        self.end_learning_rate = _number(owner, "end_learning_rate", end_learning_rate,
                                         nonnegative=True)
        self.power = _number(owner, "power", power)
        self.cycle = bool(cycle)
        self.name = name

    def __call__(self, step: int) -> np.float32:
        t = _step(type(self).__name__, step)
        decay_steps = _f32(self.decay_steps)
        if self.cycle:
            # Keras divides by the Python number decay_steps (weakly typed: float32)
            multiplier = _f32(1.0) if t == 0 else np.ceil(t / _f32(self.decay_steps))
            decay_steps = decay_steps * multiplier
        else:
            t = min(t, decay_steps)
        p = t / decay_steps
        return ((_f32(self.initial_learning_rate) - _f32(self.end_learning_rate))
                * _pow(_f32(1) - p, _f32(self.power)) + _f32(self.end_learning_rate))

    def get_config(self) -> JSONDict:
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "end_learning_rate": self.end_learning_rate,
                "power": self.power, "cycle": self.cycle, "name": self.name}


@register_schedule
class CosineDecay(LearningRateSchedule):
    """Cosine decay, with an optional linear warmup first (Keras 3.15).

    Without ``warmup_target``::

        lr0 · ((1 - alpha) · ½ (1 + cos(π · min(step, decay_steps) / decay_steps)) + alpha)

    With ``warmup_target``: for ``step < warmup_steps``, ``lr0 + (target - lr0) · step /
    warmup_steps``; then the cosine decay above from ``target`` (in place of lr0), at
    ``min(step, warmup_steps + decay_steps) - warmup_steps``.
    """

    def __init__(self, initial_learning_rate: float, decay_steps: float, alpha: float = 0.0,
                 name: str = "CosineDecay", warmup_target: float | None = None,
                 warmup_steps: float = 0) -> None:
        owner = type(self).__name__
        self.initial_learning_rate = _number(owner, "initial_learning_rate",
                                             initial_learning_rate, nonnegative=True)
        self.decay_steps = _number(owner, "decay_steps", decay_steps, positive=True)
        self.alpha = _number(owner, "alpha", alpha)
        self.name = name
        self.warmup_target = (None if warmup_target is None else
                              _number(owner, "warmup_target", warmup_target, nonnegative=True))
        self.warmup_steps = _number(owner, "warmup_steps", warmup_steps, nonnegative=True)

    def _decay(self, step: np.float32, decay_steps: np.float32, decay_from: np.float32
               ) -> np.float32:
        completed = step / decay_steps
        cosine = _f32(0.5) * (_f32(1.0) + _cos(_f32(math.pi) * completed))
        # (1 - alpha) is a Python float in Keras, rounded to float32 when it meets a tensor
        decayed = _f32(1 - self.alpha) * cosine + _f32(self.alpha)
        return decay_from * decayed

    def __call__(self, step: int) -> np.float32:
        t = _step(type(self).__name__, step)
        lr0 = _f32(self.initial_learning_rate)
        decay_steps = _f32(self.decay_steps)
        if self.warmup_target is None:
            return self._decay(min(t, decay_steps), decay_steps, lr0)
        target, warmup = _f32(self.warmup_target), _f32(self.warmup_steps)
        t = min(t, decay_steps + warmup)
        if t < warmup:
            return (target - lr0) * (t / warmup) + lr0
        return self._decay(t - warmup, decay_steps, target)

    def get_config(self) -> JSONDict:
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha, "name": self.name,
                "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


@register_schedule
class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR, Loshchilov & Hutter 2016), as Keras computes it.

    The first period lasts ``first_decay_steps``; each next one ``t_mul`` times longer and
    starting from ``m_mul`` times the previous peak; within a period the factor falls from 1
    to ``alpha`` along half a cosine.
    """

    def __init__(self, initial_learning_rate: float, first_decay_steps: float,
                 t_mul: float = 2.0, m_mul: float = 1.0, alpha: float = 0.0,
                 name: str = "SGDRDecay") -> None:
        owner = type(self).__name__
        self.initial_learning_rate = _number(owner, "initial_learning_rate",
                                             initial_learning_rate, nonnegative=True)
        self.first_decay_steps = _number(owner, "first_decay_steps", first_decay_steps,
                                         positive=True)
        self.t_mul = _number(owner, "t_mul", t_mul, positive=True)
        self.m_mul = _number(owner, "m_mul", m_mul, nonnegative=True)
        self.alpha = _number(owner, "alpha", alpha)
        self.name = name

    def __call__(self, step: int) -> np.float32:
        t = _step(type(self).__name__, step)
        alpha, t_mul, m_mul = _f32(self.alpha), _f32(self.t_mul), _f32(self.m_mul)
        completed = t / _f32(self.first_decay_steps)
        if t_mul == _f32(1.0):
            i_restart = np.floor(completed)
            completed = completed - i_restart
        else:
            i_restart = np.floor(_log(_f32(1.0) - completed * (_f32(1.0) - t_mul))
                                 / _log(t_mul))
            sum_r = (_f32(1.0) - _pow(t_mul, i_restart)) / (_f32(1.0) - t_mul)
            completed = (completed - sum_r) / _pow(t_mul, i_restart)
        m_fac = _pow(m_mul, i_restart)
        cosine = _f32(0.5) * m_fac * (_f32(1.0) + _cos(_f32(math.pi) * completed))
        decayed = (_f32(1) - alpha) * cosine + alpha
        return _f32(self.initial_learning_rate) * decayed

    def get_config(self) -> JSONDict:
        return {"initial_learning_rate": self.initial_learning_rate,
                "first_decay_steps": self.first_decay_steps, "t_mul": self.t_mul,
                "m_mul": self.m_mul, "alpha": self.alpha, "name": self.name}
