"""Suggested loss weights (``report.suggested_loss_weights``): each output the same share of
the gradient norm on the shared weights, or a chosen share; and what reweighting cannot fix.

The shares are checked by recomputing the per-output contributions
(:func:`mlstm.measure.gradients.gradient_contributions`) on a model compiled with the
suggested weights, not by reading the suggestion's own prediction.
"""
import numpy as np
import pytest

import mlstm
from mlstm.data import make_demo_data
from mlstm.demo import build_demo_model
from mlstm.diagnostics import diagnose
from mlstm.measure.gradients import gradient_contributions, shared_parameters
from mlstm.optimizers import Adam

T = 8


def data(n=128, seed=0):
    d = make_demo_data(n_samples=n, timesteps=T, features=(4, 4), seed=seed)
    return [d["x1"], d["x2"]], [d["y1"], d["y2"]]


def demo_model(loss_weights):
    m = build_demo_model(timesteps=T, features=(4, 4), units=8, seed=0)
    m.compile(optimizer=Adam(3e-3), loss=["mse", "binary_crossentropy"],
              loss_weights=list(loss_weights))
    return m


def measured_shares(model, loss_weights, x, y):
    """Each output's share of the gradient norm on the shared weights, recomputed on a copy
    compiled with ``loss_weights`` (a dict by output name or a list)."""
    twin = model.clone()
    twin.compile(optimizer=Adam(3e-3), loss=list(model._losses), loss_weights=loss_weights)
    shared = shared_parameters(twin)
    contributions = gradient_contributions(twin, x, y)
    norms = {o: np.sqrt(sum(np.sum(np.square(g[p], dtype=np.float64)) for p in shared))
             for o, g in contributions.items()}
    total = sum(norms.values())
    return {o: float(v / total) for o, v in norms.items()}


def test_a_neglected_output_gets_its_share_back_within_2x():
    """out2 at loss weight 1e-4: its share of the shared gradient is ~0; the suggested
    weights bring both within 2x of each other, measured on other data than the batch
    the suggestion came from."""
    x, y = data()
    m = demo_model([1.0, 1e-4])
    report = diagnose(m, x, y, steps=10)
    weights = report.suggested_loss_weights
    assert set(weights) == {"out1", "out2"}
    assert sum(weights.values()) == pytest.approx(1.0 + 1e-4)   # the same total
    x_other, y_other = data(n=256, seed=7)
    before = measured_shares(m, [1.0, 1e-4], x_other, y_other)
    after = measured_shares(m, weights, x_other, y_other)
    assert max(before.values()) / min(before.values()) > 1000, before
    assert max(after.values()) / min(after.values()) < 2.0, (weights, after)
    text = str(report)
    section = text[text.index("Suggested loss weights"):text.index("Findings")]
    assert "share now -> after" in section and "50.00%" in section
    assert f"{weights['out2']:.3g}" in section
    # the dominant_output finding points to the suggestion
    f, = [f for f in report.findings if f.code == "dominant_output"]
    assert "suggested above" in f.fix


def test_the_predicted_shares_are_exact_at_the_measured_weights():
    """On the very batch diagnose measured (the whole data: batch_size >= N), the shares at
    the suggested weights are the prediction, to rounding."""
    x, y = data(n=48)
    m = demo_model([1.0, 1e-4])
    suggestion = diagnose(m, x, y, steps=0, batch_size=64).loss_weight_suggestion
    recomputed = measured_shares(m, suggestion.weights, x, y)
    for o in ("out1", "out2"):
        assert recomputed[o] == pytest.approx(suggestion.shares_after[o], abs=1e-6)
        assert suggestion.shares_after[o] == pytest.approx(0.5, abs=1e-12)


