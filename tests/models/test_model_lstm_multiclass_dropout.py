"""Q&A "Keras LSTM multiclass classification structure" (errorhandle.ai; docs/real_models.md,
model 32).

Word ids through an Embedding, an LSTM of 128 units returning every step, Dropout, an LSTM
of 64 units, a ReLU Dense and a softmax over the classes; categorical cross-entropy, Adam,
accuracy. The answer's Sequential model declares the length (``input_length``, which Keras
3 no longer takes: an ``Input((maxlen,))`` here) and no dtype, so the ids arrive as
float32 and Keras casts them inside Embedding (issue 12 (b)). docs/real_models.md does not
record the Dropout rate; 0.2 here. Shrunk: 35 words, 6 dimensions, 5 and 4 units, a Dense
of 4, 3 classes, sequences of 8 ids, batch of 8.

As published (Adam), repeated word ids in a batch meet Keras' per-occurrence update of the
Embedding (docs/optimizers.md, "Embedding tables"), which mlstm follows; the same model
compiled with SGD, which has no such term, is checked too.
"""
import pytest

from _harness import (DTYPES, check_real_model, keras_building, one_hot, rng_for,
                      token_ids)

pytestmark = pytest.mark.keras

WORDS, LENGTH, CLASSES, N = 35, 8, 3, 8


def build(dtype, optimizer="adam"):
    with keras_building(dtype) as keras:
        layers = keras.layers
        model = keras.Sequential([keras.Input((LENGTH,), name="text"),   # float32, as published
                                  layers.Embedding(WORDS, 6, name="embedding"),
                                  layers.LSTM(5, return_sequences=True, name="lstm_1"),
                                  layers.Dropout(0.2, name="dropout"),
                                  layers.LSTM(4, name="lstm_2"),
                                  layers.Dense(4, activation="relu", name="hidden"),
                                  layers.Dense(CLASSES, activation="softmax", name="label")],
                                 name="lstm_multiclass")
        model.compile(loss="categorical_crossentropy", optimizer=optimizer,
                      metrics=["accuracy"])
    return model


def check(dtype, optimizer):
    rng = rng_for("lstm multiclass")
    x = token_ids(rng, N, LENGTH, WORDS).astype(dtype)
    y = one_hot(rng, (N,), CLASSES, dtype)
    keras_model = build(dtype, optimizer)
    assert keras_model.inputs[0].dtype == dtype
    model, report, diagnosis = check_real_model(keras_model, x, y, dtype)
    assert model.inputs[0].dtype == dtype
    assert report["dropout_rates_zeroed"] == ["dropout: rate=0.2"]
    # one-hot targets: nothing for the target-sum finding or the crosscheck to explain
    assert "target_sums" not in report and "categorical_target_sums" not in diagnosis.codes
    # the ids are not judged as an input scale (they reach 34)
    assert "text" not in diagnosis.data["inputs"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_lstm_multiclass_dropout(dtype):
    check(dtype, "adam")


@pytest.mark.parametrize("dtype", DTYPES)
def test_lstm_multiclass_dropout_with_sgd(dtype):
    check(dtype, "sgd")
