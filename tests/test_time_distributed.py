"""TimeDistributed: the wrapped layer on every step, one set of weights (Keras semantics).

- equals the wrapped layer applied to each step ``x[:, t]`` (values) and sums the weight
  gradients over steps; float64 gradients match finite differences (hypothesis over
  shapes and wrapped layers, dropout masks held fixed);
- masks pass through;
- weights named ``"<td>/<wrapped>/<weight>"``; config, save/load and Keras round trips;
- Keras: an encoder-decoder forecaster (LSTM -> RepeatVector -> LSTM -> TimeDistributed
  (Dense)) cross-checked in float32 and float64, and BCE on a TimeDistributed sigmoid head
  taken from probabilities, as Keras takes it.
"""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import mlstm
from mlstm import testing
from mlstm.layers import Dense, Dropout, TimeDistributed

from fixed_mask_gradcheck import fixed_mask_gradcheck


def _data(model, n=4, seed=0):
    rng = np.random.default_rng(seed)
    xs = [rng.normal(size=(n,) + t.shape).astype(model.dtype) for t in model.inputs]
    ys = [rng.normal(size=(n,) + t.shape).astype(model.dtype) for t in model.outputs]
    return xs, ys


def test_equals_the_layer_on_each_step():
    mlstm.set_random_seed(0)
    x = mlstm.Input(shape=(5, 3), name="x", dtype="float64")
    td = TimeDistributed(Dense(2, activation="tanh", name="dense"), name="td")
    model = mlstm.Model(x, td(x))
    assert list(model.params) == ["td/dense/kernel", "td/dense/bias"]
    assert model.output_names == ["td"]
    (xv,), _ = _data(model)
    inner = td.layer
    per_step = np.stack([inner.forward([xv[:, t]], [None])[0][0] for t in range(5)], axis=1)
    np.testing.assert_allclose(model.predict(xv), per_step, rtol=1e-15, atol=1e-15)


def test_masks_pass_through():
    x = mlstm.Input(shape=(5, 3), name="x")
    y = TimeDistributed(Dense(2))(mlstm.Masking()(x))
    assert y.has_mask and y.shape == (5, 2)


@pytest.mark.parametrize("make", [
    lambda: Dense(2, activation="sigmoid", name="inner"),
    lambda: mlstm.Activation("tanh", name="inner"),
    lambda: mlstm.LSTM(2, name="inner"),                    # on (N, T1, T2, D)
])
def test_gradient_float64(make):
    mlstm.set_random_seed(1)
    inner = make()
    shape = (3, 4, 2) if isinstance(inner, mlstm.LSTM) else (4, 3)
    x = mlstm.Input(shape=shape, name="x", dtype="float64")
    h = TimeDistributed(inner, name="td")(x)
    out = Dense(1, name="out")(mlstm.LSTM(2, name="l")(h) if h.shape[-1] else h)
    model = mlstm.Model(x, out)
    model.compile(optimizer="adam", loss="mse")
    xs, ys = _data(model, n=3)
    report = mlstm.gradcheck(model, xs, ys)
    assert report.max_relative_error < 1e-6, str(report)


@settings(max_examples=12)
@given(n=st.integers(1, 3), t=st.integers(1, 4), d=st.integers(1, 3), units=st.integers(1, 3),
       activation=st.sampled_from(["linear", "tanh", "sigmoid", "relu"]),
       dropout=st.sampled_from([0.0, 0.5]), seed=st.integers(0, 2 ** 16))
def test_property_gradient(n, t, d, units, activation, dropout, seed):
    mlstm.set_random_seed(seed)
    x = mlstm.Input(shape=(t, d), name="x", dtype="float64")
    h = TimeDistributed(Dropout(dropout, name="drop"), name="td_drop")(x)
    y = TimeDistributed(Dense(units, activation=activation, name="dense"), name="td")(h)
    model = mlstm.Model(x, y)
    model.compile(optimizer="adam", loss="mse")
    testing.randomize_weights(model, seed)
    xs, ys = _data(model, n=n, seed=seed)
    errors, tape = fixed_mask_gradcheck(model, xs, ys, seed=seed)
    # a relu input within the stencil's reach of 0: finite differences cannot judge it
    relu_inputs = [a for pos, node in enumerate(model.nodes)
                   for name, a in node.layer.activation_inputs(tape.caches[pos]) if name == "relu"]
    assume(min((np.min(np.abs(a), initial=np.inf) for a in relu_inputs), default=np.inf) > 1e-3)
    assert max(errors.values()) < 1e-6, errors


def test_weight_gradient_is_the_sum_over_steps():
    mlstm.set_random_seed(2)
    x = mlstm.Input(shape=(4, 3), name="x", dtype="float64")
    td_model = mlstm.Model(x, TimeDistributed(Dense(2, name="dense"), name="td")(x))
    x2 = mlstm.Input(shape=(3,), name="x", dtype="float64")
    step_model = mlstm.Model(x2, Dense(2, name="dense")(x2))
    step_model.set_weights(td_model.get_weights())
    for m in (td_model, step_model):
        m.compile(optimizer="adam", loss="mse")
    (xv,), (yv,) = _data(td_model, n=3)
    grads = td_model.gradients(xv, yv)
    # MSE over (N, T, O) is the mean of per-step MSEs: the sum of step gradients / T
    total = sum(step_model.gradients(xv[:, t], yv[:, t])["dense/kernel"] for t in range(4)) / 4
    np.testing.assert_allclose(grads["td/dense/kernel"], total, rtol=1e-12)


