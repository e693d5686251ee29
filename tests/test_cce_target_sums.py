"""Categorical cross-entropy on targets whose rows do not sum to 1 (issue 12 (c)).

mlstm trains with the derivative of the loss it reports, ``softmax(a) Σt - t``; Keras'
TensorFlow backend, from logits, with ``softmax(a) - t`` (``softmax_cross_entropy_with_
logits``). The lead's decision: keep the derivative and make the difference visible —
``diagnose`` finds such targets (multi-hot rows with a softmax are a common bug), and
``crosscheck`` explains its differences from Keras by that rule, checked to float
precision (docs/losses.md).
"""
import warnings

import numpy as np
import pytest

import mlstm
from mlstm import Dense, Input, LSTM, Model
from mlstm.diagnostics import diagnose
from mlstm.losses import CategoricalCrossentropy, SparseCategoricalCrossentropy
from test_diagnose import finding

N, T, D, C = 96, 5, 3, 4


def classifier(activation="softmax", loss="categorical_crossentropy", dtype="float32"):
    x = Input((T, D), name="x", dtype=dtype)
    h = LSTM(8, name="lstm", seed=0)(x)
    m = Model(x, Dense(C, activation=activation, name="out", seed=1)(h))
    m.compile(optimizer="adam", loss=loss)
    return m


def data(kind, seed=0):
    """Inputs, and targets: "multi_hot" (0/1 rows, several classes or none per sample, as
    the Keras functional-API guide's dummy department targets), "empty" (one-hot rows and
    some all-zero ones), "one_hot", "soft" (distributions summing to 1)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, T, D)).astype("float32")
    ids = (x[:, :, 0].sum(1) > 0).astype(int) + 2 * (x[:, :, 1].sum(1) > 0).astype(int)
    if kind == "multi_hot":
        y = np.zeros((N, C), "float32")
        y[:, 0] = x[:, :, 0].sum(1) > 0
        y[:, 1] = x[:, :, 1].sum(1) > 0
        y[:, 2] = x[:, :, 2].sum(1) > 0
        y[:, 3] = x[:, :, 0].sum(1) + x[:, :, 1].sum(1) > 0
    else:
        y = np.eye(C, dtype="float32")[ids]
        if kind == "empty":
            y[::4] = 0
        elif kind == "soft":
            y = 0.8 * y + 0.2 * rng.dirichlet(np.ones(C), N).astype("float32")
    return x, y


def diagnosed(m, x, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        report = diagnose(m, x, y, steps=kw.pop("steps", 30), **kw)
    str(report)
    report.to_dict()
    return report


# --------------------------------------------------------------------------- the loss
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_the_derivative_and_tensorflows_rule(smoothing):
    """d/da of Σ_j t_j (lse(a) - a_j) is softmax(a) Σt - t; TensorFlow's is softmax(a) - t;
    they differ by softmax(a) (Σt - 1) per row (t: the smoothed targets)."""
    loss = CategoricalCrossentropy(from_logits=True, label_smoothing=smoothing)
    rng = np.random.default_rng(1)
    a = rng.standard_normal((6, C))
    t = (rng.random((6, C)) < 0.5).astype(float)
    t[0] = 0
    smoothed = t * (1 - smoothing) + smoothing / C
    h = 1e-6
    numeric = np.zeros_like(a)
    for i in range(C):
        e = np.zeros(C)
        e[i] = h
        numeric[:, i] = (loss.call_logits(t, a + e) - loss.call_logits(t, a - e)) / (2 * h)
    p = np.exp(a) / np.exp(a).sum(-1, keepdims=True)
    mine, theirs = loss.gradient_logits(t, a), loss.tensorflow_gradient_logits(t, a)
    np.testing.assert_allclose(mine, numeric, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(mine, p * smoothed.sum(-1, keepdims=True) - smoothed, atol=1e-15)
    np.testing.assert_allclose(theirs, p - smoothed, atol=1e-15)
    np.testing.assert_allclose(mine - theirs, p * (smoothed.sum(-1, keepdims=True) - 1),
                               atol=1e-15)
    # one-hot rows: the same
    one_hot = np.eye(C)[[0, 1, 2, 3, 0, 1]]
    np.testing.assert_allclose(loss.gradient_logits(one_hot, a),
                               loss.tensorflow_gradient_logits(one_hot, a), atol=1e-15)


def test_mlstm_trains_with_the_derivative():
    """The gradient check agrees with mlstm on multi-hot targets (it is the loss's)."""
    x, y = data("multi_hot")
    m = classifier(dtype="float64")
    report = mlstm.gradcheck(m, x[:8], y[:8])
    assert report.ok(), str(report)


# --------------------------------------------------------------------------- diagnose
def test_multi_hot_targets_with_a_softmax_are_found_and_the_fix_verified():
    x, y = data("multi_hot")
    report = diagnosed(classifier(), x, y, verify=True)
    f, = finding(report, "categorical_target_sums")
    sums = y.sum(1)
    assert f.severity == "error" and f.measured["multi_hot"]
    assert f.measured["off"] == int(np.count_nonzero(sums != 1)) > 0
    assert f.measured["above"] == int(np.count_nonzero(sums > 1))
    assert f.measured["empty"] == int(np.count_nonzero(sums == 0))
    assert f.measured["rows"] == N and f.measured["keras_gradient_differs"]
    assert f"{f.measured['off']} of its {N} target rows do not sum to 1" in f.message
    assert "softmax(a) - t" in f.message and "softmax(a)·Σt - t" in f.message
    assert "activation='sigmoid'" in f.fix and "binary_crossentropy" in f.fix
    assert "y / y.sum(axis=-1, keepdims=True)" in f.fix
    v = f.verification                    # one sigmoid per class with BCE, trained
    assert v["verified"] and v["outputs"]["out"]["loss"] == "binary_crossentropy", v["words"]


def test_multi_hot_targets_from_logits_get_a_logits_remedy():
    x, y = data("multi_hot")
    report = diagnosed(classifier(None, CategoricalCrossentropy(from_logits=True)), x, y,
                       steps=5)
    f, = finding(report, "categorical_target_sums")
    assert f.measured["keras_gradient_differs"]
    assert "from_logits=True" in f.remedy.words and not f.remedy.activations


def test_rows_with_no_class_are_a_warning():
    x, y = data("empty")
    report = diagnosed(classifier(), x, y, steps=5)
    f, = finding(report, "categorical_target_sums")
    assert f.severity == "warning" and not f.measured["multi_hot"] and f.remedy is None
    assert f.measured["empty"] == N // 4 and f.measured["off"] == N // 4
    assert "no class" in f.message


def test_on_probabilities_keras_differentiates_the_loss_itself():
    """CCE on a sigmoid head's probabilities: the finding, without the Keras difference."""
    x, y = data("multi_hot")
    report = diagnosed(classifier("sigmoid"), x, y, steps=5)
    f, = finding(report, "categorical_target_sums")
    assert not f.measured["keras_gradient_differs"] and "Keras and mlstm" not in f.message


def test_multi_hot_targets_given_to_sparse_categorical_cross_entropy():
    x, y = data("multi_hot")
    m = classifier(loss=SparseCategoricalCrossentropy())
    with pytest.raises(ValueError):
        m.fit(x, y, epochs=1, verbose=0)                        # mlstm refuses them
    report = diagnosed(m, x, y, steps=5)
    f, = finding(report, "categorical_target_sums")
    assert report.stopped and f.severity == "error" and "multi-label" in f.message
    assert "class_target_format" not in report.codes


@pytest.mark.parametrize("kind", ["one_hot", "soft"])
def test_targets_that_sum_to_1_are_silent(kind):
    x, y = data(kind)
    assert np.allclose(y.sum(1), 1, atol=1e-6)
    report = diagnosed(classifier(), x, y, steps=5)
    assert "categorical_target_sums" not in report.codes


# --------------------------------------------------------------------------- crosscheck
@pytest.mark.keras
def test_keras_gradient_is_tensorflows_rule():
    """The numbers of docs/losses.md: logits [0.3, -1.2, 0.5], t = [1, 1, 0]: Keras'
    gradient is TensorFlow's rule, and mlstm's the derivative of Keras' own loss."""
    from mlstm.interop.keras.backend import import_tensorflow

    keras, tf = import_tensorflow()
    a = tf.Variable([[0.3, -1.2, 0.5]], dtype="float64")
    t = np.array([[1.0, 1.0, 0.0]])
    with tf.GradientTape() as tape:
        value = keras.losses.CategoricalCrossentropy(from_logits=True)(t, a)
    keras_gradient = tape.gradient(value, a).numpy()
    loss = CategoricalCrossentropy(from_logits=True)
    logits = a.numpy()
    np.testing.assert_allclose(keras_gradient, loss.tensorflow_gradient_logits(t, logits),
                               atol=1e-12)
    np.testing.assert_allclose(keras_gradient, [[-0.591, -0.909, 0.500]], atol=1e-3)
    # central differences of Keras' own loss: mlstm's gradient
    h, numeric = 1e-6, []
    for i in range(3):
        e = np.zeros((1, 3))
        e[0, i] = h
        up = float(keras.losses.categorical_crossentropy(t, logits + e, from_logits=True)[0])
        down = float(keras.losses.categorical_crossentropy(t, logits - e, from_logits=True)[0])
        numeric.append((up - down) / (2 * h))
    np.testing.assert_allclose(loss.gradient_logits(t, logits)[0], numeric, atol=1e-8)
    # (docs/real_models.md said [-0.119, -0.834, 0.954] before: a slip; 2 softmax(a) - t is
    # [-0.182, -0.817, 0.999])
    np.testing.assert_allclose(numeric, [-0.182, -0.817, 0.999], atol=1e-3)


@pytest.mark.keras
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation, loss", [
    ("softmax", "categorical_crossentropy"),
    (None, CategoricalCrossentropy(from_logits=True, label_smoothing=0.1))])
