"""Whole-sequence LSTM: forward and backpropagation through time.

Forward equations (Keras layout; gate blocks of width H in the order i, f, c, o)::

    z_t  = x_t W + h_{t-1} U + b                     W: (D, 4H), U: (H, 4H), b: (4H,)
    i_t  = σ(z_t[i]),  f_t = σ(z_t[f]),  g_t = φ(z_t[c]),  o_t = σ(z_t[o])
    c'_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    h'_t = o_t ⊙ φ(c'_t)

σ is the recurrent activation (sigmoid), φ the activation (tanh). With a mask m_t
(1 = valid step) the state is carried through masked steps and the *output* repeats the
previous output, starting from zeros (not from h0), exactly as Keras does::

    c_t = m_t c'_t + (1 - m_t) c_{t-1}
    h_t = m_t h'_t + (1 - m_t) h_{t-1}
    y_t = m_t h'_t + (1 - m_t) y_{t-1},      y_{-1} = 0

With ``go_backwards`` the sequence (and mask) is reversed before processing and the
returned sequence stays in processing order.

How it is made fast (docs/performance.md has the measurements):

- everything is vectorized over the batch; the only Python loop is over time;
- the input projection ``x W + b`` of all steps is one GEMM, the recurrence one GEMM per
  step, and the backward pass forms ``dW`` and ``dU`` as single GEMMs over all steps;
- every per-step array is a slice of a buffer allocated once per call, written with
  ``out=``; without a mask the outputs *are* the stored hidden states (no copy);
- the four gate activations take one pass (see :class:`GateActivation`): with Keras'
  defaults, σ(z) = ½ tanh(z/2) + ½, so a single float32 ``tanh`` over the whole (N, 4H)
  row activates all four blocks. SciPy's ``expit`` costs ~10x more per element.
"""
from __future__ import annotations

import functools
import math
import sys
import threading

import numpy as np

from .activations import activate, derivative_from_output

__all__ = ["lstm_forward", "lstm_backward", "lstm_step", "input_projection",
           "GateActivation", "LocalFactors", "BufferPool", "BUFFERS"]


def lstm_step(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias=None,
              activation="tanh", recurrent_activation="sigmoid"):
    """One unmasked LSTM step, written plainly (the reference for :func:`lstm_forward`).

    Parameters
    ----------
    x_t : ndarray (N, D)
    h_prev, c_prev : ndarray (N, H)
    kernel : ndarray (D, 4H)
    recurrent_kernel : ndarray (H, 4H)
    bias : ndarray (4H,) or None

    Returns
    -------
    h_t, c_t : ndarray (N, H)
    """
    H = recurrent_kernel.shape[0]
    z = x_t @ kernel + h_prev @ recurrent_kernel
    if bias is not None:
        z = z + bias
    i = activate(recurrent_activation, z[:, :H])
    f = activate(recurrent_activation, z[:, H:2 * H])
    g = activate(activation, z[:, 2 * H:3 * H])
    o = activate(recurrent_activation, z[:, 3 * H:])
    c_t = f * c_prev + i * g
    h_t = o * activate(activation, c_t)
    return h_t, c_t


