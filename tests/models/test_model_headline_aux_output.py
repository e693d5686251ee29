"""Keras 2 documentation, "Getting started with the Keras functional API", section
"Multi-input and multi-output models" (keras.io 2.x; kept in e.g.
https://github.com/kaushkay/Multi-input-and-multi-output-models). Two inputs, two outputs.

A news headline (100 word ids) -> Embedding (10,000 words, 512 dimensions) -> an LSTM of
32 units, which feeds an auxiliary sigmoid output ("aux_output") and, concatenated with 5
auxiliary features ("aux_input"), three ReLU Dense layers of 64 and the main sigmoid output
("main_output"). RMSprop ("rmsprop"), binary cross-entropy on both outputs, loss weights
1.0 (main) and 0.2 (auxiliary), given as dicts by output name (the guide's second form:
Keras 3.15 refuses its first, one loss string with two weights: "`loss_weights` must match
the number of losses, got 1 losses and 2 weights"). Shrunk: 30 words, 8 dimensions, 5
units, ReLU layers of 6, headlines of 7 ids, batch of 8.

Keras' RMSprop squares the Embedding's gradient per token occurrence; mlstm does the same
(docs/optimizers.md, "Embedding tables").
"""
import pytest

from _harness import DTYPES, binary, check_real_model, keras_building, rng_for, token_ids

pytestmark = pytest.mark.keras

WORDS, LENGTH, N = 30, 7, 8


def build(dtype):
    with keras_building(dtype) as keras:
        layers = keras.layers
        main_input = keras.Input((LENGTH,), dtype="int32", name="main_input")
        lstm_out = layers.LSTM(5)(layers.Embedding(WORDS, 8)(main_input))
        aux_output = layers.Dense(1, activation="sigmoid", name="aux_output")(lstm_out)
        aux_input = keras.Input((5,), name="aux_input")
        x = layers.concatenate([lstm_out, aux_input])
        for _ in range(3):
            x = layers.Dense(6, activation="relu")(x)
        main_output = layers.Dense(1, activation="sigmoid", name="main_output")(x)
        model = keras.Model([main_input, aux_input], [main_output, aux_output],
                            name="headline_model")
        model.compile(optimizer="rmsprop",
                      loss={"main_output": "binary_crossentropy",
                            "aux_output": "binary_crossentropy"},
                      loss_weights={"main_output": 1.0, "aux_output": 0.2})
    return model


@pytest.mark.parametrize("dtype", DTYPES)
def test_headline_aux_output(dtype):
    rng = rng_for("headline")
    x = [token_ids(rng, N, LENGTH, WORDS), rng.standard_normal((N, 5)).astype(dtype)]
    y = [binary(rng, (N, 1), dtype), binary(rng, (N, 1), dtype)]
    check_real_model(build(dtype), x, y, dtype)