def test_a_chosen_target_share_in_diagnose_and_on_the_report():
    x, y = data(n=48)
    m = demo_model([0.7, 0.3])
    report = diagnose(m, x, y, steps=0, batch_size=64, target_shares={"out1": 1, "out2": 3})
    recomputed = measured_shares(m, report.suggested_loss_weights, x, y)
    assert recomputed["out1"] == pytest.approx(0.25, abs=1e-6)
    assert "each output the target share" in str(report) and "25.00%" in str(report)
    other = report.suggest_loss_weights([0.9, 0.1])
    assert measured_shares(m, other.weights, x, y)["out1"] == pytest.approx(0.9, abs=1e-6)
    assert report.suggested_loss_weights != other.weights      # the report's stays


def test_an_output_at_loss_weight_zero_gets_a_weight():
    """Its contribution is 0, so its unweighted gradient is measured on its own."""
    x, y = data(n=48)
    m = demo_model([1.0, 0.0])
    report = diagnose(m, x, y, steps=0, batch_size=64)
    weights = report.suggested_loss_weights
    assert weights["out2"] > 0 and sum(weights.values()) == pytest.approx(1.0)
    shares = measured_shares(m, weights, x, y)
    assert shares["out2"] == pytest.approx(0.5, abs=1e-6)


def test_a_conflict_is_not_something_reweighting_fixes():
    """Two outputs read the same unit with opposite targets: cosine near -1."""
    x = mlstm.Input((T, 4), name="x")
    shared = mlstm.Dense(1, name="shared", seed=1)(mlstm.LSTM(8, name="lstm", seed=0)(x))
    m = mlstm.Model(x, [mlstm.Activation("linear", name="out1")(shared),
                        mlstm.Activation("linear", name="out2")(shared)])
    m.compile(optimizer=Adam(3e-3), loss="mse", loss_weights=[1.0, 0.01])
    dx, dy = data()
    report = diagnose(m, dx[0], [dy[0], -dy[0]], steps=5)
    suggestion = report.loss_weight_suggestion
    assert suggestion.conflicts["out1|out2"] < -0.9
    text = str(report)
    assert "pull the shared weights in opposite directions" in text
    assert "cannot fix a conflict" in text
    assert "conflicting_outputs" in report.codes


def test_an_output_that_sends_no_gradient_to_the_shared_weights_keeps_its_weight():
    """out2 sits behind a dead ReLU layer of its own: no weight can give it a share."""
    x = mlstm.Input((T, 4), name="x")
    h = mlstm.LSTM(6, name="lstm", seed=0)(x)
    out1 = mlstm.Dense(1, name="out1", seed=1)(h)
    dead = mlstm.Dense(3, activation="relu", name="dead", seed=2)(h)
    out2 = mlstm.Dense(1, name="out2", seed=3)(dead)
    m = mlstm.Model(x, [out1, out2])
    m.compile(optimizer=Adam(1e-3), loss="mse", loss_weights=[1.0, 0.5])
    m.get_layer("dead").params["bias"][:] = -10.0
    dx, dy = data(n=48)
    suggestion = diagnose(m, dx[0], [dy[0], dy[0]], steps=0).loss_weight_suggestion
    assert suggestion.unreachable == ["out2"]
    assert suggestion.weights == {"out1": 1.0, "out2": 0.5}
    assert "'out2' sends no gradient to the shared weights" in str(suggestion)


def test_no_suggestion_without_shared_weights_or_with_one_output():
    x1, x2 = mlstm.Input((T, 4), name="x1"), mlstm.Input((T, 4), name="x2")
    separate = mlstm.Model([x1, x2], [mlstm.Dense(1, name="out1")(mlstm.LSTM(4)(x1)),
                                      mlstm.Dense(1, name="out2")(mlstm.LSTM(4)(x2))])
    separate.compile(optimizer="adam", loss="mse")
    x, y = data(n=40)
    report = diagnose(separate, x, y, steps=0)
    assert report.suggested_loss_weights is None
    assert "Suggested loss weights" not in str(report)
    assert report.to_dict()["suggested_loss_weights"] is None
