"""mlstm.diagnose: each finding from a setup built to have that fault; none on sound setups.

Every faulty setup below is the demo graph (two LSTMs, concatenate, a linear and a sigmoid
head) with one thing broken. The sound setups are the demo (``python -m mlstm demo``'s
configuration) and the seed scenario's sound setup.
"""
import json
import sys
import time
import warnings

import numpy as np
import pytest

import mlstm
from mlstm.demo import build_demo_model
from mlstm.data import make_demo_data
from mlstm.diagnostics import FINDING_CODES, THRESHOLDS, DiagnosisReport, diagnose
from mlstm.diagnostics.cli import load_arrays
from mlstm.diagnostics.cli import main as cli_main
from mlstm.diagnostics.seed import seed_custom_loss
from mlstm.optimizers import SGD, Adam

T = 8


def data(n=128, timesteps=T, seed=0):
    d = make_demo_data(n_samples=n, timesteps=timesteps, features=(4, 4), seed=seed)
    return [d["x1"], d["x2"]], [d["y1"], d["y2"]]


def model(loss=("mse", "binary_crossentropy"), loss_weights=(0.7, 0.3), optimizer=None,
          timesteps=T):
    m = build_demo_model(timesteps=timesteps, features=(4, 4), units=8, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)     # plain-function loss
        m.compile(optimizer=optimizer or Adam(3e-3),
                  loss=list(loss) if isinstance(loss, tuple) else loss,
                  loss_weights=None if loss_weights is None else list(loss_weights))
    return m


def run(m, x=None, y=None, steps=20, **kw):
    dx, dy = data()
    report = diagnose(m, dx if x is None else x, dy if y is None else y, steps=steps, **kw)
    assert isinstance(report, DiagnosisReport)
    json.dumps(report.to_dict(), allow_nan=False)       # plain JSON, always
    text = str(report)
    for f in report.findings:
        assert f.code in FINDING_CODES and f.fix and f.message in text and f.measured
    return report


def finding(report, code):
    matches = [f for f in report.findings if f.code == code]
    assert matches, f"{code} not reported; got {report.codes}\n{report}"
    return matches


# --------------------------------------------------------------------------- sound setups
def test_the_demo_raises_no_finding():
    """``python -m mlstm demo``'s setup (T=20, 8 features, LSTM(16), Adam 3e-3, [0.7, 0.3])."""
    d = make_demo_data(n_samples=256, timesteps=20, features=(8, 8), seed=0)
    m = build_demo_model(seed=0)
    m.compile(optimizer=Adam(3e-3), loss=["mse", "binary_crossentropy"], loss_weights=[0.7, 0.3])
    report = diagnose(m, [d["x1"], d["x2"]], [d["y1"], d["y2"]], steps=60)
    assert report.findings == [], str(report)
    assert "Findings: none" in str(report)
    assert report.summary["loss_after"]["loss"] < report.summary["loss_before"]["loss"]


