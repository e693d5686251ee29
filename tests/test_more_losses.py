"""Mean absolute error, Huber, and the numerical gradient of a plain NumPy loss function."""
import warnings

import numpy as np
import pytest

import mlstm
from mlstm import Dense, Input, LSTM, Model, losses
from mlstm.losses import FunctionLoss, Huber, MeanAbsoluteError
from mlstm.losses.function import STEP_SCALE, relative_step


def test_mae_values_and_subgradient_zero_at_zero():
    y_true = np.array([[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]])
    y_pred = np.array([[0.5, 1.0, 1.0], [1.0, 3.0, -1.0]])
    mae = MeanAbsoluteError()
    np.testing.assert_allclose(mae.call(y_true, y_pred), [0.5, 4 / 3])
    np.testing.assert_array_equal(mae.gradient(y_true, y_pred),
                                  [[1 / 3, 0, -1 / 3], [0, 1 / 3, -1 / 3]])
    assert mae(y_true, y_pred) == pytest.approx((0.5 + 4 / 3) / 2)


def test_huber_values_gradients_and_continuity_at_delta():
    delta = 0.5
    loss = Huber(delta=delta)
    e = np.array([[-2.0, -0.5, -0.1, 0.0, 0.1, 0.5, 2.0]])
    values = np.where(np.abs(e) <= delta, 0.5 * e ** 2, delta * np.abs(e) - 0.5 * delta ** 2)
    np.testing.assert_allclose(loss.call(np.zeros_like(e), e), values.mean(axis=-1))
    grad = np.where(np.abs(e) <= delta, e, delta * np.sign(e)) / e.shape[-1]
    np.testing.assert_array_equal(loss.gradient(np.zeros_like(e), e), grad)
    # both branches meet at |e| = delta: value delta^2 / 2, slope ±delta
    for side in (delta - 1e-12, delta + 1e-12):
        v = loss.call(np.zeros((1, 1)), np.array([[side]]))[0]
        assert v == pytest.approx(delta ** 2 / 2, abs=1e-11)
    with pytest.raises(ValueError, match="delta must be a positive"):
        Huber(delta=0)
    with pytest.raises(ValueError, match="delta must be a positive"):
        Huber(delta=float("nan"))


@pytest.mark.parametrize("loss", ["mae", "huber", Huber(delta=0.3)])
def test_model_gradient_check(loss):
    mlstm.set_random_seed(0)
    x = Input((4, 3), name="x", dtype="float64")
    model = Model(x, Dense(2, name="head")(LSTM(3, name="lstm")(x)))
    model.compile("sgd", loss=loss)
    rng = np.random.default_rng(1)
    xs, ys = rng.normal(size=(5, 4, 3)), rng.normal(size=(5, 2))
    report = mlstm.gradcheck(model, xs, ys)
    assert report.max_relative_error < 1e-7, str(report)


def test_names_resolve():
    assert type(losses.get("mae")) is MeanAbsoluteError
    assert type(losses.get("mean_absolute_error")) is MeanAbsoluteError
    assert type(losses.get("MeanAbsoluteError")) is MeanAbsoluteError
    assert type(losses.get("huber")) is Huber
    assert type(losses.get("Huber")) is Huber


