"""train_on_batch draws dropout masks as Keras' does (from the shared seeded stream);
predict_on_batch and evaluate stay deterministic."""
from __future__ import annotations

import numpy as np
import pytest

import mlstm
from mlstm.layers.dropout import dropout_rates, zero_dropout_rates


def _model(rate: float = 0.5, seed: int = 3) -> mlstm.Model:
    x = mlstm.Input((6, 3), name="x", dtype="float64")
    h = mlstm.layers.LSTM(4, dropout=rate, recurrent_dropout=rate / 2, seed=seed,
                          return_sequences=True, name="lstm")(x)
    h = mlstm.layers.Dropout(rate, name="drop")(h)
    h = mlstm.layers.Bidirectional(mlstm.layers.LSTM(3, dropout=rate, name="inner"),
                                   seed=seed, name="bi")(h)
    y = mlstm.layers.Dense(1, seed=seed, name="out")(h)
    model = mlstm.Model(x, y)
    model.compile(optimizer=mlstm.optimizers.SGD(0.1), loss="mse")
    return model


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(8, 6, 3)), rng.normal(size=(8, 1))


def test_train_on_batch_drops_and_same_seed_gives_same_bits():
    x, y = _data()
    a, b, c, plain = _model(), _model(), _model(), _model()
    mlstm.set_random_seed(11)
    loss_a = a.train_on_batch(x, y)
    mlstm.set_random_seed(11)
    loss_b = b.train_on_batch(x, y)
    mlstm.set_random_seed(12)
    loss_c = c.train_on_batch(x, y)
    zero_dropout_rates(plain.layers)
    loss_plain = plain.train_on_batch(x, y)
    assert loss_a == loss_b
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    assert loss_a != loss_c
    # dropout is active: the loss differs from the deterministic pass at rate 0
    assert loss_a != loss_plain
    deterministic = _model()
    np.testing.assert_allclose(loss_plain, deterministic.evaluate(x, y, batch_size=8),
                               rtol=1e-12)


def test_train_on_batch_uses_the_masks_of_a_pass_with_the_shared_stream():
    """The step is that of a training pass given the stream's next child, bit for bit."""
    x, y = _data()
    model, twin = _model(), _model()
    mlstm.set_random_seed(5)
    model.train_on_batch(x, y)
    mlstm.set_random_seed(5)
    rng = mlstm.initializers.default_rng().spawn(1)[0]
    tape = twin.forward([x], training=True, rng=rng)
    result = twin.loss_and_output_grads(tape, [y])
    grads = twin.backward(tape, result.d_outputs, result.d_logits)
    for name, value in twin.params.items():
        np.testing.assert_array_equal(model.params[name], value - 0.1 * grads[name])


def test_predict_on_batch_and_evaluate_draw_nothing():
    x, y = _data()
    model = _model()
    mlstm.set_random_seed(1)
    first = model.predict_on_batch(x)
    again = model.predict_on_batch(x)
    np.testing.assert_array_equal(first, again)
    assert model.evaluate(x, y, batch_size=8) == model.evaluate(x, y, batch_size=8)


def test_a_model_without_dropout_leaves_the_shared_stream_alone():
    x, y = _data()
    model = _model(rate=0.0)
    mlstm.set_random_seed(2)
    expected = np.random.default_rng(2).normal(size=3)
    model.train_on_batch(x, y)
    np.testing.assert_array_equal(mlstm.initializers.default_rng().normal(size=3), expected)


def test_dropout_rates_walk_wrapped_layers():
    model = _model(rate=0.4)
    assert dropout_rates(model.layers) == {"lstm: dropout": 0.4, "lstm: recurrent_dropout": 0.2,
                                           "drop: rate": 0.4, "bi/forward_inner: dropout": 0.4,
                                           "bi/backward_inner: dropout": 0.4}
    assert zero_dropout_rates(model.layers) == dropout_rates(_model(rate=0.4).layers)
    assert dropout_rates(model.layers) == {}
    assert not any(node.layer.uses_rng for node in model.nodes)
