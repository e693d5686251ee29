"""Dropout: random zeros with inverted scaling in training, the identity at inference.

Both classes draw their masks from the generator the model hands to layers that use random
numbers (``Layer.uses_rng``): during ``fit(seed=...)`` each layer gets its own child of the
run's seeded stream, so the same seed gives the same masks, bit for bit. ``train_on_batch``
draws from :func:`mlstm.set_random_seed`'s shared stream, as Keras' does from its global
seed. A training-mode pass given no generator (``model.gradients``, ``gradcheck``)
draws nothing and drops nothing: mlstm never draws hidden random numbers, and such a pass
computes the network's deterministic part. ``crosscheck`` compares that part: it sets every
rate to 0 on both sides (:func:`zero_dropout_rates`). The diagnosis measures both
(``docs/diagnose.md``, ``dropout_hides`` and ``dropout_underfits``).
The math is in :mod:`mlstm.ops.dropout`.
"""
from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np

from .._typing import Array, BoolArray, DTypeLike, JSONDict, Shape, TensorShape
from ..ops.dropout import dropout_backward, dropout_forward, dropout_mask
from ..registry import register_layer
from .base import KerasOptions, Layer, TensorSpec, format_shape

__all__ = ["Dropout", "SpatialDropout1D", "check_rate", "dropout_rates", "set_dropout_rates",
           "zero_dropout_rates"]


def check_rate(layer: Layer, option: str, rate: Any, allow_one: bool = True) -> float:
    """``rate`` as a float in [0, 1] (or [0, 1) when not ``allow_one``); ValueError naming
    the layer and the option otherwise."""
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not (
            0 <= rate <= 1 if allow_one else 0 <= rate < 1):  # type: ignore[operator]
        # (numbers.Real declares no comparisons; every Real number has them)
        raise ValueError(f"{type(layer).__name__} {layer.name!r}: {option} must be a number in "
                         f"[0, 1{']' if allow_one else ')'}, got {rate!r}")
    return float(rate)


def _rate_holders(layer: Layer, owner: str = "") -> list[tuple[Layer, str, str]]:
    """``[(layer, option, "owner/layer")]`` for every dropout rate option of ``layer`` and of
    the layers it wraps: the options its class declares as ``KerasOptions.dropout_rates``
    (Dropout: ``rate``; LSTM: ``dropout``, ``recurrent_dropout``)."""
    label = owner + layer.name
    found = [(layer, option, label) for option in type(layer).keras_options.dropout_rates]
    for inner in getattr(layer, "wrapped", ()):     # Wrapper: the layers it holds
        found.extend(_rate_holders(inner, label + "/"))
    return found


def dropout_rates(layers: list[Layer]) -> dict[str, float]:
    """``{"layer: option": rate}`` for every dropout rate above 0 in ``layers`` (wrapped
    layers named ``"wrapper/layer: option"``)."""
    return {f"{label}: {option}": float(getattr(layer, option))
            for top in layers for layer, option, label in _rate_holders(top)
            if getattr(layer, option, 0)}


def set_dropout_rates(layers: list[Layer], rates: dict[str, float]) -> None:
    """Set the dropout rates named as :func:`dropout_rates` names them (``{"layer:
    option": rate}``), in place; ValueError for a name that is not a rate of ``layers`` or
    a rate outside [0, 1)."""
    holders = {f"{label}: {option}": (layer, option)
               for top in layers for layer, option, label in _rate_holders(top)}
    unknown = sorted(set(rates) - set(holders))
    if unknown:
        raise ValueError(f"no dropout rate {unknown} in these layers; they have "
                         f"{sorted(holders)}")
    for name, rate in rates.items():
        layer, option = holders[name]
        setattr(layer, option, check_rate(layer, option, rate, allow_one=False))


def zero_dropout_rates(layers: list[Layer]) -> dict[str, float]:
    """Set every dropout rate in ``layers`` (and the layers they wrap) to 0, in place.

    Use it on a copy (``model.clone()``): the layers then draw nothing and compute the
    network's deterministic part in training too. Returns the rates that were changed, as
    :func:`dropout_rates` names them.
    """
    changed = dropout_rates(layers)
    for top in layers:
        for layer, option, _ in _rate_holders(top):
            setattr(layer, option, 0.0)
    return changed


