"""Keras guide "Working with RNNs", its encoder-decoder with the encoder's state as the
decoder's initial state (https://keras.io/guides/working_with_rnns/, section "RNN state
reuse"). Two inputs.

Encoder: token ids -> Embedding (vocabulary 1,000, 64 dimensions) -> an LSTM of 64 units
that returns its final state (h, c). Decoder: its own token ids -> Embedding (vocabulary
2,000, 64 dimensions) -> an LSTM of 64 units started from the encoder's (h, c) -> a Dense
of 10 logits. The guide builds this model without compiling it; it is compiled here as the
same guide trains its other LSTM classifier (10 logits): sparse categorical cross-entropy
from logits, plain SGD, accuracy. Shrunk: vocabularies 30 and 40, 6 dimensions, 5 units,
sequences of 7 and 5 ids, batch of 8. The guide's Inputs (shape (None,), no dtype) are
float32 and Keras casts the ids inside Embedding; so does mlstm (issue 12 (b)), so they
are declared here as published.
"""
import numpy as np
import pytest

from _harness import DTYPES, check_real_model, keras_building, rng_for, token_ids

pytestmark = pytest.mark.keras

ENCODER_WORDS, DECODER_WORDS, DIM, UNITS, CLASSES, N = 30, 40, 6, 5, 10, 8


def build(dtype):
    with keras_building(dtype) as keras:
        layers = keras.layers
        encoder_ids = keras.Input((None,), name="encoder_ids")          # float32 ids
        encoded = layers.Embedding(ENCODER_WORDS, DIM, name="encoder_embedding")(encoder_ids)
        _, state_h, state_c = layers.LSTM(UNITS, return_state=True, name="encoder")(encoded)
        decoder_ids = keras.Input((None,), name="decoder_ids")
        decoded = layers.Embedding(DECODER_WORDS, DIM, name="decoder_embedding")(decoder_ids)
        decoded = layers.LSTM(UNITS, name="decoder")(decoded,
                                                     initial_state=[state_h, state_c])
        logits = layers.Dense(CLASSES, name="logits")(decoded)
        model = keras.Model([encoder_ids, decoder_ids], logits, name="rnn_guide_seq2seq")
        model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      optimizer="sgd", metrics=["accuracy"])
    return model


@pytest.mark.parametrize("dtype", DTYPES)
def test_rnn_guide_encoder_decoder(dtype):
    rng = rng_for("rnn guide")
    x = [token_ids(rng, N, 7, ENCODER_WORDS, padded=False),
         token_ids(rng, N, 5, DECODER_WORDS, padded=False)]
    y = rng.integers(0, CLASSES, size=(N,)).astype(np.int32)
    model, _, _ = check_real_model(build(dtype), x, y, dtype)
    assert model.input_names == ["encoder_ids", "decoder_ids"]
    assert model.metrics_names == ["loss", "accuracy"]
