"""The findings of issue 15, each from a setup built to have that fault, and a sound setup of
the same shape that stays silent about it.

Targets on a large scale under MSE, dead ReLU units, a growing gradient, a clip that is
always active, a loss that stops falling at the level of a constant prediction, constant
inputs, an output at loss weight 0 (or without a loss) that still changes weights, and the
seed's Example 3 (a Reshape head with a custom loss that indexes ``y_true[0]``).
"""
import numpy as np

import mlstm
from mlstm.diagnostics import diagnose
from mlstm.diagnostics.seed import (build_example3_model, example3_custom_loss,
                                    make_example3_data)
from mlstm.optimizers import SGD, Adam
from test_diagnose import T, data, finding, model, run


def relu_model(dead_units=0, bias=-10.0):
    """Two LSTMs, concatenated, a ReLU layer of 8 units (the first ``dead_units`` with a
    large negative bias), a linear and a sigmoid head."""
    x1, x2 = mlstm.Input((T, 4), name="x1"), mlstm.Input((T, 4), name="x2")
    merged = mlstm.layers.concatenate([mlstm.LSTM(8, name="lstm_a", seed=0)(x1),
                                       mlstm.LSTM(8, name="lstm_b", seed=1)(x2)])
    hidden = mlstm.Dense(8, activation="relu", name="hidden", seed=2)(merged)
    m = mlstm.Model([x1, x2], [mlstm.Dense(1, name="out1", seed=3)(hidden),
                               mlstm.Dense(1, activation="sigmoid", name="out2", seed=4)(hidden)])
    m.compile(optimizer=Adam(3e-3), loss=["mse", "binary_crossentropy"])
    m.get_layer("hidden").params["bias"][:dead_units] = bias
    return m


# --------------------------------------------------------------------------- targets
def test_regression_targets_on_a_large_scale():
    x, y = data()
    report = run(model(), y=[y[0] * 1000 + 500, y[1]], steps=30, verify=True)
    f, = finding(report, "target_scale")
    assert f.measured["output"] == "out1" and f.measured["scale"] > 1000
    assert "Standardize the targets" in f.fix and "~" in f.message   # steps to get there
    # the verified fix: trained on standardized targets, its MSE in the targets' units falls
    v = f.verification
    assert v["verified"] and v["outputs"]["out1"]["after"] < 0.8 * v["outputs"]["out1"]["before"]
    # the large output dominates the shared weights because of its scale: one cause
    dominant, = finding(report, "dominant_output")
    assert dominant.caused_by == "target_scale"
    assert report.findings[0] is f


def test_targets_on_a_moderate_scale_are_not_a_finding():
    x, y = data()
    assert "target_scale" not in run(model(), y=[y[0] * 4, y[1]], steps=10).codes


# --------------------------------------------------------------------------- dead units
def test_dead_relu_units_and_the_fix_that_revives_them():
    report = run(relu_model(dead_units=6), steps=30, verify=True)
    f, = finding(report, "dead_relu")
    assert f.measured["dead"] == [0, 1, 2, 3, 4, 5] and f.measured["units"] == 8
    assert f.measured["dead_bias"] == -10.0
    assert f.remedy.zero_biases == {"hidden/bias": [0, 1, 2, 3, 4, 5]}
    assert f.verification is not None and "bias" in f.verification["change"]


def test_a_dead_relu_layer_explains_the_parameters_without_gradient():
    report = run(relu_model(dead_units=8), steps=10)
    dead, = finding(report, "dead_relu")
    starved, = finding(report, "no_gradient")
    assert dead.measured["fraction"] == 1.0
    assert starved.caused_by == "dead_relu" and "every unit of 'hidden'" in starved.cause_reason
    assert report.findings.index(dead) < report.findings.index(starved)


def test_a_healthy_relu_layer_is_silent():
    assert run(relu_model(dead_units=0), steps=20).codes == []


# --------------------------------------------------------------------------- gradient size
def test_a_growing_gradient_from_a_diverging_sgd():
    report = run(model(optimizer=SGD(2.0)), steps=40)
    f, = finding(report, "exploding_gradient")
    assert f.measured["growth"] > 10 and f.measured["last_fifth"] > f.measured["first_fifth"]
    assert f.caused_by == "learning_rate_too_large"
    lr, = finding(report, "learning_rate_too_large")
    assert "SGD's usual start is 0.01" in lr.fix and "Adam" not in lr.fix


def test_a_clip_below_every_gradient_norm():
    report = run(model(optimizer=SGD(0.05, clipnorm=1e-3)), steps=30, verify=True)
    f, = finding(report, "clipping_always_active")
    assert f.measured["fraction_clipped"] == 1.0 and f.measured["median_over_clip"] > 100
    small, = finding(report, "learning_rate_too_small")
    assert small.caused_by == "clipping_always_active"
    assert f.verification["verified"], f.verification["words"]


def test_a_clip_for_rare_spikes_is_silent():
    report = run(model(optimizer=Adam(3e-3, clipnorm=10.0)), steps=30)
    assert "clipping_always_active" not in report.codes and report.codes == []


