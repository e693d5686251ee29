"""Q&A "Keras time series: suggestion for including static and dynamic variables in LSTM"
(errorhandle.ai, https://errorhandle.ai/keras-time-series-suggestion-for-including-static-
and-dynamic-variables-in-lstm). Two inputs.

The time-varying features go through an LSTM of 64 units; the static features of the same
sample join its last state in a Concatenate; one linear Dense unit predicts the target.
Adam, mean squared error. Shrunk: 16 units, 7 steps of 3 dynamic features, 4 static
features, batch of 8.
"""
import pytest

from _harness import DTYPES, check_real_model, keras_building, rng_for, sequences

pytestmark = pytest.mark.keras

STEPS_IN, DYNAMIC, STATIC, N = 7, 3, 4, 8


def build(dtype):
    with keras_building(dtype) as keras:
        layers = keras.layers
        dynamic = keras.Input((STEPS_IN, DYNAMIC), name="dynamic")
        static = keras.Input((STATIC,), name="static")
        state = layers.LSTM(16, name="lstm")(dynamic)
        combined = layers.Concatenate(name="combined")([state, static])
        output = layers.Dense(1, name="target")(combined)
        model = keras.Model([dynamic, static], output, name="static_and_dynamic")
        model.compile(optimizer="adam", loss="mse")
    return model


@pytest.mark.parametrize("dtype", DTYPES)
def test_static_and_dynamic_inputs(dtype):
    rng = rng_for("static dynamic")
    x = {"dynamic": sequences(rng, N, STEPS_IN, DYNAMIC, dtype),
         "static": rng.standard_normal((N, STATIC)).astype(dtype)}
    y = rng.standard_normal((N, 1)).astype(dtype)
    model, _, _ = check_real_model(build(dtype), x, y, dtype)
    assert model.input_names == ["dynamic", "static"]
