"""Machine Learning Mastery, "How to Develop LSTM Models for Time Series Forecasting"
(J. Brownlee; https://machinelearningmastery.com/how-to-develop-lstm-models-for-time-series-
forecasting/), the "Stacked LSTM" for a univariate series.

The last 3 values of a series, one feature per step, go through two stacked LSTMs of 50
units with ReLU as their cell activation (the first returns every step), then a linear
Dense unit; Adam, mean squared error. Kept as the article has it; batch of 8. Inputs are
kept small (the article's series run 10..90, which ReLU LSTMs pass unbounded).
"""
import pytest

from _harness import DTYPES, check_real_model, keras_building, rng_for, sequences

pytestmark = pytest.mark.keras

STEPS_IN, N = 3, 8


def build(dtype):
    with keras_building(dtype) as keras:
        model = keras.Sequential([
            keras.Input((STEPS_IN, 1), name="series"),
            keras.layers.LSTM(50, activation="relu", return_sequences=True, name="lstm_1"),
            keras.layers.LSTM(50, activation="relu", name="lstm_2"),
            keras.layers.Dense(1, name="next_value")], name="stacked_relu_lstm")
        model.compile(optimizer="adam", loss="mse")
    return model


@pytest.mark.parametrize("dtype", DTYPES)
def test_stacked_relu_lstm(dtype):
    rng = rng_for("stacked relu")
    x = sequences(rng, N, STEPS_IN, 1, dtype)
    y = x[:, -1, :] + 0.1
    check_real_model(build(dtype), x, y, dtype)
