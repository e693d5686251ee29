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

This module is the fast path. To learn what it computes, read
:mod:`mlstm.ops.lstm_reference` first: the same forward and backward pass one step at a
time, written plainly; ``tests/test_lstm_reference.py`` checks that the two agree.

How it is made fast (docs/performance.md has the measurements):

- everything is vectorized over the batch; the only Python loop is over time;
- the input projection ``x W + b`` of all steps is one GEMM, the recurrence one GEMM per
  step, and the backward pass forms ``dW`` and ``dU`` as single GEMMs over all steps;
- every per-step array is a slice of a buffer allocated once per call, written with
  ``out=``; without a mask the outputs *are* the stored hidden states (no copy); the
  large buffers are recycled from one call to the next (:data:`BUFFERS`, the buffer pool
  in ``_buffer_pool.py``, which keeps at most one call's arrays per LSTM);
- the four gate activations take one pass (see :class:`GateActivation`, in
  ``_lstm_gates.py``): with Keras' defaults, σ(z) = ½ tanh(z/2) + ½, so a single float32
  ``tanh`` over the whole (N, 4H) row activates all four blocks. SciPy's ``expit`` costs
  ~10x more per element;
- the backward pass multiplies precomputed local factors into dz, a block of steps at a
  time, and adds the weight gradients a chunk of steps at a time (``_lstm_gradients.py``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .._typing import BoolArray, Cache, FloatArray
from ._buffer_pool import BUFFERS, BufferPool, CallCache, LayerBuffers
from ._lstm_gates import GateActivation
from ._lstm_gradients import LocalFactors, MaskedCarry, WeightGradients, steps_within
from ._lstm_threads import backward_threads, forward_threads
from .lstm_reference import lstm_step

__all__ = ["lstm_forward", "lstm_backward", "lstm_step", "input_projection",
           "GateActivation", "LocalFactors", "BufferPool", "BUFFERS"]

#: Without ``keep_d_gates``, :func:`lstm_backward` keeps dz_t for this many bytes of steps
#: and adds their share of the weight gradients with one GEMM each: long enough that the
#: GEMMs run near full rate, short enough that dz stays in cache.
GRADIENT_CHUNK_BYTES = 4 << 20


def lstm_forward(x: FloatArray, kernel: FloatArray, recurrent_kernel: FloatArray,
                 bias: FloatArray | None = None, h0: FloatArray | None = None,
                 c0: FloatArray | None = None, mask: BoolArray | None = None,
                 go_backwards: bool = False, activation: str = "tanh",
                 recurrent_activation: str = "sigmoid"
                 ) -> tuple[tuple[FloatArray, FloatArray, FloatArray], Cache]:
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
    # The cache exists from the start, so that the pool knows this call is under way.
    cache = CallCache()
    buffers = BUFFERS.start_call(recurrent_kernel, cache)
    gate_activation = GateActivation(activation, recurrent_activation, N, H, dtype, buffers)
    W, U, b = gate_activation.fold_into_weights(kernel, recurrent_kernel, bias)

    # states[t] is the state *before* step t; states[T] the final one.
    h_states = buffers.empty((T + 1, N, H), dtype)
    c_states = buffers.empty((T + 1, N, H), dtype)
    h_states[0] = 0 if h0 is None else h0
    c_states[0] = 0 if c0 is None else c0
    if step_mask is None:
        outputs_tm = h_states[1:]                  # y_t = h_t
    else:
        outputs_tm = buffers.empty((T, N, H), dtype)
    # The GEMMs run with the BLAS threading mlstm.parallel chooses for this size
    # (single-threaded unless the steps' GEMMs are large: parallel.lstm_forward_threads).
    with forward_threads(N, H):
        # x_t W + b for all steps at once; gates[t] then receives h_{t-1} U and is activated
        # in place: after step t it holds i, f, g, o.
        gates = input_projection(x_tm, W, b, buffers)
        _forward_steps(gates, h_states, c_states, U, outputs_tm, step_mask, gate_activation)

    outputs = outputs_tm.transpose(1, 0, 2)
    cache.update(x_tm=x_tm, kernel=kernel, recurrent_kernel=recurrent_kernel,
                 use_bias=bias is not None, gates=gates, h_states=h_states,
                 c_states=c_states, step_mask=step_mask,
                 go_backwards=go_backwards, activation=activation,
                 recurrent_activation=recurrent_activation)
    return (outputs, h_states[T], c_states[T]), cache


def _forward_steps(gates: FloatArray, h_states: FloatArray, c_states: FloatArray,
                   U: FloatArray, outputs_tm: FloatArray | None, step_mask: BoolArray | None,
                   gate_activation: GateActivation) -> None:
    """The time loop of :func:`lstm_forward`: activates ``gates`` (T, N, 4H) in place and
    fills ``h_states[1:]``, ``c_states[1:]`` and, with a mask, ``outputs_tm``."""
    T, N, H4 = gates.shape
    H, dtype = H4 // 4, gates.dtype
    tanh_c = np.empty((N, H), dtype=dtype)         # φ(c'_t); backward recomputes it from c_t
    recurrent = np.empty((N, 4 * H), dtype=dtype)  # h_{t-1} U
    ig = np.empty((N, H), dtype=dtype)             # i_t ⊙ g_t
    # The step's activated gates again, one contiguous (N, H) array per gate: a product
    # of (N, H) blocks strided inside (N, 4H) rows costs ~4x a contiguous one at small
    # sizes, so one copy per step pays for the three products below.
    i, f, g, o = gate_blocks = np.empty((4, N, H), dtype=dtype)
    gate_blocks_by_row = gate_blocks.transpose(1, 0, 2)          # (N, 4, H) view
    if step_mask is not None:
        step_invalid = ~step_mask
        assert outputs_tm is not None       # lstm_forward allocates it with a mask
        masked_outputs: FloatArray = outputs_tm
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
            np.copyto(masked_outputs[t], h_new)
            np.copyto(masked_outputs[t], masked_outputs[t - 1] if t else 0, where=invalid)
            np.copyto(h_new, h_prev, where=invalid)
            np.copyto(c_new, c_prev, where=invalid)


def lstm_backward(d_outputs: FloatArray | None, d_h_last: FloatArray | None,
                  d_c_last: FloatArray | None, cache: Cache, input_grad: bool = True,
                  keep_d_gates: bool = True) -> dict[str, Any]:
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
    T, N, D = x_tm.shape
    H = cache["recurrent_kernel"].shape[0]
    dtype = x_tm.dtype
    buffers = BUFFERS.for_layer(cache["recurrent_kernel"])
    gate_activation = GateActivation(cache["activation"], cache["recurrent_activation"], N, H,
                                     dtype, buffers)
    # dL/dz_t of every step, or of one chunk of steps at a time (rows t - chunk start)
    chunk = T if keep_d_gates else steps_within(GRADIENT_CHUNK_BYTES, T, N, H, dtype)
    # The BLAS threading and the spare thread mlstm.parallel chooses for this backward pass
    # (parallel.lstm_backward_threads): with a helper, each chunk's weight gradients are
    # added there while this thread runs the next chunk's steps into a second buffer.
    with backward_threads(N, H, T > chunk) as helper:
        return _backward_chunks(d_outputs, d_h_last, d_c_last, cache, input_grad,
                                keep_d_gates, gate_activation, buffers, chunk, helper)


def _backward_chunks(d_outputs: FloatArray | None, d_h_last: FloatArray | None,
                     d_c_last: FloatArray | None, cache: Cache, input_grad: bool,
                     keep_d_gates: bool, gate_activation: GateActivation,
                     buffers: LayerBuffers, chunk: int, helper: Any) -> dict[str, Any]:
    """:func:`lstm_backward`, given its gate activation, pooled ``buffers``, ``chunk`` of
    steps and ``helper`` (``submit(function, *args)`` returning a future, or None)."""
    x_tm, gates = cache["x_tm"], cache["gates"]
    h_states, c_states = cache["h_states"], cache["c_states"]
    step_mask = cache["step_mask"]
    kernel, recurrent_kernel = cache["kernel"], cache["recurrent_kernel"]
    T, N, D = x_tm.shape
    H = recurrent_kernel.shape[0]
    dtype = x_tm.dtype

    # dz of the chunk being run; with a helper, a second buffer for the chunk whose weight
    # gradients are being added meanwhile
    d_gates_buffers = [buffers.empty((chunk, N, 4 * H), dtype)
                       for _ in range(1 if helper is None else 2)]
    d_h_steps = buffers.empty((T, N, H), dtype)      # dL/dh'_t for every step
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
        masked = MaskedCarry(step_mask, N, H, dtype)
    # The step's backward equations, split into *local factors* [..] that depend on the
    # forward pass only, and the gradients dh'_t, dc'_t carried back through time:
    #   h' = o ⊙ φ(c')            =>  dz_o = dh' ⊙ [φ(c') ⊙ σ'(z_o)],  dc' = dc + dh' ⊙ [o ⊙ φ'(c')]
    #   c' = f ⊙ c_{t-1} + i ⊙ g   =>  dz_i = dc' ⊙ [g ⊙ σ'(z_i)],  dz_f = dc' ⊙ [c_{t-1} ⊙ σ'(z_f)],
    #                                 dz_g = dc' ⊙ [i ⊙ φ'(z_g)],   dc_{t-1} = dc' ⊙ f
    #   z = x W + h_{t-1} U + b    =>  dh_{t-1} = dz U^T
    # The local factors are computed for a block of steps at once (few large NumPy calls,
    # the block small enough to stay in cache), straight into d_gates; each step then only
    # multiplies in its carried gradients.
    factors = LocalFactors(gate_activation, T, N, H, dtype, buffers)
    d_c_new_ifc = d_c_new[:, None, :]                # dc' broadcast over the i, f, c blocks
    if step_mask is None:
        # dh'_{T-1} starts from dL/dh_T; each later (earlier in time) dh'_{t-1} starts from
        # the dL/dh_{t-1} = dz_t U^T that step t writes straight into it.
        np.copyto(d_h_steps[T - 1], d_h)

    weight_grads = WeightGradients(x_tm, h_states, kernel, cache["use_bias"],
                                    cache["go_backwards"], input_grad, chunk)
    added: list[Any] = []                            # the helper's futures, chunk by chunk
    try:
        for k, chunk_stop in enumerate(range(T, 0, -chunk)):
            chunk_start = max(0, chunk_stop - chunk)
            if helper is not None and k >= 2:
                added[k - 2].result()                # done with the buffer reused now
            d_gates = d_gates_buffers[k % len(d_gates_buffers)]
            # Per-step views made once: dz_t of the i, f, c blocks as (N, 3, H), of the o block.
            d_gates_ifc = d_gates.reshape(chunk, N, 4, H)[:, :, :3]
            d_gates_o = d_gates[..., 3 * H:]
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
                        # y_t = h_t = h'_t: dh'_t = dL/dh_t + dL/dy_t; dc'_t starts
                        # from dL/dc_t.
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
                        np.dot(d_gates[row], recurrent_kernel_T,
                               out=d_h_steps[t - 1] if t else d_h)
                    else:
                        # d_h, d_c already hold what masked rows carry past the step:
                        # add its share.
                        d_c += np.multiply(d_c_new, forget[t - start], out=masked.scratch)
                        d_h += np.dot(d_gates[row], recurrent_kernel_T, out=masked.scratch)
            chunk_d_gates = d_gates[:chunk_stop - chunk_start]
            if helper is None:
                weight_grads.add(chunk_start, chunk_stop, chunk_d_gates)
            else:
                added.append(helper.submit(weight_grads.add, chunk_start, chunk_stop,
                                           chunk_d_gates))
    finally:
        for future in added:
            future.exception()                       # wait: the helper reads our buffers
    for future in added:
        future.result()                              # (raises the helper's error, if any)

    grads = weight_grads.result()
    grads.update(h0=d_h, c0=d_c, d_h_steps=d_h_steps,
                 d_gates=d_gates_buffers[0] if keep_d_gates else None)
    return grads


def input_projection(x_tm: FloatArray, kernel: FloatArray, bias: FloatArray | None = None,
                     buffers: LayerBuffers | None = None) -> FloatArray:
    """``x_t W + b`` for every step as one GEMM.

    The bias rides along as the weight of a constant input 1, so that no second pass over
    the (T, N, 4H) result is needed: ``[x_t, 1] @ [W; b]``, i.e. (T·N, D+1) @ (D+1, 4H).

    Parameters
    ----------
    x_tm : ndarray (T, N, D)
    kernel : ndarray (D, 4H)
    bias : ndarray (4H,) or None
    buffers : LayerBuffers or None
        Where the result's array comes from (:data:`BUFFERS`); None: a new array.

    Returns
    -------
    ndarray (T, N, 4H), C-contiguous
    """
    T, N, D = x_tm.shape
    empty = np.empty if buffers is None else buffers.empty
    out = empty((T * N, kernel.shape[1]), np.result_type(x_tm, kernel))
    if bias is None:
        return np.matmul(x_tm.reshape(T * N, D), kernel, out=out).reshape(T, N, -1)
    x_and_one = np.empty((T, N, D + 1), dtype=x_tm.dtype)   # temporary: not recycled
    x_and_one[:, :, :D] = x_tm
    x_and_one[:, :, D] = 1
    kernel_and_bias = np.concatenate([kernel, bias[None, :].astype(kernel.dtype, copy=False)])
    return np.matmul(x_and_one.reshape(T * N, D + 1), kernel_and_bias, out=out).reshape(T, N, -1)
