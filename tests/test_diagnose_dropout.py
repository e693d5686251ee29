"""diagnose on a model with dropout: measured at the model's rates and again with every
rate at 0 (a copy), and what changes said in findings (issue 13).

- a fault dropout hides: a ReLU layer dead on every sample at rate 0, whose weights get no
  gradient (no_gradient, which diagnose raises at rate 0); dropout's scaled masks wake some
  units in training, so at the model's rates only dropout_hides names it;
- a model that learns at rate 0 and not at its rates: dropout_underfits, with the halved
  rates tried and verified;
- a sound model with dropout: no dropout finding; the model passed in is not changed.
"""
from __future__ import annotations

import numpy as np

import mlstm
from mlstm import LSTM, Dense, Input, Model
from mlstm.layers import Concatenate, Dropout
from mlstm.data import make_demo_data
from mlstm.layers.dropout import dropout_rates, zero_dropout_rates


def _one(report, code):
    found = [f for f in report.findings if f.code == code]
    assert len(found) == 1, report.codes
    return found[0]


def _dead_relu_model(rate: float, x: np.ndarray) -> Model:
    """Dropout -> Dense(16, relu) whose biases keep every unit below 0 on all of ``x``
    (15% margin), -> Dense(1)."""
    inp = Input((8,), name="x", dtype="float64")
    h = Dropout(rate, name="drop")(inp)
    h = Dense(16, activation="relu", name="hidden", seed=1)(h)
    y = Dense(1, name="out", seed=2)(h)
    model = Model(inp, y)
    model.compile(optimizer="adam", loss="mse")
    kernel = model.get_layer("hidden").params["kernel"]
    model.get_layer("hidden").params["bias"][...] = -1.15 * np.max(x @ kernel, axis=0)
    return model


def _dead_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8))
    return x, x[:, :1] - x[:, 1:2]


def test_dropout_hides_a_layer_that_is_dead_at_inference():
    x, y = _dead_data()
    # what diagnose says at rate 0: the fault it detects
    plain = mlstm.diagnose(_dead_relu_model(0.0, x), x, y, steps=20, batch_size=32)
    assert "no_gradient" in plain.codes
    assert plain.summary["dead_units"]["hidden"]["dead"] == list(range(16))
    assert "dropout" not in plain.summary

    model = _dead_relu_model(0.5, x)
    weights = [w.copy() for w in model.get_weights()]
    report = mlstm.diagnose(model, x, y, steps=20, batch_size=32)
    # at the model's rates the masks wake some units: no no_gradient of its own
    assert "no_gradient" not in report.codes
    assert len(report.summary["dead_units"]["hidden"]["dead"]) < 16
    f = _one(report, "dropout_hides")
    assert f.severity == "error"
    assert f.measured["hidden"] == "no_gradient" and f.measured["cause"] == "dead_relu"
    assert set(f.measured["hidden_measured"]["parameters"]) >= {"hidden/kernel", "hidden/bias"}
    assert f.title == "With dropout off: Parameters that receive no gradient"
    assert "at inference, without dropout" in f.message
    assert "every unit of 'hidden' is 0 on every sample" in f.message
    assert f.remedy is not None and f.remedy.zero_biases == {"hidden/bias": list(range(16))}
    d = report.summary["dropout"]
    assert d["rates"] == {"drop: rate": 0.5}
    assert d["only_at_zero"] == ["Parameters that receive no gradient"]
    text = str(report)
    assert "Dropout (drop: rate=0.5): measured with masks" in text
    assert "found only at rate 0: Parameters that receive no gradient" in text
    # the model passed in keeps its rates and weights
    assert dropout_rates(model.layers) == {"drop: rate": 0.5}
    for a, b in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(a, b)


def _thinned_model(rate: float) -> Model:
    inp = Input((10, 4), name="x", dtype="float64")
    h = LSTM(16, dropout=rate, name="lstm", seed=1)(inp)
    h = Dropout(rate, name="drop")(h)
    y = Dense(1, name="out", seed=2)(h)
    model = Model(inp, y)
    model.compile(optimizer=mlstm.optimizers.Adam(0.01), loss="mse")
    return model


