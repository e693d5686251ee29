"""Machine Learning Mastery, "How to Develop LSTM Models for Multi-Step Time Series
Forecasting of Household Power Consumption" (J. Brownlee;
https://machinelearningmastery.com/how-to-develop-lstm-models-for-multi-step-time-series-forecasting-of-household-power-consumption/),
the encoder-decoder LSTM.

Two weeks of daily power use (14 steps, 1 feature) go through a ReLU LSTM encoder of 200
units; RepeatVector repeats its last state once per day of the forecast week (7); a ReLU
LSTM decoder of 200 units returns every step; TimeDistributed(Dense(100, relu)) and
TimeDistributed(Dense(1)) read each day. Mean squared error, Adam. Shrunk: 8 days in, 3
out, 5 units, a Dense of 4, batch of 8.
"""
import pytest

from _harness import DTYPES, check_real_model, keras_building, rng_for

pytestmark = pytest.mark.keras

DAYS_IN, DAYS_OUT, N = 8, 3, 8


def build(dtype):
    with keras_building(dtype) as keras:
        layers = keras.layers
        model = keras.Sequential([
            keras.Input((DAYS_IN, 1), name="history"),
            layers.LSTM(5, activation="relu", name="encoder"),
            layers.RepeatVector(DAYS_OUT, name="repeat"),
            layers.LSTM(5, activation="relu", return_sequences=True, name="decoder"),
            layers.TimeDistributed(layers.Dense(4, activation="relu"), name="per_day_hidden"),
            layers.TimeDistributed(layers.Dense(1), name="per_day")],
            name="encoder_decoder_forecaster")
        model.compile(loss="mse", optimizer="adam")
    return model


@pytest.mark.parametrize("dtype", DTYPES)
def test_encoder_decoder_forecaster(dtype):
    rng = rng_for("encoder decoder forecaster")
    usage = rng.random((N, DAYS_IN + DAYS_OUT, 1)).astype(dtype)   # daily use, scaled to [0, 1)
    model, _, _ = check_real_model(build(dtype), usage[:, :DAYS_IN], usage[:, DAYS_IN:], dtype)
    assert model.predict(usage[:, :DAYS_IN]).shape == (N, DAYS_OUT, 1)