def lstm_forward(x, kernel, recurrent_kernel, bias=None, h0=None, c0=None, mask=None,
                 go_backwards=False, activation="tanh", recurrent_activation="sigmoid"):
    """Run an LSTM over a whole batch of sequences.

    Parameters
    ----------
    x : ndarray (N, T, D)
    kernel : ndarray (D, 4H)
    recurrent_kernel : ndarray (H, 4H)
    bias : ndarray (4H,) or None
    h0, c0 : ndarray (N, H) or None
        Initial states; zeros when None.
    mask : ndarray of bool (N, T) or None
        True where the step is valid.
    go_backwards : bool
        Process the sequence from t = T-1 down to 0.
    activation, recurrent_activation : str
        φ and σ above.

    Returns
    -------
    (outputs, h_last, c_last) : ndarray (N, T, H), (N, H), (N, H)
        ``outputs[:, k]`` is y at the k-th *processed* step; ``h_last``/``c_last`` are the
        final states (carried through masked steps). The last output is ``outputs[:, -1]``.
        They share memory with the cache: treat them as read-only.
    cache : dict
        What :func:`lstm_backward` needs; never modified by it.
    """
    N, T, D = x.shape
    H = recurrent_kernel.shape[0]
    dtype = x.dtype
    # Time-major view of x (no copy: the cache refers to x, which must not change while
    # the cache is in use); the GEMMs below gather it into (T·N, D) rows when they need it.
    x_tm = x.transpose(1, 0, 2)[::-1] if go_backwards else x.transpose(1, 0, 2)
    step_mask = None
    if mask is not None:
        mask_tm = mask.T[::-1] if go_backwards else mask.T
        step_mask = np.ascontiguousarray(mask_tm, dtype=bool)[:, :, None]  # (T, N, 1)
    gate_activation = GateActivation(activation, recurrent_activation, N, H, dtype)
    W, U, b = gate_activation.fold_into_weights(kernel, recurrent_kernel, bias)

    # x_t W + b for all steps at once; gates[t] then receives h_{t-1} U and is activated in
    # place: after step t it holds i, f, g, o.
    gates = input_projection(x_tm, W, b)
    # states[t] is the state *before* step t; states[T] the final one.
    h_states = BUFFERS.empty((T + 1, N, H), dtype)
    c_states = BUFFERS.empty((T + 1, N, H), dtype)
    h_states[0] = 0 if h0 is None else h0
    c_states[0] = 0 if c0 is None else c0
    tanh_c = np.empty((N, H), dtype=dtype)         # φ(c'_t); backward recomputes it from c_t
    recurrent = np.empty((N, 4 * H), dtype=dtype)  # h_{t-1} U
    ig = np.empty((N, H), dtype=dtype)             # i_t ⊙ g_t
    # The step's activated gates again, one contiguous (N, H) array per gate: a product
    # of (N, H) blocks strided inside (N, 4H) rows costs ~4x a contiguous one at small
    # sizes, so one copy per step pays for the three products below.
    i, f, g, o = gate_blocks = np.empty((4, N, H), dtype=dtype)
    gate_blocks_by_row = gate_blocks.transpose(1, 0, 2)          # (N, 4, H) view
    if step_mask is None:
        outputs_tm = h_states[1:]                  # y_t = h_t
    else:
        outputs_tm = BUFFERS.empty((T, N, H), dtype)
        step_invalid = ~step_mask
    activate_gates, cell_activation = gate_activation, gate_activation.cell

    # Per-step views made once: step t reads row t of each.
    for t, z, z_by_gate, h_prev, c_prev, h_new, c_new in zip(
            range(T), gates, gates.reshape(T, N, 4, H), h_states[:T], c_states[:T],
            h_states[1:], c_states[1:]):
        # z_t = (x_t W + b) + h_{t-1} U
        np.dot(h_prev, U, out=recurrent)
        z += recurrent
        activate_gates(z)                        # z now holds i, f, g, o
        np.copyto(gate_blocks_by_row, z_by_gate)  # and i, f, g, o their contiguous copies
        # c'_t = f ⊙ c_{t-1} + i ⊙ g
        np.multiply(f, c_prev, out=c_new)
        np.multiply(i, g, out=ig)
        c_new += ig
        # h'_t = o ⊙ φ(c'_t)
        cell_activation(c_new, out=tanh_c)
        np.multiply(o, tanh_c, out=h_new)
        if step_mask is not None:
            # y_t = h'_t where valid, else y_{t-1} (zeros before the first valid step);
            # h_t, c_t = the previous state where masked.
            invalid = step_invalid[t]
            np.copyto(outputs_tm[t], h_new)
            np.copyto(outputs_tm[t], outputs_tm[t - 1] if t else 0, where=invalid)
            np.copyto(h_new, h_prev, where=invalid)
            np.copyto(c_new, c_prev, where=invalid)

    outputs = outputs_tm.transpose(1, 0, 2)
    cache = dict(x_tm=x_tm, kernel=kernel, recurrent_kernel=recurrent_kernel,
                 use_bias=bias is not None, gates=gates, h_states=h_states,
                 c_states=c_states, step_mask=step_mask,
                 go_backwards=go_backwards, activation=activation,
                 recurrent_activation=recurrent_activation)
    return (outputs, h_states[T], c_states[T]), cache


