"""TensorFlow tutorial "Time series forecasting", its multi-step recurrent model
(https://www.tensorflow.org/tutorials/structured_data/time_series, section "Multi-step
models", "RNN").

An LSTM of 32 units summarizes the input window into its last state; one Dense layer,
initialized with zeros as in the tutorial, predicts every feature for every future step at
once, and a Reshape lays the result out as (steps ahead, features). MSE loss object, Adam,
MAE metric object, as the tutorial's ``compile_and_fit``. Shrunk: 6 input steps, 3 steps
ahead, 4 features (the tutorial: 24, 24, 19), batch of 8.
"""
import pytest

from _harness import DTYPES, check_real_model, keras_building, rng_for, sequences

pytestmark = pytest.mark.keras

STEPS_IN, STEPS_OUT, FEATURES, N = 6, 3, 4, 8


def build(dtype):
    with keras_building(dtype) as keras:
        model = keras.Sequential([
            keras.Input((STEPS_IN, FEATURES), name="window"),
            keras.layers.LSTM(32, return_sequences=False, name="lstm"),
            keras.layers.Dense(STEPS_OUT * FEATURES, kernel_initializer="zeros",
                               name="all_steps"),
            keras.layers.Reshape((STEPS_OUT, FEATURES), name="steps_by_features")],
            name="tf_multi_step_lstm")
        model.compile(loss=keras.losses.MeanSquaredError(),
                      optimizer=keras.optimizers.Adam(),
                      metrics=[keras.metrics.MeanAbsoluteError()])
    return model


@pytest.mark.parametrize("dtype", DTYPES)
def test_tf_time_series_multi_step(dtype):
    rng = rng_for("tf multi step")
    x = sequences(rng, N, STEPS_IN, FEATURES, dtype)
    y = rng.standard_normal((N, STEPS_OUT, FEATURES)).astype(dtype)
    model, report, _ = check_real_model(build(dtype), x, y, dtype)
    # the zero-initialized kernel gives the LSTM no gradient before the first step; the
    # steps then train it, the same way in both frameworks
    assert report["gradients"]["total"]["lstm/kernel"]["max_abs"] == 0.0
    assert model.metrics_names == ["loss", "mean_absolute_error"]
