"""Predictive maintenance of aircraft engines with a stacked LSTM and Dropout (U. Griffo,
"Predictive Maintenance using LSTM", github.com/umbertogriffo/Predictive-Maintenance-using-LSTM,
the binary classifier after Microsoft's Azure predictive-maintenance template).

Windows of 50 cycles of 25 sensor readings go through an LSTM of 100 units returning every
step, Dropout(0.2), an LSTM of 50 units, Dropout(0.2), and one sigmoid unit: "will the engine
fail within 30 cycles". Binary cross-entropy, Adam, accuracy. Shrunk: windows of 6 cycles of
5 readings, 6 and 4 units, batch of 8.

Dropout's random masks cannot be reproduced in Keras, so crosscheck compares inference as is
and training with the rates set to 0, and says so (issue 13).
"""
import pytest

from _harness import DTYPES, binary, check_real_model, keras_building, rng_for, sequences

pytestmark = pytest.mark.keras

CYCLES, READINGS, N = 6, 5, 8


def build(dtype):
    with keras_building(dtype) as keras:
        layers = keras.layers
        model = keras.Sequential([
            keras.Input((CYCLES, READINGS), name="sensors"),
            layers.LSTM(6, return_sequences=True, name="lstm_1"),
            layers.Dropout(0.2, name="dropout_1"),
            layers.LSTM(4, name="lstm_2"),
            layers.Dropout(0.2, name="dropout_2"),
            layers.Dense(1, activation="sigmoid", name="fails_soon")],
            name="predictive_maintenance")
        model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


@pytest.mark.parametrize("dtype", DTYPES)
def test_predictive_maintenance(dtype):
    rng = rng_for("predictive maintenance")
    x = sequences(rng, N, CYCLES, READINGS, dtype)
    y = binary(rng, (N, 1), dtype)
    model, report, _ = check_real_model(build(dtype), x, y, dtype)
    assert report["dropout_rates_zeroed"] == ["dropout_1: rate=0.2", "dropout_2: rate=0.2"]
    assert [model.get_layer(name).rate for name in ("dropout_1", "dropout_2")] == [0.2, 0.2]
