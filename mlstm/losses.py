"""Losses: values and gradients, with Keras' reduction.

A loss is applied to **each output separately**, with that output's ``y_true`` and
``y_pred`` only (as Keras does: a single loss given for several outputs is called once per
output). For one output::

    values = loss.call(y_true, y_pred)          shape y_pred.shape[:-1] (or a scalar)
    L      = Σ w ⊙ values                       w = 1/size        (no mask)
                                                w = m / Σ m       (mask m; 0 if Σ m = 0)

i.e. Keras' "sum over batch size" (the mean of all per-sample values), with a mask
averaging over valid entries only. The total is ``Σ_k loss_weight_k · L_k``.

Built-in losses (D = size of the last axis, ε = 1e-7):

=============================  =========================================================
mean_squared_error ("mse")     mean_D (p - t)^2;              dp = 2 (p - t) / D
binary_crossentropy ("bce")    -mean_D [t log p̂ + (1-t) log(1-p̂)], p̂ = clip(p, ε, 1-ε);
                               dp = -(t/p̂ - (1-t)/(1-p̂)) / D inside the clip, 0 outside
BCE from logits x              mean_D [max(x,0) - x t + log(1 + e^-|x|)]; dx = (σ(x) - t) / D
=============================  =========================================================

When the output is a sigmoid of logits (a ``Dense(activation="sigmoid")`` or
``Activation("sigmoid")`` output), binary cross-entropy is computed from those logits, as
Keras does; the clipped formula would be wrong (and its gradient zero) on a saturated head.

A custom loss is a :class:`Loss` subclass with ``call`` and ``gradient``, or a plain function
``f(y_true, y_pred) -> values`` differentiated by central differences (with a warning).
"""
from __future__ import annotations

import warnings

import numpy as np

from . import validation
from .ops.activations import sigmoid

__all__ = ["Loss", "MeanSquaredError", "BinaryCrossentropy", "FunctionLoss", "get",
           "reduce_output_loss", "mean_squared_error", "binary_crossentropy", "LOSSES",
           "EPSILON"]

#: Keras' ``backend.epsilon()``.
EPSILON = 1e-7


class Loss:
    """Base class for losses.

    Subclasses implement:

    ``call(y_true, y_pred) -> values``
        Per-sample (or per-step) values, shape ``y_pred.shape[:-1]``, or a scalar.
    ``gradient(y_true, y_pred) -> ndarray`` shaped like ``y_pred``
        ``out[..., j] = ∂ values[...] / ∂ y_pred[..., j]``: each per-sample value
        differentiated with respect to its own prediction; for a scalar ``call``, simply
        the gradient of that scalar.

    A loss that can work from a sigmoid's logits sets ``uses_sigmoid_logits = True`` and
    implements ``call_logits``/``gradient_logits`` with the same contract.
    """

    name = "loss"
    uses_sigmoid_logits = False

    def call(self, y_true, y_pred):
        """Per-sample values, shape ``y_pred.shape[:-1]`` (N, ...) (or a scalar)."""
        raise NotImplementedError

    def gradient(self, y_true, y_pred):
        """``∂ values[...] / ∂ y_pred[..., j]``, shaped like ``y_pred`` (N, ..., O)."""
        raise NotImplementedError

    def __call__(self, y_true, y_pred, mask=None):
        """The reduced loss value (Keras' ``loss_fn(y_true, y_pred)``)."""
        y_true, y_pred = validation.loss_arrays(self, y_true, y_pred)
        return reduce_output_loss(self, y_true, y_pred, mask)[0]

    def get_config(self):
        return {"name": self.name}

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"


class MeanSquaredError(Loss):
    """``mean((y_pred - y_true)^2, axis=-1)``."""

    name = "mean_squared_error"

    def call(self, y_true, y_pred):
        return np.mean(np.square(y_pred - y_true), axis=-1)

    def gradient(self, y_true, y_pred):
        return (2.0 / y_pred.shape[-1]) * (y_pred - y_true)