def test_the_small_sound_setup_raises_no_finding_and_the_model_is_left_alone():
    m = model()
    weights = [w.copy() for w in m.get_weights()]
    report = run(m, steps=40)
    assert report.findings == [], str(report)
    for before, after in zip(weights, m.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert m.optimizer.iterations == 0
    assert report.trained_model is not m and report.trained_model.optimizer.iterations == 40
    assert len(report.trace) == 40


# --------------------------------------------------------------------------- one fault each
def test_low_sample_coverage_of_the_seed_custom_loss():
    report = run(model(loss=seed_custom_loss, loss_weights=None))
    found = finding(report, "low_sample_coverage")
    assert sorted(f.measured["output"] for f in found) == ["out1", "out2"]
    for f in found:
        assert f.severity == "error"
        assert f.measured["reached"] <= 2 and f.measured["batch"] == 32
        assert f.measured["run_mean_fraction"] <= 2 / 32
        assert "y_true[0] is the first *sample*" in f.fix
    assert "1 of 32" in str(report) or "2 of 32" in str(report)


def test_no_gradient_names_the_parameters_of_an_output_without_a_loss():
    f, = finding(run(model(loss=("mse", None), loss_weights=None)), "no_gradient")
    assert f.measured["parameters"] == ["out2/kernel", "out2/bias"]


def test_nonfinite_weights():
    m = model()
    m.get_layer("out1").params["kernel"][0, 0] = np.nan
    f, = finding(run(m, steps=5), "nonfinite")
    assert any("out1/kernel" in w for w in f.measured["where"])


def test_nonfinite_inputs_are_reported_not_raised():
    x, y = data()
    x[0][3, 2, 1] = np.nan
    report = run(model(), x=x)
    f, = finding(report, "nonfinite")
    assert f.measured["where"] == ["input 'x1': 1 values"]
    assert report.stopped and "NaN" in report.stopped


def test_nonfinite_training_step_from_a_huge_learning_rate():
    report = run(model(optimizer=SGD(10.0)))
    f, = finding(report, "nonfinite")
    assert any("stopped there" in w for w in f.measured["where"])
    finding(report, "learning_rate_too_large")


def test_bce_targets_outside_zero_one():
    x, y = data()
    y[1] = y[1] * 3.0 - 1.0                       # labels -1 and 2
    refused = run(model(), y=y)                   # BCE refuses them by default: data only
    f, = finding(refused, "bce_targets")
    assert f.measured["fraction_outside"] == 1.0 and f.measured["min"] == -1.0
    tolerant = model(loss=("mse", mlstm.losses.BinaryCrossentropy(invalid_targets="ignore")))
    finding(run(tolerant, y=y), "bce_targets")


def test_learning_rate_too_large():
    f, = finding(run(model(optimizer=Adam(1.0))), "learning_rate_too_large")
    assert f.measured["median_update_ratio"] > THRESHOLDS["lr_large_ratio"]


def test_learning_rate_too_small():
    report = run(model(optimizer=Adam(1e-7)))
    f, = finding(report, "learning_rate_too_small")
    assert f.measured["median_update_ratio"] < 1e-5
    assert "not_moving" not in report.codes        # one finding for the cause, not ten


def test_a_learning_rate_of_zero_is_named_and_does_not_crash():
    """Adam(0.0): every update is 0, so the median update ratio is 0 (it used to divide by it)."""
    for optimizer, usual in ((Adam(0.0), "Adam's usual start is 0.001"),
                             (SGD(0.0), "SGD's usual start is 0.01")):
        report = run(model(optimizer=optimizer), steps=5)
        f, = finding(report, "learning_rate_too_small")
        assert f.measured["median_update_ratio"] == 0 and f.measured["learning_rate"] == 0
        assert "the learning rate is 0" in f.message and usual in f.fix
        assert report.codes == ["learning_rate_too_small"]


def test_a_dead_relu_layer_before_the_heads_is_no_gradient_not_a_learning_rate():
    x1, x2 = mlstm.Input((T, 4), name="x1"), mlstm.Input((T, 4), name="x2")
    merged = mlstm.layers.concatenate([mlstm.LSTM(8, name="lstm_a", seed=0)(x1),
                                       mlstm.LSTM(8, name="lstm_b", seed=1)(x2)])
    hidden = mlstm.Dense(6, activation="relu", name="dead", seed=2)(merged)
    m = mlstm.Model([x1, x2], [mlstm.Dense(1, name="out1", seed=3)(hidden),
                               mlstm.Dense(1, activation="sigmoid", name="out2", seed=4)(hidden)])
    m.compile(optimizer=Adam(1e-3), loss=["mse", "binary_crossentropy"])
    m.get_layer("dead").params["bias"][:] = -10.0
    report = run(m, steps=5)
    f, = finding(report, "no_gradient")
    assert {"lstm_a/kernel", "dead/kernel", "out1/kernel"} <= set(f.measured["parameters"])
    assert "ReLU" in f.fix
    assert not {"learning_rate_too_small", "not_moving"} & set(report.codes)


def test_nothing_trainable():
    m = model()
    for layer in m.layers:
        layer.trainable = False
    f, = finding(run(m, steps=3), "nothing_trainable")
    assert "lstm_a/kernel" in f.measured["frozen"]


def test_not_moving_parameters_of_a_negligible_loss_weight():
    report = run(model(loss_weights=(1.0, 1e-12)))
    f, = finding(report, "not_moving")
    assert set(f.measured["parameters"]) >= {"out2/kernel"}
    assert "lstm_a/kernel" not in f.measured["parameters"]


def test_dominant_output():
    f, = finding(run(model(loss_weights=(1.0, 1e-3))), "dominant_output")
    assert f.measured["dominant"] == "out1" and f.measured["shares"]["out1"] > 0.98


def test_conflicting_outputs_with_opposite_targets_on_a_shared_head():
    x = mlstm.Input((T, 4), name="x")
    shared = mlstm.Dense(1, name="shared")(mlstm.LSTM(8, name="lstm")(x))
    out1 = mlstm.Activation("linear", name="out1")(shared)
    out2 = mlstm.Activation("linear", name="out2")(shared)
    m = mlstm.Model(x, [out1, out2])
    m.compile(optimizer=Adam(3e-3), loss="mse")
    dx, dy = data()
    f, = finding(run(m, x=dx[0], y=[dy[0], -dy[0]]), "conflicting_outputs")
    assert f.measured["cosine"] < -0.9


def test_saturated_sigmoid_head():
    m = model(loss="mse", loss_weights=None)
    m.get_layer("out2").params["bias"][:] = 20.0
    f, = finding(run(m), "saturated_head")
    assert f.measured["fraction"] == 1.0
    assert {"mse_on_sigmoid", "no_gradient"} <= set(run(m).codes)   # σ'(20) is 0 in float32


def test_saturated_gates_from_unscaled_inputs():
    x, y = data()
    report = run(model(), x=[x[0] * 30.0, x[1]])
    f, = finding(report, "saturated_gates")
    assert f.measured["lstm"] == "lstm_a" and max(f.measured["fractions"].values()) > 0.25
    finding(report, "input_scale")


def test_vanishing_gradient_through_a_long_sequence():
    x, y = data(n=32, timesteps=80)
    report = run(model(timesteps=80), x=x, y=y, steps=4)
    found = finding(report, "vanishing_gradient")
    assert {f.measured["lstm"] for f in found} == {"lstm_a", "lstm_b"}
    assert all(f.measured["ratio"] < 1e-6 and f.measured["steps"] == 80 for f in found)


def test_input_scale():
    x, y = data()
    x[1] = x[1].copy()
    x[1][..., 0] *= 1e-3                       # one feature recorded in other units
    report = run(model(), x=x)
    f, = finding(report, "input_scale")
    assert f.measured["smallest"] == "x2[0]" and f.measured["ratio"] > 100
    assert report.codes == ["input_scale"]


def test_mse_on_sigmoid_head():
    report = run(model(loss="mse", loss_weights=None))
    f, = finding(report, "mse_on_sigmoid")
    assert 0 < f.measured["mean_p_1_minus_p"] <= 0.25
    assert report.codes == ["mse_on_sigmoid"]


def test_every_finding_code_has_a_test():
    """Each code is asserted as ``finding(report, "<code>")`` in one of the diagnose tests
    (this file, test_diagnose_findings.py, test_diagnose_classification.py)."""
    from pathlib import Path
    source = "".join(p.read_text() for p in Path(__file__).parent.glob("test_diagnose*.py"))
    for code in FINDING_CODES:
        assert f'"{code}")' in source, code


# --------------------------------------------------------------------------- options
def test_thresholds_can_be_overridden_and_unknown_ones_are_refused():
    report = run(model(), thresholds={"input_scale_ratio": 1.0})
    assert "input_scale" in report.codes
    with pytest.raises(ValueError, match="unknown thresholds"):
        diagnose(model(), *data(), thresholds={"not_a_threshold": 1})
    with pytest.raises(RuntimeError, match="compile"):
        diagnose(build_demo_model(timesteps=T, features=(4, 4), units=8), *data())


def test_steps_zero_measures_only_the_model_as_it_is():
    report = run(model(), steps=0)
    assert report.trace is None and report.trained_model is None
    assert "Updates" not in str(report)
    assert report.summary["coverage"]["out1"]["reached"] == 32


# --------------------------------------------------------------------------- plots
def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = run(model(), steps=10).plot(tmp_path / "report.png")
    with open(path, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


def test_without_matplotlib_the_message_says_what_to_install(monkeypatch, tmp_path, capsys):
    report = run(model(), steps=2)
    monkeypatch.setitem(sys.modules, "matplotlib", None)      # import matplotlib fails
    with pytest.raises(ImportError, match=r"pip install 'mlstm\[plot\]'"):
        report.plot(tmp_path / "x.png")
    assert cli_main(["--plot", str(tmp_path / "x.png")]) == 2
    assert "matplotlib" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


# --------------------------------------------------------------------------- command line
def test_the_seed_scenario_command_explains_example_2(tmp_path, capsys):
    """The command's default: the three setups, each finding's fix tried by retraining."""
    t0 = time.perf_counter()
    code = cli_main(["--plot", str(tmp_path / "seed.png"), "--json", str(tmp_path / "s.json")])
    seconds = time.perf_counter() - t0
    out = capsys.readouterr().out
    assert code == 0
    assert seconds < 60, f"the seed scenario took {seconds:.0f} s"
    assert "Why Example 2 barely learns" in out and "y_true[0]" in out
    assert "their fixes tried by retraining" in out
    with open(tmp_path / "s.json") as fh:
        results = json.load(fh)
    ex1, ex2, sound = (results[k] for k in ("example1", "example2", "sound"))
    codes = {k: [f["code"] for f in r["report"]["findings"]] for k, r in results.items()}
    assert codes["sound"] == []
    assert codes["example2"].count("low_sample_coverage") == 2
    assert codes["example1"] == ["mse_on_sigmoid"]
    # Example 2 barely learns; Example 1 learns about as well as the sound setup.
    variance = ex2["metrics"]["out1_target_variance"]
    assert ex2["metrics"]["out1_mse"] > 0.8 * variance
    assert sound["metrics"]["out1_mse"] < 0.3 * variance
    assert ex1["metrics"]["out1_mse"] < 1.2 * sound["metrics"]["out1_mse"]
    assert ex2["metrics"]["out2_accuracy"] < sound["metrics"]["out2_accuracy"] - 0.2
    # Example 2's fix (one built-in loss per output) is tried and verified on the validation
    # data: both outputs end far lower than with the custom loss
    for f in ex2["report"]["findings"]:
        v = f["verification"]
        assert v["verified"] and v["on"] == "validation data", v
        assert v["outputs"]["out1"]["after"] < 0.5 * v["outputs"]["out1"]["before"]
    assert "verified: retrained from the same weights for 240 steps" in out
    # Example 1's finding has its fix tried too (verified or not, with the figures)
    assert ex1["report"]["findings"][0]["verification"]["outputs"]["out2"]["loss"] == \
        "binary_crossentropy"
    assert 10_000 < (tmp_path / "seed.png").stat().st_size < 400_000


def test_load_arrays_by_name_by_position_and_single(tmp_path):
    a, b, c = np.zeros((2, 3, 1)), np.ones((2, 3, 2)), np.full((2, 1), 0.5)
    np.savez(tmp_path / "named.npz", x1=a, x2=b, out1=c, out2=c)
    xs, ys = load_arrays(tmp_path / "named.npz", ["x1", "x2"], ["out1", "out2"])
    assert [v.shape for v in xs] == [(2, 3, 1), (2, 3, 2)] and len(ys) == 2
    np.savez(tmp_path / "numbered.npz", x0=a, x1=b, y0=c, y1=c)
    xs, _ = load_arrays(tmp_path / "numbered.npz", ["in_a", "in_b"], ["o1", "o2"])
    np.testing.assert_array_equal(xs[1], b)
    np.savez(tmp_path / "single.npz", x=a, y=c)
    xs, ys = load_arrays(tmp_path / "single.npz", ["anything"], ["out"])
    assert xs[0].shape == (2, 3, 1)
    with pytest.raises(ValueError, match="no targets found"):
        load_arrays(tmp_path / "single.npz", ["a"], ["o1", "o2"])


def test_the_command_wants_both_model_and_data(capsys):
    assert cli_main(["model.keras"]) == 2
    assert "DATA.npz" in capsys.readouterr().err


@pytest.mark.keras
def test_the_command_diagnoses_a_saved_keras_model(tmp_path, capsys):
    import keras

    k1 = keras.Input((T, 4), name="x1")
    k2 = keras.Input((T, 4), name="x2")
    merged = keras.layers.Concatenate(name="merged")(
        [keras.layers.LSTM(8, name="lstm_a")(k1), keras.layers.LSTM(8, name="lstm_b")(k2)])
    out1 = keras.layers.Dense(1, name="out1")(merged)
    out2 = keras.layers.Dense(1, activation="sigmoid", name="out2")(merged)
    kmodel = keras.Model([k1, k2], [out1, out2])
    kmodel.compile(optimizer=keras.optimizers.Adam(1e-7), loss=["mse", "binary_crossentropy"],
                   loss_weights=[0.7, 0.3])
    kmodel.save(tmp_path / "model.keras")
    x, y = data()
    np.savez(tmp_path / "data.npz", x1=x[0], x2=x[1], out1=y[0], out2=y[1])
    code = cli_main([str(tmp_path / "model.keras"), str(tmp_path / "data.npz"),
                     "--steps", "10", "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert code == 0, out                          # warnings only
    assert "Diagnosis of model" in out and "learning_rate_too_small" in out
    with open(tmp_path / "r.json") as fh:
        report = json.load(fh)
    assert report["summary"]["coverage"]["out2"]["reached"] == 32
