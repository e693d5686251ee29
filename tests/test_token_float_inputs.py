"""Token ids through a float Input (issue 12 (b)).

Many Keras guides declare word ids as ``keras.Input(shape=(None,))`` (float32, the
default) and feed them to ``Embedding``, which casts them to int32 inside its ``call``
(keras/src/layers/core/embedding.py). mlstm does the same, decided from the graph: an
input only Embedding-like layers read (their ``token_id_inputs`` hook) holds ids. Such an
input gets no gradient, is never perturbed by the gradient check or ``mlstm.testing``, is
not judged as a float sequence by ``diagnose``, and its values are checked as ids (whole
numbers in [0, V), named by sample and position). Where Keras truncates a value that is
not a whole number (2.7 -> 2), mlstm refuses it.
"""
import warnings

import numpy as np
import pytest

import mlstm
from mlstm import Dense, Embedding, Input, LSTM, Model, concatenate
from mlstm.validation import as_token_ids, token_id_inputs

V, T, N = 12, 6, 8


def ids_model(dtype="float32", mask_zero=False, with_values=False, ids_dtype=None):
    """Word ids (float Input by default) -> Embedding -> LSTM -> softmax; optionally a
    float sequence input beside them."""
    title = Input((None,), name="title", dtype=ids_dtype or dtype)
    h = LSTM(5, name="lstm", seed=1)(Embedding(V, 4, mask_zero=mask_zero, name="emb",
                                               seed=0)(title))
    inputs = [title]
    if with_values:
        values = Input((T, 2), name="values", dtype=dtype)
        inputs.append(values)
        h = concatenate([h, LSTM(3, name="lstm_v", seed=2)(values)])
    out = Dense(3, activation="softmax", name="out", seed=3)(h)
    model = Model(inputs if with_values else title, out)
    model.compile("sgd", loss="sparse_categorical_crossentropy")
    return model


def ids(rng, vocabulary=V, dtype="float32", padded=False):
    a = rng.integers(1 if padded else 0, vocabulary, (N, T))
    if padded:
        a[::3, :2] = 0
    return a.astype(dtype)


def test_a_float_input_read_only_by_an_embedding_holds_ids():
    rng = np.random.default_rng(0)
    model = ids_model()
    assert token_id_inputs(model) == [True]
    assert model.get_layer("emb").dtype == "float32" and model.dtype == "float32"
    twin = ids_model(ids_dtype="int32")
    twin.set_weights(model.get_weights())
    x = ids(rng)
    # the same numbers as with int32 ids
    np.testing.assert_array_equal(model.predict(x), twin.predict(x.astype("int32")))
    np.testing.assert_array_equal(model.predict(x.astype(int)), twin.predict(x))
    both = ids_model(with_values=True)
    assert token_id_inputs(both) == [True, False]


def test_a_float64_input_of_ids_gives_a_float64_embedding():
    model = ids_model(dtype="float64")
    assert model.get_layer("emb").params["embeddings"].dtype == np.float64
    assert model.dtype == "float64"
    assert model.clone(dtype="float32").get_layer("emb").dtype == "float32"


def test_ids_that_are_not_whole_numbers_or_outside_are_refused_by_position():
    rng = np.random.default_rng(1)
    model = ids_model()
    x, y = ids(rng), rng.integers(0, 3, N)
    x[5, 3] = 2.7
    with pytest.raises(ValueError, match=r"inputs 'title' holds token ids \(float32\), got 2.7 "
                                         r"at index \[5, 3\] \(sample 5, position 3\), not a "
                                         r"whole number \(1 in all\). Keras would truncate it "
                                         r"toward zero \(to 2\); mlstm refuses it"):
        model.fit(x, y, epochs=1, batch_size=2, verbose=0)
    x[5, 3] = np.nan
    with pytest.raises(ValueError, match=r"holds token ids \(float32\), and NaN at index"):
        model.predict(x)
    x[5, 3] = V
    with pytest.raises(ValueError, match=rf"token id {V}.0 at sample 5, position 3 is outside "
                                         rf"\[0, {V}\) for Embedding 'emb'"):
        model.fit(x, y, epochs=1, batch_size=2, verbose=0)
    x[5, 3] = -1
    with pytest.raises(ValueError, match="token id -1.0 at sample 5, position 3"):
        model.predict(x)
    # a batch given to the layer directly: positions in the batch
    with pytest.raises(ValueError, match=r"got 0.5 at index \[0, 1\] \(sample 0, position 1\)"):
        model.get_layer("emb").forward([np.array([[1.0, 0.5]], "float32")], [None])
    with pytest.raises(TypeError, match="got booleans"):
        model.predict(np.ones((N, T), bool))


