"""TensorFlow tutorial "Text classification with an RNN"
(https://www.tensorflow.org/text/tutorials/text_classification_rnn), its first model.

Word ids -> Embedding (the encoder's vocabulary of 1,000, 64 dimensions, mask_zero=True)
-> Bidirectional LSTM of 64 units -> ReLU Dense of 64 -> one logit. Binary cross-entropy
from logits, Adam with learning rate 1e-4, accuracy. The tutorial's first layer is a
TextVectorization turning strings into these ids; it has no weights and runs here before
the model (the ids are the data). Shrunk: 30 words, 6 dimensions, 4 units each way, ReLU
layer of 5, reviews of 8 ids with zero padding, batch of 8.

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
        model = keras.Sequential([
            keras.Input((None,), dtype="int32", name="ids"),
            layers.Embedding(WORDS, 6, mask_zero=True, name="embedding"),
            layers.Bidirectional(layers.LSTM(4), name="bidirectional"),
            layers.Dense(5, activation="relu", name="dense"),
            layers.Dense(1, name="logit")], name="tf_text_classification_rnn")
        model.compile(loss=keras.losses.BinaryCrossentropy(from_logits=True),
                      optimizer=keras.optimizers.Adam(1e-4), metrics=["accuracy"])
    return model


@pytest.mark.parametrize("dtype", DTYPES)
def test_tf_text_classification_rnn(dtype):
    rng = rng_for("text classification")
    check_real_model(build(dtype), token_ids(rng, N, LENGTH, WORDS),
                     binary(rng, (N, 1), dtype), dtype)
