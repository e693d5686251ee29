"""The ops against plain transcriptions of their equations, and Keras' masking semantics."""
import warnings

import numpy as np
import pytest

import mlstm
from mlstm import initializers
from mlstm.gradcheck import numerical_gradient
from mlstm.ops import (activate, dense_backward, dense_forward, lstm_backward, lstm_forward,
                       lstm_step)


def _weights(rng, D, H, dtype=np.float64):
    # Distinct scales per gate block so that a gate-order slip changes the numbers.
    kernel = rng.standard_normal((D, 4 * H)) * np.repeat([0.3, 0.5, 0.7, 0.9], H)
    recurrent = rng.standard_normal((H, 4 * H)) * np.repeat([0.4, 0.2, 0.6, 0.8], H)
    bias = rng.standard_normal(4 * H) * 0.5 + np.repeat([0.0, 1.0, -0.5, 0.25], H)
    return kernel.astype(dtype), recurrent.astype(dtype), bias.astype(dtype)


def _reference_lstm(x, W, U, b, h0, c0, mask=None, go_backwards=False):
    """Loop over samples and steps, no vectorization: the equations as written."""
    N, T, _ = x.shape
    H = U.shape[0]
    outputs = np.zeros((N, T, H))
    h_last, c_last = np.zeros((N, H)), np.zeros((N, H))
    for n in range(N):
        h, c, y = h0[n].copy(), c0[n].copy(), np.zeros(H)
        steps = range(T - 1, -1, -1) if go_backwards else range(T)
        for k, t in enumerate(steps):
            z = x[n, t] @ W + h @ U + b
            i, f = 1 / (1 + np.exp(-z[:H])), 1 / (1 + np.exp(-z[H:2 * H]))
            g, o = np.tanh(z[2 * H:3 * H]), 1 / (1 + np.exp(-z[3 * H:]))
            c_new = f * c + i * g
            h_new = o * np.tanh(c_new)
            if mask is None or mask[n, t]:
                h, c, y = h_new, c_new, h_new
            outputs[n, k] = y
        h_last[n], c_last[n] = h, c
    return outputs, h_last, c_last


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_lstm_forward_matches_reference(go_backwards, masked):
    rng = np.random.default_rng(0)
    N, T, D, H = 4, 6, 3, 5
    W, U, b = _weights(rng, D, H)
    x = rng.standard_normal((N, T, D))
    h0, c0 = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    mask = None
    if masked:
        mask = np.ones((N, T), dtype=bool)
        mask[0, :2] = False      # left padding: a masked first step
        mask[1, 4:] = False      # right padding
        mask[2, :] = False       # a fully masked row
    (out, h_last, c_last), _ = lstm_forward(x, W, U, b, h0, c0, mask, go_backwards)
    ref_out, ref_h, ref_c = _reference_lstm(x, W, U, b, h0, c0, mask, go_backwards)
    np.testing.assert_allclose(out, ref_out, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h_last, ref_h, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c_last, ref_c, rtol=1e-12, atol=1e-14)
    if masked:
        # Keras: the output before the first valid step is zero, not h0; a fully masked row
        # keeps its initial state and outputs zeros throughout.
        first = 2 if not go_backwards else 0
        assert np.all(out[0, :first] == 0)
        np.testing.assert_array_equal(out[2], 0)
        np.testing.assert_array_equal(h_last[2], h0[2])
        np.testing.assert_array_equal(c_last[2], c0[2])


def test_step_by_step_equals_whole_sequence_values_and_gradients():
    rng = np.random.default_rng(1)
    N, T, D, H = 3, 5, 4, 3
    W, U, b = _weights(rng, D, H)
    x = rng.standard_normal((N, T, D))
    h0, c0 = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    # Random weights on every output: the scalar to differentiate (Karpathy's trick).
    w_out = rng.standard_normal((N, T, H))
    w_h, w_c = rng.standard_normal((N, H)), rng.standard_normal((N, H))

    (out, h_last, c_last), cache = lstm_forward(x, W, U, b, h0, c0)
    h, c = h0, c0
    step_caches = []
    for t in range(T):
        h_ref, c_ref = lstm_step(x[:, t], h, c, W, U, b)
        (o_t, h, c), step_cache = lstm_forward(x[:, t:t + 1], W, U, b, h, c)
        np.testing.assert_allclose(h, h_ref, rtol=1e-13)
        np.testing.assert_allclose(c, c_ref, rtol=1e-13)
        np.testing.assert_allclose(out[:, t], o_t[:, 0], rtol=1e-13)
        step_caches.append(step_cache)
    np.testing.assert_allclose(h_last, h, rtol=1e-13)
    np.testing.assert_allclose(c_last, c, rtol=1e-13)

    whole = lstm_backward(w_out, w_h, w_c, cache)
    d_h, d_c = w_h, w_c
    d_kernel, d_recurrent, d_bias = 0, 0, 0
    d_x = np.zeros_like(x)
    for t in range(T - 1, -1, -1):
        g = lstm_backward(w_out[:, t:t + 1], d_h, d_c, step_caches[t])
        d_h, d_c = g["h0"], g["c0"]
        d_kernel, d_recurrent, d_bias = (d_kernel + g["kernel"], d_recurrent +
                                         g["recurrent_kernel"], d_bias + g["bias"])
        d_x[:, t] = g["x"][:, 0]
    for name, stepped in (("kernel", d_kernel), ("recurrent_kernel", d_recurrent),
                          ("bias", d_bias), ("x", d_x), ("h0", d_h), ("c0", d_c)):
        np.testing.assert_allclose(whole[name], stepped, rtol=1e-11, atol=1e-13, err_msg=name)


