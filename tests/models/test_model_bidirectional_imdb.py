"""keras.io example "Bidirectional LSTM on IMDB"
(https://keras.io/examples/nlp/bidirectional_lstm_imdb/).

Reviews as word ids (int32, length None) -> Embedding (20,000 words, 128 dimensions) -> a
Bidirectional LSTM of 64 units returning every step -> a Bidirectional LSTM of 64 units ->
one sigmoid unit. Adam ("adam"), binary cross-entropy, accuracy. Shrunk: 30 words, 6
dimensions, 4 units each way, reviews of 8 ids, batch of 8.

Keras' Adam takes the Embedding's gradient per token occurrence; mlstm does the same
(docs/optimizers.md, "Embedding tables").
"""
import pytest

from _harness import DTYPES, binary, check_real_model, keras_building, rng_for, token_ids

pytestmark = pytest.mark.keras

WORDS, LENGTH, N = 30, 8, 8


def build(dtype):
    with keras_building(dtype) as keras:
        layers = keras.layers
        ids = keras.Input((None,), dtype="int32", name="review")
        x = layers.Embedding(WORDS, 6)(ids)
        x = layers.Bidirectional(layers.LSTM(4, return_sequences=True))(x)
        x = layers.Bidirectional(layers.LSTM(4))(x)
        sentiment = layers.Dense(1, activation="sigmoid", name="sentiment")(x)
        model = keras.Model(ids, sentiment, name="bidirectional_imdb")
        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


@pytest.mark.parametrize("dtype", DTYPES)
def test_bidirectional_imdb(dtype):
    rng = rng_for("bidirectional")
    check_real_model(build(dtype), token_ids(rng, N, LENGTH, WORDS),
                     binary(rng, (N, 1), dtype), dtype)
