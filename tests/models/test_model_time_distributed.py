"""Machine Learning Mastery, "How to Use the TimeDistributed Layer in Keras" (J. Brownlee;
https://machinelearningmastery.com/timedistributed-layer-for-long-short-term-memory-
networks-in-python/), the many-to-many model.

A sequence of 5 values, one feature per step, goes through an LSTM of 5 units returning
every step; TimeDistributed(Dense(1)) outputs one value per step. Mean squared error, Adam.
Kept as the article has it (5 steps, 5 units); batch of 8.

TimeDistributed imports since issue 13 (docs/wrappers_and_regularization.md).
"""
import pytest

from _harness import DTYPES, check_real_model, keras_building, rng_for

pytestmark = pytest.mark.keras

LENGTH, N = 5, 8


def build(dtype):
    with keras_building(dtype) as keras:
        model = keras.Sequential([
            keras.Input((LENGTH, 1), name="sequence"),
            keras.layers.LSTM(5, return_sequences=True, name="lstm"),
            keras.layers.TimeDistributed(keras.layers.Dense(1), name="per_step")],
            name="time_distributed")
        model.compile(loss="mean_squared_error", optimizer="adam")
    return model


@pytest.mark.parametrize("dtype", DTYPES)
def test_time_distributed(dtype):
    rng = rng_for("time distributed")
    x = (rng.integers(0, 5, size=(N, LENGTH, 1)) / 5).astype(dtype)   # the article's 0.0..0.8
    check_real_model(build(dtype), x, x.copy(), dtype)
