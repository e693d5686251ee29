"""TensorFlow tutorial "Time series forecasting", its recurrent model
(https://www.tensorflow.org/tutorials/structured_data/time_series, section "Recurrent neural
network").

A Sequential LSTM of 32 units returns its state at every step and a linear Dense unit reads
each one: a temperature prediction one hour ahead at every step of the window. Compiled as
the tutorial's ``compile_and_fit`` does: Keras loss and metric *objects*
(``MeanSquaredError()``, ``MeanAbsoluteError()``) and ``Adam()`` with its defaults. Shrunk:
windows of 6 steps of 5 features (the tutorial: 24 steps of 19), batch of 8.
"""
import pytest

from _harness import DTYPES, check_real_model, keras_building, rng_for, sequences

pytestmark = pytest.mark.keras

STEPS_IN, FEATURES, N = 6, 5, 8


def build(dtype):
    with keras_building(dtype) as keras:
        model = keras.Sequential([keras.Input((STEPS_IN, FEATURES), name="window"),
                                  keras.layers.LSTM(32, return_sequences=True, name="lstm"),
                                  keras.layers.Dense(1, name="temperature")],
                                 name="tf_time_series_lstm")
        model.compile(loss=keras.losses.MeanSquaredError(),
                      optimizer=keras.optimizers.Adam(),
                      metrics=[keras.metrics.MeanAbsoluteError()])
    return model


@pytest.mark.parametrize("dtype", DTYPES)
def test_tf_time_series_per_step(dtype):
    rng = rng_for("tf time series")
    x = sequences(rng, N, STEPS_IN, FEATURES, dtype)
    y = rng.standard_normal((N, STEPS_IN, 1)).astype(dtype)     # one target per step
    model, _, _ = check_real_model(build(dtype), x, y, dtype)
    # the metric object came through, under Keras' own History key
    assert model.metrics_names == ["loss", "mean_absolute_error"]
