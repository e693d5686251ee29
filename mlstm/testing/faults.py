"""Wrong backward passes, on purpose: fixtures that show that a gradient check catches a bug.

:func:`lstm_backward_plain` is backpropagation through time written plainly, one step at a
time, from :func:`mlstm.ops.lstm_forward`'s cache (a test checks that it equals the fast
:func:`mlstm.ops.lstm_backward`). With ``bug`` it is wrong in one place, as a hand-written
backward pass typically is (:data:`WRONG_BACKWARDS`):

``"swapped_gates"``
    the cached activations of gate blocks c and o are read in each other's places;
``"missing_mask_term"``
    at a masked step the gradient of the carried hidden state, the ``(1 - m_t) dL/dh_t``
    term of ``dL/dh_{t-1}``, is dropped (the state is carried forward, its gradient is not
    carried back);
``"sign_error"``
    ``dL/dz`` of the forget block f has the wrong sign.

:func:`use_wrong_backward` makes one LSTM layer of a model use it; :func:`wrong_backward_case`
builds a small model with one such layer and data that exercise the bug.

>>> import mlstm
>>> model, x, y = wrong_backward_case("sign_error", seed=0)
>>> mlstm.gradcheck(model, x, y).failing()
['lstm/kernel', 'lstm/recurrent_kernel', 'lstm/bias', 'input:x']
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np

from ..ops.activations import activate, derivative_from_output
from ..layers import LSTM, Dense, Input, Masking
from ..model import Model
from .builders import randomize_weights

if TYPE_CHECKING:
    from .._typing import Array

#: A key of :data:`WRONG_BACKWARDS`.
Bug = Literal["swapped_gates", "missing_mask_term", "sign_error"]

__all__ = ["WRONG_BACKWARDS", "lstm_backward_plain", "use_wrong_backward",
           "wrong_backward_case", "WRONG_LAYER"]

#: The bugs :func:`lstm_backward_plain` can have, in words.
WRONG_BACKWARDS = {
    "swapped_gates": "reads the cached activations of gate blocks c and o in each other's "
                     "places",
    "missing_mask_term": "drops the (1 - m_t) dL/dh_t term of dL/dh_{t-1}: at a masked step "
                         "the gradient of the carried hidden state is lost",
    "sign_error": "gives dL/dz of the forget block f the wrong sign",
}


def lstm_backward_plain(d_outputs: Array | None, d_h_last: Array | None, d_c_last: Array | None,
                        cache: dict[str, Any], bug: Bug | None = None) -> dict[str, Array]:
    """Backpropagation through time, one step at a time; wrong in one place with ``bug``.

    Parameters
    ----------
    d_outputs : ndarray (N, T, H) or (N, H) or None
        As for :func:`mlstm.ops.lstm_backward`.
    d_h_last, d_c_last : ndarray (N, H) or None
    cache : dict
        From :func:`mlstm.ops.lstm_forward`.
    bug : str, optional
        A key of :data:`WRONG_BACKWARDS`; None computes the right gradients.

    Returns
    -------
    dict
        ``x`` (N, T, D), ``kernel`` (D, 4H), ``recurrent_kernel`` (H, 4H), ``bias`` (4H,)
        (when the forward pass had one), ``h0``, ``c0`` (N, H).
    """
    if bug is not None and bug not in WRONG_BACKWARDS:
        raise ValueError(f"bug must be None or one of {sorted(WRONG_BACKWARDS)}, got {bug!r}")
    x_tm, gates = cache["x_tm"], cache["gates"]
    h_states, c_states, step_mask = cache["h_states"], cache["c_states"], cache["step_mask"]
    W, U = cache["kernel"], cache["recurrent_kernel"]
    act, rec = cache["activation"], cache["recurrent_activation"]
    T, N, D = x_tm.shape
    H = U.shape[0]
    i, f, g, o = (gates[..., k * H:(k + 1) * H] for k in range(4))
    if bug == "swapped_gates":
        g, o = o, g
    d_out_tm = (d_outputs.transpose(1, 0, 2)
                if d_outputs is not None and d_outputs.ndim == 3 else None)
    d_h = np.zeros((N, H)) if d_h_last is None else np.array(d_h_last, dtype=float)
    d_c = np.zeros((N, H)) if d_c_last is None else np.array(d_c_last, dtype=float)
    d_y = np.zeros((N, H))                  # dL/dy_t carried back through masked steps
    d_W, d_U, d_b = np.zeros(W.shape), np.zeros(U.shape), np.zeros(4 * H)
    d_x_tm = np.zeros(x_tm.shape)
    for t in range(T - 1, -1, -1):
        m = 1.0 if step_mask is None else step_mask[t].astype(float)       # (N, 1)
        if d_out_tm is not None:
            d_y = d_y + d_out_tm[t]
        elif d_outputs is not None and t == T - 1:
            d_y = d_y + d_outputs
        d_h_new = m * (d_h + d_y)                     # dL/dh'_t
        d_y = (1 - m) * d_y                           # y_t = y_{t-1} where masked
        phi_c = activate(act, c_states[t + 1])        # φ(c'_t) at valid steps
        d_c_new = m * d_c + d_h_new * o[t] * derivative_from_output(act, phi_c)
        d_z = np.concatenate([
            d_c_new * g[t] * derivative_from_output(rec, i[t]),               # i
            d_c_new * c_states[t] * derivative_from_output(rec, f[t]),        # f
            d_c_new * i[t] * derivative_from_output(act, g[t]),               # c
            d_h_new * phi_c * derivative_from_output(rec, o[t])], axis=-1)    # o
        if bug == "sign_error":
            d_z[:, H:2 * H] *= -1
        carried_h = 0.0 if bug == "missing_mask_term" else (1 - m) * d_h
        d_h = carried_h + d_z @ U.T                   # dL/dh_{t-1}
        d_c = (1 - m) * d_c + d_c_new * f[t]          # dL/dc_{t-1}
        d_W += x_tm[t].T @ d_z
        d_U += h_states[t].T @ d_z
        d_b += d_z.sum(axis=0)
        d_x_tm[t] = d_z @ W.T
    if cache["go_backwards"]:
        d_x_tm = d_x_tm[::-1]
    grads = {"x": d_x_tm.transpose(1, 0, 2), "kernel": d_W, "recurrent_kernel": d_U,
             "h0": d_h, "c0": d_c}
    if cache["use_bias"]:
        grads["bias"] = d_b
    return grads


def use_wrong_backward(layer: LSTM, bug: Bug | None) -> LSTM:
    """Make the LSTM ``layer`` compute its gradients with :func:`lstm_backward_plain`
    (``bug``: a key of :data:`WRONG_BACKWARDS`, or None for the right ones); returns it.

    The layer's own ``backward`` is replaced on this instance only. A check of a float64
    model sees it; :func:`mlstm.gradcheck` clones a float32 model, and the clone does not.
    """
    if layer.gate_columns("kernel") is None:           # not a gated recurrent layer
        raise TypeError(f"use_wrong_backward takes an LSTM layer, got {type(layer).__name__}")
    if bug is not None and bug not in WRONG_BACKWARDS:
        raise ValueError(f"bug must be None or one of {sorted(WRONG_BACKWARDS)}, got {bug!r}")

    def backward(d_outputs: Sequence[Array | None], cache: Any, d_logits: Array | None = None,
                 extras: dict[str, Any] | None = None,
                 input_grads: Sequence[bool] | None = None,
                 ) -> tuple[list[Array | None], dict[str, Array]]:
        d_h_last, d_c_last = d_outputs[1:3] if layer.return_state else (None, None)
        grads = lstm_backward_plain(d_outputs[0], d_h_last, d_c_last, cache, bug=bug)
        d_inputs: list[Array | None] = [grads["x"]]
        if cache["has_initial_state"]:
            d_inputs += [grads["h0"], grads["c0"]]
        return d_inputs, {k: grads[k] for k in layer.param_names if k in grads}

    layer.backward = backward  # type: ignore[method-assign]  # this instance only, on purpose
    return layer


#: The layer :func:`wrong_backward_case` gives the wrong backward pass.
WRONG_LAYER = "lstm"


def wrong_backward_case(bug: Bug | None, seed: int, batch: int = 2, timesteps: int = 3,
                        features: int = 2, units: int = 2,
                        ) -> tuple[Model, Array, list[Array]]:
    """A small float64 model whose LSTM has backward ``bug``, and data that exercise it.

    The model: a masked input ``x`` (N, T, D), an LSTM named :data:`WRONG_LAYER` (H units)
    and the seed's two heads on it (``out1`` linear with MSE, ``out2`` sigmoid with binary
    cross-entropy, loss weights 0.7/0.3), weights drawn by :func:`randomize_weights` (no two
    gate blocks alike). The heads' backward passes are right: the arrays that may fail are
    the LSTM's weights and ``input:x``. Every row has one padded step strictly inside the
    sequence (valid steps before and after it: the carried state's gradient matters there)
    and standard normal values elsewhere.

    Returns
    -------
    (model, x, y)
    """
    x_in = Input(shape=(timesteps, features), name="x", dtype="float64")
    h = LSTM(units, name=WRONG_LAYER, dtype="float64")(Masking(0.0, name="masking")(x_in))
    heads = [Dense(1, name="out1", dtype="float64")(h),
             Dense(1, activation="sigmoid", name="out2", dtype="float64")(h)]
    model = Model(x_in, heads, name="wrong_backward_case")
    model.compile(optimizer="sgd", loss=["mse", "binary_crossentropy"], loss_weights=[0.7, 0.3])
    randomize_weights(model, seed)
    use_wrong_backward(cast(LSTM, model.get_layer(WRONG_LAYER)), bug)
    rng = np.random.default_rng([seed, 1])
    x = rng.standard_normal((batch, timesteps, features))
    x[np.arange(batch), rng.integers(1, timesteps - 1, size=batch)] = 0.0     # padded
    y = [rng.standard_normal((batch, 1)), (rng.random((batch, 1)) < 0.5).astype(float)]
    return model, x, y
