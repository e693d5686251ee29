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
8. The guide's priority targets are uniform in [0, 1) (kept); its dummy department targets
are 0/1 vectors, several departments per ticket. The main tests give each ticket one
department (one-hot); a last test keeps the guide's targets: for targets that do not sum
to 1 Keras' gradient of categorical cross-entropy from logits is TensorFlow's
``softmax(a) - t`` (``tf.nn.softmax_cross_entropy_with_logits``), which is not the
derivative of the loss Keras reports, ``softmax(a) * sum(t) - t``, the one mlstm computes
(gradcheck agrees with mlstm; measured, logits [0.3, -1.2, 0.5], t = [1, 1, 0]: Keras
[-0.591, -0.909, 0.500], central differences of Keras' own loss [-0.182, -0.817, 0.999]).
mlstm keeps the derivative (docs/losses.md): that test checks that ``crosscheck`` explains
every difference by TensorFlow's rule and that ``diagnose`` reports the multi-hot targets.

The guide's title and body Inputs have no dtype: they are float32, and Keras casts the
ids inside Embedding; so does mlstm (it refuses ids that are not whole numbers, where
Keras would truncate them).

Keras' RMSprop squares the Embeddings' gradients per token occurrence; mlstm does the same
(docs/optimizers.md, "Embedding tables").
"""
import numpy as np
import pytest

from _harness import (DTYPES, binary, check_real_model, import_quietly, keras_building,
                      one_hot, rng_for, token_ids)

pytestmark = pytest.mark.keras

WORDS, DIM, TAGS, DEPARTMENTS, N = 40, 6, 12, 4, 8


def build(dtype, as_dicts=False, optimizer=None):
    with keras_building(dtype) as keras:
        layers = keras.layers
        title = keras.Input((None,), name="title")        # float32 ids, as published
        body = keras.Input((None,), name="body")
        tags = keras.Input((TAGS,), name="tags")
        title_features = layers.LSTM(7)(layers.Embedding(WORDS, DIM)(title))
        body_features = layers.LSTM(4)(layers.Embedding(WORDS, DIM)(body))
        features = layers.concatenate([title_features, body_features, tags])
        priority = layers.Dense(1, name="priority")(features)
        department = layers.Dense(DEPARTMENTS, name="department")(features)
        model = keras.Model([title, body, tags], [priority, department], name="ticket_model")
        priority_loss = keras.losses.BinaryCrossentropy(from_logits=True)
        department_loss = keras.losses.CategoricalCrossentropy(from_logits=True)
        optimizer = optimizer or keras.optimizers.RMSprop(1e-3)
        if as_dicts:
            model.compile(optimizer=optimizer,
                          loss={"priority": priority_loss, "department": department_loss},
                          loss_weights={"priority": 1.0, "department": 0.2})
        else:
            model.compile(optimizer=optimizer,
                          loss=[priority_loss, department_loss], loss_weights=[1.0, 0.2])
    return model


def data(dtype, guide_departments=False):
    rng = rng_for("ticket")
    x = {"title": token_ids(rng, N, 5, WORDS, padded=False).astype(dtype),
         "body": token_ids(rng, N, 9, WORDS, padded=False).astype(dtype),
         "tags": binary(rng, (N, TAGS), dtype)}
    departments = (binary(rng, (N, DEPARTMENTS), dtype) if guide_departments
                   else one_hot(rng, (N,), DEPARTMENTS, dtype))
    y = {"priority": rng.random((N, 1)).astype(dtype), "department": departments}
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


def check_guide_targets(optimizer):
    """The guide's multi-hot department targets: crosscheck fails on the department's
    gradients and every step, each failure explained by TensorFlow's gradient of CCE
    (``report["target_sums"]``, docs/losses.md), and diagnose reports the targets."""
    import mlstm
    from mlstm.interop.keras import crosscheck, format_report

    x, y = data("float64", guide_departments=True)
    sums = y["department"].sum(axis=1)
    assert (sums != 1).any()                            # several departments, or none
    keras_model = build("float64", optimizer=optimizer)
    model = import_quietly(keras_model)
    report = crosscheck(keras_model, x, y, steps=3, as_dict=True, run_eagerly=True)
    explained = report["target_sums"]
    assert explained["outputs"]["department"]["rows"] == int(np.count_nonzero(sums != 1))
    assert not report["ok"] and report["failed"] > 0
    assert all(d["ok"] for d in report["forward"].values())
    assert all(d["ok"] for d in report["loss"].values())
    assert explained["ok"] and explained["unexplained"] == 0, format_report(report)
    diagnosis = mlstm.diagnose(model, x, y, steps=2, batch_size=N)
    found = [f for f in diagnosis.findings if f.code == "categorical_target_sums"]
    assert len(found) == 1 and found[0].measured["output"] == "department"
    assert found[0].measured["keras_gradient_differs"]


def test_ticket_model_with_the_guides_dummy_targets():
    """As published (RMSprop, whose Embedding updates follow Keras' per-occurrence rule):
    every difference from Keras is explained by TensorFlow's gradient of CCE."""
    check_guide_targets(None)


def test_ticket_model_with_the_guides_dummy_targets_and_sgd():
    """The same with SGD, which has no sparse-gradient difference: every difference from
    Keras is explained by TensorFlow's gradient of CCE."""
    check_guide_targets("sgd")