@register_layer
class Dropout(Layer):
    """Set a fraction ``rate`` of the input entries to 0 in training, scale the rest by
    ``1 / (1 - rate)``; the identity at inference (Keras semantics).

    Parameters
    ----------
    rate : float in [0, 1]
        The probability of dropping each entry.
    noise_shape : sequence of (int or None), optional
        The shape of the mask, batch axis included, broadcast to the input's shape (None:
        that axis of the input). ``(None, 1, D)`` on (N, T, D) input drops the same features
        at every step. Each entry must be None, 1, or the input's size on that axis.

    Masks pass through. The masks come from the model's seeded stream (see the module
    docstring); a training pass without one drops nothing.
    """

    base_name = "dropout"
    keras_name = "Dropout"
    # Keras' seed seeds Keras' own random stream; mlstm's masks come from fit(seed=...)
    keras_options = KerasOptions(copied=("rate", "noise_shape"), ignored=("seed",),
                                 dropout_rates=("rate",))

    def __init__(self, rate: float, noise_shape: Sequence[int | None] | None = None,
                 name: str | None = None, dtype: DTypeLike | None = None,
                 trainable: bool = True) -> None:
        super().__init__(name=name, dtype=dtype, trainable=trainable)
        self.rate = check_rate(self, "rate", rate)
        if noise_shape is not None:
            if isinstance(noise_shape, (str, bytes)) or not hasattr(noise_shape, "__len__"):
                raise ValueError(f"{type(self).__name__} {self.name!r}: noise_shape must be a "
                                 f"list of ints or None, got {noise_shape!r}")
            for d in noise_shape:
                if d is not None and (isinstance(d, bool) or not isinstance(d, (int, np.integer))
                                      or d <= 0):
                    raise ValueError(f"{type(self).__name__} {self.name!r}: noise_shape entries "
                                     f"must be positive ints or None, got {noise_shape!r}")
            noise_shape = [None if d is None else int(d) for d in noise_shape]
        self.noise_shape = noise_shape

    @property
    def uses_rng(self) -> bool:  # type: ignore[override]  # (read-only here: from the options)
        return self.rate > 0

    @classmethod
    def examples(cls) -> list[JSONDict]:
        return [{"config": {"rate": 0.5}, "inputs": [(3, 4)]},
                {"config": {"rate": 0.25, "noise_shape": [None, 1, 4]}, "inputs": [(3, 4)]},
                {"config": {"rate": 0.4}, "inputs": [(5,)]}]

    def output_specs(self, input_specs: Sequence[TensorSpec], call_kwargs: Mapping[str, Any]
                     ) -> list[TensorSpec]:
        shape, has_mask = input_specs[0]
        self._check_noise_shape(shape)
        return [(shape, has_mask)]

    def _check_input_shapes(self, shapes: list[TensorShape]) -> None:
        pass                  # no weights: any input shape (output_specs checks noise_shape)

    def _check_noise_shape(self, shape: TensorShape) -> None:
        if self.noise_shape is None:
            return
        if len(self.noise_shape) != len(shape) + 1:
            raise ValueError(f"{type(self).__name__} {self.name!r}: noise_shape "
                             f"{self.noise_shape} must have one entry per input axis (batch "
                             f"included), for input of shape {format_shape((None,) + shape)}")
        for k, (n, d) in enumerate(zip(self.noise_shape[1:], shape), start=1):
            if n is not None and n != 1 and d is not None and n != d:
                raise ValueError(f"{type(self).__name__} {self.name!r}: noise_shape "
                                 f"{self.noise_shape} does not broadcast to input of shape "
                                 f"{format_shape((None,) + shape)} (axis {k}: {n} vs {d})")

    def mask_shape(self, x_shape: Shape) -> Shape:
        """The concrete noise shape for an input of shape ``x_shape`` (batch included)."""
        if self.noise_shape is None:
            return tuple(x_shape)
        shape = tuple(d if n is None else n for n, d in zip(self.noise_shape, x_shape))
        if any(n not in (1, d) for n, d in zip(shape, x_shape)):
            raise ValueError(f"{type(self).__name__} {self.name!r}: noise_shape "
                             f"{self.noise_shape} does not broadcast to input of shape "
                             f"{tuple(x_shape)}")
        return shape

    def forward(self, inputs: Sequence[Array], masks: Sequence[BoolArray | None],
                training: bool = False, rng: np.random.Generator | None = None, **kw: Any
                ) -> tuple[list[Array], list[BoolArray | None], Any]:
        x = inputs[0]
        mask = None
        if training and rng is not None and self.rate > 0:
            mask = dropout_mask(rng, self.rate, self.mask_shape(x.shape), x.dtype)
        y, cache = dropout_forward(x, mask)
        return [y.copy() if y is x else y], [masks[0]], cache

    def backward(self, d_outputs: Sequence[Array | None], cache: Any,
                 d_logits: Array | None = None, extras: dict[str, Any] | None = None,
                 input_grads: Sequence[bool] | None = None
                 ) -> tuple[list[Array | None], dict[str, Array]]:
        # (one output: the graph calls backward only when it has a gradient)
        return [dropout_backward(cast(Array, d_outputs[0]), cache)], {}

    def get_config(self) -> JSONDict:
        config = super().get_config()
        config.update(rate=self.rate, noise_shape=self.noise_shape)
        return config


@register_layer
class SpatialDropout1D(Dropout):
    """Dropout of whole features of a sequence: one draw per sample and feature, shared by
    every step (noise shape (N, 1, D) on (N, T, D) input), as Keras' ``SpatialDropout1D``.

    Parameters
    ----------
    rate : float in [0, 1]
    """

    base_name = "spatial_dropout1d"
    keras_name = "SpatialDropout1D"
    keras_options = KerasOptions(copied=("rate",), ignored=("seed",), dropout_rates=("rate",))

    def __init__(self, rate: float, name: str | None = None, dtype: DTypeLike | None = None,
                 trainable: bool = True) -> None:
        super().__init__(rate, name=name, dtype=dtype, trainable=trainable)

    @classmethod
    def examples(cls) -> list[JSONDict]:
        return [{"config": {"rate": 0.5}, "inputs": [(3, 4)]}]

    def output_specs(self, input_specs: Sequence[TensorSpec], call_kwargs: Mapping[str, Any]
                     ) -> list[TensorSpec]:
        shape, has_mask = input_specs[0]
        if len(shape) != 2:
            raise ValueError(f"SpatialDropout1D {self.name!r} expects input of shape (N, T, D), "
                             f"got {format_shape((None,) + shape)}")
        return [(shape, has_mask)]

    def mask_shape(self, x_shape: Shape) -> Shape:
        return (x_shape[0], 1, x_shape[2])

    def get_config(self) -> JSONDict:
        config = super().get_config()
        config.pop("noise_shape")
        return config
