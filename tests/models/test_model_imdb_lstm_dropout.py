"""Two IMDB sentiment classifiers whose LSTM drops inputs or recurrent state:

- keras.io example "Sentiment analysis with LSTM on the IMDB dataset"
  (https://keras.io/examples/nlp/imdb_lstm_sentiment/): Embedding, LSTM(128, dropout=0.2),
  one sigmoid unit; binary cross-entropy, Adam;
- Keras 2's examples/imdb_lstm.py (github.com/keras-team/keras, Keras 2.x): Embedding,
  LSTM(128, dropout=0.2, recurrent_dropout=0.2), one sigmoid unit; binary cross-entropy,
  Adam.

Shrunk: 30 words, 6 dimensions, reviews of 8 ids, 4 units, batch of 8. Dropout inside the
LSTM draws masks Keras cannot reproduce, so crosscheck compares inference as is and training
with the rates set to 0, and says so.

Word ids repeat in a batch, so Keras' Adam updates the Embedding per token occurrence
(docs/optimizers.md, "Embedding tables"); mlstm does the same.
"""
import pytest

from _harness import (DTYPES, binary, check_real_model, keras_building, rng_for,
                      token_ids)

pytestmark = pytest.mark.keras

WORDS, LENGTH, N = 30, 8, 8
RATES = {"keras_io": (0.2, 0.0), "keras2_examples": (0.2, 0.2)}


def build(dtype, rates):
    dropout, recurrent_dropout = rates
    with keras_building(dtype) as keras:
        layers = keras.layers
        model = keras.Sequential([
            keras.Input((LENGTH,), dtype="int32", name="review"),
            layers.Embedding(WORDS, 6, name="embedding"),
            layers.LSTM(4, dropout=dropout, recurrent_dropout=recurrent_dropout, name="lstm"),
            layers.Dense(1, activation="sigmoid", name="sentiment")], name="imdb_lstm_dropout")
        model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


@pytest.mark.parametrize("source", sorted(RATES))
@pytest.mark.parametrize("dtype", DTYPES)
def test_imdb_lstm_dropout(dtype, source):
    rng = rng_for("imdb lstm dropout")
    model, report, _ = check_real_model(build(dtype, RATES[source]),
                                        token_ids(rng, N, LENGTH, WORDS),
                                        binary(rng, (N, 1), dtype), dtype)
    lstm = model.get_layer("lstm")
    assert (lstm.dropout, lstm.recurrent_dropout) == RATES[source]
    assert report["dropout_rates_zeroed"]
