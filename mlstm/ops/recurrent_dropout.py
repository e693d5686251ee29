"""The LSTM with Keras' per-gate dropout masks (``recurrent_dropout > 0``): forward and BPTT.

Keras 3.15 (``keras/src/layers/rnn/lstm.py``, ``LSTMCell.call`` with ``implementation=1``,
which ``recurrent_dropout != 0`` selects) draws, once per sequence, four input masks
m_i, m_f, m_c, m_o (N, D) (when ``dropout > 0``) and four recurrent masks r_i, r_f, r_c, r_o
(N, H), each ``keep / (1 - rate)`` (:func:`mlstm.ops.dropout.dropout_mask`), and uses them
at every step, each gate seeing its own masked copy of x_t and of h_{t-1}::

    z_t[g] = (x_t ⊙ m_g) W[g] + (h_{t-1} ⊙ r_g) U[g] + b[g]      g in (i, f, c, o)
    i_t, f_t, g_t, o_t, c'_t, h'_t as in mlstm.ops.lstm

and masked steps (a sequence mask from ``Masking``) carry the state and repeat the output,
as without dropout. (With ``recurrent_dropout = 0`` Keras draws one input mask (N, D) shared
by the gates: that is x ⊙ m fed to the ordinary LSTM, done by the layer.)

Backward, with dz_t[g] the gradient of the step's pre-activations (from the cell exactly as
without dropout)::

    dW[g]      = Σ_t (x_t ⊙ m_g)ᵀ dz_t[g]           dU[g] = Σ_t (h_{t-1} ⊙ r_g)ᵀ dz_t[g]
    dx_t       = Σ_g (dz_t[g] W[g]ᵀ) ⊙ m_g          dh_{t-1} += Σ_g (dz_t[g] U[g]ᵀ) ⊙ r_g
    db[g]      = Σ_t Σ_n dz_t[g]

Written plainly (one loop over time, four products per step); the masks are constants of
the pass, so the gradient is checked against finite differences with them held fixed.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .._typing import BoolArray, Cache, FloatArray
from .activations import activate, derivative_from_output

__all__ = ["lstm_gate_dropout_forward", "lstm_gate_dropout_backward"]

GATES = 4


def _gate(array: FloatArray, g: int, H: int) -> FloatArray:
    return array[..., g * H:(g + 1) * H]


def lstm_gate_dropout_forward(x: FloatArray, kernel: FloatArray, recurrent_kernel: FloatArray,
                              bias: FloatArray | None = None,
                              input_masks: FloatArray | None = None,
                              recurrent_masks: FloatArray | None = None,
                              h0: FloatArray | None = None, c0: FloatArray | None = None,
                              mask: BoolArray | None = None, go_backwards: bool = False,
                              activation: str = "tanh", recurrent_activation: str = "sigmoid"
                              ) -> tuple[tuple[FloatArray, FloatArray, FloatArray], Cache]:
    """Run the LSTM over whole sequences with per-gate dropout masks (see the module).

    Parameters
    ----------
    x : ndarray (N, T, D)
    kernel : ndarray (D, 4H)
    recurrent_kernel : ndarray (H, 4H)
    bias : ndarray (4H,) or None
    input_masks : ndarray (4, N, D) or None
        m_i, m_f, m_c, m_o (None: no input dropout).
    recurrent_masks : ndarray (4, N, H) or None
        r_i, r_f, r_c, r_o (None: no recurrent dropout).
    h0, c0 : ndarray (N, H) or None
    mask : ndarray of bool (N, T) or None
        Valid steps.
    go_backwards : bool
    activation, recurrent_activation : str

    Returns
    -------
    (outputs, h_last, c_last), cache
        As :func:`mlstm.ops.lstm.lstm_forward`: outputs (N, T, H) in processing order.
        The cache holds ``gates`` (T, N, 4H, activated), ``pre_activations`` (T, N, 4H),
        ``h_states``/``c_states`` (T+1, N, H) and ``step_mask`` (T, N, 1) or None.
    """
    N, T, D = x.shape
    H = recurrent_kernel.shape[0]
    dtype = x.dtype
    x_tm = x.transpose(1, 0, 2)[::-1] if go_backwards else x.transpose(1, 0, 2)
    step_mask = None
    if mask is not None:
        step_mask = (mask.T[::-1] if go_backwards else mask.T).astype(bool)[:, :, None]
    # the input projection of every step, gate by gate: (x_t ⊙ m_g) W[g] + b[g]
    projection = np.empty((T, N, 4 * H), dtype)
    for g in range(GATES):
        x_g = x_tm if input_masks is None else x_tm * input_masks[g]
        _gate(projection, g, H)[...] = x_g @ _gate(kernel, g, H)
    if bias is not None:
        projection += bias
    h_states = np.zeros((T + 1, N, H), dtype)
    c_states = np.zeros((T + 1, N, H), dtype)
    if h0 is not None:
        h_states[0] = h0
    if c0 is not None:
        c_states[0] = c0
    pre_activations = np.empty((T, N, 4 * H), dtype)
    gates = np.empty((T, N, 4 * H), dtype)
    outputs_tm = np.zeros((T, N, H), dtype)
    for t in range(T):
        h_prev, c_prev = h_states[t], c_states[t]
        z = pre_activations[t]
        z[...] = projection[t]
        for g in range(GATES):
            h_g = h_prev if recurrent_masks is None else h_prev * recurrent_masks[g]
            _gate(z, g, H)[...] += h_g @ _gate(recurrent_kernel, g, H)
        i = activate(recurrent_activation, _gate(z, 0, H))
        f = activate(recurrent_activation, _gate(z, 1, H))
        cand = activate(activation, _gate(z, 2, H))
        o = activate(recurrent_activation, _gate(z, 3, H))
        gates[t] = np.concatenate([i, f, cand, o], axis=1)
        c_new = f * c_prev + i * cand
        h_new = o * activate(activation, c_new)
        if step_mask is None:
            h_states[t + 1], c_states[t + 1] = h_new, c_new
            outputs_tm[t] = h_new
        else:
            valid = step_mask[t]
            h_states[t + 1] = np.where(valid, h_new, h_prev)
            c_states[t + 1] = np.where(valid, c_new, c_prev)
            outputs_tm[t] = np.where(valid, h_new, outputs_tm[t - 1] if t else 0)
    cache = dict(x_tm=x_tm, kernel=kernel, recurrent_kernel=recurrent_kernel,
                 use_bias=bias is not None, input_masks=input_masks,
                 recurrent_masks=recurrent_masks, gates=gates, pre_activations=pre_activations,
                 h_states=h_states, c_states=c_states, step_mask=step_mask,
                 go_backwards=go_backwards, activation=activation,
                 recurrent_activation=recurrent_activation)
    return (outputs_tm.transpose(1, 0, 2), h_states[T], c_states[T]), cache


def lstm_gate_dropout_backward(d_outputs: FloatArray | None, d_h_last: FloatArray | None,
                               d_c_last: FloatArray | None, cache: Cache,
                               input_grad: bool = True, keep_d_gates: bool = True
                               ) -> dict[str, Any]:
    """Backpropagation through time of :func:`lstm_gate_dropout_forward`.

    Parameters and returns as :func:`mlstm.ops.lstm.lstm_backward`: ``d_outputs`` (N, T, H)
    or (N, H) (the last output only) or None; ``d_h_last``, ``d_c_last`` (N, H) or None.
    Returns a dict with ``x`` (None unless ``input_grad``), ``kernel``,
    ``recurrent_kernel``, ``bias`` (when used), ``h0``, ``c0``, ``d_h_steps`` (T, N, H) and
    ``d_gates`` (T, N, 4H) (None unless ``keep_d_gates``).
    """
    x_tm, W, U = cache["x_tm"], cache["kernel"], cache["recurrent_kernel"]
    gates, h_states, c_states = cache["gates"], cache["h_states"], cache["c_states"]
    input_masks, recurrent_masks = cache["input_masks"], cache["recurrent_masks"]
    step_mask = cache["step_mask"]
    sigma, phi = cache["recurrent_activation"], cache["activation"]
    T, N, D = x_tm.shape
    H = U.shape[0]
    dtype = x_tm.dtype
    d_out_tm = np.zeros((T, N, H), dtype)
    if d_outputs is not None:
        if d_outputs.ndim == 2:
            d_out_tm[T - 1] = d_outputs
        else:
            d_out_tm[...] = d_outputs.transpose(1, 0, 2)
    d_h = np.zeros((N, H), dtype) if d_h_last is None else d_h_last.astype(dtype, copy=True)
    d_c = np.zeros((N, H), dtype) if d_c_last is None else d_c_last.astype(dtype, copy=True)
    d_y = np.zeros((N, H), dtype)         # output gradient carried back through masked steps
    d_z_all = np.zeros((T, N, 4 * H), dtype)
    d_h_steps = np.zeros((T, N, H), dtype)
    for t in range(T - 1, -1, -1):
        d_y = d_y + d_out_tm[t]
        if step_mask is None:
            # h_t, c_t and y_t are the step's own: all of their gradient goes into it
            d_h_new, d_c_new = d_h + d_y, d_c
            d_h, d_c, d_y = (np.zeros_like(d_y) for _ in range(3))
        else:
            valid = step_mask[t]
            d_h_new = np.where(valid, d_h + d_y, 0)
            d_c_new = np.where(valid, d_c, 0)
            d_h = np.where(valid, 0, d_h)       # a masked step passes its state through
            d_c = np.where(valid, 0, d_c)
            d_y = np.where(valid, 0, d_y)
        d_h_steps[t] = d_h_new
        i, f, cand, o = (_gate(gates[t], g, H) for g in range(GATES))
        c_prev = c_states[t]
        # φ(c'_t); where the step is masked c_states[t + 1] is the carried state, but there
        # every gradient into the step is 0
        tanh_c = activate(phi, c_states[t + 1])
        d_o = d_h_new * tanh_c
        d_cell = d_c_new + d_h_new * o * derivative_from_output(phi, tanh_c)
        d_z = d_z_all[t]
        _gate(d_z, 0, H)[...] = d_cell * cand * derivative_from_output(sigma, i)
        _gate(d_z, 1, H)[...] = d_cell * c_prev * derivative_from_output(sigma, f)
        _gate(d_z, 2, H)[...] = d_cell * i * derivative_from_output(phi, cand)
        _gate(d_z, 3, H)[...] = d_o * derivative_from_output(sigma, o)
        d_c = d_c + d_cell * f
        for g in range(GATES):
            d_h_g = _gate(d_z, g, H) @ _gate(U, g, H).T
            d_h = d_h + (d_h_g if recurrent_masks is None else d_h_g * recurrent_masks[g])
    grads = {"kernel": np.empty_like(W), "recurrent_kernel": np.empty_like(U),
             "h0": d_h, "c0": d_c, "d_h_steps": d_h_steps,
             "d_gates": d_z_all if keep_d_gates else None}
    d_x_tm = np.zeros((T, N, D), dtype) if input_grad else None
    h_prev_all = h_states[:T]
    for g in range(GATES):
        d_z_g = _gate(d_z_all, g, H).reshape(T * N, H)
        x_g = x_tm if input_masks is None else x_tm * input_masks[g]
        h_g = h_prev_all if recurrent_masks is None else h_prev_all * recurrent_masks[g]
        _gate(grads["kernel"], g, H)[...] = x_g.reshape(T * N, D).T @ d_z_g
        _gate(grads["recurrent_kernel"], g, H)[...] = h_g.reshape(T * N, H).T @ d_z_g
        if d_x_tm is not None:                  # (input_grad)
            d_x_g = (d_z_g @ _gate(W, g, H).T).reshape(T, N, D)
            d_x_tm += d_x_g if input_masks is None else d_x_g * input_masks[g]
    if cache["use_bias"]:
        grads["bias"] = d_z_all.sum(axis=(0, 1))
    if d_x_tm is not None:                      # (input_grad)
        d_x_tm = d_x_tm[::-1] if cache["go_backwards"] else d_x_tm
        grads["x"] = d_x_tm.transpose(1, 0, 2)
    else:
        grads["x"] = None
    return grads
