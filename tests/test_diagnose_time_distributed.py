"""The contribution of each output through TimeDistributed heads (issue 13): per-output
gradients of a two-output model whose heads are TimeDistributed(Dense) add up to the
gradient, each equals the gradient of that output's weighted loss alone, and diagnose
reports them."""
from __future__ import annotations

import numpy as np

import mlstm
from mlstm import LSTM, Dense, Input, Model
from mlstm.layers import TimeDistributed
from mlstm.measure import gradients as G


def _model(losses=("mse", "binary_crossentropy"), weights=(0.7, 0.3)) -> Model:
    x = Input((6, 3), name="x", dtype="float64")
    h = LSTM(4, return_sequences=True, name="lstm", seed=1)(x)
    o1 = TimeDistributed(Dense(2, name="dense_seq", seed=2), name="per_step")(h)
    o2 = TimeDistributed(Dense(1, activation="sigmoid", name="dense_p", seed=3), name="prob")(h)
    model = Model(x, [o1, o2])
    model.compile(optimizer="adam", loss=list(losses), loss_weights=list(weights))
    return model


def _data():
    rng = np.random.default_rng(0)
    return (rng.normal(size=(16, 6, 3)),
            [rng.normal(size=(16, 6, 2)), (rng.random((16, 6, 1)) > 0.5).astype(float)])


def test_per_output_contributions_through_time_distributed_heads_sum_to_the_gradient():
    x, y = _data()
    model = _model()
    parts = G.gradient_contributions(model, x, y)
    total = model.gradients(x, y)
    assert set(parts) == {"per_step", "prob"}
    for name, g in total.items():
        np.testing.assert_allclose(parts["per_step"][name] + parts["prob"][name], g,
                                   rtol=0, atol=1e-12)
    # each part is the gradient of that output's weighted loss alone
    only_seq = _model(losses=("mse", None), weights=(0.7, 0.3))
    only_prob = _model(losses=(None, "binary_crossentropy"), weights=(0.7, 0.3))
    for alone, key in ((only_seq, "per_step"), (only_prob, "prob")):
        for name, g in alone.gradients(x, y).items():
            np.testing.assert_allclose(parts[key][name], g, rtol=0, atol=1e-12)
    # a head's own weights get nothing from the other head; the shared LSTM gets both
    assert not np.any(parts["per_step"]["prob/dense_p/kernel"])
    assert not np.any(parts["prob"]["per_step/dense_seq/kernel"])
    assert np.linalg.norm(parts["prob"]["lstm/kernel"]) > 0
    assert np.linalg.norm(parts["per_step"]["lstm/kernel"]) > 0


def test_diagnose_reports_each_time_distributed_head_share():
    x, y = _data()
    report = mlstm.diagnose(_model(), x, y, steps=4, batch_size=16)
    shares = report.summary["shared_share"]
    assert report.summary["shared_layers"] == ["lstm"]
    assert set(shares) == {"per_step", "prob"}
    assert abs(sum(shares.values()) - 1) < 1e-12
    assert min(shares.values()) > 0.05
    assert all(report.static["coverage"][o].all() for o in ("per_step", "prob"))
