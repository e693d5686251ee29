"""The Embedding layer: integer token ids to rows of a learned (V, D) table."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import initializers, validation
from .._typing import Array, BoolArray, DTypeLike, IntArray, JSONDict, TensorShape
from ..initializers import Initializer
from ..ops.embedding import (SparseRowsGradient, embedding_backward, embedding_backward_rows,
                             embedding_forward, first_id_outside)
from ..registry import register_layer
from .base import KerasOptions, Layer, SymbolicTensor, TensorSpec, check_dtype, format_shape
from .memory import ActivationBytes, CallShapes

__all__ = ["Embedding"]


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"Embedding: {what} must be a positive int, got {value!r}")
    return int(value)


@register_layer
class Embedding(Layer):
    """Map token ids (N, T) to vectors (N, T, D): ``y[n, t] = E[ids[n, t]]``, as Keras.

    Parameters
    ----------
    input_dim : int
        V, the vocabulary size: ids must lie in [0, V). Outside ids are refused, naming the
        sample and position (TensorFlow's CPU lookup refuses them too).
    output_dim : int
        D, the size of each vector.
    embeddings_initializer : str
        ``"uniform"`` (Keras' default: U(-0.05, 0.05)) or any mlstm initializer.
    mask_zero : bool
        Id 0 is padding: the layer emits the mask ``ids != 0`` (N, T), which the LSTM after
        it consumes (masked steps carry its state) and Dense passes on, exactly as a Masking
        layer's mask. Id 0 still has a row in the table (Keras keeps it too), so ``input_dim``
        counts it.
    dtype : {"float32", "float64"}, optional
        The table's dtype. By default a float Input's dtype (ids from a float Input, as
        below); integer ids carry no float dtype to inherit, so then float32 (Keras'
        floatx), whatever the input's integer dtype.

    Weights: ``embeddings`` (V, D). Input: token ids (N, ...), either an integer tensor
    (``Input(dtype="int32")``) or a float Input holding whole numbers
    (``Input((None,))``, float32 by default, as the Keras guides declare word ids): Keras
    3.15 casts such ids to int32 inside ``Embedding.call``, and so does mlstm, but where
    Keras truncates a value that is not a whole number (2.7 -> 2) mlstm refuses it, naming
    the sample and position. The ids get no gradient (they are not differentiable): the
    backward pass returns None for them, the gradient check never perturbs them
    (:meth:`token_id_inputs`), and the table's gradient is a scatter-add
    (:mod:`mlstm.ops.embedding`). One Embedding may be called on ids of different shapes
    (a title of 30 ids and a description of 200): its table does not depend on them.
    """

    param_names = ("embeddings",)
    base_name = "embedding"
    keras_name = "Embedding"
    keras_options = KerasOptions(
        copied=("input_dim", "output_dim", "mask_zero"),
        fixed={"embeddings_regularizer": None, "activity_regularizer": None,
               "embeddings_constraint": None, "lora_rank": None, "lora_alpha": None,
               "quantization_config": None},
        initializers=("embeddings_initializer",))
    #: Takes integer tensors (every other built-in layer refuses them).
    takes_integer_inputs = True

    def __init__(self, input_dim: int, output_dim: int, embeddings_initializer: str | Initializer = "uniform",
                 mask_zero: bool = False, name: str | None = None,
                 dtype: DTypeLike | None = None, trainable: bool = True,
                 seed: int | None = None, **unsupported: Any) -> None:
        if unsupported:
            # Keras' other options (embeddings_regularizer, weights, lora_rank, ...)
            raise TypeError(
                f"Embedding: option{'s' if len(unsupported) > 1 else ''} "
                f"{', '.join(f'{k}={v!r}' for k, v in unsupported.items())} not supported; "
                "Embedding takes input_dim, output_dim, embeddings_initializer, mask_zero, "
                "name, dtype, trainable, seed (pretrained vectors: set_weights after the "
                "layer is called)")
        # dtype None: the float Input's when the ids come from one, else float32 (set when
        # the layer is first called, in _input_specs)
        super().__init__(name=name, dtype=None if dtype is None else check_dtype(dtype),
                         trainable=trainable, seed=seed)
        self.input_dim = _positive_int(input_dim, "input_dim")
        self.output_dim = _positive_int(output_dim, "output_dim")
        initializers.get_initializer(embeddings_initializer)
        self.embeddings_initializer = embeddings_initializer
        if not isinstance(mask_zero, (bool, np.bool_)):
            raise TypeError(f"Embedding {self.name!r}: mask_zero must be True or False, got "
                            f"{mask_zero!r}")
        self.mask_zero = bool(mask_zero)

    @classmethod
    def examples(cls) -> list[JSONDict]:
        """Configurations the component tests build; ``input_dtypes`` and ``input_ranges``
        say how to draw the integer ids (tests/test_components.py)."""
        return [{"config": {"input_dim": 7, "output_dim": 3}, "inputs": [(5,)],
                 "input_dtypes": ["int32"], "input_ranges": [(0, 7)]},
                {"config": {"input_dim": 6, "output_dim": 2, "mask_zero": True},
                 "inputs": [(4,)], "input_dtypes": ["int64"], "input_ranges": [(0, 6)]}]

    def _input_specs(self, inputs: Sequence[SymbolicTensor], call_kwargs: Mapping[str, Any]
                     ) -> list[TensorSpec]:
        specs = super()._input_specs(inputs, call_kwargs)
        tensor = inputs[0]
        source = tensor.node.layer
        if np.dtype(tensor.dtype).kind != "i" and not source.is_input:
            # a float Input holds ids the user gave; a computed float tensor does not
            raise TypeError(f"Embedding {self.name!r} takes token ids: an integer tensor, or a "
                            f"float Input holding whole numbers (Keras casts them to int32); "
                            f"got a {tensor.dtype} tensor computed by "
                            f"{type(source).__name__} {source.name!r}")
        if self.dtype is None:
            self.dtype = tensor.dtype if np.dtype(tensor.dtype).kind == "f" else "float32"
        if self.mask_zero and len(tensor.shape) != 1:
            raise ValueError(f"Embedding {self.name!r}: mask_zero=True needs ids of shape "
                             f"(N, T) (the mask is per time step), got "
                             f"{format_shape((None,) + tensor.shape)}")
        if tensor.has_mask:
            raise ValueError(f"Embedding {self.name!r}: its input already carries a mask")
        return specs

    def token_id_inputs(self) -> dict[int, int]:
        """``{0: input_dim}``: the layer reads its input as token ids in [0, input_dim)
        (hook read by :func:`mlstm.validation.token_id_inputs`: such a float Input is not a
        value to perturb, standardize or differentiate)."""
        return {0: self.input_dim}

    def _check_input_shapes(self, shapes: Sequence[TensorShape]) -> None:
        """Any shape of ids: the table (V, D) does not depend on it (Keras calls one
        Embedding on a title of 30 ids and a body of 200); ``_input_specs`` checked the
        mask_zero rank."""

    def build(self, input_shapes: Sequence[TensorShape]) -> None:
        self._add_param("embeddings", (self.input_dim, self.output_dim),
                        self.embeddings_initializer, self._rng())

    def output_specs(self, input_specs: Sequence[TensorSpec], call_kwargs: Mapping[str, Any]
                     ) -> list[TensorSpec]:
        shape, _ = input_specs[0]
        return [(tuple(shape) + (self.output_dim,), self.mask_zero)]

    def check_ids(self, ids: IntArray, label: str) -> None:
        """Refuse ids outside [0, input_dim), naming the first by sample and position.

        Asked by the training data checks for the whole array (so the position is the one in
        the user's array) and by :meth:`forward` for each batch.
        """
        index = first_id_outside(ids, self.input_dim)
        if index is None:
            return
        where = f"sample {index[0]}" + (f", position {index[1]}" if len(index) > 1 else "")
        if len(index) > 2:
            where += f" (index {list(index)})"
        count = int(np.count_nonzero((ids < 0) | (ids >= self.input_dim)))
        raise ValueError(f"{label}: token id {ids[index].item()} at {where} is outside [0, "
                         f"{self.input_dim}) for Embedding {self.name!r} (input_dim="
                         f"{self.input_dim}); {count} id{'s' if count > 1 else ''} outside "
                         "in all")

    def forward(self, inputs: Sequence[Array], masks: Sequence[BoolArray | None],
                training: bool = False, rng: np.random.Generator | None = None, **kw: Any
                ) -> tuple[list[Array], list[BoolArray | None], Any]:
        ids = np.asarray(inputs[0])
        if ids.dtype.kind == "f":
            # Keras: ops.cast(inputs, "int32"), which truncates; whole numbers only here
            # (the model's data checks named any other by its place in the user's array)
            validation.check_whole_ids(ids, f"Embedding {self.name!r}: input",
                                       where=validation.user_index)
        elif ids.dtype.kind not in "iu":
            raise TypeError(f"Embedding {self.name!r} takes token ids (integers, or floats "
                            f"holding whole numbers), got an array of dtype {ids.dtype}")
        self.check_ids(ids, f"Embedding {self.name!r}: input")
        if ids.dtype.kind == "f":
            ids = ids.astype(np.int32)
        y, cache = embedding_forward(ids, self.params["embeddings"])
        mask = np.not_equal(ids, 0) if self.mask_zero else None
        return [y], [mask], cache

    def backward(self, d_outputs: Sequence[Array | None], cache: Any,
                 d_logits: Array | None = None, extras: dict[str, Any] | None = None,
                 input_grads: Sequence[bool] | None = None,
                 sparse_grads: dict[str, SparseRowsGradient] | None = None
                 ) -> tuple[list[Array | None], dict[str, Array]]:
        """``([None], {"embeddings": dE})``: the table's gradient, the per-id sum (V, D).

        ``sparse_grads``, when the caller passes a dict (the training step does), also
        receives ``{"embeddings": SparseRowsGradient}``: the same gradient as one row per
        token occurrence, for optimizers that treat occurrences as Keras does
        (:class:`mlstm.ops.embedding.SparseRowsGradient`).
        """
        d_y = d_outputs[0]
        if d_y is None:
            return [None], {"embeddings": np.zeros_like(self.params["embeddings"])}
        if sparse_grads is None:
            return [None], {"embeddings": embedding_backward(d_y, cache)}
        rows = embedding_backward_rows(d_y, cache)
        sparse_grads["embeddings"] = rows
        return [None], {"embeddings": rows.dense()}

    def activation_bytes(self, call: CallShapes) -> ActivationBytes:
        """The looked-up rows and the mask are kept (the cache is the ids, not a copy); the
        range check of the ids is boolean scratch; backward gathers the output gradient into
        rows (a copy when it is a transposed view, as an LSTM's dx is), builds a sparse
        (V, N·T) matrix (a value and two indices per id, then its CSR copy) and the (V, D)
        gradient."""
        ids = call.batch_size * math.prod(call.inputs[0])
        out = call.nbytes(call.outputs[0])
        return ActivationBytes(kept=out + ids, forward=2 * ids,
                               backward=out + 2 * ids * (call.itemsize + 16)
                               + self.count_params() * call.itemsize,
                               note=f"Embedding {self.name!r} keeps N·T·D looked-up values")

    def describe_weight_entry(self, weight: str, index: tuple[int, ...]) -> str:
        return f"token id {index[0]}, component {index[-1]}"

    def get_config(self) -> JSONDict:
        config = super().get_config()
        config.update(input_dim=self.input_dim, output_dim=self.output_dim,
                      embeddings_initializer=self.embeddings_initializer,
                      mask_zero=self.mask_zero)
        return config
