"""Machine Learning Mastery, "Time Series Prediction with LSTM Recurrent Neural Networks in
Python with Keras" (J. Brownlee; https://machinelearningmastery.com/time-series-prediction-
lstm-recurrent-neural-networks-python-keras/), the "window method" model.

The monthly airline passenger count, scaled to [0, 1], is predicted from the previous
``look_back = 3`` months given as the features of one time step: an LSTM of 4 units and a
linear Dense unit, mean squared error, Adam. Kept as the article has it (1 step, 3
features, 4 units); batch of 8 instead of 1.
"""
import pytest

from _harness import DTYPES, check_real_model, keras_building, rng_for

pytestmark = pytest.mark.keras

LOOK_BACK, N = 3, 8


def build(dtype):
    with keras_building(dtype) as keras:
        model = keras.Sequential([keras.Input((1, LOOK_BACK), name="months"),
                                  keras.layers.LSTM(4, name="lstm"),
                                  keras.layers.Dense(1, name="passengers")],
                                 name="airline_passengers")
        model.compile(loss="mean_squared_error", optimizer="adam")
    return model


@pytest.mark.parametrize("dtype", DTYPES)
def test_airline_passengers(dtype):
    rng = rng_for("airline")
    scaled = rng.random((N, 1, LOOK_BACK + 1)).astype(dtype)   # min-max scaled counts
    x, y = scaled[..., :LOOK_BACK], scaled[:, 0, LOOK_BACK:]
    check_real_model(build(dtype), x, y, dtype)
