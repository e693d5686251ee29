"""Keras guide "Working with RNNs", its first model (https://keras.io/guides/working_with_rnns/,
section "Built-in RNN layers: a simple example").

A Sequential model: token ids -> Embedding (vocabulary 1,000, 64 dimensions) -> an LSTM of
128 units -> a Dense of 10 logits. The guide builds it without compiling it; it is compiled
here as the same guide trains its other LSTM classifier of 10 logits: sparse categorical
cross-entropy from logits, SGD, accuracy. Shrunk: vocabulary 30, 8 dimensions, 6 units,
sequences of 7 ids, batch of 8. The guide's Sequential model gets no Input: Keras makes a
float32 one and casts the ids inside Embedding; so does mlstm (issue 12 (b)), so the Input
here is that float32 one.
"""
import numpy as np
import pytest

from _harness import DTYPES, check_real_model, keras_building, rng_for, token_ids

pytestmark = pytest.mark.keras

WORDS, LENGTH, CLASSES, N = 30, 7, 10, 8


def build(dtype):
    with keras_building(dtype) as keras:
        model = keras.Sequential([keras.Input((LENGTH,), name="ids"),
                                  keras.layers.Embedding(WORDS, 8, name="embedding"),
                                  keras.layers.LSTM(6, name="lstm"),
                                  keras.layers.Dense(CLASSES, name="logits")],
                                 name="rnn_guide_classifier")
        model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      optimizer="sgd", metrics=["accuracy"])
    return model


@pytest.mark.parametrize("dtype", DTYPES)
def test_rnn_guide_embedding_lstm(dtype):
    rng = rng_for("rnn guide first")
    x = token_ids(rng, N, LENGTH, WORDS)
    y = rng.integers(0, CLASSES, size=(N, 1)).astype(np.int64)     # (N, 1) ids, as Keras takes
    model, _, _ = check_real_model(build(dtype), x, y, dtype)
    assert model.metrics_names == ["loss", "accuracy"]
