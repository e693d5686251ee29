"""The backward pass of the fast LSTM, piece by piece (private): the local factors of dz,
the masked-step carry, and the weight gradients added a chunk of steps at a time.

Used by :func:`mlstm.ops.lstm.lstm_backward`, whose docstring and comments give the
equations these pieces implement.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .._typing import BoolArray, DTypeLike, FloatArray
from ._buffer_pool import LayerBuffers
from ._lstm_gates import GateActivation
from .activations import derivative_from_output

__all__ = ["LocalFactors", "MaskedCarry", "WeightGradients", "steps_within"]


class WeightGradients:
    """dW = Σ_t x_tᵀ dz_t, dU = Σ_t h_{t-1}ᵀ dz_t, db = Σ_t,n dz_t and dx_t = dz_t Wᵀ, from
    the dz of a chunk of steps at a time: one GEMM each per chunk (with all steps in one
    chunk, one GEMM each over the whole sequence). Later chunks' shares go through one
    scratch array per weight, so that no chunk allocates."""

    def __init__(self, x_tm: FloatArray, h_states: FloatArray, kernel: FloatArray,
                 use_bias: bool, go_backwards: bool, input_grad: bool, chunk: int) -> None:
        self.x_tm, self.h_states, self.kernel = x_tm, h_states, kernel
        self.go_backwards = go_backwards
        T, N, D = x_tm.shape
        self.ones = np.ones(chunk * N, dtype=x_tm.dtype) if use_bias else None
        self.sums: dict[str, FloatArray] = {}
        self.scratch: dict[str, FloatArray] = {}
        # (not recycled: a model drops input gradients at once, the pool would keep them alive)
        self.d_x_tm = np.empty((T, N, D), dtype=x_tm.dtype) if input_grad else None

    def add(self, start: int, stop: int, d_gates: FloatArray) -> None:
        """Add steps ``start:stop`` whose dz_t are ``d_gates`` (stop - start, N, 4H)."""
        k, N, H4 = d_gates.shape
        D, H = self.x_tm.shape[2], self.h_states.shape[2]
        dz = d_gates.reshape(k * N, H4)
        factors = {"kernel": self.x_tm[start:stop].reshape(k * N, D).T,
                   "recurrent_kernel": self.h_states[start:stop].reshape(k * N, H).T}
        if self.ones is not None:
            # Σ_t,n dz as a GEMV: a quarter of the time of .sum(axis=0) at size S
            factors["bias"] = self.ones[:k * N]
        for name, factor in factors.items():
            if name not in self.sums:
                self.sums[name] = factor @ dz
                continue
            if name not in self.scratch:
                self.scratch[name] = np.empty_like(self.sums[name])
            self.sums[name] += np.matmul(factor, dz, out=self.scratch[name])
        if self.d_x_tm is not None:
            np.matmul(dz, self.kernel.T, out=self.d_x_tm[start:stop].reshape(k * N, D))

    def result(self) -> dict[str, Any]:
        grads = dict(self.sums, x=None)
        if self.d_x_tm is not None:
            d_x_tm = self.d_x_tm[::-1] if self.go_backwards else self.d_x_tm
            grads["x"] = d_x_tm.transpose(1, 0, 2)
        return grads


def steps_within(nbytes: int, T: int, N: int, H: int, dtype: DTypeLike) -> int:
    """How many time steps of (N, 4H) gate rows fit in ``nbytes`` (at least 1, at most T)."""
    step_bytes = N * 4 * H * np.dtype(dtype).itemsize
    return min(T, max(1, nbytes // step_bytes))


class LocalFactors:
    """The factors of dL/dz_t that depend on the forward pass only, for a block of steps.

    For gates ``(k, N, 4H)`` = i, f, g, o and cell states c_{t-1}, c'_t::

        out         = [g ⊙ σ'(z_i),  c_{t-1} ⊙ σ'(z_f),  i ⊙ φ'(z_g),  φ(c') ⊙ σ'(z_o)]
        cell_factor = o ⊙ φ'(c')                                           (k, N, H)

    ``block`` steps are done per call: as many as fit in ~512 KB of gates, so that a block
    stays in cache while the steps of :func:`~mlstm.ops.lstm.lstm_backward` use it (the
    whole sequence of a small model, one step of a large one).
    """

    CACHE_BYTES = 512 * 1024

    def __init__(self, gate_activation: GateActivation, T: int, N: int, H: int, dtype: DTypeLike,
                 buffers: LayerBuffers | None = None) -> None:
        self.gate_activation, self.H = gate_activation, H
        self.activation = gate_activation.activation
        self.block = steps_within(self.CACHE_BYTES, T, N, H, dtype)
        # Scratch from the pool (``buffers``, a LayerBuffers): allocating it afresh at every
        # call cost 40 % of the backward pass at size S with 2 BLAS threads (page faults of
        # a new mapping).
        empty = np.empty if buffers is None else buffers.empty
        self.gate_scratch = empty((self.block, N, 4 * H), dtype)
        self.cell_factor, self.tanh_c, self.forget = (
            empty((self.block, N, H), dtype) for _ in range(3))

    def compute(self, gates: FloatArray, c_states: FloatArray, out: FloatArray
                ) -> tuple[FloatArray, FloatArray]:
        """Fill ``out`` (k, N, 4H) from ``gates`` (k, N, 4H) and ``c_states`` (k+1, N, H)
        (c_{t-1} for each step, then c'_t of the last); returns cell_factor (k, N, H) and
        a contiguous copy of the forget gates f (k, N, H) (a strided f in each step's
        ``dc' ⊙ f`` costs ~4x as much at small sizes).

        At a masked step c_t is not c'_t, but the carried gradients are zero there.
        """
        H, k = self.H, gates.shape[0]
        self.gate_activation.derivative(gates, out=out, scratch=self.gate_scratch[:k])
        tanh_c = self.gate_activation.cell(c_states[1:], out=self.tanh_c[:k])
        out[..., 3 * H:] *= tanh_c
        out[..., :H] *= gates[..., 2 * H:3 * H]
        out[..., H:2 * H] *= c_states[:-1]
        out[..., 2 * H:3 * H] *= gates[..., :H]
        cell_factor = derivative_from_output(self.activation, tanh_c, out=self.cell_factor[:k])
        cell_factor *= gates[..., 3 * H:]
        forget = self.forget[:k]
        np.copyto(forget, gates[..., H:2 * H])
        return cell_factor, forget



class MaskedCarry:
    """The masked-step bookkeeping of :func:`~mlstm.ops.lstm.lstm_backward`.

    At step t with mask m (N, 1), where ``y_t = m h'_t + (1 - m) y_{t-1}``::

        dy_t  = dL/dy_t + (1 - m_{t+1}) dy_{t+1}          the output gradient, carried
        dh'_t = m (dh_t + dy_t),    dc'_t starts from m dc_t
        to step t-1:  dh_{t-1} = (1 - m) dh_t + dz_t U^T,   dc_{t-1} = (1 - m) dc_t + dc'_t ⊙ f_t
    """

    def __init__(self, step_mask: BoolArray, N: int, H: int, dtype: DTypeLike) -> None:
        self.valid = step_mask.astype(dtype)             # (T, N, 1)
        self.invalid = (~step_mask).astype(dtype)
        self.d_y = np.zeros((N, H), dtype=dtype)
        self.d_c_valid = np.empty((N, H), dtype=dtype)
        self.scratch = np.empty((N, H), dtype=dtype)

    def split(self, t: int, d_h: FloatArray, d_c: FloatArray, d_out_t: FloatArray | None,
              out: FloatArray) -> FloatArray:
        """dh'_t into ``out``; returns m dc_t; leaves (1 - m) dh_t, (1 - m) dc_t in d_h, d_c."""
        valid, invalid = self.valid[t], self.invalid[t]
        if d_out_t is not None:
            self.d_y += d_out_t
        np.add(d_h, self.d_y, out=out)
        out *= valid
        self.d_y *= invalid
        np.multiply(d_c, valid, out=self.d_c_valid)
        d_c *= invalid
        d_h *= invalid
        return self.d_c_valid

