"""Optimizers in Keras' exact form, with explicit state.

``apply(params, grads)`` updates the arrays in ``params`` in place and returns the update
it made to each (``new - old``), so every step can be inspected. State (moments, step
count) lives in plain dicts keyed by parameter name: :meth:`Optimizer.get_state` /
:meth:`Optimizer.set_state` give and take it as arrays, for saving and resuming.

Order of operations per step (Keras ``BaseOptimizer.apply``)::

    1. clip the gradients: clipnorm (each tensor) | global_clipnorm (all together) | clipvalue
    2. decoupled weight decay:   θ ← θ - θ · weight_decay · lr
    3. the optimizer's step

Adam (Keras; t = 1, 2, ...)::

    m ← m + (g - m)(1 - β1)
    v ← v + (g² - v)(1 - β2)
    v̂ ← max(v̂, v)  (amsgrad; the step then uses v̂)
    α = lr · sqrt(1 - β2^t) / (1 - β1^t)
    θ ← θ - α · m / (sqrt(v) + ε)                   ε = 1e-7 by default

ε sits on the *uncorrected* sqrt(v): PyTorch's ``(m/(1-β1^t)) / (sqrt(v/(1-β2^t)) + ε')``
equals this with ε = ε' · sqrt(1 - β2^t).

SGD (Keras)::

    no momentum:  θ ← θ - lr · g
    momentum μ:   u ← μ u - lr · g;  θ ← θ + u              (nesterov: θ ← θ + μ u - lr · g)
"""
from __future__ import annotations

import numpy as np

from . import schedules
from .schedules import is_schedule

__all__ = ["Optimizer", "Adam", "SGD", "get", "OPTIMIZERS", "schedules"]


class Optimizer:
    """Base: gradient clipping, weight decay and the step counter.

    Parameters
    ----------
    learning_rate : float or mlstm.schedules.LearningRateSchedule
        A schedule is evaluated once per step at the step count before the update
        (:meth:`learning_rate_at`).
    clipnorm : float, optional
        Rescale each gradient tensor to at most this L2 norm.
    global_clipnorm : float, optional
        Rescale all gradients together to at most this global L2 norm.
    clipvalue : float, optional
        Clip each gradient entry to [-clipvalue, clipvalue].
    weight_decay : float, optional
        Decoupled weight decay ``θ ← θ - θ · weight_decay · lr``.
    """

    name = "optimizer"

    def __init__(self, learning_rate=0.001, clipnorm=None, global_clipnorm=None,
                 clipvalue=None, weight_decay=None):
        self.learning_rate = (learning_rate if is_schedule(learning_rate)
                              else _positive("learning_rate", learning_rate, allow_zero=True))
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
        self.current_learning_rate = None    # the rate of the last step (set by apply)

    # ------------------------------------------------------------------ the step
    def apply(self, params, grads):
        """One step on every parameter named in ``grads``.

        Parameters
        ----------
        params : dict name -> ndarray
            Updated in place.
        grads : dict name -> ndarray
            Same names and shapes as the parameters they update.

        Returns
        -------
        updates : dict name -> ndarray
            What the step changed: ``θ_new - θ_old`` (weight decay included).
        """
        for name, g in grads.items():
            if name not in params:
                raise ValueError(f"{self.name}: gradient for unknown parameter {name!r}")
            if g.shape != params[name].shape:
                raise ValueError(f"{self.name}: gradient for {name!r} has shape {g.shape}, "
                                 f"parameter has {params[name].shape}")
        grads = self.clip_gradients(grads)
        lr = self.current_learning_rate = self.learning_rate_at(self.iterations)
        self.iterations += 1
        updates = {}
        for name, g in grads.items():
            theta = params[name]
            old = theta.copy()
            if self.weight_decay:
                theta -= theta * theta.dtype.type(self.weight_decay * lr)
            self._update(name, theta, g.astype(theta.dtype, copy=False))
            updates[name] = theta - old
        return updates

    def learning_rate_at(self, iterations):
        """The learning rate of the step made after ``iterations`` steps: the constant, or
        the schedule at ``iterations`` (the count before the update, as Keras does)."""
        lr = self.learning_rate
        return float(lr(int(iterations))) if is_schedule(lr) else lr

    def clip_gradients(self, grads):
        """Gradients after clipnorm / global_clipnorm / clipvalue (new arrays when changed)."""
        if self.clipnorm is not None:
            out = {}
            for name, g in grads.items():
                norm = np.sqrt(np.sum(np.square(g)))
                out[name] = g * g.dtype.type(self.clipnorm) / max(norm, g.dtype.type(self.clipnorm))
            grads = out
        elif self.global_clipnorm is not None:
            norm = np.sqrt(sum(float(np.sum(np.square(g.astype(np.float64))))
                               for g in grads.values()))
            if norm > self.global_clipnorm:
                scale = self.global_clipnorm / norm
                grads = {name: g * g.dtype.type(scale) for name, g in grads.items()}
        elif self.clipvalue is not None:
            grads = {name: np.clip(g, -self.clipvalue, self.clipvalue)
                     for name, g in grads.items()}
        return grads

    def _update(self, name, theta, g):
        raise NotImplementedError

    # ------------------------------------------------------------------ state
    def get_state(self):
        """``{"iterations": int, "<slot>/<param name>": ndarray, ...}`` (copies)."""
        state = {"iterations": self.iterations}
        for slot, arrays in self._slots().items():
            for name, arr in arrays.items():
                state[f"{slot}/{name}"] = arr.copy()
        return state

    def set_state(self, state):
        """Restore what :meth:`get_state` returned."""
        self.iterations = int(state["iterations"])
        slots = self._slots()
        for slot in slots:
            slots[slot].clear()
        for key, value in state.items():
            if key == "iterations":
                continue
            slot, _, name = key.partition("/")
            if slot not in slots:
                raise ValueError(f"{self.name}: unknown optimizer state entry {key!r}")
            slots[slot][name] = np.array(value)

    def _slots(self):
        return {}

    def get_config(self):
        lr = self.learning_rate
        return {"name": self.name,
                "learning_rate": schedules.serialize(lr) if is_schedule(lr) else lr,
                "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm,
                "clipvalue": self.clipvalue, "weight_decay": self.weight_decay}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.pop("name", None)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"])
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items()
                         if k != "name" and v is not None)
        return f"{type(self).__name__}({args})"