def lstm_backward(d_outputs, d_h_last, d_c_last, cache, input_grad=True, keep_d_gates=True):
    """Backpropagate through time.

    Parameters
    ----------
    d_outputs : ndarray (N, T, H) or (N, H) or None
        Gradient with respect to the output sequence (processing order), or, as (N, H),
        with respect to the last output only (``return_sequences=False``).
    d_h_last, d_c_last : ndarray (N, H) or None
        Gradients with respect to the final states (``return_state``).
    cache : dict
        From :func:`lstm_forward`.
    input_grad : bool
        Compute ``x``, dL/dx. Training does not need it for a model input, and it costs
        a (T·N, 4H) @ (4H, D) GEMM.
    keep_d_gates : bool
        Return ``d_gates`` for every step (per-sample gradients need it). When False, dz_t
        lives only for a chunk of steps (:data:`GRADIENT_CHUNK_BYTES`) whose share of the
        weight gradients is added at once: the (T, N, 4H) array — a third of what the
        backward pass must keep from the forward — is never allocated.

    Returns
    -------
    grads : dict
        ``x`` (N, T, D) (None unless ``input_grad``), ``kernel`` (D, 4H), ``recurrent_kernel`` (H, 4H), ``bias`` (4H,)
        (only when the forward pass had one), ``h0``, ``c0`` (N, H), and ``d_h_steps`` (T, N, H):
        dL/dh'_t, the gradient reaching each step's new hidden state (processing order),
        kept for gradient-through-time diagnostics.
        ``d_gates`` (T, N, 4H): dL/dz_t per step and sample (per-sample gradients), None
        unless ``keep_d_gates``.
    """
    x_tm = cache["x_tm"]
    gates = cache["gates"]
    h_states, c_states = cache["h_states"], cache["c_states"]
    step_mask = cache["step_mask"]
    kernel, recurrent_kernel = cache["kernel"], cache["recurrent_kernel"]
    act = cache["activation"]
    T, N, D = x_tm.shape
    H = recurrent_kernel.shape[0]
    dtype = x_tm.dtype
    gate_activation = GateActivation(act, cache["recurrent_activation"], N, H, dtype)

    # dL/dz_t of every step, or of one chunk of steps at a time (rows t - chunk start)
    chunk = T if keep_d_gates else _steps_within(GRADIENT_CHUNK_BYTES, T, N, H, dtype)
    d_gates = BUFFERS.empty((chunk, N, 4 * H), dtype)
    d_h_steps = BUFFERS.empty((T, N, H), dtype)      # dL/dh'_t for every step
    # Gradients carried to the previous step: dL/dh_{t-1}, dL/dc_{t-1} (and dL/dy_{t-1}).
    d_h = np.zeros((N, H), dtype=dtype) if d_h_last is None else d_h_last.astype(dtype, copy=True)
    d_c = np.zeros((N, H), dtype=dtype) if d_c_last is None else d_c_last.astype(dtype, copy=True)
    d_out_tm = None
    if d_outputs is not None and d_outputs.ndim == 3:
        d_out_tm = d_outputs.transpose(1, 0, 2)
    d_last_output = d_outputs if d_outputs is not None and d_outputs.ndim == 2 else None
    d_c_new = np.empty((N, H), dtype=dtype)          # dL/dc'_t
    recurrent_kernel_T = np.ascontiguousarray(recurrent_kernel.T)
    if step_mask is not None:
        masked = _MaskedCarry(step_mask, N, H, dtype)
    # The step's backward equations, split into *local factors* [..] that depend on the
    # forward pass only, and the gradients dh'_t, dc'_t carried back through time:
    #   h' = o ⊙ φ(c')            =>  dz_o = dh' ⊙ [φ(c') ⊙ σ'(z_o)],  dc' = dc + dh' ⊙ [o ⊙ φ'(c')]
    #   c' = f ⊙ c_{t-1} + i ⊙ g   =>  dz_i = dc' ⊙ [g ⊙ σ'(z_i)],  dz_f = dc' ⊙ [c_{t-1} ⊙ σ'(z_f)],
    #                                 dz_g = dc' ⊙ [i ⊙ φ'(z_g)],   dc_{t-1} = dc' ⊙ f
    #   z = x W + h_{t-1} U + b    =>  dh_{t-1} = dz U^T
    # The local factors are computed for a block of steps at once (few large NumPy calls,
    # the block small enough to stay in cache), straight into d_gates; each step then only
    # multiplies in its carried gradients.
    factors = LocalFactors(gate_activation, T, N, H, dtype)
    # Per-step views made once: dz_t of the i, f, c blocks as (N, 3, H), of the o block.
    d_gates_ifc = d_gates.reshape(chunk, N, 4, H)[:, :, :3]
    d_gates_o = d_gates[..., 3 * H:]
    d_c_new_ifc = d_c_new[:, None, :]                # dc' broadcast over the i, f, c blocks
    if step_mask is None:
        # dh'_{T-1} starts from dL/dh_T; each later (earlier in time) dh'_{t-1} starts from
        # the dL/dh_{t-1} = dz_t U^T that step t writes straight into it.
        np.copyto(d_h_steps[T - 1], d_h)

    weight_grads = _WeightGradients(x_tm, h_states, kernel, cache["use_bias"],
                                    cache["go_backwards"], input_grad, chunk)
    for chunk_stop in range(T, 0, -chunk):
        chunk_start = max(0, chunk_stop - chunk)
        for stop in range(chunk_stop, chunk_start, -factors.block):
            start = max(chunk_start, stop - factors.block)
            cell_factor, forget = factors.compute(
                gates[start:stop], c_states[start:stop + 1],
                out=d_gates[start - chunk_start:stop - chunk_start])
            for t in range(stop - 1, start - 1, -1):
                row = t - chunk_start                # of d_gates
                d_h_new = d_h_steps[t]
                d_out_t = d_out_tm[t] if d_out_tm is not None else (
                    d_last_output if t == T - 1 else None)
                if step_mask is None:
                    # y_t = h_t = h'_t: dh'_t = dL/dh_t + dL/dy_t; dc'_t starts from dL/dc_t.
                    if d_out_t is not None:
                        d_h_new += d_out_t
                    d_c_in = d_c
                else:
                    d_c_in = masked.split(t, d_h, d_c, d_out_t, out=d_h_new)
                # dc' = dc + dh' ⊙ [o ⊙ φ'(c')]
                np.multiply(d_h_new, cell_factor[t - start], out=d_c_new)
                d_c_new += d_c_in
                # dz = [local factors] ⊙ (dc', dc', dc', dh')   for the blocks i, f, c, o
                d_gates_ifc[row] *= d_c_new_ifc
                d_gates_o[row] *= d_h_new
                # dc_{t-1} = dc' ⊙ f,  dh_{t-1} = dz U^T
                if step_mask is None:
                    np.multiply(d_c_new, forget[t - start], out=d_c)
                    np.dot(d_gates[row], recurrent_kernel_T, out=d_h_steps[t - 1] if t else d_h)
                else:
                    # d_h, d_c already hold what masked rows carry past the step: add its share.
                    d_c += np.multiply(d_c_new, forget[t - start], out=masked.scratch)
                    d_h += np.dot(d_gates[row], recurrent_kernel_T, out=masked.scratch)
        weight_grads.add(chunk_start, chunk_stop, d_gates[:chunk_stop - chunk_start])

    grads = weight_grads.result()
    grads.update(h0=d_h, c0=d_c, d_h_steps=d_h_steps,
                 d_gates=d_gates if keep_d_gates else None)
    return grads


