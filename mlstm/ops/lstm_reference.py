"""The textbook LSTM: forward and backward, one time step at a time. Read this one first.

This module is written to be read next to ``docs/lstm.md``: one function per idea, the
equations in the docstrings, names that say what a thing is, and no speed devices (no
buffers, no chunks, no pre-scaled weights). :mod:`mlstm.ops.lstm` computes the same numbers
fast; ``tests/test_lstm_reference.py`` checks that the two agree, values and gradients,
with masks, ``go_backwards`` and initial states.

Shapes: N batch, T time, D features, H units. Keras layout: ``kernel`` W (D, 4H),
``recurrent_kernel`` U (H, 4H), ``bias`` b (4H,), gate blocks of width H in the order
i (input), f (forget), c (candidate), o (output).

One step (σ the recurrent activation, sigmoid by default; φ the activation, tanh)::

    z_t  = x_t W + h_{t-1} U + b
    i_t  = σ(z_t[i]),  f_t = σ(z_t[f]),  g_t = φ(z_t[c]),  o_t = σ(z_t[o])
    c_t  = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    h_t  = o_t ⊙ φ(c_t)

A sequence repeats the step; a masked step (Keras' ``Masking``) keeps the state and repeats
the previous output (zeros before the first valid step).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .._typing import BoolArray, Cache, FloatArray
from .activations import activate, derivative_from_output

__all__ = ["lstm_step_forward", "lstm_step_backward", "lstm_step_gate_gradients",
           "lstm_step", "lstm_forward_reference", "lstm_backward_reference"]


def lstm_step_forward(x_t: FloatArray, h_prev: FloatArray, c_prev: FloatArray,
                      kernel: FloatArray, recurrent_kernel: FloatArray,
                      bias: FloatArray | None = None, activation: str = "tanh",
                      recurrent_activation: str = "sigmoid"
                      ) -> tuple[tuple[FloatArray, FloatArray], Cache]:
    """One LSTM step.

    Equations (the gates read ``z`` in blocks of H columns: i, f, c, o)::

        z   = x_t W + h_prev U + b
        i   = σ(z_i),   f = σ(z_f),   g = φ(z_c),   o = σ(z_o)
        c_t = f ⊙ c_prev + i ⊙ g
        h_t = o ⊙ φ(c_t)

    Parameters
    ----------
    x_t : ndarray (N, D)
        The input at this step.
    h_prev, c_prev : ndarray (N, H)
        Hidden and cell state entering the step.
    kernel : ndarray (D, 4H)
    recurrent_kernel : ndarray (H, 4H)
    bias : ndarray (4H,) or None
    activation, recurrent_activation : str
        φ and σ (names from :data:`mlstm.ops.activations.ACTIVATIONS`).

    Returns
    -------
    (h_t, c_t) : ndarray (N, H), ndarray (N, H)
    cache : dict
        What :func:`lstm_step_backward` needs: the step's inputs, its gates, φ(c_t), the
        weights and the activation names.
    """
    H = recurrent_kernel.shape[0]
    z = x_t @ kernel + h_prev @ recurrent_kernel
    if bias is not None:
        z = z + bias
    input_gate = activate(recurrent_activation, z[:, :H])
    forget_gate = activate(recurrent_activation, z[:, H:2 * H])
    candidate = activate(activation, z[:, 2 * H:3 * H])
    output_gate = activate(recurrent_activation, z[:, 3 * H:])
    c_t = forget_gate * c_prev + input_gate * candidate
    activated_cell = activate(activation, c_t)
    h_t = output_gate * activated_cell
    cache = dict(x_t=x_t, h_prev=h_prev, c_prev=c_prev, input_gate=input_gate,
                 forget_gate=forget_gate, candidate=candidate, output_gate=output_gate,
                 activated_cell=activated_cell, kernel=kernel,
                 recurrent_kernel=recurrent_kernel, use_bias=bias is not None,
                 activation=activation, recurrent_activation=recurrent_activation)
    return (h_t, c_t), cache


def lstm_step_gate_gradients(d_h: FloatArray, d_c: FloatArray, cache: Cache
                             ) -> tuple[FloatArray, FloatArray]:
    """Backward through the cell: from dL/dh_t and dL/dc_t to dL/dz and dL/dc_prev.

    Each line is the chain rule through one line of :func:`lstm_step_forward`, read from
    the bottom up. The derivatives of the activations are written through their outputs
    (σ' = σ(1 - σ), tanh' = 1 - tanh², see :mod:`mlstm.ops.activations`)::

        h_t = o ⊙ φ(c_t)            d_o      = d_h ⊙ φ(c_t)
                                    d_c_t    = d_c + d_h ⊙ o ⊙ φ'(c_t)
        c_t = f ⊙ c_prev + i ⊙ g    d_f      = d_c_t ⊙ c_prev
                                    d_i      = d_c_t ⊙ g
                                    d_g      = d_c_t ⊙ i
                                    d_c_prev = d_c_t ⊙ f
        gates from z                d_z      = [d_i ⊙ σ'(z_i) | d_f ⊙ σ'(z_f) | d_g ⊙ φ'(z_c)
                                                | d_o ⊙ σ'(z_o)]

    Parameters
    ----------
    d_h : ndarray (N, H)
        dL/dh_t: everything that reaches the step's new hidden state (its output and the
        next step).
    d_c : ndarray (N, H)
        dL/dc_t from the next step (or from the final cell state).
    cache : dict
        From :func:`lstm_step_forward`.

    Returns
    -------
    d_z : ndarray (N, 4H)
        dL/dz, the gradient of the step's pre-activations, blocks i, f, c, o.
    d_c_prev : ndarray (N, H)
        dL/dc_prev, carried to the previous step.
    """
    sigma, phi = cache["recurrent_activation"], cache["activation"]
    i, f = cache["input_gate"], cache["forget_gate"]
    g, o = cache["candidate"], cache["output_gate"]
    d_output_gate = d_h * cache["activated_cell"]
    d_cell = d_c + d_h * o * derivative_from_output(phi, cache["activated_cell"])
    d_forget_gate = d_cell * cache["c_prev"]
    d_input_gate = d_cell * g
    d_candidate = d_cell * i
    d_c_prev = d_cell * f
    d_z = np.concatenate([d_input_gate * derivative_from_output(sigma, i),
                          d_forget_gate * derivative_from_output(sigma, f),
                          d_candidate * derivative_from_output(phi, g),
                          d_output_gate * derivative_from_output(sigma, o)], axis=1)
    return d_z, d_c_prev


def lstm_step_backward(d_h: FloatArray, d_c: FloatArray, cache: Cache
                       ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray,
                                  FloatArray | None]:
    """One LSTM step backward.

    First through the cell (:func:`lstm_step_gate_gradients`), then through
    ``z = x_t W + h_prev U + b``::

        d_x      = d_z Wᵀ          d_W = x_tᵀ d_z
        d_h_prev = d_z Uᵀ          d_U = h_prevᵀ d_z          d_b = Σ_n d_z

    Parameters
    ----------
    d_h, d_c : ndarray (N, H)
        dL/dh_t and dL/dc_t.
    cache : dict
        From :func:`lstm_step_forward`.

    Returns
    -------
    d_x : ndarray (N, D)
    d_h_prev, d_c_prev : ndarray (N, H)
    d_kernel : ndarray (D, 4H)
    d_recurrent_kernel : ndarray (H, 4H)
    d_bias : ndarray (4H,) or None
        None when the forward step had no bias.
    """
    d_z, d_c_prev = lstm_step_gate_gradients(d_h, d_c, cache)
    d_x = d_z @ cache["kernel"].T
    d_h_prev = d_z @ cache["recurrent_kernel"].T
    d_kernel = cache["x_t"].T @ d_z
    d_recurrent_kernel = cache["h_prev"].T @ d_z
    d_bias = d_z.sum(axis=0) if cache["use_bias"] else None
    return d_x, d_h_prev, d_c_prev, d_kernel, d_recurrent_kernel, d_bias


def lstm_step(x_t: FloatArray, h_prev: FloatArray, c_prev: FloatArray, kernel: FloatArray,
              recurrent_kernel: FloatArray, bias: FloatArray | None = None,
              activation: str = "tanh", recurrent_activation: str = "sigmoid"
              ) -> tuple[FloatArray, FloatArray]:
    """One unmasked LSTM step without its cache: ``(h_t, c_t)`` of :func:`lstm_step_forward`.

    Returns
    -------
    h_t, c_t : ndarray (N, H)
    """
    (h_t, c_t), _ = lstm_step_forward(x_t, h_prev, c_prev, kernel, recurrent_kernel, bias,
                                      activation, recurrent_activation)
    return h_t, c_t


def lstm_forward_reference(x: FloatArray, kernel: FloatArray, recurrent_kernel: FloatArray,
                           bias: FloatArray | None = None, h0: FloatArray | None = None,
                           c0: FloatArray | None = None, mask: BoolArray | None = None,
                           go_backwards: bool = False, activation: str = "tanh",
                           recurrent_activation: str = "sigmoid"
                           ) -> tuple[tuple[FloatArray, FloatArray, FloatArray], Cache]:
    """Run the LSTM over whole sequences, one :func:`lstm_step_forward` per time step.

    Steps are taken in *processing order*: t = 0..T-1, or T-1..0 with ``go_backwards``
    (the sequence and its mask reversed). With a mask m_t (1 where step t is valid) a
    masked step keeps the state and repeats the previous output, as Keras does::

        h'_t, c'_t = lstm_step_forward(x_t, h_{t-1}, c_{t-1})
        h_t = m_t h'_t + (1 - m_t) h_{t-1}
        c_t = m_t c'_t + (1 - m_t) c_{t-1}
        y_t = m_t h'_t + (1 - m_t) y_{t-1},        y before the first step = 0 (not h0)

    Without a mask every m_t is 1, so that y_t = h_t.

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
        Process the sequence from its last step to its first.
    activation, recurrent_activation : str
        φ and σ.

    Returns
    -------
    (outputs, h_last, c_last) : ndarray (N, T, H), (N, H), (N, H)
        ``outputs[:, k]`` is y at the k-th *processed* step; ``h_last``, ``c_last`` the
        final states. The same conventions as :func:`mlstm.ops.lstm.lstm_forward`.
    cache : dict
        What :func:`lstm_backward_reference` needs: one step cache per step, the masks.
    """
    N, T, _ = x.shape
    H = recurrent_kernel.shape[0]
    dtype = x.dtype
    h = np.zeros((N, H), dtype) if h0 is None else h0
    c = np.zeros((N, H), dtype) if c0 is None else c0
    previous_output = np.zeros((N, H), dtype)
    outputs = np.zeros((N, T, H), dtype)
    time_steps = range(T - 1, -1, -1) if go_backwards else range(T)
    step_caches, step_masks = [], []
    for k, t in enumerate(time_steps):
        (h_new, c_new), step_cache = lstm_step_forward(
            x[:, t], h, c, kernel, recurrent_kernel, bias, activation, recurrent_activation)
        valid = np.ones((N, 1), dtype) if mask is None else mask[:, t, None].astype(dtype)
        h = valid * h_new + (1 - valid) * h
        c = valid * c_new + (1 - valid) * c
        previous_output = valid * h_new + (1 - valid) * previous_output
        outputs[:, k] = previous_output
        step_caches.append(step_cache)
        step_masks.append(valid)
    cache = dict(step_caches=step_caches, step_masks=step_masks, go_backwards=go_backwards,
                 x_shape=x.shape, kernel=kernel, use_bias=bias is not None, dtype=dtype)
    return (outputs, h, c), cache


def lstm_backward_reference(d_outputs: FloatArray | None, d_h_last: FloatArray | None,
                            d_c_last: FloatArray | None, cache: Cache,
                            input_grad: bool = True, keep_d_gates: bool = True
                            ) -> dict[str, Any]:
    """Backpropagation through time, one :func:`lstm_step_backward` per step, last first.

    Walking back from the last processed step, three gradients are carried: d_h = dL/dh_t
    and d_c = dL/dc_t (the states the next step used) and d_y, the output gradient that a
    run of masked steps passed back to the output they repeated::

        d_y          = dL/dy_t + (1 - m_{t+1}) d_y_{t+1}
        dL/dh'_t     = m_t (d_h + d_y),       dL/dc'_t = m_t d_c
        d_x_t, d_h_prev, d_c_prev, dW_t, dU_t, db_t = lstm_step_backward(dL/dh'_t, dL/dc'_t)
        d_h_{t-1}    = (1 - m_t) d_h + d_h_prev
        d_c_{t-1}    = (1 - m_t) d_c + d_c_prev

    and the weight gradients are the sums of the steps' dW_t, dU_t, db_t. Without a mask
    (m_t = 1) this is plain BPTT: dL/dh'_t = d_h + dL/dy_t.

    Parameters
    ----------
    d_outputs : ndarray (N, T, H) or (N, H) or None
        dL/d(outputs) in processing order, or, as (N, H), dL/d(last output) only.
    d_h_last, d_c_last : ndarray (N, H) or None
        dL/dh_last and dL/dc_last (``return_state``).
    cache : dict
        From :func:`lstm_forward_reference`.
    input_grad, keep_d_gates : bool
        Return ``x`` and ``d_gates`` (else None for them); the same switches as
        :func:`mlstm.ops.lstm.lstm_backward`, here only to match its conventions.

    Returns
    -------
    grads : dict
        ``x`` (N, T, D), ``kernel`` (D, 4H), ``recurrent_kernel`` (H, 4H), ``bias`` (4H,)
        (only when the forward pass had one), ``h0``, ``c0`` (N, H), ``d_h_steps``
        (T, N, H): dL/dh'_t per processed step, ``d_gates`` (T, N, 4H): dL/dz_t per
        processed step and sample. The same keys as :func:`mlstm.ops.lstm.lstm_backward`.
    """
    step_caches, step_masks = cache["step_caches"], cache["step_masks"]
    N, T, D = cache["x_shape"]
    dtype = cache["dtype"]
    H = cache["kernel"].shape[1] // 4
    if d_outputs is not None and d_outputs.ndim == 2:     # only the last output
        last_only, d_outputs = d_outputs, np.zeros((N, T, H), dtype)
        d_outputs[:, -1] = last_only
    d_h = np.zeros((N, H), dtype) if d_h_last is None else d_h_last.astype(dtype)
    d_c = np.zeros((N, H), dtype) if d_c_last is None else d_c_last.astype(dtype)
    d_y = np.zeros((N, H), dtype)
    d_x = np.zeros((N, T, D), dtype)
    d_kernel = np.zeros((D, 4 * H), dtype)
    d_recurrent_kernel = np.zeros((H, 4 * H), dtype)
    d_bias = np.zeros(4 * H, dtype)
    d_h_steps = np.zeros((T, N, H), dtype)
    d_gates = np.zeros((T, N, 4 * H), dtype)
    for k in range(T - 1, -1, -1):
        valid, step_cache = step_masks[k], step_caches[k]
        if d_outputs is not None:
            d_y = d_y + d_outputs[:, k]
        d_h_new = valid * (d_h + d_y)
        d_c_new = valid * d_c
        d_y = (1 - valid) * d_y             # what a masked step passes to the output before
        d_x_t, d_h_prev, d_c_prev, d_kernel_t, d_recurrent_t, d_bias_t = lstm_step_backward(
            d_h_new, d_c_new, step_cache)
        d_h = (1 - valid) * d_h + d_h_prev
        d_c = (1 - valid) * d_c + d_c_prev
        d_kernel += d_kernel_t
        d_recurrent_kernel += d_recurrent_t
        if d_bias_t is not None:
            d_bias += d_bias_t
        t = T - 1 - k if cache["go_backwards"] else k    # back to the input's time order
        d_x[:, t] = d_x_t
        d_h_steps[k] = d_h_new
        # dL/dz_t once more, to report it (lstm_step_backward returns the textbook's six)
        d_gates[k] = lstm_step_gate_gradients(d_h_new, d_c_new, step_cache)[0]
    grads = dict(x=d_x if input_grad else None, kernel=d_kernel,
                 recurrent_kernel=d_recurrent_kernel, h0=d_h, c0=d_c, d_h_steps=d_h_steps,
                 d_gates=d_gates if keep_d_gates else None)
    if cache["use_bias"]:
        grads["bias"] = d_bias
    return grads
