"""Issue 12's diagnose findings on classification heads, each from the fault, with the fix
tried, and the sound classification setups silent.

A softmax over one unit, categorical cross-entropy on a one-unit sigmoid head,
``from_logits=True`` on an output that already has a sigmoid or softmax, one-hot targets
given to sparse categorical cross-entropy and class ids given to categorical
cross-entropy (mlstm refuses the data; ``diagnose`` finds why, and trains the fix).
"""
import warnings

import numpy as np
import pytest

import mlstm
from mlstm.diagnostics import diagnose
from mlstm.losses import BinaryCrossentropy, CategoricalCrossentropy
from test_diagnose import finding

N, T, D = 128, 6, 3


def task(seed=0):
    """Three classes from two running sums of the inputs; validation data too."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N + 64, T, D)).astype("float32")
    ids = (x[:, :, 0].sum(1) > 0).astype(int) + (x[:, :, 1].sum(1) > 0).astype(int)
    return x[:N], ids[:N], (x[N:], ids[N:])


def classifier(units, activation, loss):
    x = mlstm.Input((T, D), name="x")
    h = mlstm.LSTM(8, name="lstm", seed=0)(x)
    m = mlstm.Model(x, mlstm.Dense(units, activation=activation, name="out", seed=1)(h))
    m.compile(optimizer="adam", loss=loss)
    return m


def diagnosed(m, x, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)     # the losses warn about these faults
        report = diagnose(m, x, y, steps=kw.pop("steps", 30), verify=True, **kw)
    str(report)
    report.to_dict()
    return report


def test_a_softmax_over_one_unit():
    x, ids, _ = task()
    binary = (ids > 0).astype("float32")[:, None]
    for loss in ("categorical_crossentropy", "mse"):
        report = diagnosed(classifier(1, "softmax", loss), x, binary)
        f, = finding(report, "single_unit_softmax")
        assert f.severity == "error" and f.measured["gradient_norm"] == 0.0
        assert "Dense(1, activation='sigmoid')" in f.fix
        assert report.findings[0] is f
        # what follows from it: no gradient anywhere, a loss that reaches no sample
        assert finding(report, "no_gradient")[0].caused_by == "single_unit_softmax"
        assert finding(report, "low_sample_coverage")[0].caused_by == "single_unit_softmax"
        v = f.verification             # a sigmoid with binary cross-entropy, from the same weights
        assert v["verified"] and v["outputs"]["out"]["loss"] == "binary_crossentropy", v["words"]


def test_categorical_cross_entropy_on_a_one_unit_sigmoid_head():
    x, ids, _ = task()
    report = diagnosed(classifier(1, "sigmoid", "categorical_crossentropy"), x,
                       (ids > 0).astype("float32")[:, None])
    f, = finding(report, "categorical_on_one_unit")
    assert f.severity == "error" and f.measured["batch_loss"] < 1e-6   # constant: -t log(1 - ε)
    assert "binary_crossentropy" in f.fix
    assert f.verification["verified"], f.verification["words"]


@pytest.mark.parametrize("units, activation, loss", [
    (3, "softmax", CategoricalCrossentropy(from_logits=True)),
    (1, "sigmoid", BinaryCrossentropy(from_logits=True)),
])
def test_from_logits_on_an_output_that_is_already_probabilities(units, activation, loss):
    x, ids, _ = task()
    y = np.eye(3, dtype="float32")[ids] if units == 3 else (ids > 0).astype("float32")[:, None]
    report = diagnosed(classifier(units, activation, loss), x, y)
    f, = finding(report, "from_logits_on_activated")
    assert f.severity == "warning" and f.measured["activation"] == activation
    # what the JAX and PyTorch backends would compute: the probabilities read as logits
    assert f.measured["loss_probabilities_as_logits"] != pytest.approx(
        f.measured["loss_from_logits"], rel=1e-3)
    assert "from_logits=False" in f.fix
    assert f.remedy is None and "retraining here cannot show" in f.verification_words()


def test_from_logits_on_a_sigmoid_head_with_a_softmax_loss_is_an_error():
    """CCE(from_logits=True) on three sigmoid units reads the probabilities as logits, on
    every backend and in mlstm."""
    x, ids, _ = task()
    report = diagnosed(classifier(3, "sigmoid", CategoricalCrossentropy(from_logits=True)), x,
                       np.eye(3, dtype="float32")[ids])
    f, = finding(report, "from_logits_on_activated")
    assert f.severity == "error" and f.remedy is not None


def test_one_hot_targets_given_to_sparse_categorical_cross_entropy():
    x, ids, _ = task()
    m = classifier(3, "softmax", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="one-hot"):
        m.fit(x, np.eye(3, dtype="float32")[ids], epochs=1, verbose=0)     # mlstm refuses
    report = diagnosed(m, x, np.eye(3, dtype="float32")[ids], steps=60)
    f, = finding(report, "class_target_format")
    assert report.stopped and f.measured["one_hot_rows"] == 1.0
    assert "categorical_crossentropy" in f.fix and "argmax" in f.fix
    v = f.verification                 # trained with the fix: the loss falls from its start
    assert v["from_start"] and v["verified"], v["words"]


def test_class_ids_given_to_categorical_cross_entropy():
    x, ids, _ = task()
    for y in (ids.astype("float32"), ids[:, None].astype("float32")):
        report = diagnosed(classifier(3, "softmax", "categorical_crossentropy"), x, y,
                           steps=60)
        f, = finding(report, "class_target_format")
        assert f.measured["max"] == 2 and "sparse_categorical_crossentropy" in f.fix
        assert f.verification["verified"], f.verification["words"]


@pytest.mark.parametrize("loss, one_hot", [("categorical_crossentropy", True),
                                           ("sparse_categorical_crossentropy", False)])
def test_a_sound_softmax_classifier_is_silent(loss, one_hot):
    x, ids, (vx, vids) = task()
    y, vy = (np.eye(3, dtype="float32")[ids], np.eye(3, dtype="float32")[vids]) if one_hot \
        else (ids, vids)
    report = diagnosed(classifier(3, "softmax", loss), x, y, validation_data=(vx, vy))
    assert report.codes == [], str(report)
    assert "validation" in report.summary["curves"]


def test_multi_hot_targets_under_categorical_cross_entropy():
    """Several classes per row with a softmax and CCE (tests/test_cce_target_sums.py has the
    rest: rows with no class, sparse CCE, the crosscheck explanation)."""
    x, ids, _ = task()
    multi_hot = np.eye(3, dtype="float32")[ids]
    multi_hot[::2, 0] = 1                                   # a second class on half the rows
    report = diagnosed(classifier(3, "softmax", "categorical_crossentropy"), x, multi_hot,
                       steps=30)
    f, = finding(report, "categorical_target_sums")
    assert f.severity == "error" and f.measured["above"] == int(np.sum(ids[::2] != 0))
    assert f.verification["verified"], f.verification["words"]
    # the same task with one class per row: silent (test_a_sound_softmax_classifier_is_silent)
