"""Machine Learning Mastery, "Multivariate Time Series Forecasting with LSTMs in Keras"
(J. Brownlee; https://machinelearningmastery.com/multivariate-time-series-forecasting-lstms-
keras/), the air pollution model.

Eight scaled weather and pollution readings of the previous hour, as one time step, go
through an LSTM of 50 units; a linear Dense unit predicts the next hour's pollution. Mean
absolute error, Adam. Kept as the article has it (1 step, 8 features, 50 units); batch of 8
instead of 72.
"""
import pytest

from _harness import DTYPES, check_real_model, keras_building, rng_for

pytestmark = pytest.mark.keras

FEATURES, N = 8, 8


def build(dtype):
    with keras_building(dtype) as keras:
        model = keras.Sequential([keras.Input((1, FEATURES), name="last_hour"),
                                  keras.layers.LSTM(50, name="lstm"),
                                  keras.layers.Dense(1, name="pollution")],
                                 name="air_pollution")
        model.compile(loss="mae", optimizer="adam")
    return model


@pytest.mark.parametrize("dtype", DTYPES)
def test_air_pollution_mae(dtype):
    rng = rng_for("pollution")
    x = rng.random((N, 1, FEATURES)).astype(dtype)          # min-max scaled readings
    y = rng.random((N, 1)).astype(dtype)
    check_real_model(build(dtype), x, y, dtype)
