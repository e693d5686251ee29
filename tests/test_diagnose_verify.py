"""Fixes tried before they are advised (``verify=True``), causes ranked from what was
measured, advice that fits the optimizer and the case, and the picture.

The verification retrains a copy from the same weights with the fix for the same steps
and seed; these tests check its figures against runs made here by hand, not against the
report's own prediction.
"""
import numpy as np
import pytest

from mlstm.data import make_demo_data
from mlstm.demo import build_demo_model
from mlstm.diagnostics import diagnose
from mlstm.diagnostics.plotting import report_panels
from mlstm.optimizers import SGD, Adam
from test_diagnose import T, data, finding, model, run


def demo(loss_weights=(1.0, 1e-4), lr=1e-3, n=512, seed=0, timesteps=10):
    d = make_demo_data(n_samples=n, timesteps=timesteps, features=(8, 8), seed=seed)
    v = make_demo_data(n_samples=256, timesteps=timesteps, features=(8, 8), seed=seed + 1)
    m = build_demo_model(timesteps=timesteps, features=(8, 8), units=16, seed=0)
    m.compile(optimizer=Adam(lr), loss=["mse", "binary_crossentropy"],
              loss_weights=list(loss_weights))
    return m, [d["x1"], d["x2"]], [d["y1"], d["y2"]], ([v["x1"], v["x2"]], [v["y1"], v["y2"]])


def test_a_neglected_output_the_suggested_weights_and_their_verified_fix():
    """Acceptance: out2 at loss weight 1e-4. The suggested weights are tried from the same
    weights for the same steps: out2's validation loss falls, and the report shows both the
    suggestion and the verification."""
    m, x, y, val = demo()
    report = diagnose(m, x, y, steps=160, validation_data=val, verify=True)
    f, = finding(report, "dominant_output")
    v = f.verification
    assert f.remedy.loss_weights == report.suggested_loss_weights
    assert v["outputs"]["out2"]["targeted"] and not v["outputs"]["out1"]["targeted"]
    assert v["verified"] and v["on"] == "validation data", v["words"]
    assert v["outputs"]["out2"]["after"] < 0.95 * v["outputs"]["out2"]["before"]
    # the same figures by hand: train a copy with the suggested weights, evaluate on val
    twin = m.clone()
    twin.compile(optimizer=Adam(1e-3), loss=["mse", "binary_crossentropy"],
                 loss_weights=report.suggested_loss_weights)
    twin.fit(x, y, epochs=10, batch_size=32, seed=0, verbose=0)          # 16 x 10 = 160
    by_hand = twin.evaluate(*val, return_dict=True)
    assert v["outputs"]["out2"]["after"] == pytest.approx(by_hand["out2_loss"], rel=1e-6)
    before = report.trained_model.evaluate(*val, return_dict=True)
    assert v["outputs"]["out2"]["before"] == pytest.approx(before["out2_loss"], rel=1e-6)
    text = str(report)
    assert "Suggested loss weights" in text and "loss_weights={'out1'" in text
    assert "verified: retrained from the same weights for 160 steps" in text


def test_without_verify_the_advice_is_labelled_not_verified():
    report = run(model(optimizer=Adam(1.0)), steps=20)
    for f in report.findings:
        assert f.verification is None
        assert "not verified" in f.verification_words() or f.caused_by
    assert "advice not verified: retraining was not run" in str(report)


def test_steps_zero_cannot_verify_and_says_so():
    report = run(model(optimizer=Adam(1.0)), steps=0, verify=True,
                 thresholds={"input_scale_ratio": 1.0})
    f, = finding(report, "input_scale")
    assert not f.verification["verified"] and "steps=0" in f.verification["words"]


def test_verify_must_be_a_bool():
    with pytest.raises(TypeError, match="verify"):
        diagnose(model(), *data(), verify="yes")


def test_a_huge_learning_rate_is_the_cause_of_the_saturated_gates_not_the_inputs():
    """Adam(1.0) on standardized inputs: the gates saturate during training. The report
    names the learning rate as the cause, and does not tell to standardize the inputs."""
    report = run(model(optimizer=Adam(1.0)), steps=60, verify=True)
    lr, = finding(report, "learning_rate_too_large")
    assert report.findings[0] is lr
    gates = finding(report, "saturated_gates")
    for f in gates:
        assert f.caused_by == "learning_rate_too_large"
        assert "during training" in f.cause_reason
        assert "Standardize" not in f.fix and "lower the learning rate" in f.fix
    assert "input_scale" not in report.codes
    assert lr.verification["verified"], lr.verification["words"]
    assert "Adam's usual start is 0.001; usually 0.0001 to 0.003" in lr.fix
    assert "explains: saturated_gates (lstm_a)" in str(report)


