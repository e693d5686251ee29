"""mlstm.gradcheck: the default check along random directions, its drill-down, the
per-entry check, masks, the progress line and the report.

The wrong-backward fixtures (200 seeds each) are in tests/test_gradcheck_fixtures.py.
"""
import doctest
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

import mlstm
from mlstm import Dense, Input, LSTM, Masking, Model
from mlstm.demo import build_demo_model, compile_demo_model
from mlstm.gradcheck import DEFAULT_BUDGET, DEFAULT_DIRECTIONS, progress as progress_module
from mlstm.gradcheck.progress import Progress


def _readme_case(N, dtype="float32", seed=0):
    """The README's model (two inputs (20, 8), LSTM(32) each, linear + sigmoid heads, MSE +
    BCE weighted 0.7/0.3, Adam) and N samples of data."""
    model = compile_demo_model(build_demo_model(units=32, dtype=dtype), metrics=["mae"])
    rng = np.random.default_rng(seed)
    x = [rng.standard_normal((N, 20, 8)).astype(dtype) for _ in range(2)]
    y = [rng.standard_normal((N, 1)).astype(dtype),
         (rng.random((N, 1)) < 0.5).astype(dtype)]
    return model, x, y


def _small_case(H=8, D=4, N=4, T=6, masking=False, seed=0):
    """One input, an LSTM (kernel (D, 4H)), a linear head; float64, random weights."""
    x_in = Input(shape=(T, D), name="x", dtype="float64")
    h = Masking(0.0, name="masking")(x_in) if masking else x_in
    out = Dense(1, name="out", dtype="float64")(LSTM(H, name="lstm", dtype="float64")(h))
    model = Model(x_in, out)
    model.compile("sgd", loss="mse")
    rng = np.random.default_rng(seed)
    for p in model.params.values():
        p[...] = 0.5 * rng.standard_normal(p.shape)
    x = rng.standard_normal((N, T, D))
    y = rng.standard_normal((N, 1))
    return model, x, y


def _spoil(layer, spoil):
    """Make ``layer.backward`` wrong: ``spoil(d_inputs, d_params)`` edits its results."""
    backward = layer.backward

    def wrong_backward(d_outputs, cache, d_logits=None, extras=None, input_grads=None):
        d_inputs, d_params = backward(d_outputs, cache, d_logits, extras, input_grads)
        d_inputs = [None if d is None else d.copy() for d in d_inputs]
        d_params = {k: v.copy() for k, v in d_params.items()}
        spoil(d_inputs, d_params)
        return d_inputs, d_params

    layer.backward = wrong_backward


# --------------------------------------------------------------------------- the default
def test_the_readme_check_with_256_samples_is_a_few_hundred_forward_passes():
    # The README's call on its model: before, every entry (92,546 with the inputs) with four
    # forward passes each; now 3 directions x 4 evaluations x 12 arrays, two of them
    # (the heads' biases) of one entry, checked entry by entry.
    model, x, y = _readme_case(256)
    report = mlstm.gradcheck(model, x, y)
    assert report.ok(), str(report)
    assert report.method == "projection" and report.settings["directions"] == 3
    assert report.evaluations == 4 * (3 * 10 + 1 * 2)
    assert report.max_relative_error < 1e-8
    assert str(report).startswith("gradient check passed: largest relative error")
    assert model.dtype == "float32"                            # checked on a float64 clone
    assert report.rows["input:x1"]["checked"] == 256 * 20 * 8
    assert report.rows["lstm_a/recurrent_kernel"]["directions"] == 3
    assert "directions" not in report.rows["out1/bias"]          # one entry: one by one


def test_projection_and_entries_agree_on_a_correct_model():
    model, x, y = _small_case(H=2, D=2, N=2, T=3)
    projection = mlstm.gradcheck(model, x, y)
    entries = mlstm.gradcheck(model, x, y, method="entries")
    assert projection.ok() and entries.ok()
    assert set(projection.rows) == set(entries.rows) == set(model.params) | {"input:x"}
    assert all(entries.rows[n]["checked"] == a.size for n, a in model.params.items())
    assert entries.rows["input:x"]["worst_index"] is not None