class BinaryCrossentropy(Loss):
    """Binary cross-entropy, Keras' ``binary_crossentropy``.

    Parameters
    ----------
    from_logits : bool
        ``y_pred`` holds logits rather than probabilities.
    label_smoothing : float
        Targets become ``t (1 - s) + s / 2``.
    invalid_targets : {"raise", "warn", "ignore"}
        What to do with targets outside [0, 1] (which make the loss unbounded below);
        checked by :func:`mlstm.validation.check_target_range`.

    On a sigmoid head the logits are used whatever ``from_logits`` says (Keras does the
    same, warning when ``from_logits=True`` since the output is not logits).
    """

    name = "binary_crossentropy"
    uses_sigmoid_logits = True
    target_range = (0.0, 1.0)

    def __init__(self, from_logits=False, label_smoothing=0.0, invalid_targets="raise"):
        self.from_logits = bool(from_logits)
        if not 0.0 <= float(label_smoothing) <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)
        self.invalid_targets = validation.check_choice(
            invalid_targets, validation.POLICIES, "BinaryCrossentropy: invalid_targets")

    def _smooth(self, y_true):
        if self.label_smoothing:
            return y_true * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        return y_true

    def call(self, y_true, y_pred):
        if self.from_logits:
            return self.call_logits(y_true, y_pred)
        t = self._smooth(y_true)
        eps = y_pred.dtype.type(EPSILON)
        p = np.clip(y_pred, eps, 1 - eps)
        return -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p), axis=-1)

    def gradient(self, y_true, y_pred):
        if self.from_logits:
            return self.gradient_logits(y_true, y_pred)
        t = self._smooth(y_true)
        eps = y_pred.dtype.type(EPSILON)
        p = np.clip(y_pred, eps, 1 - eps)
        inside = (y_pred >= eps) & (y_pred <= 1 - eps)   # tf.clip_by_value passes these
        grad = -(t / p - (1 - t) / (1 - p)) / y_pred.shape[-1]
        return np.where(inside, grad, 0).astype(y_pred.dtype, copy=False)

    def call_logits(self, y_true, logits):
        """Per-sample values from the logits a: ``mean_O(max(a, 0) - a t + log(1 + e^-|a|))``."""
        t = self._smooth(y_true)
        # max(x, 0) - x t + log(1 + e^-|x|): finite for any finite x (tf's formula).
        return np.mean(np.maximum(logits, 0) - logits * t + np.log1p(np.exp(-np.abs(logits))),
                       axis=-1)

    def gradient_logits(self, y_true, logits):
        """``∂ values / ∂ a = (σ(a) - t) / O``, shaped like ``logits`` (N, ..., O)."""
        # σ(x) - t, written as the derivative of the formula above (TensorFlow's gradient):
        # for x >= 0 it is (1 - t) - σ(-x), so σ(x) ≈ 1 does not cancel against t = 1
        # (exact at x = 40: -4.2e-18, not 0).
        t = self._smooth(y_true)
        tail = sigmoid(-np.abs(logits))                     # σ(-|x|), never rounds to 1
        return np.where(logits >= 0, (1 - t) - tail, tail - t) / logits.shape[-1]

    def get_config(self):
        return {"name": self.name, "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing,
                "invalid_targets": self.invalid_targets}