def test_inputs_recorded_in_other_units_cause_the_saturated_gates():
    x, y = data()
    report = run(model(), x=[x[0] * 1000, x[1]], steps=30, verify=True)
    scale, = finding(report, "input_scale")
    gates, = finding(report, "saturated_gates")
    assert report.findings[0] is scale
    assert gates.caused_by == "input_scale" and "'x1'" in gates.cause_reason
    assert "Standardize the inputs 'lstm_a' reads" in gates.fix
    assert scale.verification["verified"], scale.verification["words"]


def test_sgd_gets_sgd_advice():
    report = run(model(optimizer=SGD(1e-5)), steps=20)
    f, = finding(report, "learning_rate_too_small")
    assert "SGD's usual start is 0.01; usually 0.001 to 0.1" in f.fix
    assert "Adam" not in f.fix
    assert f.remedy.optimizer["learning_rate"] <= 0.1          # inside SGD's range


def test_a_long_subsampled_series_is_not_told_to_shorten_or_subsample():
    """120 steps: the gradient vanishes through time. The advice says how far back the
    LSTM learns (measured) and what to do if earlier steps matter, not 'subsample'."""
    x, y = data(n=32, timesteps=120)
    report = run(model(timesteps=120), x=x, y=y, steps=3)
    for f in finding(report, "vanishing_gradient"):
        assert "Shorten or subsample" not in f.fix
        assert f"about its last {f.measured['horizon']} of 120 steps" in f.fix
        assert "if the series is not subsampled already" in f.fix
        assert 0 < f.measured["horizon"] < 120


def test_the_plot_puts_the_findings_first_and_leaves_out_what_has_nothing_to_say(tmp_path):
    pytest.importorskip("matplotlib")
    x, y = data()
    report = run(model(), x=[x[0] * 1000, x[1]], steps=30, verify=True)
    titles = [title for title, _ in report_panels(report)]
    assert titles[0].startswith("Inputs on very different scales")
    assert titles[1].startswith("The fix, tried (verified): every input feature standardized")
    assert any(t.startswith("LSTM 'lstm_a' has saturated gates") for t in titles)
    assert not any("Samples each output" in t for t in titles)    # every sample reached
    sound = run(model(), steps=30)
    sound_titles = [t for t, _ in report_panels(sound)]
    assert sound_titles[0].startswith("Each output's loss")
    assert not any("aturated" in t or "Samples" in t or "Scale" in t for t in sound_titles)
    assert any("healthy" in t or "How fast" in t for t in sound_titles)
    path = report.plot(tmp_path / "scale.png")
    with open(path, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "scale.png").stat().st_size < 150_000


def test_the_healthy_band_is_labelled_in_words(tmp_path):
    plt = pytest.importorskip("matplotlib.pyplot")
    report = run(model(), steps=20)
    panel = dict((t, p) for t, p in report_panels(report))["How fast each weight matrix moves"]
    fig, ax = plt.subplots()
    panel.draw(ax, plt.rcParams["axes.prop_cycle"].by_key()["color"])
    labels = ax.get_legend_handles_labels()[1]
    plt.close(fig)
    assert "healthy: 0.01% to 3% per step" in labels


def test_every_diagnose_figure_is_shown_and_drawn_on_the_page():
    """docs/figures/diagnose_*.png: each is shown in docs/diagnose.md, next to the command or
    the code that draws it (tests/test_site.py leaves them to this page)."""
    from pathlib import Path
    docs = Path(__file__).resolve().parents[1] / "docs"
    page = (docs / "diagnose.md").read_text()
    figures = sorted(p.name for p in (docs / "figures").glob("diagnose_*.png"))
    assert len(figures) >= 6
    for name in figures:
        assert f"](figures/{name})" in page, name
        assert f'"docs/figures/{name}"' in page or f"--plot docs/figures/{name}" in page, name
        assert (docs / "figures" / name).stat().st_size < 150_000
