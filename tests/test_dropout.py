"""Dropout and SpatialDropout1D: Keras' inverted dropout, masks from the seeded stream.

- inference (and a training pass given no generator) is the identity;
- in training, each entry is kept with probability 1 - rate and scaled by 1/(1 - rate);
  ``noise_shape`` / SpatialDropout1D share one draw along the broadcast axes;
- ``fit(seed=...)``: the same seed gives the same masks (bit-identical weights), another
  seed other masks;
- the gradient matches finite differences with the masks held fixed (float64);
- Keras: inference agrees (float32 1e-4, float64 1e-9), and so do a training pass's
  outputs and gradients when mlstm's masks are injected into Keras' Dropout.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mlstm
from mlstm.ops.dropout import dropout_mask, dropout_scale

from fixed_mask_gradcheck import fixed_mask_gradcheck


def _model(layer, shape=(6, 4), dtype="float64", units=3):
    mlstm.set_random_seed(0)
    x = mlstm.Input(shape=shape, name="x", dtype=dtype)
    h = mlstm.LSTM(units, return_sequences=True, name="lstm")(x)
    out = mlstm.Dense(1, name="out")(layer(h))
    model = mlstm.Model(x, out)
    model.compile(optimizer="adam", loss="mse")
    return model


def _data(model, n=5, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n,) + model.inputs[0].shape).astype(model.dtype)
    y = rng.normal(size=(n,) + model.outputs[0].shape).astype(model.dtype)
    return x, y


def test_inference_and_training_without_a_generator_are_the_identity():
    layer = mlstm.layers.Dropout(0.5, name="drop")
    model = _model(layer)
    x, _ = _data(model)
    tape_inference = model.forward([x])
    tape_training = model.forward([x], training=True)
    k = next(k for k, n in enumerate(model.nodes) if n.layer is layer)
    h = tape_inference.value(model.nodes[k].inputs[0])
    np.testing.assert_array_equal(tape_inference.value(model.nodes[k].outputs[0]), h)
    np.testing.assert_array_equal(tape_training.value(model.nodes[k].outputs[0]), h)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mask_rate_and_scale(dtype):
    rng = np.random.default_rng(0)
    mask = dropout_mask(rng, 0.3, (200, 50), dtype)
    assert mask.dtype == dtype
    values = set(np.unique(mask).tolist())
    scale = dropout_scale(0.3, dtype)
    assert values == {0.0, float(scale)}
    assert scale == np.dtype(dtype).type(1) / (np.dtype(dtype).type(1) - np.dtype(dtype).type(0.3))
    dropped = np.mean(mask == 0)
    assert abs(dropped - 0.3) < 0.02            # 10,000 draws: sd 0.0046
    assert np.all(dropout_mask(rng, 1.0, (3, 4), dtype) == 0)
    assert np.all(dropout_mask(rng, 0.0, (3, 4), dtype) == 1)


def test_training_pass_with_a_generator_drops_and_scales():
    layer = mlstm.layers.Dropout(0.5, name="drop")
    model = _model(layer, shape=(40, 4), units=20)
    x, _ = _data(model)
    tape = model.forward([x], training=True, rng=np.random.default_rng(3))
    k = next(k for k, n in enumerate(model.nodes) if n.layer is layer)
    h = tape.value(model.nodes[k].inputs[0])
    y = tape.value(model.nodes[k].outputs[0])
    kept = y != 0
    assert 0.4 < np.mean(kept) < 0.6
    np.testing.assert_array_equal(y[kept], h[kept] * 2.0)


def test_noise_shape_shares_the_draw_along_broadcast_axes():
    layer = mlstm.layers.Dropout(0.5, noise_shape=[None, 1, 8], name="drop")
    model = _model(layer, shape=(6, 4), units=8)
    x, _ = _data(model, n=30)
    tape = model.forward([x], training=True, rng=np.random.default_rng(3))
    mask = tape.caches[[n.layer for n in model.nodes].index(layer)]["mask"]
    assert mask.shape == (30, 1, 8)
    assert 0 < np.mean(mask == 0) < 1


def test_spatial_dropout_drops_whole_features_of_a_sequence():
    layer = mlstm.layers.SpatialDropout1D(0.5, name="drop")
    model = _model(layer, shape=(6, 4), units=8)
    x, _ = _data(model, n=30)
    tape = model.forward([x], training=True, rng=np.random.default_rng(3))
    k = [n.layer for n in model.nodes].index(layer)
    y = tape.value(model.nodes[k].outputs[0])
    dropped = np.all(y == 0, axis=1)                     # (N, H): the whole sequence
    assert np.array_equal(dropped, np.any(y == 0, axis=1))
    assert 0.3 < dropped.mean() < 0.7


def test_masks_pass_through():
    x = mlstm.Input(shape=(5, 3), name="x")
    y = mlstm.layers.Dropout(0.2)(mlstm.Masking()(x))
    assert y.has_mask
    assert mlstm.layers.SpatialDropout1D(0.2)(mlstm.Masking()(x)).has_mask


def _fit_weights(model, x, y, seed):
    model = model.clone()
    model.fit(x, y, epochs=2, batch_size=2, seed=seed, verbose=0)
    return model.get_weights()


def test_same_seed_same_masks_other_seed_other_masks():
    model = _model(mlstm.layers.Dropout(0.5, name="drop"))
    x, y = _data(model, n=6)
    a, b = _fit_weights(model, x, y, 7), _fit_weights(model, x, y, 7)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    c = _fit_weights(model, x, y, 8)
    assert any(not np.array_equal(u, v) for u, v in zip(a, c))
    # and the masks matter: at rate 0 the same seed trains to other weights
    plain = _model(mlstm.layers.Dropout(0.0, name="drop"))
    d = _fit_weights(plain, x, y, 7)
    assert any(not np.array_equal(u, v) for u, v in zip(a, d))


@pytest.mark.parametrize("layer", [lambda: mlstm.layers.Dropout(0.5, name="drop"),
                                   lambda: mlstm.layers.Dropout(0.4, noise_shape=[None, 1, 3],
                                                                name="drop"),
                                   lambda: mlstm.layers.SpatialDropout1D(0.5, name="drop")])
def test_gradient_with_masks_held_fixed(layer):
    model = _model(layer())
    x, y = _data(model, n=4)
    errors, tape = fixed_mask_gradcheck(model, [x], [y], seed=5)
    mask = tape.caches[[n.layer.name for n in model.nodes].index("drop")]["mask"]
    assert np.any(mask == 0) and np.any(mask != 0)       # the check saw real masks
    assert max(errors.values()) < 1e-6, errors


@settings(max_examples=15)
@given(rate=st.floats(0.05, 0.95), n=st.integers(1, 3), t=st.integers(1, 4),
       d=st.integers(1, 3), seed=st.integers(0, 2 ** 16), spatial=st.booleans())
def test_property_gradient_and_expectation(rate, n, t, d, seed, spatial):
    layer = (mlstm.layers.SpatialDropout1D(rate, name="drop") if spatial
             else mlstm.layers.Dropout(rate, name="drop"))
    model = _model(layer, shape=(t, d), units=2)
    x, y = _data(model, n=n, seed=seed)
    errors, _ = fixed_mask_gradcheck(model, [x], [y], seed=seed)
    assert max(errors.values()) < 1e-6, errors
    # the op's mask: entries are 0 or 1/(1 - rate)
    mask = dropout_mask(np.random.default_rng(seed), rate, (n, t, d), "float64")
    assert set(np.unique(mask)) <= {0.0, 1 / (1 - rate)}


@pytest.mark.parametrize("kwargs, message", [
    ({"rate": -0.1}, "rate must be a number in \\[0, 1\\]"),
    ({"rate": 1.5}, "rate must be a number in \\[0, 1\\]"),
    ({"rate": "0.5"}, "rate must be a number"),
    ({"rate": 0.5, "noise_shape": "abc"}, "noise_shape must be a list"),
    ({"rate": 0.5, "noise_shape": [None, 0]}, "noise_shape entries must be positive"),
])
def test_bad_options_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mlstm.layers.Dropout(name="d", **kwargs)


def test_noise_shape_that_does_not_broadcast_is_refused():
    x = mlstm.Input(shape=(5, 3), name="x")
    with pytest.raises(ValueError, match="does not broadcast"):
        mlstm.layers.Dropout(0.5, noise_shape=[None, 2, 3], name="d")(x)
    with pytest.raises(ValueError, match="one entry per input axis"):
        mlstm.layers.Dropout(0.5, noise_shape=[None, 3], name="d")(x)
    with pytest.raises(ValueError, match="expects input of shape \\(N, T, D\\)"):
        mlstm.layers.SpatialDropout1D(0.5, name="s")(mlstm.Input(shape=(3,), name="v"))


# --------------------------------------------------------------------------- Keras
def _keras_pair(dtype, spatial=False):
    from mlstm.interop.keras import to_keras
    layer = (mlstm.layers.SpatialDropout1D(0.5, name="drop") if spatial
             else mlstm.layers.Dropout(0.5, noise_shape=[None, 1, 3], name="drop"))
    model = _model(layer, dtype=dtype)
    return model, to_keras(model)


@pytest.mark.keras
@pytest.mark.parametrize("dtype, tol", [("float32", 1e-4), ("float64", 1e-9)])
@pytest.mark.parametrize("spatial", [False, True])
def test_keras_inference_agrees(dtype, tol, spatial):
    model, keras_model = _keras_pair(dtype, spatial)
    x, _ = _data(model)
    theirs = np.asarray(keras_model(x, training=False))
    np.testing.assert_allclose(model.predict(x), theirs, rtol=tol, atol=tol)
    back = mlstm.interop.keras.from_keras(keras_model)
    assert type(back.get_layer("drop")) is type(model.get_layer("drop"))
    assert back.get_layer("drop").get_config() == model.get_layer("drop").get_config()


@pytest.mark.keras
@pytest.mark.parametrize("dtype, tol", [("float32", 1e-4), ("float64", 1e-9)])
def test_keras_training_step_with_mlstm_masks_injected(dtype, tol):
    """One training step: mlstm draws its masks; Keras' Dropout is made to multiply by the
    same masks (its ``call`` replaced on the instance: Keras' own draws cannot be
    reproduced). The outputs and the gradient of every weight agree."""
    import tensorflow as tf
    model, keras_model = _keras_pair(dtype)
    x, y = _data(model)
    rng_seed = 11
    tape = model.forward([x], training=True, rng=np.random.default_rng(rng_seed))
    k = [n.layer.name for n in model.nodes].index("drop")
    mask = tape.caches[k]["mask"]
    assert np.any(mask == 0)
    klayer = keras_model.get_layer("drop")
    klayer.call = lambda inputs, training=False: inputs * tf.constant(mask) if training else inputs
    with tf.GradientTape() as gtape:
        pred = keras_model(x, training=True)
        loss = tf.reduce_mean(tf.square(tf.constant(y) - pred))
    kgrads = gtape.gradient(loss, keras_model.trainable_weights)
    np.testing.assert_allclose(tape.outputs[0], np.asarray(pred), rtol=tol, atol=tol)
    result = model.loss_and_output_grads(tape, [y])
    grads = model.backward(tape, result.d_outputs, result.d_logits)
    names = [f"{l.name}/{w.name}" for l in keras_model.layers for w in l.weights]
    assert names == list(grads)
    for name, g in zip(names, kgrads):
        np.testing.assert_allclose(grads[name], np.asarray(g), rtol=tol, atol=tol, err_msg=name)


@pytest.mark.keras
@pytest.mark.parametrize("started_as", ["keras", "mlstm"])
def test_crosscheck_compares_training_with_rates_zeroed_and_says_so(started_as):
    """A stacked LSTM with Dropout, as in the predictive-maintenance examples: crosscheck
    compares inference as is, and training with Keras' rates set to 0 (named in its table)."""
    import keras
    from mlstm.interop.keras import crosscheck, format_report, from_keras, keras_dtype
    with keras_dtype("float64"):
        keras.utils.set_random_seed(0)
        keras_model = keras.Sequential([
            keras.Input((6, 3)),
            keras.layers.LSTM(4, return_sequences=True, name="lstm_1"),
            keras.layers.Dropout(0.2, name="drop_1"),
            keras.layers.LSTM(3, name="lstm_2"),
            keras.layers.Dropout(0.2, name="drop_2"),
            keras.layers.Dense(1, activation="sigmoid", name="out")])
        keras_model.compile(optimizer="adam", loss="binary_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 6, 3))
    y = (rng.random((8, 1)) > 0.5).astype("float64")
    model = keras_model if started_as == "keras" else from_keras(keras_model)
    report = crosscheck(model, x, y, steps=2, as_dict=True, run_eagerly=True)
    assert report["ok"], format_report(report)
    assert report["dropout_rates_zeroed"] == ["drop_1: rate=0.2", "drop_2: rate=0.2"]
    assert set(report["inference"]) == {"out"}
    text = format_report(report)
    assert "dropout: training compared with the rates set to 0" in text
    assert "inference" in text
    assert keras_model.get_layer("drop_1").rate == 0.2          # the model itself untouched
