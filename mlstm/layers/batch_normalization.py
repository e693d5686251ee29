"""BatchNormalization over the feature axis, with moving statistics (Keras semantics).

The math is in :mod:`mlstm.ops.batch_normalization`. What the layer adds:

- **When the batch statistics are used**: in a training-mode pass of a trainable layer
  (Keras 3: ``training and self.trainable``); a non-trainable BatchNormalization normalizes
  with its moving statistics even in training, as in Keras.
- **The moving statistics** ``moving_mean`` and ``moving_variance`` are non-trainable state
  (``Layer.state_names``): they follow ``gamma`` and ``beta`` in ``get_weights`` (Keras'
  order), are saved by ``model.save`` and carried by ``from_keras``/``to_keras``, and get no
  gradient. Like Keras, *every* training-mode pass moves them (``fit``, ``train_on_batch``,
  and also ``model.gradients``, which runs one).
- **Masks**: steps masked upstream (a ``Masking`` layer) do not count in the batch
  statistics; they are still normalized, and the mask passes through.
"""
from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np

import numpy as np

from .. import initializers
from .._typing import Array, BoolArray, DTypeLike, JSONDict, TensorShape
from ..initializers import Initializer
from ..ops.batch_normalization import (batch_norm_backward, batch_norm_forward,
                                       batch_statistics, moving_average)
from ..registry import register_layer
from .base import KerasOptions, Layer, SymbolicTensor, TensorSpec

__all__ = ["BatchNormalization"]