def test_the_same_seed_gives_the_same_check_and_another_seed_other_directions():
    model, x, y = _small_case(H=2, D=2, N=2, T=3)
    a, b = mlstm.gradcheck(model, x, y), mlstm.gradcheck(model, x, y)
    c = mlstm.gradcheck(model, x, y, seed=1)
    assert a.rows == b.rows
    assert all(np.array_equal(u, v) for u, v in zip(a.directions["lstm/kernel"],
                                                    b.directions["lstm/kernel"]))
    assert not np.array_equal(a.directions["lstm/kernel"][0], c.directions["lstm/kernel"][0])


# --------------------------------------------------------------------------- catching bugs
@pytest.mark.parametrize("relative", [1e-2, 1e-4])
def test_a_small_error_in_one_gate_block_fails_and_the_drill_down_names_it(relative):
    model, x, y = _small_case(H=2, D=2, N=2, T=3)
    H = 2

    def spoil(d_inputs, d_params):
        d_params["recurrent_kernel"][:, H:2 * H] *= 1 + relative      # the forget block

    _spoil(model.get_layer("lstm"), spoil)
    report = mlstm.gradcheck(model, x, y)
    assert report.failing() == ["lstm/recurrent_kernel"], str(report)
    drill = report.rows["lstm/recurrent_kernel"]["drill_down"]
    assert drill["entries_checked"] == drill["entries"] == 16 and drill["bisection_steps"] == 0
    assert drill["failing_entries"] >= 1
    assert "gate block f (columns 2:4 of 8)" in drill["worst"][0]["where"]
    assert all("gate block f" in w["where"] for w in drill["worst"][:drill["failing_entries"]])


def test_one_wrong_entry_of_a_large_kernel_is_found_by_bisection():
    model, x, y = _small_case(H=8, D=4)                 # kernel (4, 32): 128 entries

    def spoil(d_inputs, d_params):
        d_params["kernel"][2, 13] += 1e-3 * np.abs(d_params["kernel"]).max()

    _spoil(model.get_layer("lstm"), spoil)
    report = mlstm.gradcheck(model, x, y)
    assert report.failing() == ["lstm/kernel"], str(report)
    drill = report.rows["lstm/kernel"]["drill_down"]
    # 128 -> 64 -> 32 -> 16 entries (budget 32: a leaf of 16), then 16 drawn elsewhere.
    assert drill["bisection_steps"] == 3 and drill["entries_checked"] == DEFAULT_BUDGET
    assert drill["evaluations"] == 4 * (3 + DEFAULT_BUDGET)
    assert drill["failing_entries"] == 1
    assert drill["worst"][0]["index"] == [2, 13]
    assert report.rows["lstm/kernel"]["worst_index"] == [2, 13]
    assert drill["worst"][0]["where"] == ("[2, 13]: gate block f (columns 8:16 of 32), unit 5, "
                                          "input feature 2")
    assert "drill-down lstm/kernel: after 3 bisection steps, 32 of 128 entries" in str(report)


def test_one_wrong_input_entry_is_named_by_sample_time_step_and_feature():
    model, x, y = _small_case(H=2, D=3, N=4, T=6)        # x: 72 entries

    def spoil(d_inputs, d_params):
        d_inputs[0][3, 4, 1] += 1e-2 * np.abs(d_inputs[0]).max()

    _spoil(model.get_layer("lstm"), spoil)
    report = mlstm.gradcheck(model, x, y)
    assert report.failing() == ["input:x"], str(report)
    worst = report.rows["input:x"]["drill_down"]["worst"][0]
    assert worst["where"] == "[3, 4, 1]: sample 3, time step 4, feature 1"


def test_a_nan_gradient_fails_and_the_drill_down_finds_the_entry():
    model, x, y = _small_case(H=16, D=2, N=2, T=3)       # bias: 64 entries
    _spoil(model.get_layer("lstm"), lambda d_inputs, d_params: d_params["bias"].__setitem__(
        21, np.nan))
    report = mlstm.gradcheck(model, x, y)
    assert report.failing() == ["lstm/bias"] and not report.ok()
    assert np.isnan(report.max_relative_error)
    worst = report.rows["lstm/bias"]["drill_down"]["worst"][0]
    assert worst["index"] == [21] and np.isnan(worst["analytic"])
    assert "gate block f (columns 16:32 of 64), unit 5" in worst["where"]