class Adam(Optimizer):
    """Adam, Keras form (ε on the uncorrected sqrt(v)); see the module docstring.

    Parameters
    ----------
    learning_rate : float
    beta_1, beta_2 : float
    epsilon : float
        1e-7 (Keras' default; PyTorch's 1e-8 sits elsewhere in the formula).
    amsgrad : bool
    clipnorm, global_clipnorm, clipvalue, weight_decay
        See :class:`Optimizer`.
    """

    name = "adam"

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        for label, b in (("beta_1", beta_1), ("beta_2", beta_2)):
            if not 0.0 <= float(b) < 1.0:
                raise ValueError(f"Adam: {label} must be in [0, 1), got {b}")
        self.beta_1, self.beta_2 = float(beta_1), float(beta_2)
        self.epsilon = _positive("epsilon", epsilon, allow_zero=True)
        self.amsgrad = bool(amsgrad)
        self.m, self.v, self.v_hat = {}, {}, {}

    def _update(self, name, theta, g):
        dtype = theta.dtype.type
        if name not in self.m:
            self.m[name] = np.zeros_like(theta)
            self.v[name] = np.zeros_like(theta)
            if self.amsgrad:
                self.v_hat[name] = np.zeros_like(theta)
        m, v = self.m[name], self.v[name]
        t = self.iterations
        # As Keras computes them: the bias corrections use ops.cast(β, dtype), which goes
        # through float32 even for float64 variables; the moment factors (1 - β) are Python
        # floats, so they are exact in float64 and float32(1 - β) in float32.
        beta_1, beta_2 = dtype(np.float32(self.beta_1)), dtype(np.float32(self.beta_2))
        alpha = (dtype(self.current_learning_rate) * np.sqrt(1 - beta_2 ** dtype(t))
                 / (1 - beta_1 ** dtype(t)))
        m += (g - m) * dtype(1 - self.beta_1)
        v += (np.square(g) - v) * dtype(1 - self.beta_2)
        if self.amsgrad:
            np.maximum(self.v_hat[name], v, out=self.v_hat[name])
            v = self.v_hat[name]
        theta -= alpha * m / (np.sqrt(v) + dtype(self.epsilon))

    def _slots(self):
        slots = {"m": self.m, "v": self.v}
        if self.amsgrad:
            slots["v_hat"] = self.v_hat
        return slots

    def get_config(self):
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon,
                      amsgrad=self.amsgrad)
        return config


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, Keras form.

    Parameters
    ----------
    learning_rate : float
    momentum : float
    nesterov : bool
    clipnorm, global_clipnorm, clipvalue, weight_decay
        See :class:`Optimizer`.
    """

    name = "sgd"

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        if not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(f"SGD: momentum must be in [0, 1], got {momentum}")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.velocity = {}

    def _update(self, name, theta, g):
        dtype = theta.dtype.type
        lr = dtype(self.current_learning_rate)
        if not self.momentum:
            theta -= lr * g
            return
        mu = dtype(self.momentum)
        if name not in self.velocity:
            self.velocity[name] = np.zeros_like(theta)
        u = self.velocity[name]
        u *= mu
        u -= lr * g
        if self.nesterov:
            theta += mu * u - lr * g
        else:
            theta += u

    def _slots(self):
        return {"velocity": self.velocity} if self.momentum else {}

    def get_config(self):
        config = super().get_config()
        config.update(momentum=self.momentum, nesterov=self.nesterov)
        return config


OPTIMIZERS = {"adam": Adam, "sgd": SGD}


def get(identifier):
    """An optimizer from a name (``"adam"``, ``"sgd"``, Keras defaults) or an instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in OPTIMIZERS:
        return OPTIMIZERS[identifier.lower()]()
    raise ValueError(f"Unknown optimizer {identifier!r}; valid optimizers are "
                     f"{sorted(OPTIMIZERS)} or an mlstm.optimizers.Optimizer instance")


def _positive(label, value, allow_zero=False):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{label} must be a number, got {value!r}") from None
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{label} must be {'non-negative' if allow_zero else 'positive'} "
                         f"and finite, got {value}")
    return value
