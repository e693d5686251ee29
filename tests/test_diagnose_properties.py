"""Properties of ``diagnose`` (hypothesis): a report for any model, never a crash.

``diagnose`` returns a :class:`DiagnosisReport` that reads as text and as strict JSON, and
raises nothing but a refusal of its arguments (TypeError/ValueError). That must hold for
drawn multi-input / multi-output models (:mod:`mlstm.testing`) in float32 and float64, with
masks, including the setups where nothing moves: frozen layers, a learning rate of 0, a dead
ReLU layer before the heads, all-zero inputs, constant targets, a loss weight of 0, and a
learning rate so large that training overflows; and with ``verify=True``, which retrains a
copy for each fix it tries.
"""
import json
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlstm
from mlstm import testing
from mlstm.diagnostics import FINDING_CODES, DiagnosisReport, diagnose
from mlstm.optimizers import SGD, Adam

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _recompile(model, optimizer, loss_weights):
    model.compile(optimizer=optimizer, loss=list(model._losses), loss_weights=loss_weights)


@st.composite
def drawn_setups(draw):
    """``(model, x, y, description)``: a drawn model and data, with something that stalls."""
    dtype = draw(st.sampled_from(["float64", "float32"]))
    config = draw(testing.model_configs(max_inputs=2, max_depth=1, max_units=3, max_features=2,
                                        max_timesteps=3, max_extra_heads=1, dtype=dtype))
    case = draw(testing.cases(configs=st.just(config), max_batch=5, weights=("keras",)))
    model, x, y = case.model, list(case.x), list(case.y)
    notes = [repr(case)]
    lr = draw(st.sampled_from([0.0, 1e-3, 1.0, 1e6, 1e30]))
    optimizer = draw(st.sampled_from([Adam, SGD]))(learning_rate=lr)
    weights = list(model._loss_weights)
    if draw(st.booleans()):
        weights[draw(st.integers(0, len(weights) - 1))] = 0.0
    _recompile(model, optimizer, weights)
    notes.append(f"{type(optimizer).__name__}({lr}), loss weights {weights}")
    frozen = draw(st.sets(st.sampled_from([l.name for l in model.layers if l.params])))
    for layer in model.layers:
        if layer.name in frozen:
            layer.trainable = False
    if frozen:
        notes.append(f"frozen {sorted(frozen)}")
    if draw(st.booleans()):
        x = [np.zeros_like(a) for a in x]
        notes.append("all-zero inputs")
    if draw(st.booleans()):
        y = [np.full_like(a, 1.0 if np.all((a >= 0) & (a <= 1)) else 3.0) for a in y]
        notes.append("constant targets")
    return model, x, y, "; ".join(notes)


@st.composite
def dead_relu_setups(draw):
    """Two inputs, an LSTM each, concatenated, a ReLU layer (maybe dead), two heads."""
    T, units = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    x1, x2 = mlstm.Input((T, 2), name="x1"), mlstm.Input((T, 1), name="x2")
    merged = mlstm.layers.concatenate([mlstm.LSTM(units, name="la", seed=0)(x1),
                                       mlstm.LSTM(units, name="lb", seed=1)(x2)])
    hidden = mlstm.Dense(draw(st.integers(1, 3)), activation="relu", name="relu", seed=2)(merged)
    model = mlstm.Model([x1, x2], [mlstm.Dense(1, name="out1", seed=3)(hidden),
                                   mlstm.Dense(1, activation="sigmoid", name="out2",
                                               seed=4)(hidden)])
    lr = draw(st.sampled_from([0.0, 1e-3]))
    model.compile(optimizer=Adam(lr), loss=["mse", "binary_crossentropy"])
    bias = draw(st.sampled_from([-10.0, 0.0]))
    model.get_layer("relu").params["bias"][:] = bias
    N = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 1000)))
    x = [rng.standard_normal((N, T, 2)), rng.standard_normal((N, T, 1))]
    y = [rng.standard_normal((N, 1)), (rng.random((N, 1)) < 0.5).astype(float)]
    return model, x, y, f"T={T} units={units} N={N} Adam({lr}) relu bias {bias}"