def test_ids_the_float_cast_would_round_are_refused():
    assert as_token_ids(np.array([[3, 2 ** 24]]), "float32", "x").dtype == np.float32
    with pytest.raises(ValueError, match=r"token id 16777217 at index \[0, 1\] does not fit its "
                                         r"dtype float32 exactly"):
        as_token_ids(np.array([[3, 2 ** 24 + 1]]), "float32", "x")
    as_token_ids(np.array([[3, 2 ** 24 + 1]]), "float64", "x")


def test_mask_zero_from_float_ids():
    rng = np.random.default_rng(2)
    model = ids_model(mask_zero=True)
    twin = ids_model(mask_zero=True, ids_dtype="int32")
    twin.set_weights(model.get_weights())
    x = ids(rng, padded=True)
    tape = model.forward(model._inputs(x))
    mask = [m for m in tape.masks.values() if m is not None][0]
    np.testing.assert_array_equal(mask, x != 0)
    np.testing.assert_array_equal(model.predict(x), twin.predict(x.astype("int32")))


def test_float_ids_get_no_gradient_and_are_not_perturbed():
    rng = np.random.default_rng(3)
    model = ids_model(with_values=True, mask_zero=True)
    x = [ids(rng, padded=True), rng.standard_normal((N, T, 2)).astype("float32")]
    y = rng.integers(0, 3, N)
    tape = model.forward(model._inputs(x), training=True)
    result = model.loss_and_output_grads(tape, model._targets(y, N))
    _, d_inputs = model.backward(tape, result.d_outputs, result.d_logits, input_grads=True)
    assert d_inputs[0] is None and d_inputs[1].shape == (N, T, 2)
    report = mlstm.gradcheck(model, x, y)
    assert report.ok(), str(report)
    assert "input:values" in report.rows and "input:title" not in report.rows
    # the check left the ids as they were: its model, run again, agrees with predict
    np.testing.assert_array_equal(model.predict(x), model.predict([x[0].copy(), x[1]]))


def test_testing_draws_whole_ids_in_the_vocabulary_and_checks_gradients():
    hypothesis = pytest.importorskip("hypothesis")
    from mlstm import testing

    model = ids_model(dtype="float64", with_values=True)
    seen = []

    @hypothesis.settings(max_examples=5, deadline=None, derandomize=True)
    @hypothesis.given(testing.sequences(model))
    def check(xs):
        title = xs[0]
        assert title.dtype == np.float64
        assert np.all(title == np.trunc(title)) and title.min() >= 0 and title.max() < V
        seen.append(title.shape)
        y = np.zeros(title.shape[0], int)
        testing.assert_gradients_close(model, xs, y)
        assert testing.gradcheck_caveats(model, xs, y) == []

    check()
    assert seen


def test_diagnose_does_not_judge_float_ids_as_a_sequence():
    """Ids up to 500 read as values would be 'badly scaled inputs'; they are not values."""
    rng = np.random.default_rng(4)
    title = Input((None,), name="title")
    out = Dense(3, activation="softmax", name="out")(LSTM(5, name="lstm")(
        Embedding(500, 4, name="emb")(title)))
    model = Model(title, out)
    model.compile("adam", loss="sparse_categorical_crossentropy")
    x, y = ids(rng, vocabulary=500), rng.integers(0, 3, N)
    report = mlstm.diagnose(model, x, y, steps=3, batch_size=N)
    assert "title" not in report.data["inputs"]
    assert not {"input_scale", "constant_inputs"} & set(report.codes), str(report)


def test_a_float_input_read_as_ids_and_as_values_is_refused():
    title = Input((T,), name="title")
    h = LSTM(3, name="lstm")(Embedding(V, 4, name="emb")(title))
    model = Model(title, concatenate([h, Dense(2, name="d")(title)]))
    model.compile("sgd", loss="mse")
    with pytest.raises(ValueError, match=r"input 'title' \(float32\) is read as token ids by "
                                         r"Embedding 'emb' and as values by Dense 'd'; .*give "
                                         r"the ids their own Input"):
        model.predict(np.ones((2, T), "float32"))


def test_an_embedding_takes_ids_only_from_an_input_or_an_integer_tensor():
    with pytest.raises(TypeError, match=r"takes token ids: an integer tensor, or a float Input "
                                        r"holding whole numbers \(Keras casts them to int32\); "
                                        r"got a float32 tensor computed by Dense 'dd'"):
        Embedding(V, 2, name="e2")(Dense(3, name="dd")(Input((T,), name="f")))


