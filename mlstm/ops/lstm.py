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

import numpy as np

from .activations import activate, derivative_from_output

__all__ = ["lstm_forward", "lstm_backward", "lstm_step", "GateActivation"]


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
    # Time-major layout: each step reads a contiguous (N, ·) block.
    x_tm = np.ascontiguousarray(x.transpose(1, 0, 2)[::-1] if go_backwards
                                else x.transpose(1, 0, 2))
    step_mask = None
    if mask is not None:
        mask_tm = mask.T[::-1] if go_backwards else mask.T
        step_mask = np.ascontiguousarray(mask_tm, dtype=bool)[:, :, None]  # (T, N, 1)
    gate_activation = GateActivation(activation, recurrent_activation, H, dtype)
    W, U, b = gate_activation.fold_into_weights(kernel, recurrent_kernel, bias)

    # Input projection for all steps at once: (T·N, D) @ (D, 4H). gates[t] then receives
    # h_{t-1} U and is activated in place: after step t it holds i, f, g, o.
    gates = (x_tm.reshape(T * N, D) @ W).reshape(T, N, 4 * H)
    if b is not None:
        gates += b
    # states[t] is the state *before* step t; states[T] the final one.
    h_states = np.empty((T + 1, N, H), dtype=dtype)
    c_states = np.empty((T + 1, N, H), dtype=dtype)
    h_states[0] = 0 if h0 is None else h0
    c_states[0] = 0 if c0 is None else c0
    tanh_c = np.empty((T, N, H), dtype=dtype)      # φ(c'_t)
    recurrent = np.empty((N, 4 * H), dtype=dtype)  # h_{t-1} U
    ig = np.empty((N, H), dtype=dtype)             # i_t ⊙ g_t
    if step_mask is None:
        outputs_tm = h_states[1:]                  # y_t = h_t
    else:
        outputs_tm = np.empty((T, N, H), dtype=dtype)
        step_invalid = ~step_mask

    for t in range(T):
        z = gates[t]
        # z_t = (x_t W + b) + h_{t-1} U
        np.matmul(h_states[t], U, out=recurrent)
        z += recurrent
        gate_activation(z)                       # z now holds i, f, g, o
        i, f, g, o = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H], z[:, 3 * H:]
        c_new, h_new = c_states[t + 1], h_states[t + 1]
        # c'_t = f ⊙ c_{t-1} + i ⊙ g
        np.multiply(f, c_states[t], out=c_new)
        np.multiply(i, g, out=ig)
        c_new += ig
        # h'_t = o ⊙ φ(c'_t)
        activate(activation, c_new, out=tanh_c[t])
        np.multiply(o, tanh_c[t], out=h_new)
        if step_mask is not None:
            # y_t = h'_t where valid, else y_{t-1} (zeros before the first valid step);
            # h_t, c_t = the previous state where masked.
            invalid = step_invalid[t]
            np.copyto(outputs_tm[t], h_new)
            np.copyto(outputs_tm[t], outputs_tm[t - 1] if t else 0, where=invalid)
            np.copyto(h_new, h_states[t], where=invalid)
            np.copyto(c_new, c_states[t], where=invalid)

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
    act = cache["activation"]
    T, N, D = x_tm.shape
    H = recurrent_kernel.shape[0]
    dtype = x_tm.dtype
    gate_activation = GateActivation(act, cache["recurrent_activation"], H, dtype)

    d_gates = np.empty((T, N, 4 * H), dtype=dtype)   # dL/dz_t for every step
    d_h_steps = np.empty((T, N, H), dtype=dtype)     # dL/dh'_t for every step
    # Gradients carried to the previous step: dL/dh_{t-1}, dL/dc_{t-1} (and dL/dy_{t-1}).
    d_h = np.zeros((N, H), dtype=dtype) if d_h_last is None else d_h_last.astype(dtype, copy=True)
    d_c = np.zeros((N, H), dtype=dtype) if d_c_last is None else d_c_last.astype(dtype, copy=True)
    d_out_tm = None if d_outputs is None else d_outputs.transpose(1, 0, 2)
    d_c_new = np.empty((N, H), dtype=dtype)          # dL/dc'_t
    gate_scratch = np.empty((N, 4 * H), dtype=dtype)
    recurrent_kernel_T = np.ascontiguousarray(recurrent_kernel.T)
    if step_mask is not None:
        masked = _MaskedCarry(step_mask, N, H, dtype)

    for t in range(T - 1, -1, -1):
        i, f = gates[t, :, :H], gates[t, :, H:2 * H]
        g, o = gates[t, :, 2 * H:3 * H], gates[t, :, 3 * H:]
        dz = d_gates[t]
        d_h_new = d_h_steps[t]
        d_out_t = None if d_out_tm is None else d_out_tm[t]
        if step_mask is None:
            # y_t = h_t = h'_t: dh'_t = dL/dh_t + dL/dy_t, and dc'_t starts from dL/dc_t.
            if d_out_t is None:
                np.copyto(d_h_new, d_h)
            else:
                np.add(d_h, d_out_t, out=d_h_new)
            d_c_in = d_c
        else:
            d_c_in = masked.split(t, d_h, d_c, d_out_t, out=d_h_new)
        # Gate derivatives σ'(z), φ'(z) of all four blocks, from the gate values.
        gate_activation.derivative(gates[t], out=dz, scratch=gate_scratch)
        dz_i, dz_f, dz_g, dz_o = dz[:, :H], dz[:, H:2 * H], dz[:, 2 * H:3 * H], dz[:, 3 * H:]
        # h' = o ⊙ φ(c')  =>  dz_o = dh' ⊙ φ(c') ⊙ σ'(z_o),  dc' = dc + dh' ⊙ o ⊙ φ'(c')
        dz_o *= tanh_c[t]
        dz_o *= d_h_new
        derivative_from_output(act, tanh_c[t], out=d_c_new)
        d_c_new *= o
        d_c_new *= d_h_new
        d_c_new += d_c_in
        # c' = f ⊙ c_{t-1} + i ⊙ g  =>  dz_i = dc' ⊙ g ⊙ σ'(z_i),  dz_f = dc' ⊙ c_{t-1} ⊙ σ'(z_f),
        #                               dz_g = dc' ⊙ i ⊙ φ'(z_g),   dc_{t-1} = dc' ⊙ f
        dz_i *= g
        dz_f *= c_states[t]
        dz_g *= i
        dz[:, :3 * H].reshape(N, 3, H)[...] *= d_c_new[:, None, :]
        # z_t = x_t W + h_{t-1} U + b  =>  dh_{t-1} = dz U^T
        if step_mask is None:
            np.multiply(d_c_new, f, out=d_c)
            np.matmul(dz, recurrent_kernel_T, out=d_h)
        else:
            # d_h, d_c already hold what masked rows carry past the step: add the step's share.
            d_c += np.multiply(d_c_new, f, out=masked.scratch)
            d_h += np.matmul(dz, recurrent_kernel_T, out=masked.scratch)

    d_gates_flat = d_gates.reshape(T * N, 4 * H)
    grads = {
        "kernel": x_tm.reshape(T * N, D).T @ d_gates_flat,
        "recurrent_kernel": h_states[:T].reshape(T * N, H).T @ d_gates_flat,
        "h0": d_h,
        "c0": d_c,
        "d_h_steps": d_h_steps,
        "d_gates": d_gates,
    }
    if cache["use_bias"]:
        grads["bias"] = d_gates_flat.sum(axis=0)
    d_x_tm = (d_gates_flat @ kernel.T).reshape(T, N, D)
    if cache["go_backwards"]:
        d_x_tm = d_x_tm[::-1]
    grads["x"] = d_x_tm.transpose(1, 0, 2)
    return grads


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
    """

    def __init__(self, activation, recurrent_activation, H, dtype):
        self.activation, self.recurrent_activation, self.H = activation, recurrent_activation, H
        self.one_tanh = activation == "tanh" and recurrent_activation == "sigmoid"
        if self.one_tanh:
            blocks = np.ones((4, H), dtype=dtype)
            self.scale = (blocks * np.array([.5, .5, 1, .5], dtype=dtype)[:, None]).ravel()
            self.shift = (blocks * np.array([.5, .5, 0, .5], dtype=dtype)[:, None]).ravel()
            self.alpha = (blocks * np.array([0, 0, 1, 0], dtype=dtype)[:, None]).ravel()

    def fold_into_weights(self, kernel, recurrent_kernel, bias):
        """``(W, U, b)`` scaled column-wise by s (one-tanh form) or unchanged."""
        if not self.one_tanh:
            return kernel, recurrent_kernel, bias
        return (kernel * self.scale, recurrent_kernel * self.scale,
                None if bias is None else bias * self.scale)

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
        """dgate/dz of each block from the gate values ``gates`` (N, 4H) into ``out``."""
        if self.one_tanh:
            np.subtract(1, gates, out=out)
            np.add(gates, self.alpha, out=scratch)
            out *= scratch
            return out
        H = self.H
        derivative_from_output(self.recurrent_activation, gates[:, :2 * H], out=out[:, :2 * H])
        derivative_from_output(self.activation, gates[:, 2 * H:3 * H], out=out[:, 2 * H:3 * H])
        derivative_from_output(self.recurrent_activation, gates[:, 3 * H:], out=out[:, 3 * H:])
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