# --------------------------------------------------------------------------- the loss
def test_a_loss_that_stops_at_the_constant_prediction_from_the_first_steps():
    """All-zero inputs (a preprocessing bug): the model can only learn a constant."""
    x, y = data()
    report = run(model(), x=[np.zeros_like(a) for a in x], steps=40)
    f, = finding(report, "loss_plateau")
    assert abs(f.measured["drop"]) < 0.01
    assert f.measured["loss_to"] >= 0.95 * f.measured["constant_prediction"]
    constant, = finding(report, "constant_inputs")
    assert constant.severity == "error" and constant.measured["all"]
    assert f.caused_by == "constant_inputs"
    assert finding(report, "no_gradient")[0].caused_by == "constant_inputs"


def test_one_constant_feature_is_a_warning_and_no_plateau():
    x, y = data()
    x = [x[0].copy(), x[1]]
    x[0][..., 2] = 0.0
    report = run(model(), x=x, steps=30)
    f, = finding(report, "constant_inputs")
    assert f.severity == "warning" and f.measured["constant"] == {"x1": [2]}
    assert "loss_plateau" not in report.codes


# --------------------------------------------------------------------------- switched off
def test_an_output_at_loss_weight_zero_whose_layer_another_loss_trains():
    x1, x2 = mlstm.Input((T, 4), name="x1"), mlstm.Input((T, 4), name="x2")
    merged = mlstm.layers.concatenate([mlstm.LSTM(8, name="lstm_a", seed=0)(x1),
                                       mlstm.LSTM(8, name="lstm_b", seed=1)(x2)])
    aux = mlstm.Dense(4, name="aux", seed=2)(merged)
    m = mlstm.Model([x1, x2], [mlstm.Dense(1, name="main", seed=3)(aux), aux])
    m.compile(optimizer=Adam(3e-3), loss="mse", loss_weights=[1.0, 0.0])
    x, y = data()
    report = run(m, y=[y[0], np.tile(y[1], (1, 4))], steps=20)
    f, = finding(report, "switched_off_output")
    assert f.measured["output"] == "aux" and f.measured["trained_by"] == ["main"]
    assert f.measured["update_ratio"] > 1e-4
    # an output switched off on purpose is neither "dominated" nor "reaching no sample"
    assert {"dominant_output", "low_sample_coverage"}.isdisjoint(report.codes)


def test_an_output_at_loss_weight_zero_with_an_infinite_loss_poisons_the_total():
    """MSE on float32 targets of 1e20 overflows: 0 x inf is NaN."""
    x, y = data()
    report = run(model(loss=("mse", "mse"), loss_weights=(1.0, 0.0)), y=[y[0], y[1] * 1e20],
                 steps=10, verify=True)
    f, = finding(report, "switched_off_output")
    assert f.measured["nonfinite_loss"] and "loss=None" in f.remedy.words
    nan, = finding(report, "nonfinite")
    assert nan.caused_by == "switched_off_output"
    assert f.verification["verified"], f.verification["words"]


def test_weight_decay_moves_the_weights_of_an_output_without_loss():
    report = run(model(loss=("mse", None), loss_weights=None,
                       optimizer=Adam(3e-3, weight_decay=0.1)), steps=10)
    f, = finding(report, "switched_off_output")
    assert set(f.measured["moved"]) == {"out2/kernel"} and f.measured["weight_decay"] == 0.1
    starved, = finding(report, "no_gradient")          # by the user's choice: a warning
    assert starved.severity == "warning" and starved.measured["switched_off_only"]


def test_an_output_without_loss_and_no_weight_decay_is_silent():
    report = run(model(loss=("mse", None), loss_weights=None), steps=10)
    assert "switched_off_output" not in report.codes


# --------------------------------------------------------------------------- Example 3
def example3(loss, loss_weights=None):
    m = build_example3_model(timesteps=6, features=(4, 4), units=8, seed=0)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)         # a plain-function loss
        m.compile(optimizer=Adam(3e-3), loss=loss, loss_weights=loss_weights)
    d = make_example3_data(samples=128, timesteps=6, features=(4, 4), seed=0)
    v = make_example3_data(samples=64, timesteps=6, features=(4, 4), seed=1)
    return m, [d["x1"], d["x2"]], [d["y1"], d["y2"]], ([v["x1"], v["x2"]], [v["y1"], v["y2"]])


def test_the_seeds_example_3_reshape_head_with_a_custom_loss_on_y_true_0():
    m, x, y, val = example3(example3_custom_loss)
    assert m.outputs[1].shape == (2, 2)
    report = diagnose(m, x, y, steps=80, validation_data=val, verify=True)
    found = finding(report, "low_sample_coverage")
    assert sorted(f.measured["output"] for f in found) == ["out1", "out2"]
    for f in found:
        assert f.measured["reached"] == 2 and f.measured["batch"] == 32
        assert "compile(loss=['mse', 'mse']" in f.fix
        v = f.verification
        assert v["verified"] and v["on"] == "validation data", v["words"]


def test_the_seeds_example_3_with_one_loss_per_output_is_silent():
    m, x, y, val = example3(["mse", "mse"], [0.6, 0.4])
    report = diagnose(m, x, y, steps=80, validation_data=val, verify=True)
    assert report.codes == [], str(report)
    assert report.summary["coverage"]["out2"]["reached"] == 32
