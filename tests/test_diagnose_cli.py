"""``python -m mlstm diagnose MODEL.keras DATA.npz``: a user's mistake is one line, exit 2.

Exit 0: diagnosed (warnings at most); exit 1: an error-level finding; exit 2: the command
was used wrongly (an unsupported model, a missing or unreadable file, a bare ``.npy``, arrays
that do not fit the model, a bad option, loss or optimizer). No traceback, and no
TensorFlow log lines.
"""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mlstm.diagnostics.cli import main

T, D = 5, 3
ROOT = Path(__file__).resolve().parents[1]


def one_line_error(capsys, *needles):
    """The command's stderr: exactly one line, no traceback, containing every needle."""
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("python -m mlstm diagnose: error: "), lines[0]
    assert "Traceback" not in captured.err + captured.out
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def write_data(path, n=20, features=D, n_targets=None, seed=0):
    rng = np.random.default_rng(seed)
    np.savez(path, x=rng.standard_normal((n, T, features)),
             y=rng.standard_normal((n if n_targets is None else n_targets, 1)))
    return str(path)


@pytest.fixture
def fake_model(tmp_path):
    """A zip archive named .keras: enough for the checks made before Keras is imported."""
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{}")
    return str(path)


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    """``{"lstm": compiled, "uncompiled": ..., "gru": unsupported}`` .keras paths."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    folder = tmp_path_factory.mktemp("keras_models")
    paths = {}
    for name, layer, compiled in (("lstm", keras.layers.LSTM, True),
                                  ("uncompiled", keras.layers.LSTM, False),
                                  ("gru", keras.layers.GRU, True)):
        x = keras.Input((T, D), name="x")
        y = keras.layers.Dense(1, name="out")(layer(4, name="rnn")(x))
        model = keras.Model(x, y)
        if compiled:
            model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
        paths[name] = str(folder / f"{name}.keras")
        model.save(paths[name])
    return paths


# --------------------------------------------------------------------------- before Keras
def test_a_missing_model_file(tmp_path, capsys):
    assert main([str(tmp_path / "nope.keras"), write_data(tmp_path / "d.npz")]) == 2
    one_line_error(capsys, "nope.keras", "no such file")


def test_a_missing_data_file(fake_model, tmp_path, capsys):
    assert main([fake_model, str(tmp_path / "nope.npz")]) == 2
    one_line_error(capsys, "nope.npz", "no such file")


def test_a_directory_an_h5_file_and_a_file_that_is_not_a_keras_archive(tmp_path, capsys):
    data = write_data(tmp_path / "d.npz")
    assert main([str(tmp_path), data]) == 2
    one_line_error(capsys, "give a .keras file")
    (tmp_path / "model.h5").write_bytes(b"\x89HDF\r\n")
    assert main([str(tmp_path / "model.h5"), data]) == 2
    one_line_error(capsys, "model.h5", ".keras")
    (tmp_path / "text.keras").write_text("not a zip")
    assert main([str(tmp_path / "text.keras"), data]) == 2
    one_line_error(capsys, "text.keras", "is not a .keras file")


def test_a_bare_npy_given_as_data(fake_model, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((4, T, D)))
    assert main([fake_model, str(tmp_path / "x.npy")]) == 2
    one_line_error(capsys, "x.npy", "single .npy array", "np.savez")


def test_bad_options_are_one_line(fake_model, tmp_path, capsys):
    data = write_data(tmp_path / "d.npz")
    for argv, needle in ((["--steps", "-1"], "--steps: must be >= 0"),
                         (["--batch-size", "0"], "--batch-size: must be >= 1"),
                         (["--learning-rate", "nan"], "--learning-rate"),
                         (["--no-such-option"], "unrecognized arguments"),
                         (["--json", str(tmp_path / "no" / "dir.json")], "no directory")):
        assert main([fake_model, data] + argv) == 2, argv
        one_line_error(capsys, needle)
    assert main([fake_model]) == 2
    one_line_error(capsys, "DATA.npz")


def test_help_exits_0(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "Exit status" in out and "usage" in out


# --------------------------------------------------------------------------- with Keras
@pytest.mark.keras
def test_an_unsupported_keras_model(keras_files, tmp_path, capsys):
    assert main([keras_files["gru"], write_data(tmp_path / "d.npz")]) == 2
    one_line_error(capsys, "gru.keras", "GRU", "Supported Keras layers", "LSTM")


@pytest.mark.keras
def test_arrays_that_do_not_match_the_model(keras_files, tmp_path, capsys):
    model = keras_files["lstm"]
    assert main([model, write_data(tmp_path / "f.npz", features=D + 1)]) == 2
    one_line_error(capsys, "'x' has shape (20, 5, 4)", "takes (N, 5, 3)")
    assert main([model, write_data(tmp_path / "n.npz", n_targets=19)]) == 2
    one_line_error(capsys, "different numbers of samples", "x 20, y 19")
    np.savez(tmp_path / "names.npz", inputs=np.zeros((4, T, D)), y=np.zeros((4, 1)))
    assert main([model, str(tmp_path / "names.npz")]) == 2
    one_line_error(capsys, "no inputs found", "['inputs', 'y']")
    np.savez(tmp_path / "y3d.npz", x=np.zeros((4, T, D)), y=np.zeros((4, 2, 2)))
    assert main([model, str(tmp_path / "y3d.npz"), "--steps", "1"]) == 2
    one_line_error(capsys, "y3d.npz", "out")           # refused by the model's own check


@pytest.mark.keras
def test_compile_settings_for_an_uncompiled_file(keras_files, tmp_path, capsys):
    model, data = keras_files["uncompiled"], write_data(tmp_path / "d.npz")
    assert main([model, data]) == 2
    one_line_error(capsys, "no compile config", "--loss")
    assert main([model, data, "--loss", "hinge"]) == 2
    one_line_error(capsys, "Unknown loss 'hinge'", "mse")
    assert main([model, data, "--loss", "mse", "--optimizer", "rmsprop"]) == 2
    one_line_error(capsys, "rmsprop", "adam", "sgd")
    assert main([model, data, "--loss", "mse", "--loss-weights", "one"]) == 2
    one_line_error(capsys, "--loss-weights", "'one'")
    assert main([model, data, "--loss", "mse", "--loss-weights", "1,2"]) == 2
    one_line_error(capsys, "loss_weights", "2 entries")
    assert main([model, data, "--loss", "mse", "--optimizer", "sgd", "--learning-rate", "0",
                 "--steps", "3"]) == 0
    out = capsys.readouterr().out
    assert "SGD(learning_rate=0.0" in out and "learning_rate_too_small" in out


@pytest.mark.keras
def test_an_error_level_finding_exits_1_and_warnings_exit_0(keras_files, tmp_path, capsys):
    model = keras_files["lstm"]
    data = write_data(tmp_path / "d.npz")
    assert main([model, data, "--steps", "3", "--json", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["setup"]["learning_rate"] == pytest.approx(1e-3)
    arrays = dict(np.load(data))
    arrays["y"][3, 0] = np.nan
    np.savez(tmp_path / "nan.npz", **arrays)
    assert main([model, str(tmp_path / "nan.npz"), "--steps", "3"]) == 1
    assert "[error] NaN or inf values (nonfinite)" in capsys.readouterr().out


@pytest.mark.keras
def test_the_command_prints_no_tensorflow_log_lines(keras_files, tmp_path):
    """In a fresh interpreter, where TensorFlow is imported by the command itself."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    done = subprocess.run([sys.executable, "-m", "mlstm", "diagnose", keras_files["lstm"],
                           write_data(tmp_path / "d.npz"), "--steps", "2"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr
    assert "Diagnosis of model" in done.stdout
    unsupported = subprocess.run([sys.executable, "-m", "mlstm", "diagnose", keras_files["gru"],
                                  write_data(tmp_path / "d.npz")],
                                 capture_output=True, text=True, env=env, timeout=300)
    assert unsupported.returncode == 2
    assert len(unsupported.stderr.strip().splitlines()) == 1, unsupported.stderr
