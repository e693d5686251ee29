"""Metrics: values against Keras' metric objects, "accuracy" resolved per output as Keras
does, masks, refusals."""
import numpy as np
import pytest

import mlstm
from mlstm import Dense, Input, LSTM, Masking, Model, metrics


def _arrays(seed=0, n=40, classes=6):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, classes))
    logits[:5, :3] = 1.0                       # ties at the top (argmax takes the first)
    logits[5:10] = 0.0                         # a whole row tied: top-k counts it in
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    ids = rng.integers(0, classes, n)
    return p, ids, np.eye(classes)[ids]


def test_values_by_hand():
    p, ids, one_hot = _arrays()
    np.testing.assert_array_equal(metrics.categorical_accuracy(one_hot, p),
                                  p.argmax(-1) == ids)
    np.testing.assert_array_equal(metrics.sparse_categorical_accuracy(ids.astype(float), p),
                                  p.argmax(-1) == ids)
    np.testing.assert_array_equal(metrics.sparse_categorical_accuracy(ids[:, None] * 1.0, p),
                                  p.argmax(-1) == ids)
    rank = (p > p[np.arange(len(ids)), ids][:, None]).sum(-1)
    np.testing.assert_array_equal(metrics.top_k_categorical_accuracy(one_hot, p), rank < 5)
    assert metrics.top_k_categorical_accuracy(one_hot[5:10], p[5:10]).all()   # all tied
    bad = p.copy()
    bad[0, 0] = np.nan
    assert metrics.top_k_categorical_accuracy(one_hot[:1], bad[:1])[0] == 0


@pytest.mark.parametrize("loss, units, expected", [
    ("binary_crossentropy", 1, metrics.binary_accuracy),
    ("mse", 1, metrics.binary_accuracy),
    ("categorical_crossentropy", 4, metrics.categorical_accuracy),
    ("binary_crossentropy", 4, metrics.categorical_accuracy),       # Keras' shape rule
    ("sparse_categorical_crossentropy", 4, metrics.sparse_categorical_accuracy),
    ("sparse_categorical_crossentropy", 1, metrics.binary_accuracy),
])
def test_accuracy_is_resolved_per_output_as_keras_does(loss, units, expected):
    x = Input((3,), name="x")
    model = Model(x, Dense(units, activation="softmax" if units > 1 else "sigmoid",
                           name="out")(x))
    for name in ("accuracy", "acc", "Accuracy"):
        model.compile("sgd", loss=loss, metrics=[name])
        (fn, key), = model._metrics[0]
        assert fn is expected and key == name


def test_accuracy_differs_per_output_and_keeps_its_history_key():
    mlstm.set_random_seed(0)
    x = Input((4, 2), name="x")
    h = LSTM(3, name="lstm")(x)
    out_b = Dense(1, activation="sigmoid", name="b")(h)
    out_c = Dense(3, activation="softmax", name="c")(h)
    out_s = Dense(3, activation="softmax", name="s")(h)
    model = Model(x, [out_b, out_c, out_s])
    model.compile("adam", loss=["binary_crossentropy", "categorical_crossentropy",
                                "sparse_categorical_crossentropy"], metrics=["accuracy"])
    assert [fn for ms in model._metrics for fn, _ in ms] == [
        metrics.binary_accuracy, metrics.categorical_accuracy,
        metrics.sparse_categorical_accuracy]
    rng = np.random.default_rng(1)
    xs = rng.normal(size=(8, 4, 2)).astype("float32")
    ids = rng.integers(0, 3, 8)
    ys = [rng.integers(0, 2, (8, 1)).astype("float32"), np.eye(3)[ids], ids]
    history = model.fit(xs, ys, epochs=1, batch_size=4, verbose=0, seed=0)
    assert {"b_accuracy", "c_accuracy", "s_accuracy"} <= set(history.history)
    assert model.metrics_names[-3:] == ["b_accuracy", "c_accuracy", "s_accuracy"]


