"""Missing labels, beyond Keras: ``missing_targets="mask"`` (issue 14).

A target row of NaN is a missing label for that output: the sample contributes nothing to
that output's loss and gradient, which are the mean over the labelled samples, exactly as
computed on the labelled samples alone; a batch without a label for an output contributes
nothing for it and its logs say so (``<output>_labelled`` = 0). Without the option NaN is
an error, as before.
"""
import numpy as np
import pytest
from _keras_twin import data, two_output_model

import mlstm
from mlstm.optimizers import SGD


def _model(lr=0.1):
    model = two_output_model()
    model.compile(SGD(lr), loss=["mse", "binary_crossentropy"], loss_weights=[0.6, 1.5],
                  metrics=["mae"])
    return model


def _with_missing(y, rows):
    y = y.copy()
    y[rows] = np.nan
    return y


def _output_gradient(model, x, y, k, missing):
    """Output k's loss and its gradient contribution, ``{"layer/weight": array}``."""
    batch = model._arrays(x, y, missing=missing)
    tape = model.forward(batch.xs, training=True)
    result = model._batch_loss(tape, batch)
    d_out, d_log = result.for_output(k)
    return result, model.backward(tape, d_out, d_log)


def test_loss_and_gradient_equal_those_of_the_labelled_samples_alone():
    x, y1, y2 = data(n=10)
    missing = [1, 4, 5, 9]
    labelled = [i for i in range(10) if i not in missing]
    model = _model()
    y2_missing = _with_missing(y2, missing)
    masked, grads = _output_gradient(model, x, [y1, y2_missing], 1, missing=True)
    alone, grads_alone = _output_gradient(model, x[labelled], [y1[labelled], y2[labelled]], 1,
                                          missing=False)
    assert masked.per_output[1] == pytest.approx(alone.per_output[1], rel=1e-13, abs=0)
    for name in grads:
        np.testing.assert_allclose(grads[name], grads_alone[name], rtol=1e-12, atol=1e-15)
    assert masked.labelled == [10, 6] and masked.entries == [10, 10]
    # output 1 keeps all its samples
    full, _ = _output_gradient(model, x, [y1, y2], 0, missing=False)
    assert masked.per_output[0] == full.per_output[0]
    # the samples without a label receive no gradient from output 2's loss
    from mlstm.measure import sample_coverage
    assert list(sample_coverage(model, masked)["out2"]) == [i in labelled for i in range(10)]


def test_a_batch_without_a_label_contributes_nothing_and_says_so():
    x, y1, y2 = data(n=8)
    model = _model()
    y2_missing = _with_missing(y2, slice(4, 8))          # the second batch has no label
    seen = []
    recorder = mlstm.callbacks.LambdaCallback(
        on_after_update_step=lambda step, info: seen.append(
            (step, dict(info["batch_logs"]), {k: float(np.abs(g).max())
                                              for k, g in info["grads"].items()})))
    history = model.fit(x, [y1, y2_missing], batch_size=4, epochs=1, shuffle=False,
                        verbose=0, missing_targets="mask", callbacks=[recorder])
    (_, first, _), (_, second, _) = seen
    assert first["out2_labelled"] == 1.0 and second["out2_labelled"] == 0.0
    assert second["out2_loss"] == 0.0 and second["out1_labelled"] == 1.0
    assert second["loss"] == pytest.approx(0.6 * second["out1_loss"], rel=1e-14)
    assert second["out2_mae"] == 0.0
    # the epoch: output 2 averaged over its 4 labelled samples, the share logged
    logs = {k: v[0] for k, v in history.history.items()}
    assert logs["out2_loss"] == pytest.approx(first["out2_loss"], rel=1e-14)
    assert logs["out2_labelled"] == 0.5
    assert logs["out2_mae"] == pytest.approx(first["out2_mae"], rel=1e-14)
    assert logs["loss"] == pytest.approx(0.6 * logs["out1_loss"] + 1.5 * logs["out2_loss"],
                                         rel=1e-14)
    assert list(history.history) == ["loss", "out1_loss", "out2_loss", "out1_mae", "out2_mae",
                                     "out1_labelled", "out2_labelled"]


