"""Losses: Keras' formulas, reductions, and the sigmoid-head logits path."""
import warnings

import numpy as np
import pytest

import mlstm
from mlstm import Dense, Input, LSTM, Masking, Model, losses
from mlstm.gradcheck import numerical_gradient
from mlstm.losses import BinaryCrossentropy, MeanSquaredError, reduce_output_loss


def _fd_check(loss, y_true, y_pred, use_logits=False):
    y_pred = y_pred.copy()
    call = loss.call_logits if use_logits else loss.call
    grad = loss.gradient_logits if use_logits else loss.gradient
    numeric = numerical_gradient(lambda: np.sum(call(y_true, y_pred)), y_pred, h=1e-5)
    np.testing.assert_allclose(grad(y_true, y_pred), numeric, rtol=1e-7, atol=1e-10)


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 2, (4, 3)).astype(float)
    _fd_check(MeanSquaredError(), rng.standard_normal((4, 3)), rng.standard_normal((4, 3)))
    _fd_check(BinaryCrossentropy(), t, rng.uniform(0.05, 0.95, (4, 3)))
    _fd_check(BinaryCrossentropy(label_smoothing=0.2), t, rng.uniform(0.05, 0.95, (4, 3)))
    _fd_check(BinaryCrossentropy(), t, rng.standard_normal((4, 3)) * 5, use_logits=True)
    _fd_check(BinaryCrossentropy(from_logits=True), t, rng.standard_normal((4, 3)) * 5)


def test_bce_from_logits_equals_bce_on_probabilities_where_unsaturated():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((5, 2))
    t = rng.integers(0, 2, (5, 2)).astype(float)
    p = 1 / (1 + np.exp(-logits))
    bce = BinaryCrossentropy()
    np.testing.assert_allclose(bce.call(t, p), bce.call_logits(t, logits), rtol=1e-6)


def test_saturated_sigmoid_head_uses_logits():
    """At logits ±40 the clipped formula is flat (zero gradient); Keras uses the logits."""
    x = Input((1,), name="z", dtype="float64")
    head = Dense(1, activation="sigmoid", use_bias=False, name="head")(x)
    model = Model(x, head)
    model.compile("adam", loss="binary_crossentropy")
    model.get_layer("head").set_weights([np.array([[1.0]])])
    xs = np.array([[40.0], [-40.0]])
    ys = np.array([[0.0], [1.0]])      # both confidently wrong
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = model.evaluate(xs, ys)
        grads = model.gradients(xs, ys)
    assert value == pytest.approx(40.0 + np.log1p(np.exp(-40.0)), rel=1e-12)
    # d/dw mean(bce) = mean((σ(x) - t) x) = (1·40 + (−1)(−40))/2 = 40 (up to e^-40)
    assert grads["head/kernel"][0, 0] == pytest.approx(40.0, rel=1e-12)
    # The clipped probability formula would give log(1e7) and no gradient at all.
    clipped = BinaryCrossentropy().call(ys, np.array([[1.0], [0.0]]))
    assert np.allclose(clipped, -np.log(1e-7), rtol=1e-6)
    assert np.all(BinaryCrossentropy().gradient(ys, np.array([[1.0], [0.0]])) == 0)


def test_bce_logits_extreme_values_are_finite():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for dtype in (np.float32, np.float64):
            z = np.array([[-1e4], [1e4], [-40], [40]], dtype=dtype)
            t = np.array([[1.0], [0.0], [1.0], [0.0]], dtype=dtype)
            v = BinaryCrossentropy().call_logits(t, z)
            g = BinaryCrossentropy().gradient_logits(t, z)
            assert np.all(np.isfinite(v)) and np.all(np.isfinite(g))
            np.testing.assert_allclose(v, [1e4, 1e4, 40, 40], rtol=1e-6)


def test_masked_loss_averages_over_valid_steps():
    rng = np.random.default_rng(2)
    y_pred = rng.standard_normal((2, 4, 3))
    y_true = rng.standard_normal((2, 4, 3))
    mask = np.array([[True, True, False, False], [True, True, True, False]])
    value, grad, _ = reduce_output_loss(MeanSquaredError(), y_true, y_pred, mask)
    per_step = np.mean((y_pred - y_true) ** 2, axis=-1)
    assert value == pytest.approx(per_step[mask].mean(), rel=1e-12)
    assert np.all(grad[~mask] == 0)
    value, grad, _ = reduce_output_loss(MeanSquaredError(), y_true, y_pred,
                                        np.zeros((2, 4), bool))
    assert value == 0 and np.all(grad == 0)


def test_masked_sequence_output_in_a_model():
    mlstm.set_random_seed(0)
    x = Input((4, 2), name="seq", dtype="float64")
    out = Dense(1, name="step_head")(LSTM(3, return_sequences=True, name="l")(Masking()(x)))
    model = Model(x, out)
    model.compile("sgd", loss="mse")
    xs = np.random.default_rng(3).standard_normal((2, 4, 2))
    xs[0, 2:] = 0
    ys = np.random.default_rng(4).standard_normal((2, 4, 1))
    preds = model.predict(xs)
    valid = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], bool)
    assert model.evaluate(xs, ys) == pytest.approx(((preds - ys)[valid] ** 2).mean(), rel=1e-12)
    report = mlstm.gradcheck(model, xs, ys)
    assert report.ok(1e-6), str(report)


def test_loss_contract_errors():
    class BadShape(losses.Loss):
        def call(self, y_true, y_pred):
            return np.zeros(3)

        def gradient(self, y_true, y_pred):
            return np.zeros_like(y_pred)

    with pytest.raises(ValueError, match="call\\(\\) returned shape"):
        reduce_output_loss(BadShape(), np.zeros((2, 1)), np.zeros((2, 1)))
    with pytest.raises(ValueError, match="label_smoothing"):
        BinaryCrossentropy(label_smoothing=2)
    with pytest.raises(TypeError, match="Cannot interpret"):
        losses.get(3)
