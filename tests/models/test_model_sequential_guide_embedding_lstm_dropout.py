"""Keras 2 documentation, "Getting started with the Keras Sequential model", example
"Sequence classification with LSTM" (keras.io 2.x; docs/real_models.md, model 16).

Word ids go through an Embedding (``max_features`` words, 256 dimensions), an LSTM of 128
units, Dropout(0.5) and one sigmoid unit; binary cross-entropy, RMSprop ("rmsprop"),
accuracy. The guide's Sequential model gives no input shape, so Keras makes a float32
Input and casts the ids inside Embedding; here the Input is declared as Keras makes it,
``keras.Input((None,))`` with no dtype (float32 ids, issue 12 (b)). Shrunk: 30 words, 8
dimensions, 6 units, reviews of 9 ids front-padded with 0, batch of 8.

As published (RMSprop), repeated word ids in a batch meet Keras' per-occurrence update of
the Embedding (docs/optimizers.md, "Embedding tables"), which mlstm follows; the same model
compiled with SGD, which has no such term, is checked too.
"""
import numpy as np
import pytest

from _harness import (DTYPES, binary, check_real_model, keras_building,
                      rng_for, token_ids)

pytestmark = pytest.mark.keras

WORDS, LENGTH, N = 30, 9, 8


def build(dtype, optimizer="rmsprop"):
    with keras_building(dtype) as keras:
        model = keras.Sequential([keras.Input((None,), name="words"),      # float32, as Keras
                                  keras.layers.Embedding(WORDS, 8, name="embedding"),
                                  keras.layers.LSTM(6, name="lstm"),
                                  keras.layers.Dropout(0.5, name="dropout"),
                                  keras.layers.Dense(1, activation="sigmoid", name="label")],
                                 name="sequential_guide_lstm")
        model.compile(loss="binary_crossentropy", optimizer=optimizer, metrics=["accuracy"])
    return model


def data(dtype):
    rng = rng_for("sequential guide embedding lstm")
    return token_ids(rng, N, LENGTH, WORDS).astype(dtype), binary(rng, (N, 1), dtype)


def check(dtype, optimizer):
    keras_model = build(dtype, optimizer)
    assert keras_model.inputs[0].dtype == dtype               # float ids, as published
    x, y = data(dtype)
    model, report, _ = check_real_model(keras_model, x, y, dtype)
    assert model.inputs[0].dtype == dtype and model.get_layer("dropout").rate == 0.5
    assert report["dropout_rates_zeroed"] == ["dropout: rate=0.5"]
    assert model.metrics_names == ["loss", "accuracy"]
    # the ids are not a float sequence: no gradient
    _, d_inputs = model.backward(*_tape_and_seed(model, x, y), input_grads=True)
    assert d_inputs == [None]


def _tape_and_seed(model, x, y):
    tape = model.forward(model._inputs(x), training=True)
    result = model.loss_and_output_grads(tape, model._targets(y, N))
    return tape, result.d_outputs, result.d_logits


@pytest.mark.parametrize("dtype", DTYPES)
def test_sequential_guide_embedding_lstm_dropout(dtype):
    check(dtype, "rmsprop")


@pytest.mark.parametrize("dtype", DTYPES)
def test_sequential_guide_embedding_lstm_dropout_with_sgd(dtype):
    check(dtype, "sgd")


def test_ids_are_refused_where_keras_would_truncate_them():
    model = build("float32", "sgd")
    from _harness import import_quietly

    mine = import_quietly(model)
    x, _ = data("float32")
    x[3, 4] = 7.5
    with pytest.raises(ValueError, match=r"got 7.5 at index \[3, 4\] \(sample 3, position 4\)"):
        mine.predict(x)
    # Keras reads it as id 7
    as_seven = x.copy()
    as_seven[3, 4] = 7
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(model(as_seven)), rtol=0,
                               atol=0)