# --------------------------------------------------------------------------- FunctionLoss
def _softmax(a):
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _function_loss_error(fn, exact, y_true, y_pred):
    """Largest error of FunctionLoss(fn)'s gradient against the exact one, relative to the
    largest exact entry."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        numeric = FunctionLoss(fn).gradient(y_true, y_pred)
    analytic = exact.gradient(y_true, y_pred)
    return float(np.max(np.abs(numeric - analytic)) / np.max(np.abs(analytic)))


def _accuracy_cases():
    rng = np.random.default_rng(0)
    t, p = rng.normal(size=(16, 3)), rng.normal(size=(16, 3))
    one_hot = np.eye(3)[rng.integers(0, 3, 16)]
    mse = lambda a, b: np.mean((b - a) ** 2, axis=-1)                       # noqa: E731
    cce = lambda a, b: -np.sum(a * np.log(np.clip(b / b.sum(-1, keepdims=True), 1e-7,  # noqa
                                                      1 - 1e-7)), axis=-1)
    bce = lambda a, b: -np.mean(a * np.log(b) + (1 - a) * np.log(1 - b), axis=-1)  # noqa
    huber = lambda a, b: np.mean(np.where(np.abs(b - a) <= 1, 0.5 * (b - a) ** 2,  # noqa
                                          np.abs(b - a) - 0.5), axis=-1)
    return [("mse", mse, losses.MeanSquaredError(), t, p),
            ("mse at |p| ~ 1e3", mse, losses.MeanSquaredError(), 1e3 * t, 1e3 * p),
            ("cce", cce, losses.CategoricalCrossentropy(), one_hot,
             _softmax(rng.normal(size=(16, 3)))),
            ("cce, probabilities down to 1e-4", cce, losses.CategoricalCrossentropy(),
             one_hot, _softmax(3 * rng.normal(size=(16, 3)))),
            ("bce, p in [0.001, 0.999]", bce, losses.BinaryCrossentropy(),
             (rng.uniform(size=(16, 3)) > 0.5) * 1.0, rng.uniform(0.001, 0.999, (16, 3))),
            ("huber", huber, losses.Huber(), t, p)]


def test_function_loss_gradient_accuracy_against_exact_losses():
    """FunctionLoss's numerical gradient against the exact one (errors relative to the
    largest entry). Measured: mse 7.0e-10, mse at |p| ~ 1e3 3.3e-10, cce 6.1e-11, cce with
    probabilities down to 1e-4 1.7e-11, bce near 0 and 1 2.6e-11, huber 2.3e-9. (The old
    fixed two-point step 1e-6 · max(1, |p|): 6.0e-10, 6.9e-8, 1.5e-10, 1.8e-5, 1.0e-9,
    3.5e-9.)"""
    errors = {name: _function_loss_error(fn, exact, t, p)
              for name, fn, exact, t, p in _accuracy_cases()}
    assert max(errors.values()) < 1e-8, errors


def test_relative_step_is_exact_and_scaled():
    for value in (0.0, 0.3, -7.5, 1e6):
        h = relative_step(value)
        assert (value + h) - value == h
        assert h == pytest.approx(STEP_SCALE * max(STEP_SCALE, abs(value)), rel=1e-6)


def test_function_loss_in_float32_is_refused():
    def float32_mse(y_true, y_pred):
        return np.mean((y_pred - y_true) ** 2, axis=-1).astype(np.float32)

    with pytest.raises(TypeError, match="lower precision"):
        FunctionLoss(float32_mse).gradient(np.zeros((2, 3)), np.ones((2, 3)))


def test_function_loss_in_a_model_matches_the_exact_gradients():
    mlstm.set_random_seed(0)
    x = Input((4, 3), name="x", dtype="float64")
    model = Model(x, Dense(2, name="head")(LSTM(3, name="lstm")(x)))
    twin = model.clone()
    model.compile("sgd", loss="mae")
    with pytest.warns(UserWarning, match="differentiates it numerically"):
        twin.compile("sgd", loss=lambda a, b: np.mean(np.abs(b - a), axis=-1))
    rng = np.random.default_rng(2)
    xs, ys = rng.normal(size=(5, 4, 3)), rng.normal(size=(5, 2))
    exact, numeric = model.gradients(xs, ys), twin.gradients(xs, ys)
    for name in exact:
        np.testing.assert_allclose(numeric[name], exact[name], rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- Keras parity
@pytest.mark.keras
@pytest.mark.parametrize("dtype, tol", [("float32", 1e-4), ("float64", 1e-9)])
def test_match_keras_values_and_gradients(dtype, tol):
    import keras
    import tensorflow as tf
    rng = np.random.default_rng(3)
    y_true = rng.normal(size=(6, 4)).astype(dtype)
    y_pred = rng.normal(scale=1.5, size=(6, 4)).astype(dtype)
    y_pred[0, :2] = y_true[0, :2]                   # e = 0: MAE's subgradient 0 as in TF
    y_pred[1, 0] = y_true[1, 0] + dtype_exact(0.5, dtype)   # |e| = delta exactly
    cases = [(MeanAbsoluteError(), lambda t, p: keras.losses.mean_absolute_error(t, p)),
             (Huber(), lambda t, p: keras.losses.huber(t, p)),
             (Huber(delta=0.5), lambda t, p: keras.losses.huber(t, p, delta=0.5)),
             (losses.MeanSquaredError(), lambda t, p: keras.losses.mean_squared_error(t, p))]
    for loss, theirs in cases:
        var = tf.Variable(y_pred)
        with tf.GradientTape() as tape:
            values = theirs(y_true, var)
            total = tf.reduce_sum(values)
        np.testing.assert_allclose(loss.call(y_true, y_pred), values.numpy(), rtol=tol,
                                   atol=tol)
        np.testing.assert_allclose(loss.gradient(y_true, y_pred),
                                   tape.gradient(total, var).numpy(), rtol=tol, atol=tol)
    assert MeanAbsoluteError().gradient(y_true, y_pred)[0, 0] == 0


def dtype_exact(value, dtype):
    return np.asarray(value, dtype=dtype)


@pytest.mark.keras
@pytest.mark.parametrize("dtype, tol", [("float32", 1e-4), ("float64", 1e-9)])
@pytest.mark.parametrize("loss", ["mae", "huber"])
def test_model_matches_keras(dtype, tol, loss):
    from keras_parity import assert_model_matches_keras, keras_dtype
    mlstm.set_random_seed(0)
    x = Input((4, 3), name="x", dtype=dtype)
    model = Model(x, Dense(2, name="head")(LSTM(3, name="lstm")(x)))
    rng = np.random.default_rng(4)
    model.set_weights([rng.normal(scale=0.8, size=w.shape).astype(dtype)
                       for w in model.get_weights()])
    model.compile("sgd", loss=loss)
    xs, ys = [rng.normal(size=(5, 4, 3)).astype(dtype)], [rng.normal(size=(5, 2)).astype(dtype)]
    with keras_dtype(dtype) as keras:
        kx = keras.Input((4, 3))
        theirs = keras.Model(kx, keras.layers.Dense(2)(keras.layers.LSTM(3)(kx)))
        theirs.set_weights(model.get_weights())
        theirs.compile("sgd", loss=loss)
        assert_model_matches_keras(model, theirs, xs, ys, tol)