def test_crosscheck_explains_the_difference(dtype, activation, loss):
    from mlstm.interop.keras import crosscheck, format_report

    x, y = data("multi_hot")
    m = classifier(activation, loss, dtype=dtype)
    report = crosscheck(m, x[:8], y[:8], steps=3, as_dict=True, run_eagerly=True)
    sums = report["target_sums"]
    assert not report["ok"] and report["failed"] > 0        # the numbers do differ...
    assert sums["ok"] and sums["rule_failed"] == 0          # ...by exactly that rule
    assert sums["explained"] == report["failed"] and sums["unexplained"] == 0
    assert sums["outputs"]["out"]["rows"] == int(np.count_nonzero(y[:8].sum(1) != 1))
    # the forward pass and the loss agree: only gradients and steps differ
    assert all(d["ok"] for d in report["forward"].values())
    assert all(d["ok"] for d in report["loss"].values())
    text = format_report(report)
    assert "NO, explained" in text and "softmax(a)*sum(t) - t" in text
    assert f"explained: {report['failed']} of them" in text


@pytest.mark.keras
def test_crosscheck_on_targets_that_sum_to_1_has_nothing_to_explain():
    from mlstm.interop.keras import crosscheck

    x, y = data("soft")
    report = crosscheck(classifier(), x[:8], y[:8], steps=2, as_dict=True, run_eagerly=True)
    assert report["ok"] and "target_sums" not in report