class _WeightGradients:
    """dW = Σ_t x_tᵀ dz_t, dU = Σ_t h_{t-1}ᵀ dz_t, db = Σ_t,n dz_t and dx_t = dz_t Wᵀ, from
    the dz of a chunk of steps at a time: one GEMM each per chunk (with all steps in one
    chunk, one GEMM each over the whole sequence). Later chunks' shares go through one
    scratch array per weight, so that no chunk allocates."""

    def __init__(self, x_tm, h_states, kernel, use_bias, go_backwards, input_grad, chunk):
        self.x_tm, self.h_states, self.kernel = x_tm, h_states, kernel
        self.go_backwards = go_backwards
        T, N, D = x_tm.shape
        self.ones = np.ones(chunk * N, dtype=x_tm.dtype) if use_bias else None
        self.sums, self.scratch = {}, {}
        # (not recycled: a model drops input gradients at once, the pool would keep them alive)
        self.d_x_tm = np.empty((T, N, D), dtype=x_tm.dtype) if input_grad else None

    def add(self, start, stop, d_gates):
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

    def result(self):
        grads = dict(self.sums, x=None)
        if self.d_x_tm is not None:
            d_x_tm = self.d_x_tm[::-1] if self.go_backwards else self.d_x_tm
            grads["x"] = d_x_tm.transpose(1, 0, 2)
        return grads