def test_the_gradient_of_a_batch_without_labels_is_that_of_the_other_outputs():
    x, y1, y2 = data(n=4)
    model = _model()
    result, grads = _output_gradient(model, x, [y1, np.full_like(y2, np.nan)], 1,
                                     missing=True)
    assert result.per_output[1] == 0.0 and result.labelled[1] == 0
    assert all(not np.any(g) for g in grads.values())


def test_epoch_losses_are_means_over_every_labelled_sample():
    """With the weights held (lr 0), the epoch's output loss is evaluate() on the labelled
    samples alone, whatever their spread over batches; validation works the same way."""
    x, y1, y2 = data(n=11)
    missing = [0, 2, 3, 7]
    labelled = [i for i in range(11) if i not in missing]
    model = _model(lr=0.0)
    y2_missing = _with_missing(y2, missing)
    history = model.fit(x, [y1, y2_missing], batch_size=3, epochs=1, seed=3, verbose=0,
                        validation_data=(x, [y1, y2_missing]), missing_targets="mask")
    alone = model.evaluate(x[labelled], [y1[labelled], y2[labelled]], batch_size=11,
                           return_dict=True)
    for prefix in ("", "val_"):
        assert history.history[prefix + "out2_loss"][0] == pytest.approx(
            alone["out2_loss"], rel=1e-13)
        assert history.history[prefix + "out2_mae"][0] == pytest.approx(
            alone["out2_mae"], rel=1e-13)
        assert history.history[prefix + "out2_labelled"][0] == pytest.approx(7 / 11)
    logs = model.evaluate(x, [y1, y2_missing], missing_targets="mask", return_dict=True)
    assert logs["out2_loss"] == pytest.approx(alone["out2_loss"], rel=1e-13)


def test_missing_labels_combine_with_sample_weights_and_a_sequence_mask():
    """An entry counts when it is labelled and valid under the mask: Σ w·m·l / Σ m."""
    T = 4
    x_in = mlstm.Input(shape=(T, 3), name="x", dtype="float64")
    h = mlstm.Masking(0.0, name="mask")(x_in)
    h = mlstm.LSTM(3, return_sequences=True, name="lstm", seed=0)(h)
    model = mlstm.Model(x_in, mlstm.Dense(1, name="out", seed=1)(h))
    model.compile(SGD(0.1), loss="mse")
    rng = np.random.default_rng(5)
    x = rng.normal(size=(5, T, 3))
    x[1, 2:] = 0.0
    y = rng.normal(size=(5, T, 1))
    y[0, 1] = np.nan                 # one step of one sample unlabelled
    y[3] = np.nan                    # a whole sample
    w = rng.uniform(0.5, 2.0, 5)
    batch = model._arrays(x, y, sample_weight=w, missing=True)
    tape = model.forward(batch.xs)
    result = model._batch_loss(tape, batch)
    p = tape.outputs[0]
    valid = np.any(x != 0, axis=-1)
    labelled = ~np.isnan(y[..., 0])
    m = valid & labelled
    per_entry = (p[..., 0] - np.nan_to_num(y[..., 0])) ** 2
    expected = np.sum(w[:, None] * m * per_entry) / np.sum(m)
    assert result.per_output[0] == pytest.approx(expected, rel=1e-13)
    assert result.labelled == [int(m.sum())] and result.entries == [int(valid.sum())]


def test_without_the_option_nan_stays_an_error():
    x, y1, y2 = data(n=6)
    model = _model()
    y2_missing = _with_missing(y2, [2])
    with pytest.raises(ValueError, match="NaN"):
        model.fit(x, [y1, y2_missing], verbose=0)
    with pytest.raises(ValueError, match="NaN"):
        model.evaluate(x, [y1, y2_missing])
    partly = y1.copy()
    partly[3, 0] = np.nan
    with pytest.raises(ValueError, match=r"row at \[3\] is partly NaN"):
        model.fit(x, [partly, y2], missing_targets="mask", verbose=0)
    inf = y1.copy()
    inf[1] = np.inf
    with pytest.raises(ValueError, match="inf"):
        model.fit(x, [inf, y2], missing_targets="mask", verbose=0)
    with pytest.raises(ValueError, match="missing_targets must be None"):
        model.fit(x, [y1, y2], missing_targets="drop", verbose=0)
