"""BatchNormalization: batch statistics in training (masked steps excluded), moving
statistics at inference, Keras' momentum and epsilon, moving statistics saved and carried.

- the statistics equal NumPy's mean and biased variance over every axis but the last,
  and leave masked steps out with Keras' count ``Σ mask + 1e-7``;
- one training pass moves the moving statistics by ``momentum``; inference (and a
  non-trainable layer in training) normalizes with them and moves nothing;
- float64 gradients match finite differences: batch statistics with and without masks,
  moving statistics (non-trainable), no gamma / no beta (hypothesis over shapes and options);
- ``save``/``load_model`` and ``from_keras``/``to_keras`` carry the moving statistics;
- Keras: cross-checks of (N, D) and masked (N, T, D) models, moving statistics after each
  step included (float32 1e-4, float64 1e-9), and the Keras RNN guide's
  LSTM -> BatchNormalization -> Dense model.
"""
import json
import zipfile

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import mlstm
from mlstm import LSTM, Dense, Input, Masking, Model, testing
from mlstm.layers import BatchNormalization
from mlstm.ops.batch_normalization import MASK_COUNT_EPSILON, batch_statistics


def _padded(n, t, d, seed=0, dtype="float64"):
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=1.5, scale=2.0, size=(n, t, d)).astype(dtype)
    for i in range(n):
        x[i, rng.integers(1, t + 1):] = 0.0
    return x


def test_statistics_match_numpy_and_leave_masked_steps_out():
    x = _padded(4, 5, 3)
    mean, var = batch_statistics(x)
    np.testing.assert_allclose(mean, x.reshape(-1, 3).mean(0), rtol=1e-14)
    np.testing.assert_allclose(var, x.reshape(-1, 3).var(0), rtol=1e-13)
    mask = np.any(x != 0, axis=-1)
    mean, var = batch_statistics(x, mask)
    valid = x[mask]
    count = len(valid) + MASK_COUNT_EPSILON
    np.testing.assert_allclose(mean, valid.sum(0) / count, rtol=1e-14)
    np.testing.assert_allclose(var, ((valid - mean) ** 2).sum(0) / count, rtol=1e-13)
    assert not np.allclose(mean, x.reshape(-1, 3).mean(0))


def _bn_model(shape=(5, 3), dtype="float64", masked=True, **options):
    mlstm.set_random_seed(0)
    x = Input(shape=shape, name="x", dtype=dtype)
    h = Masking(name="m")(x) if masked else x
    bn = BatchNormalization(name="bn", **options)
    y = Dense(2, name="out")(bn(h))
    model = Model(x, y)
    model.compile(optimizer="adam", loss="mse")
    return model, bn


def test_training_moves_the_moving_statistics_inference_uses_them():
    model, bn = _bn_model(momentum=0.9)
    x = _padded(4, 5, 3)
    mask = np.any(x != 0, axis=-1)
    mean, var = batch_statistics(x, mask)
    tape = model.forward([x], training=True)
    np.testing.assert_allclose(bn.state["moving_mean"], 0.1 * mean, rtol=1e-14)
    np.testing.assert_allclose(bn.state["moving_variance"], 0.9 + 0.1 * var, rtol=1e-14)
    k = [n.layer for n in model.nodes].index(bn)
    y = tape.value(model.nodes[k].outputs[0])
    normalized = (x - mean) / np.sqrt(var + 1e-3)               # gamma 1, beta 0
    np.testing.assert_allclose(y, normalized, rtol=1e-12, atol=1e-12)
    # inference: the moving statistics, and nothing moves
    before = [a.copy() for a in bn.state.values()]
    tape = model.forward([x])
    y = tape.value(model.nodes[k].outputs[0])
    np.testing.assert_allclose(y, (x - bn.state["moving_mean"])
                               / np.sqrt(bn.state["moving_variance"] + 1e-3), rtol=1e-12)
    for a, b in zip(before, bn.state.values()):
        np.testing.assert_array_equal(a, b)
    assert tape.masks[id(model.nodes[k].outputs[0])] is not None      # the mask passes


