"""Gradient through time of a Bidirectional: one track per direction (the hook
``time_step_grads`` returns them per direction), the backward one flagged as running from
the last time step to the first, drawn in the inputs' time order."""
from __future__ import annotations

import numpy as np
import pytest

import mlstm
from mlstm import LSTM, Dense, Input, Model
from mlstm.layers import Bidirectional
from mlstm.measure import gradients as G


def _model(H: int = 3, T: int = 7) -> tuple[Model, np.ndarray, np.ndarray]:
    x = Input((T, 2), name="x", dtype="float64")
    h = Bidirectional(LSTM(H, name="lstm", seed=4), seed=5, name="bi")(x)     # (N, 2H)
    y = Dense(1, name="head", seed=6)(h)
    model = Model(x, y)
    model.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(0)
    return model, rng.normal(size=(5, T, 2)), rng.normal(size=(5, 1))


def test_each_direction_is_its_own_track_and_starts_where_the_head_sends_gradient():
    model, x, y = _model()
    bi = model.get_layer("bi")
    assert bi.time_step_directions() == {"forward": False, "backward": True}
    assert G.time_step_reversed(model) == {"bi forward": False, "bi backward": True}
    through = G.gradient_through_time(model, x, y)["head"]
    assert set(through) == {"bi forward", "bi backward"}
    tape, result = G.forward_with_loss(model, x, y)
    d_merged = result.d_outputs[0] @ model.get_layer("head").params["kernel"].T   # (N, 2H)
    H = 3
    # concat: [forward | backward]; each direction's last processed step gets its half
    for j, direction in enumerate(("forward", "backward")):
        norms = through[f"bi {direction}"]
        assert norms.shape == (7,)
        np.testing.assert_allclose(norms[-1], np.linalg.norm(d_merged[:, j * H:(j + 1) * H]),
                                   rtol=1e-12)
        assert np.all(norms[:-1] > 0)
    # the tracks are the wrapped layers' own dL/dh, not a mix of both
    extras = {}
    model.backward(tape, result.d_outputs, result.d_logits, extras=extras)
    grads = bi.time_step_grads(extras["bi"])
    np.testing.assert_array_equal(np.linalg.norm(grads["backward"], axis=(1, 2)),
                                  through["bi backward"])
    np.testing.assert_array_equal(grads["backward"], extras["bi"]["backward"]["d_h_steps"])


def test_a_direction_the_pass_does_not_reach_is_left_out():
    model, _, _ = _model()
    bi = model.get_layer("bi")
    assert bi.time_step_grads({}) is None


def test_diagnose_reports_both_directions_and_says_which_runs_backwards():
    model, x, y = _model()
    report = mlstm.diagnose(model, x, y, steps=3, batch_size=5)
    assert set(report.summary["through_time"]) == {"bi forward", "bi backward"}
    assert report.static["through_time_reversed"] == {"bi forward": False, "bi backward": True}
    text = str(report)
    assert "bi backward (runs from the last time step to the first):" in text
    assert "bi forward:" in text


def test_the_panel_draws_the_backward_direction_in_time_order(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mlstm.diagnostics.panels import through_time_panel

    model, x, y = _model()
    report = mlstm.diagnose(model, x, y, steps=3, batch_size=5,
                            thresholds={"vanishing_ratio": 1e6})   # a finding: the panel shows
    assert "vanishing_gradient" in report.codes
    panel = through_time_panel(report)
    fig, ax = plt.subplots()
    panel.draw(ax, [f"C{k}" for k in range(10)])
    lines = {line.get_label(): line for line in ax.get_lines() if "bi" in line.get_label()}
    back = lines["bi backward (runs T-1 -> 0, drawn in time order) at the current weights"]
    fwd = lines["bi forward at the current weights"]
    # the gradient enters the forward direction at t = T-1 and the backward one at t = 0
    assert back.get_xdata()[-1] == 0 and back.get_ydata()[-1] == 1.0
    assert fwd.get_xdata()[-1] == 6 and fwd.get_ydata()[-1] == 1.0
    assert ax.get_xlabel() == "time step t (the inputs' order)"
    plt.close(fig)