def _steps_within(nbytes, T, N, H, dtype):
    """How many time steps of (N, 4H) gate rows fit in ``nbytes`` (at least 1, at most T)."""
    step_bytes = N * 4 * H * np.dtype(dtype).itemsize
    return min(T, max(1, nbytes // step_bytes))


def input_projection(x_tm, kernel, bias=None):
    """``x_t W + b`` for every step as one GEMM.

    The bias rides along as the weight of a constant input 1, so that no second pass over
    the (T, N, 4H) result is needed: ``[x_t, 1] @ [W; b]``, i.e. (T·N, D+1) @ (D+1, 4H).

    Parameters
    ----------
    x_tm : ndarray (T, N, D)
    kernel : ndarray (D, 4H)
    bias : ndarray (4H,) or None

    Returns
    -------
    ndarray (T, N, 4H), C-contiguous
    """
    T, N, D = x_tm.shape
    out = BUFFERS.empty((T * N, kernel.shape[1]), np.result_type(x_tm, kernel))
    if bias is None:
        return np.matmul(x_tm.reshape(T * N, D), kernel, out=out).reshape(T, N, -1)
    x_and_one = np.empty((T, N, D + 1), dtype=x_tm.dtype)   # temporary: not recycled
    x_and_one[:, :, :D] = x_tm
    x_and_one[:, :, D] = 1
    kernel_and_bias = np.concatenate([kernel, bias[None, :].astype(kernel.dtype, copy=False)])
    return np.matmul(x_and_one.reshape(T * N, D + 1), kernel_and_bias, out=out).reshape(T, N, -1)


@functools.lru_cache(maxsize=32)
def _one_tanh_constants(N, H, dtype):
    """s (4H,), and s, shift, α repeated over the batch (N, 4H); read-only, cached."""
    def per_block(i, f, c, o):
        return np.repeat(np.array([i, f, c, o], dtype=dtype), H)

    column_scale = per_block(.5, .5, 1, .5)
    constants = (column_scale, np.tile(column_scale, (N, 1)),
                 np.tile(per_block(.5, .5, 0, .5), (N, 1)), np.tile(per_block(0, 0, 1, 0), (N, 1)))
    for c in constants:
        c.flags.writeable = False
    return constants


#: Without ``keep_d_gates``, :func:`lstm_backward` keeps dz_t for this many bytes of steps
#: and adds their share of the weight gradients with one GEMM each: long enough that the
#: GEMMs run near full rate, short enough that dz stays in cache.
GRADIENT_CHUNK_BYTES = 4 << 20


class LocalFactors:
    """The factors of dL/dz_t that depend on the forward pass only, for a block of steps.

    For gates ``(k, N, 4H)`` = i, f, g, o and cell states c_{t-1}, c'_t::

        out         = [g ⊙ σ'(z_i),  c_{t-1} ⊙ σ'(z_f),  i ⊙ φ'(z_g),  φ(c') ⊙ σ'(z_o)]
        cell_factor = o ⊙ φ'(c')                                           (k, N, H)

    ``block`` steps are done per call: as many as fit in ~512 KB of gates, so that a block
    stays in cache while the steps of :func:`lstm_backward` use it (the whole sequence of a
    small model, one step of a large one).
    """

    CACHE_BYTES = 512 * 1024

    def __init__(self, gate_activation, T, N, H, dtype):
        self.gate_activation, self.H = gate_activation, H
        self.activation = gate_activation.activation
        self.block = _steps_within(self.CACHE_BYTES, T, N, H, dtype)
        # Scratch from the pool: allocating it afresh at every call cost 40 % of the
        # backward pass at size S with 2 BLAS threads (page faults of a new mapping).
        self.gate_scratch = BUFFERS.empty((self.block, N, 4 * H), dtype)
        self.cell_factor, self.tanh_c, self.forget = (
            BUFFERS.empty((self.block, N, H), dtype) for _ in range(3))

    def compute(self, gates, c_states, out):
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
    as the arithmetic at small sizes).
    """

    def __init__(self, activation, recurrent_activation, N, H, dtype):
        self.activation, self.recurrent_activation, self.H = activation, recurrent_activation, H
        self.one_tanh = activation == "tanh" and recurrent_activation == "sigmoid"
        #: ``cell(c, out)``: φ(c) into ``out`` (NumPy's own function when φ is tanh: the
        #: dispatch through :func:`activate` is a third of its cost at small sizes).
        self.cell = np.tanh if activation == "tanh" else functools.partial(activate, activation)
        if self.one_tanh:
            self.column_scale, self.scale, self.shift, self.alpha = _one_tanh_constants(
                N, H, np.dtype(dtype).str)

    def fold_into_weights(self, kernel, recurrent_kernel, bias):
        """``(W, U, b)`` scaled column-wise by s (one-tanh form) or unchanged."""
        if not self.one_tanh:
            return kernel, recurrent_kernel, bias
        s = self.column_scale
        return kernel * s, recurrent_kernel * s, None if bias is None else bias * s

    def __call__(self, z):
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

    def derivative(self, gates, out, scratch):
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


class _MaskedCarry:
    """The masked-step bookkeeping of :func:`lstm_backward`.

    At step t with mask m (N, 1), where ``y_t = m h'_t + (1 - m) y_{t-1}``::

        dy_t  = dL/dy_t + (1 - m_{t+1}) dy_{t+1}          the output gradient, carried
        dh'_t = m (dh_t + dy_t),    dc'_t starts from m dc_t
        to step t-1:  dh_{t-1} = (1 - m) dh_t + dz_t U^T,   dc_{t-1} = (1 - m) dc_t + dc'_t ⊙ f_t
    """

    def __init__(self, step_mask, N, H, dtype):
        self.valid = step_mask.astype(dtype)             # (T, N, 1)
        self.invalid = (~step_mask).astype(dtype)
        self.d_y = np.zeros((N, H), dtype=dtype)
        self.d_c_valid = np.empty((N, H), dtype=dtype)
        self.scratch = np.empty((N, H), dtype=dtype)

    def split(self, t, d_h, d_c, d_out_t, out):
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


class BufferPool:
    """Recycles the large arrays of :func:`lstm_forward` / :func:`lstm_backward` across calls.

    The first write to a freshly allocated large array costs a page fault per 4 KB page; on
    the benchmark machine that was 13-20 % of a training step at size M. ``empty`` hands out
    again an array of the same shape and dtype *that nothing references any more* (its only
    reference is this pool): an array held by a cache, a tape, a returned gradient or any
    view of them is never reused, so results are never overwritten behind anyone's back.

    The pool keeps at most ``max_bytes`` of arrays (unreferenced ones are dropped first when
    over); arrays below ``min_bytes`` are plain ``np.empty``. ``clear()`` releases everything;
    ``enabled = False`` turns recycling off. Peak memory within a call is unchanged; between
    calls the pool keeps up to one call's large arrays resident.
    """

    def __init__(self, max_bytes=1 << 30, min_bytes=1 << 16):
        self.max_bytes, self.min_bytes, self.enabled = max_bytes, min_bytes, True
        self._arrays = []                 # oldest first
        self._lock = threading.Lock()
        probe = [np.empty(1)]
        self._unreferenced = sys.getrefcount(probe[0])   # the list's reference + the call's

    def empty(self, shape, dtype):
        """An uninitialized array, recycled when one of this shape and dtype is free."""
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize      # (np.prod costs ~2 µs)
        if not self.enabled or nbytes < self.min_bytes:
            return np.empty(shape, dtype)
        shape = tuple(shape)
        with self._lock:
            for k in range(len(self._arrays)):
                candidate = self._arrays[k]
                if candidate.shape == shape and candidate.dtype == dtype:
                    del candidate
                    if sys.getrefcount(self._arrays[k]) == self._unreferenced:
                        return self._arrays[k]
            array = np.empty(shape, dtype)
            self._make_room(nbytes)
            if self.nbytes + nbytes <= self.max_bytes:
                self._arrays.append(array)
            return array

    @property
    def nbytes(self):
        return sum(a.nbytes for a in self._arrays)

    def _make_room(self, nbytes):
        k = 0
        while self.nbytes + nbytes > self.max_bytes and k < len(self._arrays):
            if sys.getrefcount(self._arrays[k]) == self._unreferenced:
                del self._arrays[k]
            else:
                k += 1

    def clear(self):
        """Forget every recycled array (memory is freed once nothing else holds it)."""
        with self._lock:
            self._arrays = []


#: The pool the LSTM ops draw their large arrays from.
BUFFERS = BufferPool()