def test_masked_steps_are_left_out():
    mlstm.set_random_seed(0)
    x = Input((4, 2), name="x")
    out = Dense(3, activation="softmax", name="head")(
        LSTM(3, return_sequences=True, name="lstm")(Masking()(x)))
    model = Model(x, out)
    model.compile("sgd", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy", "sparse_categorical_accuracy"])
    rng = np.random.default_rng(2)
    xs = rng.normal(size=(3, 4, 2)).astype("float32")
    xs[0, 1:] = 0
    ids = rng.integers(0, 3, (3, 4))
    valid = np.ones((3, 4), bool)
    valid[0, 1:] = False
    hits = model.predict(xs).argmax(-1) == ids
    loss, acc, acc2 = model.evaluate(xs, ids)
    assert acc == pytest.approx(hits[valid].mean()) and acc2 == acc


def test_refusals():
    with pytest.raises(ValueError, match="Unknown metric 'f1'.*accuracy"):
        metrics.get("f1")
    with pytest.raises(ValueError, match="class ids need sparse_categorical_accuracy"):
        metrics.mean_absolute_error(np.zeros(4), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="one class id per row"):
        metrics.sparse_categorical_accuracy(np.zeros((4, 3)), np.zeros((4, 3)))


# --------------------------------------------------------------------------- Keras
@pytest.mark.keras
def test_values_match_keras_metric_objects():
    import keras
    p, ids, one_hot = _arrays(seed=3)
    rng = np.random.default_rng(4)
    binary_t = rng.integers(0, 2, (40, 3)).astype(float)
    binary_p = rng.uniform(size=(40, 3))
    y, t = rng.normal(size=(40, 3)), rng.normal(size=(40, 3))
    per_step_p = p.reshape(8, 5, 6)
    cases = [
        (keras.metrics.CategoricalAccuracy(), metrics.categorical_accuracy, one_hot, p),
        (keras.metrics.SparseCategoricalAccuracy(), metrics.sparse_categorical_accuracy,
         ids, p),
        (keras.metrics.SparseCategoricalAccuracy(), metrics.sparse_categorical_accuracy,
         ids[:, None], p),
        (keras.metrics.SparseCategoricalAccuracy(), metrics.sparse_categorical_accuracy,
         ids.reshape(8, 5), per_step_p),
        (keras.metrics.TopKCategoricalAccuracy(), metrics.top_k_categorical_accuracy,
         one_hot, p),
        (keras.metrics.TopKCategoricalAccuracy(), metrics.top_k_categorical_accuracy,
         one_hot.reshape(8, 5, 6), per_step_p),
        (keras.metrics.BinaryAccuracy(), metrics.binary_accuracy, binary_t, binary_p),
        (keras.metrics.MeanAbsoluteError(), metrics.mean_absolute_error, t, y),
        (keras.metrics.MeanSquaredError(), metrics.mean_squared_error, t, y),
    ]
    for keras_metric, mine, y_true, y_pred in cases:
        y_pred = np.asarray(y_pred, "float32")      # TensorFlow's in_top_k takes float32 only
        keras_metric.update_state(y_true, y_pred)
        value = np.mean(mine(np.asarray(y_true, float), y_pred))
        assert value == pytest.approx(float(keras_metric.result()), rel=1e-6, abs=1e-7), \
            keras_metric.name


@pytest.mark.keras
def test_accuracy_in_evaluate_matches_keras():
    """A two-head model compiled with metrics=["accuracy"] in both frameworks: Keras picks
    binary and sparse categorical accuracy from the shapes; so does mlstm."""
    from keras_parity import keras_dtype
    mlstm.set_random_seed(0)
    x = Input((4, 2), name="x")
    h = LSTM(3, name="lstm")(x)
    model = Model(x, [Dense(1, activation="sigmoid", name="b")(h),
                      Dense(4, activation="softmax", name="s")(h)])
    rng = np.random.default_rng(5)
    model.set_weights([rng.normal(scale=1.5, size=w.shape).astype("float32")
                       for w in model.get_weights()])
    model.compile("sgd", loss=["binary_crossentropy", "sparse_categorical_crossentropy"],
                  metrics=["accuracy"])
    xs = rng.normal(size=(32, 4, 2)).astype("float32")
    ys = [rng.integers(0, 2, (32, 1)).astype("float32"), rng.integers(0, 4, 32)]
    ours = model.evaluate(xs, ys, return_dict=True)
    with keras_dtype("float32") as keras:
        kx = keras.Input((4, 2), name="x")
        kh = keras.layers.LSTM(3, name="lstm")(kx)
        theirs = keras.Model(kx, [keras.layers.Dense(1, activation="sigmoid", name="b")(kh),
                                  keras.layers.Dense(4, activation="softmax", name="s")(kh)])
        theirs.set_weights(model.get_weights())
        theirs.compile("sgd", loss=["binary_crossentropy", "sparse_categorical_crossentropy"],
                       metrics=["accuracy", "accuracy"])
        keras_logs = theirs.evaluate(xs, ys, return_dict=True, verbose=0)
    for key in ("b_accuracy", "s_accuracy", "loss"):
        assert ours[key] == pytest.approx(keras_logs[key], rel=1e-5), key