def test_lstm_backward_against_finite_differences_of_the_op():
    rng = np.random.default_rng(2)
    N, T, D, H = 2, 4, 3, 2
    W, U, b = _weights(rng, D, H)
    x = rng.standard_normal((N, T, D))
    mask = np.array([[False, True, True, False], [True, True, True, True]])
    w_out = rng.standard_normal((N, T, H))

    def scalar():
        (out, h_last, c_last), _ = lstm_forward(x, W, U, b, mask=mask, go_backwards=True)
        return np.sum(out * w_out) + 0.3 * np.sum(h_last) - 0.7 * np.sum(c_last)

    (_, h_last, _), cache = lstm_forward(x, W, U, b, mask=mask, go_backwards=True)
    grads = lstm_backward(w_out, np.full((N, H), 0.3), np.full((N, H), -0.7), cache)
    for name, arr in (("kernel", W), ("recurrent_kernel", U), ("bias", b), ("x", x)):
        numeric = numerical_gradient(scalar, arr)
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-7, atol=1e-10, err_msg=name)


def test_float32_stays_float32():
    rng = np.random.default_rng(3)
    W, U, b = (a.astype(np.float32) for a in _weights(rng, 3, 4))
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    (out, h, c), cache = lstm_forward(x, W, U, b, mask=np.ones((2, 5), bool))
    grads = lstm_backward(np.ones_like(out), None, None, cache)
    assert out.dtype == h.dtype == c.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())


def test_extreme_preactivations_are_finite_without_warnings():
    x = np.full((2, 3, 1), 1e4, dtype=np.float32)
    W = np.ones((1, 4), dtype=np.float32)
    U = np.zeros((1, 4), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (out, h, c), cache = lstm_forward(np.concatenate([x, -x]), W, U, None)
        grads = lstm_backward(np.ones_like(out), None, None, cache)
    assert np.all(np.isfinite(out)) and all(np.all(np.isfinite(g)) for g in grads.values())


def test_dense_per_step_equals_flattened_and_gradients():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 4, 5))
    W, b = rng.standard_normal((5, 2)), rng.standard_normal(2)
    y, cache = dense_forward(x, W, b, "tanh")
    np.testing.assert_allclose(y, np.tanh(x @ W + b), rtol=1e-14)
    d_y = rng.standard_normal(y.shape)
    grads = dense_backward(d_y, cache)
    d_a = d_y * (1 - np.tanh(x @ W + b) ** 2)
    np.testing.assert_allclose(grads["kernel"], np.einsum("ntd,nto->do", x, d_a), rtol=1e-12)
    np.testing.assert_allclose(grads["bias"], d_a.sum(axis=(0, 1)), rtol=1e-12)
    np.testing.assert_allclose(grads["x"], d_a @ W.T, rtol=1e-12)


def test_sigmoid_is_stable_and_exact():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for dtype in (np.float32, np.float64):
            x = np.array([-1e4, -40, 0, 40, 1e4], dtype=dtype)
            y = activate("sigmoid", x)
            assert y.dtype == dtype
            assert y[0] == 0 and y[-1] == 1 and y[2] == 0.5
    np.testing.assert_allclose(activate("sigmoid", np.array([-40.0])), np.exp(-40.0), rtol=1e-12)


def test_initializers_follow_keras_formulas():
    rng = np.random.default_rng(0)
    k = initializers.glorot_uniform((30, 40), rng)
    limit = np.sqrt(6 / 70)
    assert k.dtype == np.float32 and np.abs(k).max() <= limit and np.abs(k).max() > 0.9 * limit
    q = initializers.orthogonal((8, 32), rng, dtype="float64")
    np.testing.assert_allclose(q @ q.T, np.eye(8), atol=1e-12)
    q = initializers.orthogonal((32, 8), rng, dtype="float64")
    np.testing.assert_allclose(q.T @ q, np.eye(8), atol=1e-12)
    with pytest.raises(ValueError, match="Unknown initializer"):
        initializers.get_initializer("he_normal")


def test_lstm_layer_keras_defaults():
    mlstm.set_random_seed(0)
    x = mlstm.Input((4, 3))
    layer = mlstm.LSTM(5)
    layer(x)
    kernel, recurrent, bias = layer.get_weights()
    assert kernel.shape == (3, 20) and recurrent.shape == (5, 20) and bias.shape == (20,)
    np.testing.assert_array_equal(bias[5:10], 1)              # unit_forget_bias
    np.testing.assert_array_equal(np.delete(bias, np.s_[5:10]), 0)
    np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(5), atol=1e-5)   # orthogonal
    assert np.abs(kernel).max() <= np.sqrt(6 / (3 + 20))
    no_forget = mlstm.LSTM(5, unit_forget_bias=False)
    no_forget(x)
    np.testing.assert_array_equal(no_forget.get_weights()[2], 0)