def test_bad_wrapping_is_refused():
    with pytest.raises(ValueError, match="at least 3 axes"):
        TimeDistributed(Dense(2))(mlstm.Input(shape=(3,)))
    with pytest.raises(ValueError, match="must take one input"):
        TimeDistributed(mlstm.Concatenate())
    with pytest.raises(TypeError, match="must be a layer or a config"):
        TimeDistributed("dense")
    used = Dense(2)
    used(mlstm.Input(shape=(3,)))
    with pytest.raises(ValueError, match="already been built"):
        TimeDistributed(used)
    with pytest.raises(ValueError, match="not trainable while the wrapper is"):
        TimeDistributed(Dense(2, trainable=False))


def test_config_and_save_round_trip(tmp_path):
    mlstm.set_random_seed(3)
    x = mlstm.Input(shape=(4, 3), name="x")
    model = mlstm.Model(x, TimeDistributed(Dense(2, name="dense"), name="td")(x))
    model.compile(optimizer="adam", loss="mse")
    xs, ys = _data(model)
    model.fit(xs, ys, epochs=1, batch_size=2, seed=0, verbose=0)
    model.save(str(tmp_path / "m.npz"))
    loaded = mlstm.load_model(str(tmp_path / "m.npz"))
    np.testing.assert_array_equal(loaded.predict(xs), model.predict(xs))
    assert loaded.get_layer("td").get_config() == model.get_layer("td").get_config()
    clone = model.clone(dtype="float64")
    assert clone.get_layer("td").layer.dtype == "float64"


# --------------------------------------------------------------------------- Keras
def _forecaster_keras(dtype, T=6, D=2, horizon=3):
    """An encoder-decoder forecaster as it is written in the public examples (e.g. Jason
    Brownlee's "How to Develop LSTM Models for Time Series Forecasting", multi-step
    encoder-decoder model): LSTM -> RepeatVector -> LSTM(return_sequences) ->
    TimeDistributed(Dense) -> TimeDistributed(Dense)."""
    import keras
    keras.utils.set_random_seed(0)
    x = keras.Input((T, D), name="x", dtype=dtype)
    h = keras.layers.LSTM(5, name="encoder", dtype=dtype)(x)
    h = keras.layers.RepeatVector(horizon, name="repeat", dtype=dtype)(h)
    h = keras.layers.LSTM(5, return_sequences=True, name="decoder", dtype=dtype)(h)
    h = keras.layers.TimeDistributed(keras.layers.Dense(4, activation="relu", dtype=dtype),
                                     name="td_hidden", dtype=dtype)(h)
    y = keras.layers.TimeDistributed(keras.layers.Dense(1, dtype=dtype), name="td_out",
                                     dtype=dtype)(h)
    model = keras.Model(x, y)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return model


@pytest.mark.keras
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_keras_encoder_decoder_forecaster_crosscheck(dtype):
    from mlstm.interop.keras import crosscheck, from_keras, keras_dtype
    with keras_dtype(dtype):
        keras_model = _forecaster_keras(dtype)
    model = from_keras(keras_model)
    assert [type(l).__name__ for l in model.layers] == [
        "InputLayer", "LSTM", "RepeatVector", "LSTM", "TimeDistributed", "TimeDistributed"]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 6, 2)).astype(dtype)
    y = rng.normal(size=(8, 3, 1)).astype(dtype)
    report = crosscheck(keras_model, x, y, steps=2, as_dict=True, run_eagerly=True)
    assert report["ok"], mlstm.interop.keras.format_report(report)


@pytest.mark.keras
def test_keras_bce_on_a_time_distributed_sigmoid_head_uses_probabilities():
    from mlstm.interop.keras import crosscheck, from_keras, keras_dtype
    import keras
    with keras_dtype("float64"):
        x = keras.Input((3, 2), name="x")
        y = keras.layers.TimeDistributed(keras.layers.Dense(1, activation="sigmoid"),
                                         name="head")(x)
        keras_model = keras.Model(x, y)
        keras_model.compile(optimizer="sgd", loss="binary_crossentropy")
    keras_model.set_weights([np.array([[30.0], [0.0]]), np.array([0.0])])
    xv = np.array([[[1.0, 0], [-1.0, 0], [2.0, 0]]])
    yv = np.array([[[0.0], [1.0], [0.0]]])
    model = from_keras(keras_model)
    assert model.output_activation(0) is None
    with keras_dtype("float64"):
        keras_loss = keras_model.evaluate(xv, yv, verbose=0)
    # from probabilities clipped to [1e-7, 1 - 1e-7]: 16.1; from the logits it would be 40
    assert abs(keras_loss - 40.0) > 20
    np.testing.assert_allclose(model.evaluate(xv, yv), keras_loss, rtol=1e-9)
    report = crosscheck(keras_model, xv, yv, steps=1, as_dict=True, run_eagerly=True)
    assert report["ok"], mlstm.interop.keras.format_report(report)
