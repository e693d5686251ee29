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

Everything is vectorized over the batch; the only Python loop is over time. The input
projection ``x W + b`` for all steps is one GEMM, the recurrence one GEMM per step, and the
backward pass forms ``dW`` and ``dU`` as single GEMMs over all steps.
"""
from __future__ import annotations

import numpy as np

from .activations import activate, derivative_from_output

__all__ = ["lstm_forward", "lstm_backward", "lstm_step"]


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
    cache : dict
        What :func:`lstm_backward` needs; never modified by it.
    """
    N, T, D = x.shape
    H = recurrent_kernel.shape[0]
    dtype = x.dtype
    # Time-major layout: each step reads a contiguous (N, ·) block.
    x_tm = np.ascontiguousarray(x.transpose(1, 0, 2)[::-1] if go_backwards
                                else x.transpose(1, 0, 2))
    step_mask = None
    if mask is not None:
        mask_tm = mask.T[::-1] if go_backwards else mask.T
        step_mask = np.ascontiguousarray(mask_tm, dtype=bool)[:, :, None]  # (T, N, 1)

    # Input projection for all steps at once: (T·N, D) @ (D, 4H).
    gates = (x_tm.reshape(T * N, D) @ kernel).reshape(T, N, 4 * H)
    if bias is not None:
        gates += bias
    # states[t] is the state *before* step t; states[T] the final one.
    h_states = np.empty((T + 1, N, H), dtype=dtype)
    c_states = np.empty((T + 1, N, H), dtype=dtype)
    h_states[0] = 0 if h0 is None else h0
    c_states[0] = 0 if c0 is None else c0
    tanh_c = np.empty((T, N, H), dtype=dtype)      # φ(c'_t)
    outputs_tm = np.empty((T, N, H), dtype=dtype)  # y_t
    recurrent = np.empty((N, 4 * H), dtype=dtype)
    c_new = np.empty((N, H), dtype=dtype)
    h_new = np.empty((N, H), dtype=dtype)
    ig = np.empty((N, H), dtype=dtype)

    for t in range(T):
        z = gates[t]
        np.matmul(h_states[t], recurrent_kernel, out=recurrent)
        z += recurrent
        # Activate in place: gates[t] now holds i, f, g, o (the pre-activations are not kept).
        activate(recurrent_activation, z[:, :2 * H], out=z[:, :2 * H])
        activate(activation, z[:, 2 * H:3 * H], out=z[:, 2 * H:3 * H])
        activate(recurrent_activation, z[:, 3 * H:], out=z[:, 3 * H:])
        i, f, g, o = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H], z[:, 3 * H:]
        np.multiply(f, c_states[t], out=c_new)
        np.multiply(i, g, out=ig)
        c_new += ig
        activate(activation, c_new, out=tanh_c[t])
        np.multiply(o, tanh_c[t], out=h_new)
        if step_mask is None:
            c_states[t + 1] = c_new
            h_states[t + 1] = h_new
            outputs_tm[t] = h_new
        else:
            m = step_mask[t]
            np.copyto(c_states[t + 1], np.where(m, c_new, c_states[t]))
            np.copyto(h_states[t + 1], np.where(m, h_new, h_states[t]))
            if t == 0:
                np.copyto(outputs_tm[0], np.where(m, h_new, 0))
            else:
                np.copyto(outputs_tm[t], np.where(m, h_new, outputs_tm[t - 1]))

    outputs = outputs_tm.transpose(1, 0, 2)
    cache = dict(x_tm=x_tm, kernel=kernel, recurrent_kernel=recurrent_kernel,
                 use_bias=bias is not None, gates=gates, h_states=h_states,
                 c_states=c_states, tanh_c=tanh_c, step_mask=step_mask,
                 go_backwards=go_backwards, activation=activation,
                 recurrent_activation=recurrent_activation)
    return (outputs, h_states[T], c_states[T]), cache