def test_one_embedding_on_ids_of_two_lengths():
    """programmerteach.com's title (30 ids) and description (200 ids) share one Embedding:
    its table does not depend on the length (mlstm's generic shape check refused it)."""
    rng = np.random.default_rng(5)
    title, desc = Input((3,), name="title"), Input((7,), name="desc", dtype="int32")
    shared = Embedding(V, 4, name="emb", seed=0)
    a = Dense(1, name="a")(LSTM(2, name="la")(shared(title)))
    b = Dense(1, name="b")(LSTM(2, name="lb")(shared(desc)))
    model = Model([title, desc], [a, b])
    model.compile("sgd", loss="mse")
    x = [rng.integers(0, V, (N, 3)).astype("float32"), rng.integers(0, V, (N, 7))]
    y = [rng.standard_normal((N, 1)), rng.standard_normal((N, 1))]
    report = mlstm.gradcheck(model, x, y)
    assert report.ok(), str(report)
    assert not any(name.startswith("input:") for name in report.rows)
    with pytest.raises(ValueError, match=r"mask_zero=True needs ids of shape \(N, T\)"):
        Embedding(V, 2, mask_zero=True)(Input((2, 2), name="g", dtype="int32"))


def test_save_and_load_keep_the_float_ids_input(tmp_path):
    rng = np.random.default_rng(6)
    model = ids_model(mask_zero=True)
    path = tmp_path / "ids.npz"
    model.save(path)
    loaded = mlstm.load_model(path)
    assert loaded.inputs[0].dtype == "float32" and token_id_inputs(loaded) == [True]
    x = ids(rng, padded=True)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


# --------------------------------------------------------------------------- Keras
@pytest.mark.keras
def test_keras_truncates_float_ids_where_mlstm_refuses():
    """The documented difference: Keras 3.15 casts 2.7 to 2 (TensorFlow truncates)."""
    from mlstm.interop.keras.backend import import_keras

    keras = import_keras()
    layer = keras.layers.Embedding(5, 2)
    layer.build((None, 3))
    out = np.asarray(layer(np.array([[2.7, -0.5, 4.99]], "float32")))
    np.testing.assert_array_equal(out[0], np.asarray(layer.embeddings)[[2, 0, 4]])


@pytest.mark.keras
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_and_crosscheck_with_keras(dtype):
    from mlstm.interop.keras import crosscheck, from_keras, keras_dtype, to_keras
    from mlstm.interop.keras.backend import import_keras

    rng = np.random.default_rng(7)
    model = ids_model(dtype=dtype, mask_zero=True, with_values=True)
    x = [ids(rng, padded=True, dtype=dtype), rng.standard_normal((N, T, 2)).astype(dtype)]
    y = rng.integers(0, 3, N)
    kmodel = to_keras(model)
    assert [t.dtype for t in kmodel.inputs] == [dtype, dtype]     # the float Input re-made
    with warnings.catch_warnings():
        warnings.simplefilter("error")                # the Embedding's initializer maps too
        back = from_keras(kmodel)
    assert back.inputs[0].dtype == dtype and token_id_inputs(back) == [True, False]
    report = crosscheck(model, x, y, steps=3, as_dict=True, run_eagerly=True)
    assert report["ok"], report
    # built in Keras as the guides write it: keras.Input(shape=(None,)) with no dtype
    keras = import_keras()
    with keras_dtype(dtype):
        title = keras.Input((None,), name="title")
        kout = keras.layers.Dense(3, activation="softmax")(keras.layers.LSTM(4)(
            keras.layers.Embedding(V, 3, mask_zero=True)(title)))
        guide = keras.Model(title, kout)
        guide.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert guide.inputs[0].dtype == dtype
    report = crosscheck(guide, x[0], y, steps=3, as_dict=True, run_eagerly=True)
    assert report["ok"], report


@pytest.mark.keras
def test_keras_embedding_default_initializer_imports_without_a_warning():
    from mlstm.interop.keras import from_keras
    from mlstm.interop.keras.backend import import_keras

    keras = import_keras()
    title = keras.Input((None,), dtype="int32")
    kmodel = keras.Model(title, keras.layers.Embedding(V, 3, name="emb")(title))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = from_keras(kmodel)
    assert model.get_layer("emb").embeddings_initializer == "uniform"
    np.testing.assert_array_equal(model.get_layer("emb").params["embeddings"],
                                  kmodel.get_layer("emb").get_weights()[0])
    # a RandomUniform with other bounds is not mlstm's "uniform": it still says so
    kmodel = keras.Model(title, keras.layers.Embedding(
        V, 3, embeddings_initializer=keras.initializers.RandomUniform(-1.0, 1.0))(title))
    with pytest.warns(UserWarning, match="has no mlstm equivalent"):
        from_keras(kmodel)
