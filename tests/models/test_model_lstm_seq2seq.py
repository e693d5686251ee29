"""keras.io example "Character-level recurrent sequence-to-sequence model"
(https://keras.io/examples/nlp/lstm_seq2seq/). Two inputs.

Encoder: one-hot characters of the English sentence -> an LSTM of 256 units returning its
final (h, c). Decoder: one-hot characters of the French sentence (teacher forcing) -> an
LSTM of 256 units started from the encoder's (h, c), returning every step (and its own
states, unused) -> a softmax Dense over the French characters at every step. RMSprop
("rmsprop"), categorical cross-entropy, accuracy. Shrunk: 9 and 11 characters, 6 units,
sentences of 5 and 4 steps (lengths None in the Inputs, as in the example), batch of 8.
"""
import pytest

from _harness import DTYPES, check_real_model, keras_building, one_hot, rng_for

pytestmark = pytest.mark.keras

ENCODER_TOKENS, DECODER_TOKENS, LATENT, N = 9, 11, 6, 8


def build(dtype):
    with keras_building(dtype) as keras:
        layers = keras.layers
        encoder_inputs = keras.Input((None, ENCODER_TOKENS), name="english")
        _, state_h, state_c = layers.LSTM(LATENT, return_state=True, name="encoder")(
            encoder_inputs)
        decoder_inputs = keras.Input((None, DECODER_TOKENS), name="french_so_far")
        decoded, _, _ = layers.LSTM(LATENT, return_sequences=True, return_state=True,
                                    name="decoder")(decoder_inputs,
                                                    initial_state=[state_h, state_c])
        next_chars = layers.Dense(DECODER_TOKENS, activation="softmax",
                                  name="next_char")(decoded)
        model = keras.Model([encoder_inputs, decoder_inputs], next_chars, name="lstm_seq2seq")
        model.compile(optimizer="rmsprop", loss="categorical_crossentropy",
                      metrics=["accuracy"])
    return model


@pytest.mark.parametrize("dtype", DTYPES)
def test_lstm_seq2seq(dtype):
    rng = rng_for("seq2seq")
    x = [one_hot(rng, (N, 5), ENCODER_TOKENS, dtype), one_hot(rng, (N, 4), DECODER_TOKENS, dtype)]
    y = one_hot(rng, (N, 4), DECODER_TOKENS, dtype)
    check_real_model(build(dtype), x, y, dtype)
