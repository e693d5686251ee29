"""Embedding and integer inputs: lookup, the scatter-add gradient (fast path against its
reference), mask_zero feeding an LSTM, refusals, gradient checks, Keras parity."""
import numpy as np
import pytest

import mlstm
from mlstm import Dense, Embedding, Input, LSTM, Model, concatenate
from mlstm.ops.embedding import (embedding_backward, embedding_forward, scatter_add,
                                 scatter_add_reference)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape, vocabulary, dim", [((6, 9), 5, 3), ((7,), 4, 1),
                                                    ((3, 4, 2), 11, 2)])
def test_scatter_add_agrees_with_its_reference(dtype, shape, vocabulary, dim):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, vocabulary, shape)          # repeats: rows add up
    values = rng.normal(size=shape + (dim,)).astype(dtype)
    fast = scatter_add(ids, values, vocabulary)
    reference = scatter_add_reference(ids, values, vocabulary)
    assert fast.dtype == reference.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(fast, reference)     # same sums in the same order


def test_scatter_add_agrees_at_a_realistic_size():
    """N=64, T=100, vocabulary 10 000, D=64 (timings in docs/classification.md)."""
    rng = np.random.default_rng(1)
    ids = np.minimum(rng.zipf(1.3, size=(64, 100)), 9_999)     # word-like frequencies
    values = rng.normal(size=(64, 100, 64)).astype("float32")
    np.testing.assert_array_equal(scatter_add(ids, values, 10_000),
                                  scatter_add_reference(ids, values, 10_000))


def test_forward_and_backward_ops():
    table = np.arange(12.0).reshape(4, 3)
    ids = np.array([[0, 3, 3], [2, 0, 1]])
    y, cache = embedding_forward(ids, table)
    np.testing.assert_array_equal(y, table[ids])
    d_y = np.ones((2, 3, 3))
    np.testing.assert_array_equal(embedding_backward(d_y, cache),
                                  [[2, 2, 2], [1, 1, 1], [1, 1, 1], [2, 2, 2]])


def _token_model(mask_zero=True, dtype="float64", vocabulary=9):
    mlstm.set_random_seed(0)
    tokens = Input((5,), name="tokens", dtype="int32")
    h = LSTM(4, name="lstm")(Embedding(vocabulary, 3, mask_zero=mask_zero, name="emb",
                                       dtype=dtype)(tokens))
    return Model(tokens, Dense(3, activation="softmax", name="head")(h))


def _padded_ids(rng, n=4, steps=5, vocabulary=9):
    ids = rng.integers(1, vocabulary, (n, steps))
    ids[0, 3:] = 0                                    # right padding
    ids[1, :2] = 0                                    # left padding
    ids[2, :] = 0                                     # a row of padding only
    return ids


def test_mask_zero_is_the_lstm_mask():
    """The LSTM after Embedding(mask_zero=True) sees the mask ids != 0: the same outputs as
    the same LSTM fed the embedded vectors through a Masking layer (padding rows are
    all-zero vectors there)."""
    model = _token_model()
    rng = np.random.default_rng(2)
    ids = _padded_ids(rng)
    tape = model.forward(model._inputs(ids))
    node = [n for n in model.nodes if n.layer.name == "emb"][0]
    np.testing.assert_array_equal(tape.mask(node.outputs[0]), ids != 0)
    # the same LSTM on the looked-up vectors, masked by a Masking layer
    x = Input((5, 3), name="vectors", dtype="float64")
    lstm = LSTM(4, name="lstm2")
    twin = Model(x, lstm(mlstm.Masking()(x)))
    lstm.set_weights(model.get_layer("lstm").get_weights())
    vectors = model.get_layer("emb").params["embeddings"][ids] * (ids != 0)[..., None]
    node_lstm = [n for n in model.nodes if n.layer.name == "lstm"][0]
    np.testing.assert_allclose(tape.value(node_lstm.outputs[0]), twin.predict(vectors),
                               rtol=0, atol=1e-15)