def _check_report(report, description):
    assert isinstance(report, DiagnosisReport), description
    text = str(report)
    assert text.startswith("Diagnosis of model"), description
    json.dumps(report.to_dict(), allow_nan=False)          # strict JSON, always
    for f in report.findings:
        assert f.code in FINDING_CODES and f.message and f.fix and f.message in text
    weights = report.suggested_loss_weights
    if weights is not None:
        assert set(weights) == set(report.loss_outputs), description
        assert all(np.isfinite(w) and w >= 0 for w in weights.values()), (weights, description)


@SETTINGS
@given(setup=st.one_of(drawn_setups(), dead_relu_setups()), steps=st.integers(0, 3),
       batch_size=st.integers(1, 4), seed=st.integers(0, 3))
def test_diagnose_returns_a_report_for_any_drawn_model(setup, steps, batch_size, seed):
    model, x, y, description = setup
    weights = [w.copy() for w in model.get_weights()]
    with warnings.catch_warnings():
        # numpy must not warn from inside diagnose: every nan/inf it meets is measured
        warnings.simplefilter("error", RuntimeWarning)
        report = diagnose(model, x, y, steps=steps, batch_size=batch_size, seed=seed)
    _check_report(report, description)
    for before, after in zip(weights, model.get_weights()):   # the model is left alone
        np.testing.assert_array_equal(before, after)


@settings(SETTINGS, max_examples=25)
@given(setup=st.one_of(drawn_setups(), dead_relu_setups()), steps=st.integers(0, 3),
       seed=st.integers(0, 3))
def test_trying_the_fixes_never_crashes(setup, steps, seed):
    """``verify=True`` retrains a copy per fix: still a report, and the model untouched."""
    model, x, y, description = setup
    weights = [w.copy() for w in model.get_weights()]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        report = diagnose(model, x, y, steps=steps, batch_size=4, seed=seed, verify=True)
    _check_report(report, description)
    for f in report.findings:
        assert f.verification is None or isinstance(f.verification["verified"], bool)
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)


@SETTINGS
@given(setup=dead_relu_setups())
def test_weights_that_never_move_are_named_not_divided_by(setup):
    """Adam(0.0) or a dead ReLU layer: every weight matrix's update ratio is 0."""
    model, x, y, description = setup
    report = diagnose(model, x, y, steps=3, batch_size=4)
    _check_report(report, description)
    if model.get_layer("relu").params["bias"][0] < 0:       # dead on every sample
        assert "no_gradient" in report.codes, (description, report.codes)
    if model.optimizer.learning_rate == 0:
        # a ReLU at bias 0 may be dead on a small batch too: then no_gradient explains it
        assert {"learning_rate_too_small", "no_gradient"} & set(report.codes), \
            (description, report.codes)


def _small_model():
    setup = testing.build_model(testing.SEED_MODEL_CONFIG)
    rng = np.random.default_rng(0)
    x = [rng.standard_normal((8,) + tuple(t.shape)) for t in setup.inputs]
    y = [rng.random((8,) + tuple(t.shape)).round() for t in setup.outputs]
    return setup, x, y


@pytest.mark.parametrize("kwargs, error, match", [
    ({"steps": -1}, ValueError, "steps"),
    ({"steps": 1.5}, ValueError, "steps"),
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"seed": "a"}, ValueError, "seed"),
    ({"thresholds": {"nope": 1}}, ValueError, "unknown thresholds"),
    ({"thresholds": {"min_coverage": float("nan")}}, ValueError, "min_coverage"),
    ({"thresholds": [1]}, TypeError, "thresholds"),
    ({"target_shares": [1.0]}, ValueError, "target_shares"),
    ({"target_shares": {"out1": 1, "zzz": 1}}, ValueError, "zzz"),
    ({"target_shares": [1, -1]}, ValueError, "target_shares"),
    ({"target_shares": [0, 0]}, ValueError, "not all be 0"),
    ({"target_shares": "equal"}, TypeError, "target_shares"),
])
def test_refused_arguments_name_the_argument(kwargs, error, match):
    model, x, y = _small_model()
    with pytest.raises(error, match=match):
        diagnose(model, x, y, **kwargs)


def test_a_model_that_is_not_an_mlstm_model_is_refused():
    with pytest.raises(TypeError, match="mlstm.Model"):
        diagnose(object(), np.zeros((2, 3, 1)), np.zeros((2, 1)))
