"""Machine Learning Mastery, "Sequence Classification with LSTM Recurrent Neural Networks in
Python with Keras" (J. Brownlee; https://machinelearningmastery.com/sequence-classification-
lstm-recurrent-neural-networks-python-keras/), the simple LSTM model.

IMDB reviews as word ids, front-padded to a fixed length: Embedding of 32 dimensions, an
LSTM of 100 units, one sigmoid unit; binary cross-entropy, Adam, accuracy. Shrunk: 40
words instead of 5,000, reviews of 10 words instead of 500, 6 LSTM units, batch of 8. The
article's Sequential model leaves the input float32 (Keras casts ids inside Embedding, and
so does mlstm: issue 12 (b)); the Input here is that float32 one.

Repeated word ids in a batch, which real text always has, meet Keras' Adam on the
Embedding's per-occurrence gradient, which mlstm follows (docs/optimizers.md, "Embedding
tables").
"""
import pytest

from _harness import DTYPES, binary, check_real_model, keras_building, rng_for, token_ids

pytestmark = pytest.mark.keras

WORDS, LENGTH, N = 40, 10, 8


def build(dtype):
    with keras_building(dtype) as keras:
        model = keras.Sequential([keras.Input((LENGTH,), name="review"),
                                  keras.layers.Embedding(WORDS, 32, name="embedding"),
                                  keras.layers.LSTM(6, name="lstm"),
                                  keras.layers.Dense(1, activation="sigmoid", name="sentiment")],
                                 name="imdb_lstm")
        model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


@pytest.mark.parametrize("dtype", DTYPES)
def test_imdb_sequence_classification(dtype):
    rng = rng_for("imdb mlm")
    x = token_ids(rng, N, LENGTH, WORDS)
    y = binary(rng, (N, 1), dtype)
    model, _, _ = check_real_model(build(dtype), x, y, dtype)
    assert model.metrics_names == ["loss", "accuracy"]
