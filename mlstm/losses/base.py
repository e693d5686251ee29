"""The loss contract (:class:`Loss`) and the one reduction every output's loss goes
through (:func:`reduce_output_loss`); the reduction's formula is in :mod:`mlstm.losses`."""
from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from .. import validation
from .._typing import Array, ArrayLike, BoolArray, FloatArray, JSONDict

__all__ = ["Loss", "reduce_output_loss", "EPSILON"]

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

    A loss that works from the logits of an activated output sets ``logits_activation``
    (``"sigmoid"`` for binary cross-entropy) and implements ``call_logits`` /
    ``gradient_logits`` with the same contract; it is then given the logits whenever the
    output is that activation of them (:meth:`mlstm.Model.loss_logits`).
    """

    name = "loss"
    #: The output activation this loss takes logits from (None: it works on y_pred).
    logits_activation: str | None = None
    #: The Keras class and function names this loss maps to (interop).
    keras_name: str | None = None
    keras_function: str | None = None
    #: ``call_logits(y_true, logits)`` and ``gradient_logits(y_true, logits)``: defined by
    #: the losses that set ``logits_activation`` (declared here for the type checker only)
    call_logits: Callable[[Array, FloatArray], FloatArray]
    gradient_logits: Callable[[Array, FloatArray], FloatArray]

    def call(self, y_true: Array, y_pred: FloatArray) -> FloatArray:
        """Per-sample values, shape ``y_pred.shape[:-1]`` (N, ...) (or a scalar)."""
        raise NotImplementedError

    def gradient(self, y_true: Array, y_pred: FloatArray) -> FloatArray:
        """``∂ values[...] / ∂ y_pred[..., j]``, shaped like ``y_pred`` (N, ..., O)."""
        raise NotImplementedError

    def __call__(self, y_true: ArrayLike, y_pred: ArrayLike, mask: BoolArray | None = None
                 ) -> float:
        """The reduced loss value (Keras' ``loss_fn(y_true, y_pred)``)."""
        y_true, y_pred = validation.loss_arrays(self, y_true, y_pred)
        return reduce_output_loss(self, y_true, y_pred, mask)[0]

    def get_config(self) -> JSONDict:
        return {"name": self.name}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def reduce_output_loss(loss: Loss, y_true: Array, y_pred: FloatArray, mask: BoolArray | None = None,
                       logits: FloatArray | None = None, sample_weight: Array | None = None
                       ) -> tuple[float, FloatArray | None, FloatArray | None]:
    """One output's reduced loss and its gradient.

    Parameters
    ----------
    loss : Loss
    y_true, y_pred : ndarray (N, ..., O)
    mask : ndarray of bool (N, T) or None
        The output's mask; the mean runs over valid entries.
    logits : ndarray or None
        The logits of ``y_pred`` when the loss takes them (``loss.logits_activation``
        matched the output's activation); the loss is then computed from them.
    sample_weight : ndarray or None
        One weight per loss value (shape of ``call``'s values): Keras' weighted reduction,
        ``Σ w·values / size`` (``Σ w·m·values / Σ m`` with a mask), not divided by ``Σ w``.

    Returns
    -------
    value : float
    d_y_pred : ndarray or None
        dL/dy_pred (None when the gradient is taken with respect to the logits).
    d_logits : ndarray or None
        dL/dlogits when the loss was computed from the logits.
    """
    from_logits = logits is not None
    if logits is not None:                      # (from_logits)
        if getattr(loss, "from_logits", False):
            warnings.warn(f"loss {loss.name!r} has from_logits=True but the output is produced "
                          f"by a {loss.logits_activation}; its logits are used (as Keras does)",
                          stacklevel=3)
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
    if sample_weight is not None:
        if np.shape(sample_weight) != values.shape:
            raise ValueError(f"loss {loss.name!r}: sample weights of shape "
                             f"{np.shape(sample_weight)} need one loss value per entry, but "
                             f"call() returned shape {values.shape}")
        weights = weights * sample_weight.astype(dtype, copy=False)
    value = float(np.sum(weights * values))
    grad = (weights.reshape(weights.shape + (1,) * (elementwise.ndim - weights.ndim))
            * elementwise).astype(dtype, copy=False)
    return (value, None, grad) if from_logits else (value, grad, None)