class FunctionLoss(Loss):
    """Wrap a plain function ``fn(y_true, y_pred) -> values`` (NumPy arrays in and out).

    The gradient is taken by central differences in float64 (two evaluations per entry of
    ``y_pred``), so it is slow and approximate; a :class:`Loss` subclass with ``gradient``
    is exact. A warning says so when the loss is compiled.

    Like Keras, the function sees one output's ``y_true`` and ``y_pred`` of shape (N, ...):
    ``y_true[0]`` is the first *sample*, not the first output.
    """

    def __init__(self, fn, name=None):
        if not callable(fn):
            raise TypeError(f"loss must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "custom_loss")

    def call(self, y_true, y_pred):
        values = np.asarray(self.fn(y_true, y_pred))
        if not np.issubdtype(values.dtype, np.floating):
            values = values.astype(y_pred.dtype)
        return values

    def gradient(self, y_true, y_pred):
        y_true64 = np.asarray(y_true, dtype=np.float64)
        y_pred64 = np.array(y_pred, dtype=np.float64)
        grad = np.empty_like(y_pred64)
        flat_pred, flat_grad = y_pred64.reshape(-1), grad.reshape(-1)
        for k in range(flat_pred.size):
            original = flat_pred[k]
            step = 1e-6 * max(1.0, abs(original))
            flat_pred[k] = original + step
            plus = np.sum(self.fn(y_true64, y_pred64))
            flat_pred[k] = original - step
            minus = np.sum(self.fn(y_true64, y_pred64))
            flat_pred[k] = original
            flat_grad[k] = (plus - minus) / (2 * step)
        return grad.astype(y_pred.dtype)

    def get_config(self):
        return {"name": self.name, "function": getattr(self.fn, "__qualname__", repr(self.fn))}


def mean_squared_error(y_true, y_pred):
    """Per-sample MSE values, ``mean((y_pred - y_true)^2, axis=-1)``."""
    return MeanSquaredError().call(np.asarray(y_true), np.asarray(y_pred))


def binary_crossentropy(y_true, y_pred, from_logits=False):
    """Per-sample binary cross-entropy values (probabilities clipped to [ε, 1-ε])."""
    return BinaryCrossentropy(from_logits).call(np.asarray(y_true), np.asarray(y_pred))


LOSSES = {
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "binary_crossentropy": BinaryCrossentropy, "bce": BinaryCrossentropy,
}


def get(identifier):
    """Resolve a loss: a name in :data:`LOSSES`, a :class:`Loss`, or a plain function.

    A plain function becomes a :class:`FunctionLoss` and a warning says that its gradient
    is taken by central differences.
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        if identifier not in LOSSES:
            raise ValueError(f"Unknown loss {identifier!r}; valid losses are {sorted(LOSSES)}, "
                             "a losses.Loss instance or a function f(y_true, y_pred)")
        return LOSSES[identifier]()
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier):
        loss = FunctionLoss(identifier)
        warnings.warn(
            f"loss {loss.name!r} is a plain function: mlstm differentiates it by central "
            "differences (2 evaluations per prediction entry, approximate). Subclass "
            "mlstm.losses.Loss with call() and gradient() for an exact, fast gradient.",
            stacklevel=3)
        return loss
    raise TypeError(f"Cannot interpret {identifier!r} as a loss; use a name from "
                    f"{sorted(LOSSES)}, a losses.Loss instance or a function")


def reduce_output_loss(loss, y_true, y_pred, mask=None, logits=None):
    """One output's reduced loss and its gradient.

    Parameters
    ----------
    loss : Loss
    y_true, y_pred : ndarray (N, ..., O)
    mask : ndarray of bool (N, T) or None
        The output's mask; the mean runs over valid entries.
    logits : ndarray or None
        The pre-activation when ``y_pred`` is its sigmoid.

    Returns
    -------
    value : float
    d_y_pred : ndarray or None
        dL/dy_pred (None when the gradient is taken with respect to the logits).
    d_logits : ndarray or None
        dL/dlogits when the loss was computed from the logits.
    """
    from_logits = logits is not None and loss.uses_sigmoid_logits
    if from_logits:
        if getattr(loss, "from_logits", False):
            warnings.warn(f"loss {loss.name!r} has from_logits=True but the output is produced "
                          "by a sigmoid; its logits are used (as Keras does)", stacklevel=3)
        values = np.asarray(loss.call_logits(y_true, logits))
        elementwise = loss.gradient_logits(y_true, logits)
    else:
        values = np.asarray(loss.call(y_true, y_pred))
        elementwise = loss.gradient(y_true, y_pred)
    elementwise = np.asarray(elementwise)
    if elementwise.shape != y_pred.shape:
        raise ValueError(f"loss {loss.name!r}: gradient() returned shape {elementwise.shape}, "
                         f"expected the prediction's shape {y_pred.shape}")
    dtype = y_pred.dtype
    if values.ndim == 0:
        weights = np.ones((), dtype=dtype)
    elif values.shape != y_pred.shape[:values.ndim]:
        raise ValueError(f"loss {loss.name!r}: call() returned shape {values.shape}, expected a "
                         f"scalar or the leading axes of the prediction {y_pred.shape}")
    elif mask is not None and mask.shape == values.shape:
        valid = np.count_nonzero(mask)
        weights = (mask / valid if valid else np.zeros(mask.shape)).astype(dtype)
    else:
        weights = np.full(values.shape, 1.0 / values.size, dtype=dtype)
    value = float(np.sum(weights * values))
    grad = (weights.reshape(weights.shape + (1,) * (elementwise.ndim - weights.ndim))
            * elementwise).astype(dtype, copy=False)
    return (value, None, grad) if from_logits else (value, grad, None)
