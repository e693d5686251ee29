"""keras.io example "Timeseries forecasting for weather prediction"
(https://keras.io/examples/timeseries/timeseries_weather_forecasting/).

A window of past weather measurements (every feature of every step) goes through one LSTM of
32 units; a linear Dense unit predicts the temperature ahead. Adam with learning rate 1e-3,
mean squared error. Shrunk: windows of 12 steps instead of 120 (7 features, as the
example keeps), batch of 8. Keras' step runs traced here, as ``fit`` runs it.
"""
import pytest

from _harness import DTYPES, check_real_model, keras_building, rng_for, sequences

pytestmark = pytest.mark.keras

STEPS_IN, FEATURES, N = 12, 7, 8


def build(dtype):
    with keras_building(dtype) as keras:
        window = keras.Input((STEPS_IN, FEATURES), name="window")
        summary = keras.layers.LSTM(32, name="lstm")(window)
        temperature = keras.layers.Dense(1, name="temperature")(summary)
        model = keras.Model(window, temperature, name="weather_forecast")
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss="mse")
    return model


@pytest.mark.parametrize("dtype", DTYPES)
def test_weather_forecast(dtype):
    rng = rng_for("weather")
    x = sequences(rng, N, STEPS_IN, FEATURES, dtype)
    y = rng.standard_normal((N, 1)).astype(dtype)
    check_real_model(build(dtype), x, y, dtype, run_eagerly=False)