def _sequence_data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 10, 4))
    return x, x[:, -1, :1] + x[:, -2, 1:2]


def test_dropout_underfits_when_only_rate_zero_learns_and_halving_is_verified():
    x, y = _sequence_data(256, 0)
    val = _sequence_data(128, 1)
    report = mlstm.diagnose(_thinned_model(0.8), x, y, steps=40, batch_size=32,
                            validation_data=val, verify=True)
    f = _one(report, "dropout_underfits")
    m = f.measured
    assert m["rates"] == {"lstm: dropout": 0.8, "drop: rate": 0.8}
    # measured: 1.82 at the rates, 0.277 at rate 0, 2.04 for a constant prediction
    assert m["train_loss"] > 0.85 * m["constant_prediction"]
    assert m["train_loss_zero"] < 0.2 * m["constant_prediction"]
    assert m["learned_fraction"] < 0.25
    assert m["validation_loss_zero"] < m["validation_loss"]
    assert "lstm: dropout=0.4, drop: rate=0.4" in f.fix
    assert f.verification["verified"], f.verification["words"]
    assert f.verification["outputs"]["out"]["after"] < f.verification["outputs"]["out"]["before"]


def _sound_model(seed: int) -> Model:
    a = Input((10, 8), name="a", dtype="float64")
    b = Input((10, 8), name="b", dtype="float64")
    ha = LSTM(16, dropout=0.2, recurrent_dropout=0.1, name="la", seed=seed)(a)
    hb = LSTM(16, dropout=0.2, name="lb", seed=seed + 1)(b)
    h = Dropout(0.3, name="drop")(Concatenate(name="m")([ha, hb]))
    o1 = Dense(1, name="out1", seed=seed + 2)(h)
    o2 = Dense(1, activation="sigmoid", name="out2", seed=seed + 3)(h)
    model = Model([a, b], [o1, o2])
    model.compile(optimizer="adam", loss=["mse", "binary_crossentropy"], loss_weights=[0.7, 0.3])
    return model


def test_a_sound_model_with_dropout_raises_nothing():
    d = make_demo_data(512, 10, seed=0, dtype="float64")
    v = make_demo_data(256, 10, seed=1, dtype="float64")
    for seed in (0, 1):
        model = _sound_model(seed)
        report = mlstm.diagnose(model, [d["x1"], d["x2"]], [d["y1"], d["y2"]], steps=60,
                                batch_size=32, seed=seed,
                                validation_data=([v["x1"], v["x2"]], [v["y1"], v["y2"]]))
        assert report.codes == [], str(report)
        s = report.summary["dropout"]
        assert s["only_at_zero"] == [] and s["only_at_rates"] == []
        # dropout slows the fall of the training loss, and the two runs differ
        assert s["train_loss"]["zero"] < s["train_loss"]["rates"]
        assert set(s["shared_share"]["rates"]) == {"out1", "out2"}


def test_the_batch_measurements_draw_masks_seeded_by_seed():
    """At the model's rates the batch is measured with masks (the gradient differs from
    the rate-0 copy's), the same for the same seed."""
    x, y = _dead_data()
    model = _dead_relu_model(0.5, x)
    a = mlstm.diagnose(model, x, y, steps=0, batch_size=32, seed=3)
    b = mlstm.diagnose(model, x, y, steps=0, batch_size=32, seed=3)
    twin = model.clone()
    zero_dropout_rates(twin.layers)
    c = mlstm.diagnose(twin, x, y, steps=0, batch_size=32, seed=3)
    for name, g in a.static["total"].items():
        np.testing.assert_array_equal(g, b.static["total"][name])
    assert np.any(a.static["total"]["hidden/kernel"])
    assert not np.any(c.static["total"]["hidden/kernel"])