def test_non_trainable_layer_uses_moving_statistics_in_training():
    model, bn = _bn_model()
    bn.trainable = False
    bn.state["moving_mean"][...] = [0.5, -1.0, 2.0]
    bn.state["moving_variance"][...] = [2.0, 0.5, 1.0]
    x = _padded(3, 5, 3)
    before = [a.copy() for a in bn.state.values()]
    np.testing.assert_array_equal(model.forward([x], training=True).outputs[0],
                                  model.forward([x]).outputs[0])
    for a, b in zip(before, bn.state.values()):
        np.testing.assert_array_equal(a, b)
    assert "bn/gamma" not in model.trainable_params


@pytest.mark.parametrize("options, masked, trainable", [
    ({}, True, True), ({}, False, True), ({"center": False}, True, True),
    ({"scale": False, "epsilon": 0.1}, False, True), ({}, True, False)])
def test_gradient_float64(options, masked, trainable):
    model, bn = _bn_model(masked=masked, **options)
    bn.trainable = trainable
    bn.state["moving_mean"][...] = [0.5, -1.0, 2.0]
    bn.state["moving_variance"][...] = [2.0, 0.5, 1.0]
    x = _padded(4, 5, 3)
    y = np.random.default_rng(1).normal(size=(4, 5, 2))
    report = mlstm.gradcheck(model, x, y)
    assert report.max_relative_error < 1e-6, str(report)
    assert "bn/moving_mean" not in model.params


@settings(max_examples=20)
@given(n=st.integers(2, 4), t=st.integers(1, 4), d=st.integers(1, 3), sequence=st.booleans(),
       masked=st.booleans(), center=st.booleans(), scale=st.booleans(),
       momentum=st.floats(0.0, 1.0), seed=st.integers(0, 2 ** 16))
def test_property_gradient(n, t, d, sequence, masked, center, scale, momentum, seed):
    mlstm.set_random_seed(seed)
    shape = (t, d) if sequence else (d,)
    x = Input(shape=shape, name="x", dtype="float64")
    h = Masking(name="m")(x) if (masked and sequence) else x
    h = BatchNormalization(center=center, scale=scale, momentum=momentum, name="bn")(h)
    model = Model(x, Dense(1, name="out")(LSTM(2, name="l")(h) if sequence else h))
    model.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(seed)
    model.set_weights([w if k >= len(model.params) else rng.normal(scale=0.7, size=w.shape)
                       for k, w in enumerate(model.get_weights())])
    xv = _padded(n, t, d, seed) if sequence else rng.normal(size=(n, d))
    yv = rng.normal(size=(n, 1))
    try:
        testing.assert_gradients_close(model, xv, yv, rtol=1e-6)
    except testing.GradientMismatch as mismatch:
        # e.g. two samples of one feature: normalized to ±1 whatever x is, so dL/dx is 0 and
        # only rounding noise is left for finite differences to compare
        assume(not mismatch.caveats)      # finite differences cannot judge this draw
        raise


