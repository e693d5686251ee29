"""diagnose's public signature: every option named and typed, no catch-all ``**kwargs``."""
import inspect
import typing

import numpy as np
import pytest

import mlstm
from mlstm.diagnostics import diagnosis

OPTIONS = ["steps", "batch_size", "seed", "thresholds", "target_shares", "validation_data",
           "verify"]


def _model():
    x = mlstm.Input(shape=(4, 3), name="x")
    y = mlstm.Dense(1, name="y", seed=1)(mlstm.LSTM(2, name="lstm", seed=0)(x))
    model = mlstm.Model(x, y)
    model.compile(optimizer="adam", loss="mse")
    return model


def test_signature_names_every_option_and_has_no_var_keyword():
    params = inspect.signature(mlstm.diagnose).parameters
    assert list(params) == ["model", "x", "y"] + OPTIONS
    assert not any(p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) for p in params.values())
    defaults = {name: params[name].default for name in OPTIONS}
    assert defaults == {"steps": 50, "batch_size": 32, "seed": 0, "thresholds": None,
                        "target_shares": None, "validation_data": None, "verify": False}


def test_every_parameter_is_annotated_and_documented():
    hints = typing.get_type_hints(diagnosis.diagnose)
    assert set(hints) == {"model", "x", "y", "return"} | set(OPTIONS)
    assert hints["return"] is mlstm.diagnostics.DiagnosisReport
    doc = mlstm.diagnose.__doc__
    for section in ("Parameters", "Returns", "Raises", "Examples"):
        assert f"\n    {section}\n    ----" in doc
    for name in OPTIONS:
        assert f"\n    {name} : " in doc, name


def test_an_unknown_keyword_is_a_type_error_naming_it():
    x = np.zeros((8, 4, 3))
    with pytest.raises(TypeError, match="stepz"):
        mlstm.diagnose(_model(), x, np.zeros((8, 1)), stepz=3)


def test_a_report_on_refused_data_draws(tmp_path):
    """The picture of a report whose data mlstm refused (NaN inputs: no measurement on the
    model) has the panels of the data; it used to fail reading the missing measurements."""
    pytest.importorskip("matplotlib")
    x = np.random.default_rng(0).normal(size=(8, 4, 3))
    x[0, 0, 0] = np.nan
    report = mlstm.diagnose(_model(), x, np.zeros((8, 1)), steps=2)
    assert report.static is None and "nonfinite" in report.codes
    path = report.plot(tmp_path / "refused.png")
    assert (tmp_path / "refused.png").stat().st_size > 0 and path == tmp_path / "refused.png"
