"""Keras 2 documentation, "Getting started with the Keras Sequential model", example
"Stacked LSTM for sequence classification" (keras.io 2.x).

Sequences of 8 steps of 16 features go through three LSTMs of 32 units, the first two
returning every step; a softmax Dense classifies into 10 classes. Categorical
cross-entropy, RMSprop ("rmsprop"), accuracy. Shrunk: 5 steps of 6 features, 4 units,
batch of 8.
"""
import pytest

from _harness import DTYPES, check_real_model, keras_building, one_hot, rng_for, sequences

pytestmark = pytest.mark.keras

STEPS_IN, FEATURES, CLASSES, N = 5, 6, 10, 8


def build(dtype):
    with keras_building(dtype) as keras:
        model = keras.Sequential([
            keras.Input((STEPS_IN, FEATURES), name="sequence"),
            keras.layers.LSTM(4, return_sequences=True, name="lstm_1"),
            keras.layers.LSTM(4, return_sequences=True, name="lstm_2"),
            keras.layers.LSTM(4, name="lstm_3"),
            keras.layers.Dense(CLASSES, activation="softmax", name="label")],
            name="stacked_lstm_classifier")
        model.compile(loss="categorical_crossentropy", optimizer="rmsprop",
                      metrics=["accuracy"])
    return model


@pytest.mark.parametrize("dtype", DTYPES)
def test_sequential_guide_stacked_lstm(dtype):
    rng = rng_for("stacked classifier")
    check_real_model(build(dtype), rng.random((N, STEPS_IN, FEATURES)).astype(dtype),
                     one_hot(rng, (N,), CLASSES, dtype), dtype)