def test_state_is_saved_and_loaded(tmp_path):
    model, bn = _bn_model(dtype="float32")
    x = _padded(4, 5, 3, dtype="float32")
    y = np.random.default_rng(0).normal(size=(4, 5, 2)).astype("float32")
    model.fit(x, y, epochs=3, batch_size=2, seed=0, verbose=0)
    assert not np.allclose(bn.state["moving_variance"], 1.0)
    path = tmp_path / "bn.npz"
    model.save(str(path))
    loaded = mlstm.load_model(str(path))
    for a, b in zip(loaded.get_layer("bn").get_weights(), bn.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert [w.shape for w in bn.get_weights()] == [(3,)] * 4
    assert bn.weight_names == ["bn/gamma", "bn/beta", "bn/moving_mean", "bn/moving_variance"]
    # a file that lost its state list is refused, naming what is missing
    broken = tmp_path / "broken.npz"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "mlstm.json":
                meta = json.loads(data)
                meta["state"] = []
                data = json.dumps(meta).encode()
            dst.writestr(item, data)
    with pytest.raises(ValueError, match="state arrays \\[\\] do not match"):
        mlstm.load_model(str(broken))


def test_weights_file_carries_the_moving_statistics(tmp_path):
    model, bn = _bn_model(dtype="float32")
    x = _padded(4, 5, 3, dtype="float32")
    model.forward([x], training=True)                   # moves the statistics
    path = str(tmp_path / "m.weights.npz")
    model.save_weights(path)
    twin, _ = _bn_model(dtype="float32")
    twin.load_weights(path)
    for a, b in zip(twin.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(twin.get_layer("bn").state["moving_mean"], 0)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="only the last axis"):
        BatchNormalization(axis=1)(Input(shape=(4, 3)))
    with pytest.raises(ValueError, match="momentum must be a number in \\[0, 1\\]"):
        BatchNormalization(momentum=1.5)
    with pytest.raises(ValueError, match="epsilon must be a positive number"):
        BatchNormalization(epsilon=0)
    BatchNormalization(axis=2)(Input(shape=(4, 3)))          # the last axis, counted


# --------------------------------------------------------------------------- Keras
def _keras_bn_model(dtype, sequence):
    import keras
    keras.utils.set_random_seed(0)
    if sequence:
        x = keras.Input((5, 3), name="x", dtype=dtype)
        h = keras.layers.Masking(name="m", dtype=dtype)(x)
        h = keras.layers.BatchNormalization(momentum=0.8, epsilon=0.01, name="bn",
                                            dtype=dtype)(h)
        h = keras.layers.LSTM(3, name="lstm", dtype=dtype)(h)
    else:
        x = keras.Input((3,), name="x", dtype=dtype)
        h = keras.layers.BatchNormalization(momentum=0.8, name="bn", dtype=dtype)(x)
    y = keras.layers.Dense(2, name="out", dtype=dtype)(h)
    model = keras.Model(x, y)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    rng = np.random.default_rng(4)
    bn = model.get_layer("bn")
    bn.set_weights([rng.normal(size=3).astype(dtype), rng.normal(size=3).astype(dtype),
                    rng.normal(size=3).astype(dtype), rng.uniform(0.5, 2, 3).astype(dtype)])
    return model


@pytest.mark.keras
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sequence", [False, True])
def test_keras_crosscheck_and_inference(dtype, sequence):
    from mlstm.interop.keras import crosscheck, format_report, from_keras, to_keras
    from mlstm.interop.keras import keras_dtype
    with keras_dtype(dtype):
        keras_model = _keras_bn_model(dtype, sequence)
    model = from_keras(keras_model)
    for a, b in zip(model.get_layer("bn").get_weights(), keras_model.get_layer("bn").get_weights()):
        np.testing.assert_array_equal(a, b)                 # moving statistics carried
    x = _padded(6, 5, 3, dtype=dtype) if sequence else \
        np.random.default_rng(0).normal(loc=1, size=(6, 3)).astype(dtype)
    y = np.random.default_rng(1).normal(size=(6, 2)).astype(dtype)
    tol = 1e-4 if dtype == "float32" else 1e-9
    np.testing.assert_allclose(model.predict(x), np.asarray(keras_model(x, training=False)),
                               rtol=tol, atol=tol)
    report = crosscheck(keras_model, x, y, steps=3, as_dict=True, run_eagerly=True)
    assert report["ok"], format_report(report)
    names = {n for s in report["steps"] for n in s["weights"]}
    assert {"bn/moving_mean", "bn/moving_variance"} <= names      # compared after each step
    exported = to_keras(model)
    for a, b in zip(exported.get_layer("bn").get_weights(), model.get_layer("bn").get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.keras
def test_keras_rnn_guide_model():
    """The Keras RNN guide's model ("Working with RNNs", keras.io/guides/working_with_rnns,
    the MNIST model of its section on performance and cuDNN kernels): LSTM(64) ->
    BatchNormalization -> Dense(10) on (None, 28) rows, here with 8 units and MSE (the
    guide's sparse categorical cross-entropy is another issue's loss)."""
    import keras
    from mlstm.interop.keras import crosscheck, format_report, keras_dtype
    with keras_dtype("float64"):
        model = keras.models.Sequential([
            keras.Input((None, 28)),
            keras.layers.LSTM(8),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(10)])
        model.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 6, 28)), rng.normal(size=(5, 10))
    report = crosscheck(model, x, y, steps=2, as_dict=True, run_eagerly=True)
    assert report["ok"], format_report(report)
