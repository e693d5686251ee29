"""Keras guide "The Functional API", its multi-input, multi-output model: ranking customer
tickets by priority and routing them to a department
(https://keras.io/guides/functional_api/, section "Models with multiple inputs and
outputs"). Three inputs, two outputs.

The ticket's title and body, as word ids, each go through their own Embedding (10,000
words, 64 dimensions) and their own LSTM (128 and 32 units); their last states are
concatenated with the ticket's binary tag vector (12 tags). One Dense unit gives the
priority's logit, a Dense of 4 the department's logits. RMSprop with learning rate 1e-3;
binary cross-entropy from logits for the priority, categorical cross-entropy from logits
for the department, weighted 1.0 and 0.2, given as lists and as dicts by output name.
Shrunk: 40 words, 6 dimensions, 7 and 4 units, titles of 5 and bodies of 9 ids, batch of
8. The guide's priority targets are uniform in [0, 1) and its department targets 0/1
vectors (not one-hot): both kept.

The guide's title and body Inputs have no dtype, so they are float32 and Keras casts the
ids inside Embedding; mlstm refuses float ids (docs/real_models.md gives the message), so
the Inputs here are int32, as the guide's comments describe them ("sequence of ints").

Pending (conftest.py): RMSprop; then Keras' RMSprop squares the Embeddings' sparse
gradients per token occurrence (``_harness.SPARSE_ADAM``).
"""
import pytest

from _harness import (DTYPES, SPARSE_RMSPROP, binary, check_real_model, keras_building,
                      rng_for, token_ids)

pytestmark = [pytest.mark.keras, pytest.mark.pending(reason=SPARSE_RMSPROP)]

WORDS, DIM, TAGS, DEPARTMENTS, N = 40, 6, 12, 4, 8


def build(dtype, as_dicts=False):
    with keras_building(dtype) as keras:
        layers = keras.layers
        title = keras.Input((None,), dtype="int32", name="title")
        body = keras.Input((None,), dtype="int32", name="body")
        tags = keras.Input((TAGS,), name="tags")
        title_features = layers.LSTM(7)(layers.Embedding(WORDS, DIM)(title))
        body_features = layers.LSTM(4)(layers.Embedding(WORDS, DIM)(body))
        features = layers.concatenate([title_features, body_features, tags])
        priority = layers.Dense(1, name="priority")(features)
        department = layers.Dense(DEPARTMENTS, name="department")(features)
        model = keras.Model([title, body, tags], [priority, department], name="ticket_model")
        priority_loss = keras.losses.BinaryCrossentropy(from_logits=True)
        department_loss = keras.losses.CategoricalCrossentropy(from_logits=True)
        if as_dicts:
            model.compile(optimizer=keras.optimizers.RMSprop(1e-3),
                          loss={"priority": priority_loss, "department": department_loss},
                          loss_weights={"priority": 1.0, "department": 0.2})
        else:
            model.compile(optimizer=keras.optimizers.RMSprop(1e-3),
                          loss=[priority_loss, department_loss], loss_weights=[1.0, 0.2])
    return model


def data(dtype):
    rng = rng_for("ticket")
    x = {"title": token_ids(rng, N, 5, WORDS, padded=False),
         "body": token_ids(rng, N, 9, WORDS, padded=False),
         "tags": binary(rng, (N, TAGS), dtype)}
    y = {"priority": rng.random((N, 1)).astype(dtype),
         "department": binary(rng, (N, DEPARTMENTS), dtype)}
    return x, y


@pytest.mark.parametrize("dtype", DTYPES)
def test_ticket_model(dtype):
    x, y = data(dtype)
    model, report, _ = check_real_model(build(dtype), x, y, dtype)
    assert model.input_names == ["title", "body", "tags"]
    assert set(report["gradients"]) == {"total", "priority", "department"}


def test_ticket_model_compiled_with_dicts():
    x, y = data("float64")
    model, _, _ = check_real_model(build("float64", as_dicts=True), x, y, "float64")
    assert model._loss_weights == [1.0, 0.2]
