"""diagnose finds BatchNormalization trained on batches too small for its statistics
(batchnorm_small_batch), states what Keras 3.15 does there, and stays silent on a sound
setup; the diagnosis leaves the model's moving statistics as they were."""
from __future__ import annotations

import numpy as np
import pytest

import mlstm
from mlstm import LSTM, Dense, Input, Masking, Model
from mlstm.diagnostics.checks.normalization import even_batch_size
from mlstm.layers import BatchNormalization


def _dense_model() -> Model:
    x = Input((4,), name="x", dtype="float64")
    h = Dense(8, name="d1", seed=1, activation="tanh")(x)
    h = BatchNormalization(name="bn")(h)
    y = Dense(1, name="out", seed=2)(h)
    model = Model(x, y)
    model.compile(optimizer="adam", loss="mse")
    return model


def _data(N: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, 4))
    return x, x[:, :1] * 2 + x[:, 1:2]


def _finding(report, code):
    found = [f for f in report.findings if f.code == code]
    assert len(found) == 1, report.codes
    return found[0]


def test_batches_of_one_sample_error_explains_no_gradient_and_the_fix_is_verified():
    model = _dense_model()
    x, y = _data(64)
    moving = {k: v.copy() for k, v in model.get_layer("bn").state.items()}
    report = mlstm.diagnose(model, x, y, steps=20, batch_size=1, verify=True)
    f = _finding(report, "batchnorm_small_batch")
    assert f.severity == "error"
    assert f.measured["count"] == 1 and not f.measured["last_batch_only"]
    assert "outputs beta whatever its input" in f.message
    # 20 steps at batch variance 0: moving_variance * 0.99**20
    assert f"0.818 after 20 steps" in f.message
    assert "mlstm has no LayerNormalization" in f.fix
    assert f.measured["suggested_batch_size"] == 32
    assert f.verification["verified"], f.verification["words"]
    starved = _finding(report, "no_gradient")
    assert starved.caused_by == "batchnorm_small_batch"
    assert set(starved.measured["parameters"]) == {"d1/kernel", "d1/bias", "bn/gamma"}
    # the diagnosis ran training passes on the model: its moving statistics are put back
    for k, v in moving.items():
        np.testing.assert_array_equal(model.get_layer("bn").state[k], v)


def test_a_last_batch_of_one_sample_is_found_with_an_even_batch_size():
    x, y = _data(65)
    report = mlstm.diagnose(_dense_model(), x, y, steps=20, batch_size=32)
    f = _finding(report, "batchnorm_small_batch")
    assert f.severity == "error" and f.measured["last_batch_only"]
    assert "the last batch of each epoch holds 1 sample (65 = 2 x 32 + 1; 6 of the run's 20 " \
           "steps)" in f.message
    assert f.measured["suggested_batch_size"] == 22
    assert "no_gradient" not in report.codes         # the full batches do train


def test_few_valid_steps_of_a_masked_sequence_give_a_warning():
    x_in = Input((6, 3), name="x", dtype="float64")
    h = Masking(name="mask")(x_in)
    h = LSTM(4, return_sequences=True, name="lstm", seed=3)(h)
    h = BatchNormalization(name="bn")(h)
    y = LSTM(2, name="last", seed=4)(h)
    y = Dense(1, name="out", seed=5)(y)
    model = Model(x_in, y)
    model.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(16, 6, 3))
    x[:, 2:] = 0.0                                  # two valid steps per sample
    report = mlstm.diagnose(model, x, rng.normal(size=(16, 1)), steps=4, batch_size=2)
    f = _finding(report, "batchnorm_small_batch")
    assert f.severity == "warning"
    assert f.measured["count"] == 4 and f.measured["per_sample"] == 2
    assert "1/sqrt(4) = 0.50" in f.message
    assert f.measured["suggested_batch_size"] == 16       # min(N, 32)


def test_sound_batches_raise_nothing():
    x, y = _data(64)
    report = mlstm.diagnose(_dense_model(), x, y, steps=10, batch_size=32)
    assert "batchnorm_small_batch" not in report.codes
    assert report.static["batch_statistics"]["bn"]["count"] == 32


def test_even_batch_size():
    assert even_batch_size(65, 32, 8) == 22
    assert even_batch_size(64, 32, 8) == 32
    assert even_batch_size(70, 32, 8) == 24           # 32, 32, 6 -> 24, 24, 22
    assert even_batch_size(40, 32, 8) == 32           # last batch of 8 is enough
    assert even_batch_size(5, 1, 8) == 5


def test_mlstm_at_one_sample_outputs_beta_and_passes_no_gradient():
    """What the finding states, in mlstm (the Keras twin below checks Keras)."""
    model = _dense_model()
    model.get_layer("bn").params["beta"][...] = np.linspace(-1, 1, 8)
    x, y = _data(1)
    other, _ = _data(1, seed=9)
    tape = model.forward([x], training=True)
    # x - mean is 0: the output does not depend on the input (up to rounding: mlstm computes
    # x·scale + (beta - mean·scale), as TensorFlow's batch_normalization does)
    np.testing.assert_allclose(tape.outputs[0], model.forward([other], training=True).outputs[0],
                               rtol=0, atol=1e-14)
    np.testing.assert_allclose(tape.outputs[0], np.linspace(-1, 1, 8)[None]
                               @ model.get_layer("out").params["kernel"]
                               + model.get_layer("out").params["bias"], rtol=1e-14)
    grads = model.gradients(x, y)
    for name in ("d1/kernel", "d1/bias", "bn/gamma"):
        assert not np.any(grads[name]), name
    assert np.any(grads["bn/beta"])


@pytest.mark.keras
def test_keras_at_one_sample_outputs_beta_and_passes_no_gradient():
    import keras
    import tensorflow as tf

    layer = keras.layers.BatchNormalization(dtype="float64")
    x = tf.constant(np.random.default_rng(0).normal(size=(1, 4)))
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = layer(x, training=True)
        loss = tf.reduce_sum(out * tf.constant([[1.0, 2.0, 3.0, 4.0]], dtype=tf.float64))
    d_x, d_gamma, d_beta = tape.gradient(loss, [x, layer.gamma, layer.beta])
    np.testing.assert_array_equal(out.numpy(), np.zeros((1, 4)))        # beta = 0
    np.testing.assert_array_equal(d_x.numpy(), np.zeros((1, 4)))
    np.testing.assert_array_equal(d_gamma.numpy(), np.zeros(4))
    np.testing.assert_array_equal(d_beta.numpy(), [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(layer.moving_variance.numpy(), np.full(4, 0.99), rtol=1e-15)