def lstm_backward(d_outputs, d_h_last, d_c_last, cache):
    """Backpropagate through time.

    Parameters
    ----------
    d_outputs : ndarray (N, T, H) or None
        Gradient with respect to the output sequence (processing order); to
        differentiate only the last output, pass zeros except at ``[:, -1]``.
    d_h_last, d_c_last : ndarray (N, H) or None
        Gradients with respect to the final states (``return_state``).
    cache : dict
        From :func:`lstm_forward`.

    Returns
    -------
    grads : dict
        ``x`` (N, T, D), ``kernel`` (D, 4H), ``recurrent_kernel`` (H, 4H), ``bias`` (4H,)
        (only when the forward pass had one), ``h0``, ``c0`` (N, H), and ``d_h_steps`` (T, N, H):
        dL/dh'_t, the gradient reaching each step's new hidden state (processing order),
        kept for gradient-through-time diagnostics.
        ``d_gates`` (T, N, 4H): dL/dz_t per step and sample (per-sample gradients).
    """
    x_tm = cache["x_tm"]
    gates = cache["gates"]
    h_states, c_states, tanh_c = cache["h_states"], cache["c_states"], cache["tanh_c"]
    step_mask = cache["step_mask"]
    kernel, recurrent_kernel = cache["kernel"], cache["recurrent_kernel"]
    act, rec_act = cache["activation"], cache["recurrent_activation"]
    T, N, D = x_tm.shape
    H = recurrent_kernel.shape[0]
    dtype = x_tm.dtype

    d_gates = np.empty((T, N, 4 * H), dtype=dtype)   # dL/dz_t for every step
    d_h_new_all = np.empty((T, N, H), dtype=dtype)
    d_h = np.zeros((N, H), dtype=dtype) if d_h_last is None else d_h_last.astype(dtype, copy=True)
    d_c = np.zeros((N, H), dtype=dtype) if d_c_last is None else d_c_last.astype(dtype, copy=True)
    d_out_carry = np.zeros((N, H), dtype=dtype)      # dL/dy_t accumulated from later steps
    d_out_tm = None if d_outputs is None else d_outputs.transpose(1, 0, 2)
    d_c_new = np.empty((N, H), dtype=dtype)
    scratch = np.empty((N, H), dtype=dtype)
    recurrent_kernel_T = np.ascontiguousarray(recurrent_kernel.T)

    for t in range(T - 1, -1, -1):
        if d_out_tm is not None:
            d_out_carry += d_out_tm[t]
        i, f = gates[t, :, :H], gates[t, :, H:2 * H]
        g, o = gates[t, :, 2 * H:3 * H], gates[t, :, 3 * H:]
        dz = d_gates[t]
        d_h_new = d_h_new_all[t]
        if step_mask is None:
            # y_t = h_t = h'_t: both gradients reach h'_t.
            np.add(d_h, d_out_carry, out=d_h_new)
            np.copyto(d_c_new, d_c)
            # Everything now flows through step t; the previous step's gradients start empty.
            d_out_carry[...] = 0
            d_h[...] = 0
            d_c[...] = 0
        else:
            m = step_mask[t]
            np.copyto(d_h_new, np.where(m, d_h + d_out_carry, 0))
            np.copyto(d_c_new, np.where(m, d_c, 0))
            # Masked steps pass the gradient straight to the previous output/state.
            d_out_carry *= ~m
            d_h *= ~m
            d_c *= ~m
        # h' = o ⊙ φ(c')  =>  do = dh' ⊙ φ(c'),  dc' += dh' ⊙ o ⊙ φ'(c')
        np.multiply(d_h_new, tanh_c[t], out=dz[:, 3 * H:])
        derivative_from_output(act, tanh_c[t], out=scratch)
        scratch *= o
        scratch *= d_h_new
        d_c_new += scratch
        # c' = f ⊙ c_{t-1} + i ⊙ g  =>  di = dc' g, df = dc' c_{t-1}, dg = dc' i, dc_{t-1} = dc' f
        np.multiply(d_c_new, g, out=dz[:, :H])
        np.multiply(d_c_new, c_states[t], out=dz[:, H:2 * H])
        np.multiply(d_c_new, i, out=dz[:, 2 * H:3 * H])
        np.multiply(d_c_new, f, out=scratch)
        d_c += scratch
        # Through the gate activations: dz = d(gate) ⊙ act'(gate).
        dz_if, dz_g, dz_o = dz[:, :2 * H], dz[:, 2 * H:3 * H], dz[:, 3 * H:]
        dz_if *= derivative_from_output(rec_act, gates[t, :, :2 * H])
        dz_g *= derivative_from_output(act, g)
        dz_o *= derivative_from_output(rec_act, o)
        # z_t = x_t W + h_{t-1} U + b  =>  dh_{t-1} += dz U^T
        d_h += dz @ recurrent_kernel_T

    d_gates_flat = d_gates.reshape(T * N, 4 * H)
    grads = {
        "kernel": x_tm.reshape(T * N, D).T @ d_gates_flat,
        "recurrent_kernel": h_states[:T].reshape(T * N, H).T @ d_gates_flat,
        "h0": d_h,
        "c0": d_c,
        "d_h_steps": d_h_new_all,
        "d_gates": d_gates,
    }
    if cache["use_bias"]:
        grads["bias"] = d_gates_flat.sum(axis=0)
    d_x_tm = (d_gates_flat @ kernel.T).reshape(T, N, D)
    if cache["go_backwards"]:
        d_x_tm = d_x_tm[::-1]
    grads["x"] = d_x_tm.transpose(1, 0, 2)
    return grads
