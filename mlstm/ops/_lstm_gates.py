"""Gate activations of the fast LSTM: all four gates from one ``tanh`` (private).

Used by :mod:`mlstm.ops.lstm`; :mod:`mlstm.ops.lstm_reference` applies each activation
plainly instead.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from .._typing import DTypeLike, FloatArray
from ._buffer_pool import LayerBuffers
from .activations import activate, derivative_from_output

__all__ = ["GateActivation"]


def _one_tanh_constants(N: int, H: int, dtype: DTypeLike
                        ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """s (4H,), and s, shift, α repeated over the batch (N, 4H); read-only."""
    def per_block(i: float, f: float, c: float, o: float) -> FloatArray:
        return np.repeat(np.array([i, f, c, o], dtype=dtype), H)

    column_scale = per_block(.5, .5, 1, .5)
    constants = (column_scale, np.tile(column_scale, (N, 1)),
                 np.tile(per_block(.5, .5, 0, .5), (N, 1)), np.tile(per_block(0, 0, 1, 0), (N, 1)))
    for c in constants:
        c.flags.writeable = False
    return constants


class GateActivation:
    """σ on the i, f, o blocks and φ on the c block of a gate row z (N, 4H), in place.

    With Keras' defaults (σ = sigmoid, φ = tanh) all four blocks take *one* ``tanh``::

        σ(z) = ½ tanh(z/2) + ½        so  gates = s ⊙ tanh(s ⊙ z) + shift,
        s = (½, ½, 1, ½),  shift = (½, ½, 0, ½)     per block i, f, c, o.

    The inner ``s ⊙ z`` is folded into the weights (:meth:`fold_into_weights`: scaling by
    ½ is exact in floating point), so a step costs one ``tanh``, one multiply and one add
    over the whole row. In float32 the result is within 6e-8 of the exact sigmoid
    (SciPy's float32 ``expit``: 9e-8) at a tenth of the cost. Other activation pairs
    apply each block's activation separately.

    The derivatives come from the gate values y (the cache keeps activated gates)::

        σ'(z) = y (1 - y),   tanh'(z) = (1 + y)(1 - y)   =  (y + α)(1 - y),  α = (0, 0, 1, 0)

    The per-block constants are stored repeated over the batch, (N, 4H), so that every
    per-step operation runs over contiguous memory (broadcasting a (4H,) row costs as much
    as the arithmetic at small sizes). They are computed once per LSTM and batch size and
    kept with the LSTM's pooled arrays (``buffers``, a LayerBuffers), freed with them.
    """

    def __init__(self, activation: str, recurrent_activation: str, N: int, H: int,
                 dtype: DTypeLike, buffers: LayerBuffers | None = None) -> None:
        self.activation, self.recurrent_activation, self.H = activation, recurrent_activation, H
        self.one_tanh = activation == "tanh" and recurrent_activation == "sigmoid"
        #: ``cell(c, out)``: φ(c) into ``out`` (NumPy's own function when φ is tanh: the
        #: dispatch through :func:`activate` is a third of its cost at small sizes).
        self.cell: Callable[..., Any] = (np.tanh if activation == "tanh"
                                         else functools.partial(activate, activation))
        if self.one_tanh:
            dtype = np.dtype(dtype)
            if buffers is None:
                constants = _one_tanh_constants(N, H, dtype)
            else:
                constants = buffers.constant(("one_tanh", N, H, dtype.str),
                                             lambda: _one_tanh_constants(N, H, dtype))
            self.column_scale, self.scale, self.shift, self.alpha = constants

    def fold_into_weights(self, kernel: FloatArray, recurrent_kernel: FloatArray,
                          bias: FloatArray | None
                          ) -> tuple[FloatArray, FloatArray, FloatArray | None]:
        """``(W, U, b)`` scaled column-wise by s (one-tanh form) or unchanged."""
        if not self.one_tanh:
            return kernel, recurrent_kernel, bias
        s = self.column_scale
        return kernel * s, recurrent_kernel * s, None if bias is None else bias * s

    def __call__(self, z: FloatArray) -> FloatArray:
        """Activate z (pre-activations, weights folded as above) in place into i, f, g, o."""
        if self.one_tanh:
            np.tanh(z, out=z)
            z *= self.scale
            z += self.shift
            return z
        H = self.H
        activate(self.recurrent_activation, z[:, :2 * H], out=z[:, :2 * H])
        activate(self.activation, z[:, 2 * H:3 * H], out=z[:, 2 * H:3 * H])
        activate(self.recurrent_activation, z[:, 3 * H:], out=z[:, 3 * H:])
        return z

    def derivative(self, gates: FloatArray, out: FloatArray, scratch: FloatArray) -> FloatArray:
        """dgate/dz of each block from the gate values ``gates`` (..., 4H) into ``out``."""
        if self.one_tanh:
            np.subtract(1, gates, out=out)
            np.add(gates, self.alpha, out=scratch)
            out *= scratch
            return out
        H = self.H
        derivative_from_output(self.recurrent_activation, gates[..., :2 * H],
                               out=out[..., :2 * H])
        derivative_from_output(self.activation, gates[..., 2 * H:3 * H],
                               out=out[..., 2 * H:3 * H])
        derivative_from_output(self.recurrent_activation, gates[..., 3 * H:], out=out[..., 3 * H:])
        return out