@pytest.mark.parametrize("mask_zero", [False, True])
def test_gradient_check_with_token_ids(mask_zero):
    model = _token_model(mask_zero=mask_zero)
    model.compile("sgd", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(3)
    model.set_weights([rng.normal(scale=0.5, size=w.shape) for w in model.get_weights()])
    ids = _padded_ids(rng)
    report = mlstm.gradcheck(model, ids, rng.integers(0, 3, 4))
    assert report.max_relative_error < 1e-7, str(report)
    assert "input:tokens" not in report.rows            # ids are not perturbed
    if mask_zero:
        # padding id 0 never reaches the loss: its row gets no gradient
        grads = model.gradients(ids, rng.integers(0, 3, 4))
        assert np.all(grads["emb/embeddings"][0] == 0)


def test_token_and_float_inputs_together():
    """Ids and a float sequence: only the float input gets (and is checked for) a gradient."""
    mlstm.set_random_seed(1)
    tokens = Input((5,), name="tokens", dtype="int64")
    features = Input((5, 2), name="features", dtype="float64")
    merged = concatenate([LSTM(3, name="la")(Embedding(6, 2, mask_zero=True, name="emb",
                                                       dtype="float64")(tokens)),
                          LSTM(3, name="lb")(features)])
    model = Model([tokens, features], Dense(1, name="out")(merged))
    model.compile("sgd", loss="mse")
    assert model.dtype == "float64"
    rng = np.random.default_rng(4)
    ids, xs, ys = _padded_ids(rng, vocabulary=6), rng.normal(size=(4, 5, 2)), rng.normal(
        size=(4, 1))
    tape = model.forward(model._inputs([ids, xs]), training=True)
    result = model.loss_and_output_grads(tape, model._targets(ys, 4))
    _, d_inputs = model.backward(tape, result.d_outputs, result.d_logits, input_grads=True)
    assert d_inputs[0] is None and d_inputs[1].shape == xs.shape
    report = mlstm.gradcheck(model, [ids, xs], ys)
    assert report.max_relative_error < 1e-7 and "input:features" in report.rows, str(report)


def test_float32_model_clones_keep_the_id_dtype(tmp_path):
    model = _token_model(dtype="float32")
    model.compile("adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    twin = model.clone(dtype="float64")
    assert twin.inputs[0].dtype == "int32" and twin.dtype == "float64"
    assert twin.get_layer("emb").params["embeddings"].dtype == np.float64
    rng = np.random.default_rng(5)
    ids, ys = _padded_ids(rng), rng.integers(0, 3, 4)
    model.fit(ids, ys, epochs=2, batch_size=2, verbose=0, seed=0)
    path = tmp_path / "tokens.mlstm.npz"
    model.save(str(path))
    loaded = mlstm.load_model(str(path))
    assert loaded.inputs[0].dtype == "int32"
    np.testing.assert_array_equal(loaded.predict(ids), model.predict(ids))
    report = mlstm.gradcheck(model, ids, ys)            # float32 model: checked in float64
    assert report.max_relative_error < 1e-7, str(report)


def test_ids_outside_the_vocabulary_are_refused_naming_sample_and_position():
    model = _token_model()
    model.compile("sgd", loss="sparse_categorical_crossentropy")
    ids = np.ones((6, 5), int)
    ids[4, 2] = 9
    ys = np.zeros(6, int)
    with pytest.raises(ValueError, match=r"token id 9 at sample 4, position 2 is outside "
                                         r"\[0, 9\) for Embedding 'emb'"):
        model.fit(ids, ys, epochs=1, batch_size=2, verbose=0)
    ids[4, 2] = -1
    with pytest.raises(ValueError, match="token id -1 at sample 4, position 2"):
        model.predict(ids)
    with pytest.raises(ValueError, match="token id -1 at sample 4, position 2"):
        model.get_layer("emb").forward([ids], [None])


def test_integer_input_refusals():
    model = _token_model()
    model.compile("sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"token ids \(int32\), got 1.5 at index \[0, 1\]"):
        model.predict(np.array([[1, 1.5, 2, 3, 4]]))
    np.testing.assert_array_equal(model.predict(np.array([[1.0, 2, 3, 4, 0]])),
                                  model.predict(np.array([[1, 2, 3, 4, 0]])))
    with pytest.raises(TypeError, match="got booleans"):
        model.predict(np.ones((1, 5), bool))
    with pytest.raises(ValueError, match="does not fit its dtype int32"):
        model.predict(np.array([[2 ** 40, 1, 1, 1, 1]]))
    tokens = Input((5,), name="t", dtype="int32")
    with pytest.raises(TypeError, match="takes float tensors.*Embedding first"):
        Dense(2, name="d")(tokens)
    with pytest.raises(TypeError, match="takes token ids: an integer tensor, or a float Input "
                                        "holding whole numbers.*computed by Dense 'dd'"):
        Embedding(4, 2, name="e")(Dense(3, name="dd")(Input((5,), name="f")))
    with pytest.raises(ValueError, match=r"mask_zero=True needs ids of shape \(N, T\)"):
        Embedding(4, 2, mask_zero=True)(Input((5, 2), name="g", dtype="int32"))
    with pytest.raises(ValueError, match="input_dim must be a positive int"):
        Embedding(0, 2)
    with pytest.raises(TypeError, match=r"embeddings_regularizer='l2' not supported; "
                                        r"Embedding takes input_dim, output_dim"):
        Embedding(4, 2, embeddings_regularizer="l2")
    with pytest.raises(TypeError, match="Input dtype must be"):
        Input((5,), dtype="uint8")


# --------------------------------------------------------------------------- Keras parity
@pytest.mark.keras
@pytest.mark.parametrize("dtype, tol", [("float32", 1e-4), ("float64", 1e-9)])
@pytest.mark.parametrize("mask_zero", [True, False])
def test_embedding_lstm_softmax_matches_keras(dtype, tol, mask_zero):
    """Embedding(mask_zero) -> LSTM -> Dense(softmax), sparse CCE: predictions, loss and
    every gradient (the embedding's from Keras' IndexedSlices), padding left, right and
    whole rows."""
    from keras_parity import assert_model_matches_keras, keras_dtype
    model = _token_model(mask_zero=mask_zero, dtype=dtype)
    rng = np.random.default_rng(6)
    model.set_weights([rng.normal(scale=0.7, size=w.shape).astype(dtype)
                       for w in model.get_weights()])
    model.compile("sgd", loss="sparse_categorical_crossentropy")
    ids = np.concatenate([_padded_ids(rng), _padded_ids(rng)])
    ys = rng.integers(0, 3, len(ids))
    with keras_dtype(dtype) as keras:
        tokens = keras.Input((5,), dtype="int32")
        h = keras.layers.LSTM(4)(keras.layers.Embedding(9, 3, mask_zero=mask_zero)(tokens))
        theirs = keras.Model(tokens, keras.layers.Dense(3, activation="softmax")(h))
        theirs.set_weights(model.get_weights())
        theirs.compile("sgd", loss="sparse_categorical_crossentropy")
        assert_model_matches_keras(model, theirs, [ids.astype("int32")], [ys], tol)