# --------------------------------------------------------------------------- masks
def test_padded_steps_are_held_fixed_and_counted_by_both_methods():
    model, x, y = _small_case(H=2, D=3, N=3, T=5, masking=True)
    x[0, 3:] = 0.0                         # two padded steps
    x[2, :2] = 0.0                         # two more
    x[1] = 0.0                             # a fully masked row: five
    projection = mlstm.gradcheck(model, x, y)
    entries = mlstm.gradcheck(model, x, y, method="entries")
    assert projection.ok() and entries.ok(), (str(projection), str(entries))
    padded = 9 * 3
    assert projection.rows["input:x"]["skipped"] == entries.rows["input:x"]["skipped"] == padded
    assert projection.rows["input:x"]["checked"] == entries.rows["input:x"]["checked"] == (
        x.size - padded)
    assert all(np.all(v[x == 0.0] == 0) for v in projection.directions["input:x"])


# --------------------------------------------------------------------------- arguments
@pytest.mark.parametrize("kwargs, message", [
    (dict(method="every"), "method must be 'projection'"),
    (dict(max_entries=10), "max_entries limits method='entries'"),
    (dict(directions=0), "directions must be an int >= 1"),
    (dict(drill_down=-1), "drill_down must be an int >= 0"),
    (dict(h=0.0), "h must be a positive number"),
    (dict(rtol=-1e-6), "rtol must be a positive number"),
    (dict(method="entries", max_entries=0), "max_entries must be an int >= 1"),
])
def test_bad_arguments_are_refused(kwargs, message):
    model, x, y = _small_case(H=1, D=1, N=1, T=2)
    with pytest.raises(ValueError, match=message):
        mlstm.gradcheck(model, x, y, **kwargs)


def test_max_entries_and_no_drill_down():
    model, x, y = _small_case(H=2, D=2, N=2, T=3)
    report = mlstm.gradcheck(model, x, y, method="entries", max_entries=5)
    assert all(row["checked"] == min(5, model.params[name].size)
               for name, row in report.rows.items() if name in model.params)
    _spoil(model.get_layer("lstm"), lambda d_inputs, d_params: d_params["bias"].__imul__(2))
    report = mlstm.gradcheck(model, x, y, drill_down=0)
    assert report.failing() == ["lstm/bias"] and "drill_down" not in report.rows["lstm/bias"]
    json.dumps(report.to_dict())                              # plain numbers and strings


def test_defaults():
    assert (DEFAULT_DIRECTIONS, DEFAULT_BUDGET) == (3, 32)


# --------------------------------------------------------------------------- progress
def test_a_quick_check_prints_nothing_and_progress_true_announces_it(capsys):
    model, x, y = _small_case(H=2, D=2, N=2, T=3)
    mlstm.gradcheck(model, x, y)
    assert capsys.readouterr().err == ""
    mlstm.gradcheck(model, x, y, progress=True)
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("gradcheck: 6 arrays x up to 3 random directions (")
    assert err[-1].startswith("gradcheck: passed in ")


def test_a_long_check_announces_itself_with_the_faster_default(capsys, monkeypatch):
    # A check expected to take longer than the threshold (timed on its first evaluations)
    # says so; here the threshold is 0 so that a small check counts as long.
    monkeypatch.setattr(progress_module, "THRESHOLD_SECONDS", 0.0)
    model, x, y = _small_case(H=2, D=2, N=2, T=3)
    mlstm.gradcheck(model, x, y, method="entries")
    err = capsys.readouterr().err
    assert "gradcheck: method='entries' checks 55 entries one by one (220 loss evaluations)" \
        in err and "the default method='projection' takes about" in err


def test_progress_reports_as_it_goes_off_a_terminal(monkeypatch):
    monkeypatch.setattr(progress_module, "REPORT_EVERY_SECONDS", 0.0)
    stream = io.StringIO()
    meter = Progress(100, lambda seconds: f"announce {seconds:.0f}", enabled=True,
                     stream=stream)
    for _ in range(25):
        meter.advance(4)
    meter.finish("passed")
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("announce") and lines[-1].startswith("gradcheck: passed in")
    assert any(line.startswith("gradcheck: 100 of 100 loss evaluations") for line in lines)


# --------------------------------------------------------------------------- the docs page
def test_the_gradcheck_page_examples_run_and_its_links_resolve():
    page = Path(__file__).resolve().parent.parent / "docs" / "gradcheck.md"
    result = doctest.testfile(str(page), module_relative=False, report=True,
                              optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
        assert (page.parent / target).exists(), f"gradcheck.md links {target}"