@register_layer
class BatchNormalization(Layer):
    """Normalize each feature with the batch's mean and variance (training) or moving ones
    (inference), then scale by ``gamma`` and shift by ``beta``.

    Parameters
    ----------
    axis : int
        The feature axis; only the last one (-1, or its index counting the batch axis) is
        supported: (N, D) and (N, T, D) inputs, statistics over N (and T).
    momentum : float in [0, 1]
        Of the moving averages (Keras' default 0.99).
    epsilon : float > 0
        Added to the variance (Keras' default 1e-3).
    center, scale : bool
        Whether there is a ``beta`` / a ``gamma``.
    beta_initializer, gamma_initializer, moving_mean_initializer, moving_variance_initializer : str

    Weights: ``gamma`` (D,), ``beta`` (D,); state: ``moving_mean`` (D,),
    ``moving_variance`` (D,).
    """

    param_names = ("gamma", "beta")
    state_names = ("moving_mean", "moving_variance")
    base_name = "batch_normalization"
    keras_name = "BatchNormalization"
    keras_options = KerasOptions(
        copied=("axis", "momentum", "epsilon", "center", "scale"),
        fixed={"beta_regularizer": None, "gamma_regularizer": None, "beta_constraint": None,
               "gamma_constraint": None, "synchronized": False, "renorm": False,
               "renorm_clipping": None},
        initializers=("beta_initializer", "gamma_initializer", "moving_mean_initializer",
                      "moving_variance_initializer"),
        # used only with renorm=True, which is refused
        ignored=("renorm_momentum",))

    def __init__(self, axis: int = -1, momentum: float = 0.99, epsilon: float = 1e-3,
                 center: bool = True, scale: bool = True, beta_initializer: str | Initializer = "zeros",
                 gamma_initializer: str | Initializer = "ones", moving_mean_initializer: str | Initializer = "zeros",
                 moving_variance_initializer: str | Initializer = "ones", name: str | None = None,
                 dtype: DTypeLike | None = None, trainable: bool = True,
                 seed: int | None = None) -> None:
        super().__init__(name=name, dtype=dtype, trainable=trainable, seed=seed)
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise ValueError(f"BatchNormalization {self.name!r}: axis must be an int (the "
                             f"last axis), got {axis!r}")
        self.axis: int = int(axis)
        for option, value, low_open in (("momentum", momentum, False), ("epsilon", epsilon, True)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
                    (value > 0 if low_open else value >= 0) and (low_open or value <= 1)):
                raise ValueError(f"BatchNormalization {self.name!r}: {option} must be "
                                 f"{'a positive number' if low_open else 'a number in [0, 1]'}"
                                 f", got {value!r}")
        self.momentum: float = float(momentum)
        self.epsilon: float = float(epsilon)
        self.center: bool = bool(center)
        self.scale: bool = bool(scale)
        for init in (beta_initializer, gamma_initializer, moving_mean_initializer,
                     moving_variance_initializer):
            initializers.get_initializer(init)
        self.beta_initializer: str | Initializer = beta_initializer
        self.gamma_initializer: str | Initializer = gamma_initializer
        self.moving_mean_initializer: str | Initializer = moving_mean_initializer
        self.moving_variance_initializer: str | Initializer = moving_variance_initializer

    @classmethod
    def examples(cls) -> list[JSONDict]:
        return [{"config": {}, "inputs": [(3, 4)]},
                {"config": {"momentum": 0.9, "center": False}, "inputs": [(5,)]},
                {"config": {"scale": False, "epsilon": 0.01, "axis": 2}, "inputs": [(2, 3)]}]

    def _input_specs(self, inputs: Sequence[SymbolicTensor], call_kwargs: Mapping[str, Any]
                     ) -> list[TensorSpec]:
        specs = super()._input_specs(inputs, call_kwargs)
        shape = specs[0][0]
        rank = len(shape) + 1
        if self.axis not in (-1, rank - 1):
            raise ValueError(f"BatchNormalization {self.name!r}: only the last axis (-1 or "
                             f"{rank - 1}) is supported as the feature axis, got axis="
                             f"{self.axis} for input of rank {rank}")
        if shape[-1] is None:
            raise ValueError(f"BatchNormalization {self.name!r} needs a known feature size")
        return specs

    def _check_input_shapes(self, shapes: list[TensorShape]) -> None:
        if shapes[0][-1] != self._built_shapes[0][-1] or len(shapes[0]) != len(
                self._built_shapes[0]):
            super()._check_input_shapes(shapes)

    def build(self, input_shapes: Sequence[TensorShape]) -> None:
        D = cast(int, input_shapes[0][-1])                   # (known: checked by _input_specs)
        rng = self._rng()
        if self.scale:
            self._add_param("gamma", (D,), self.gamma_initializer, rng)
        if self.center:
            self._add_param("beta", (D,), self.beta_initializer, rng)
        for key, init in (("moving_mean", self.moving_mean_initializer),
                          ("moving_variance", self.moving_variance_initializer)):
            value = initializers.get_initializer(init)((D,), rng, dtype=self.dtype)
            self.state[key] = value.astype(self.dtype)

    def forward(self, inputs: Sequence[Array], masks: Sequence[BoolArray | None],
                training: bool = False, rng: np.random.Generator | None = None, **kw: Any
                ) -> tuple[list[Array], list[BoolArray | None], Any]:
        x, mask = inputs[0], masks[0]
        batch_stats = bool(training) and self.trainable
        if batch_stats:
            mean, variance = batch_statistics(x, mask)
            # Keras assigns the new moving statistics in the training call itself
            self.state["moving_mean"][...] = moving_average(self.state["moving_mean"], mean,
                                                            self.momentum)
            self.state["moving_variance"][...] = moving_average(
                self.state["moving_variance"], variance, self.momentum)
        else:
            mean, variance = self.state["moving_mean"], self.state["moving_variance"]
        y, cache = batch_norm_forward(x, mean, variance, self.params.get("gamma"),
                                      self.params.get("beta"), self.epsilon, mask=mask,
                                      batch_stats=batch_stats)
        return [y], [mask], cache

    def backward(self, d_outputs: Sequence[Array | None], cache: Any,
                 d_logits: Array | None = None, extras: dict[str, Any] | None = None,
                 input_grads: Sequence[bool] | None = None
                 ) -> tuple[list[Array | None], dict[str, Array]]:
        # (one output: the graph calls backward only when it has a gradient)
        grads = batch_norm_backward(cast(Array, d_outputs[0]), cache)
        return [grads["x"]], {k: grads[k] for k in self.param_names if k in grads}

    def batch_statistics_count(self, cache: Any) -> int | None:
        """Values behind each feature's batch mean and variance: the rows of (N, D), the
        N·T steps of (N, T, D), the valid ones under a mask; None with moving statistics.

        At 1 (a batch of one sample over (N, D)), x - mean is 0: the output is ``beta`` for
        every input and no gradient reaches ``gamma`` or the layers before (Keras 3.15 does
        the same); the batch variance is 0, so the moving variance decays by ``momentum``
        each step.
        """
        if not cache["batch_stats"]:
            return None
        mask = cache["mask"]
        if mask is not None:
            return int(np.count_nonzero(mask))
        return int(np.prod(cache["x"].shape[:-1]))

    def describe_weight_entry(self, weight: str, index: tuple[int, ...]) -> str:
        return f"feature {index[-1]}"

    def get_config(self) -> JSONDict:
        config = super().get_config()
        config.update(axis=self.axis, momentum=self.momentum, epsilon=self.epsilon,
                      center=self.center, scale=self.scale,
                      beta_initializer=self.beta_initializer,
                      gamma_initializer=self.gamma_initializer,
                      moving_mean_initializer=self.moving_mean_initializer,
                      moving_variance_initializer=self.moving_variance_initializer)
        return config
