"""Softmax over the last axis: the op, its vector-Jacobian product, the activation
component, softmax Dense and Activation heads, and Keras parity."""
import warnings

import numpy as np
import pytest

import mlstm
from mlstm import Activation, Dense, Input, LSTM, Model
from mlstm.activations import get as get_activation_component
from mlstm.gradcheck import numerical_gradient
from mlstm.ops.activations import activation_backward, derivative_from_output, get_activation
from mlstm.ops.softmax import (log_softmax, logsumexp, softmax, softmax_backward,
                               softmax_forward)


def test_softmax_rows_sum_to_one_and_match_the_definition():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 3, 5))
    y = softmax(x)
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=0, atol=1e-15)
    np.testing.assert_allclose(y, np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True),
                               rtol=1e-14)
    np.testing.assert_allclose(log_softmax(x), np.log(y), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(logsumexp(x)[..., 0], np.log(np.exp(x).sum(axis=-1)),
                               rtol=1e-14)


def test_softmax_is_stable_and_keeps_float32():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for dtype in (np.float32, np.float64):
            x = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4 + 1, -1e4]], dtype=dtype)
            y = softmax(x)
            assert y.dtype == dtype and np.all(np.isfinite(y))
            np.testing.assert_allclose(y[0], [1, 0, 0], atol=0)
            np.testing.assert_allclose(y[1], np.exp([0, 1, 0]) / np.exp([0, 1, 0]).sum(),
                                       rtol=1e-6)
            assert np.all(np.isfinite(logsumexp(x)))


def test_softmax_backward_is_the_jacobian_product():
    """dx = y ⊙ (dy - Σ dy y) equals dy J with J_ik = y_i (δ_ik - y_k), and finite
    differences of Σ dy ⊙ softmax(x)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 2, 4))
    d_y = rng.normal(size=x.shape)
    y, cache = softmax_forward(x)
    d_x = softmax_backward(d_y, cache)
    jac = y[..., :, None] * (np.eye(4) - y[..., None, :])          # (..., i, k)
    np.testing.assert_allclose(d_x, np.einsum("...i,...ik->...k", d_y, jac), rtol=1e-13,
                               atol=1e-15)
    probe = x.copy()
    numeric = numerical_gradient(lambda: np.sum(d_y * softmax(probe)), probe, h=1e-4)
    np.testing.assert_allclose(d_x, numeric, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(activation_backward("softmax", d_y, y), d_x, rtol=0, atol=0)


def test_the_activation_component_says_softmax_is_not_elementwise():
    component = get_activation_component("softmax")
    assert component.elementwise is False
    assert get_activation_component("tanh").elementwise is True
    y = softmax(np.array([[0.0, 1.0, 2.0]]))
    np.testing.assert_allclose(component.backward(np.array([[1.0, 0, 0]]), y),
                               activation_backward("softmax", np.array([[1.0, 0, 0]]), y))
    with pytest.raises(TypeError, match="not elementwise"):
        derivative_from_output("softmax", y)
    # saturation per row: the top logit leads the next by more than the threshold
    rows = softmax(np.array([[10.0, 0.0, 0.0], [1.0, 0.5, 0.0], [3.0, 3.0, -5.0]]))
    np.testing.assert_array_equal(component.saturated(rows, 5.0), [True, False, False])
    assert component.saturated(np.ones((2, 1)), 5.0).tolist() == [True, True]


def test_softmax_is_refused_where_it_would_be_elementwise():
    with pytest.raises(ValueError, match="Dense and Activation only"):
        LSTM(3, activation="softmax")
    with pytest.raises(ValueError, match="Dense and Activation only"):
        get_activation("softmax")
    assert get_activation("softmax", last_axis=True) == "softmax"
    assert Dense(3, activation="softmax").activation == "softmax"
    assert Activation("softmax").activation == "softmax"


@pytest.mark.parametrize("head", ["dense", "activation"])
def test_softmax_head_per_step_gradient_check(head):
    """A per-step softmax on an LSTM's sequence (over the units of each step), trained
    through MSE so that the gradient goes through the softmax's Jacobian product."""
    mlstm.set_random_seed(0)
    x = Input((4, 3), name="x", dtype="float64")
    h = LSTM(5, return_sequences=True, name="lstm")(x)
    out = (Dense(3, activation="softmax", name="head")(h) if head == "dense"
           else Activation("softmax", name="head")(Dense(3, name="pre")(h)))
    model = Model(x, out)
    model.compile("sgd", loss="mse")
    rng = np.random.default_rng(2)
    xs, ys = rng.normal(size=(3, 4, 3)), rng.uniform(size=(3, 4, 3))
    pred = model.predict(xs)
    np.testing.assert_allclose(pred.sum(axis=-1), 1.0, atol=1e-14)
    report = mlstm.gradcheck(model, xs, ys)
    assert report.max_relative_error < 1e-7, str(report)


# --------------------------------------------------------------------------- Keras parity
def _keras_dense_softmax(keras, dtype, kernel, bias):
    x = keras.Input((kernel.shape[0],), dtype=dtype)
    layer = keras.layers.Dense(kernel.shape[1], activation="softmax", dtype=dtype)
    model = keras.Model(x, layer(x))
    layer.set_weights([kernel, bias])
    return model


@pytest.mark.keras
@pytest.mark.parametrize("dtype, tol", [("float32", 1e-4), ("float64", 1e-9)])
def test_softmax_dense_matches_keras_forward_and_gradients(dtype, tol):
    import keras
    import tensorflow as tf
    rng = np.random.default_rng(3)
    kernel = rng.normal(scale=2.0, size=(4, 5)).astype(dtype)
    bias = rng.normal(size=5).astype(dtype)
    xs = rng.normal(size=(6, 4)).astype(dtype)
    probe = rng.normal(size=(6, 5)).astype(dtype)   # L = Σ probe ⊙ y: dy = probe
    theirs = _keras_dense_softmax(keras, dtype, kernel, bias)
    x_var = tf.Variable(xs)
    with tf.GradientTape() as tape:
        y = theirs(x_var)
        total = tf.reduce_sum(probe * y)
    g_kernel, g_bias, g_x = tape.gradient(total, theirs.trainable_weights + [x_var])

    inp = Input((4,), name="x", dtype=dtype)
    dense = Dense(5, activation="softmax", name="head")
    model = Model(inp, dense(inp))
    dense.set_weights([kernel, bias])
    tape_m = model.forward([xs])
    np.testing.assert_allclose(tape_m.outputs[0], y.numpy(), rtol=tol, atol=tol)
    grads, d_inputs = model.backward(tape_m, {0: probe}, input_grads=True)
    np.testing.assert_allclose(grads["head/kernel"], g_kernel.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(grads["head/bias"], g_bias.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(d_inputs[0], g_x.numpy(), rtol=tol, atol=tol)
