"""Every script in examples/ runs, quickly, and prints what its docstring says it shows."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(name):
    completed = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True,
                               text=True, timeout=120, cwd=EXAMPLES.parent)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


def numbers(pattern, text):
    found = re.findall(pattern, text)
    assert found, f"{pattern!r} not in output:\n{text}"
    return [tuple(float(v) for v in (m if isinstance(m, tuple) else (m,))) for m in found]


def test_every_example_is_tested():
    tested = {f"{n:02d}" for n in range(1, 6)}
    assert {p.name[:2] for p in EXAMPLES.glob("[0-9][0-9]_*.py")} == tested


def test_01_seed_model_learns_both_heads():
    out = run("01_seed_model.py")
    (first, last), = numbers(r"out1 MSE\s+([\d.]+) -> ([\d.]+)", out)
    assert last < 0.5 * first
    (accuracy,), = numbers(r"binary accuracy ([\d.]+)", out)
    assert accuracy > 0.85
    (total, weighted), = numbers(r"0\.3·out2_loss: ([\d.]+) = ([\d.]+)", out)
    assert total == weighted
    assert "out2_binary_accuracy" in out and "lstm_b/kernel" in out


def test_02_masking_follows_keras():
    out = run("02_masking_variable_length.py")
    (post, pre), = numbers(r"unpadded T=5: max \|difference\| = ([\d.e+-]+); pre-padded: "
                           r"([\d.e+-]+)", out)
    assert post == 0 and pre == 0
    (masked_mean, manual), = numbers(r"per-step MSE on the post-padded sequence: ([\d.]+); "
                                     r"the mean over its 5 valid steps only: ([\d.]+)", out)
    assert masked_mean == manual
    (first, last), = numbers(r"MSE ([\d.]+) -> ([\d.]+) in 15 epochs", out)
    assert last < 0.2 * first
    pre_zeros = out.split("padded at the front (pre)")[1].split("\n")[1]
    assert pre_zeros.split()[1:8] == ["0."] * 7


def test_03_stacked_per_step_head_learns():
    out = run("03_stacked_per_step_head.py")
    (variance, held_out), = numbers(r"target variance ([\d.]+); held-out MSE ([\d.]+)", out)
    assert held_out < 0.1 * variance
    assert "lstm_2 (LSTM)     (N, 12, 8)" in out and "per_step (Dense)  (N, 12, 1)" in out


def test_04_one_training_step_agrees_with_the_hand_computations():
    out = run("04_one_training_step.py")
    # the LSTM step by hand, then the Adam update by hand
    (step_diff,), (adam_diff,) = numbers(r"max \|difference\| ([\d.e+-]+)\n", out)
    assert step_diff < 1e-12 and adam_diff < 1e-12
    for model_value, hand in numbers(r"(?:MSE|logits) ([\d.]+) \(by hand ([\d.]+)\)", out):
        assert model_value == hand
    assert "out1/bias" in out and "from out2" in out


def test_05_check_your_own_lstm_shows_the_failures():
    out = run("05_check_your_own_lstm.py")
    assert "1. my LSTM matches mlstm" in out
    swapped = out.split("2. gate blocks read as i, f, o, c")[1].split("3. ")[0]
    assert "differs from time step 0" in swapped
    assert "in the order i, f, o, c" in swapped and "gate blocks c, o" in swapped
    leaky = out.split("3. backward without the forget gate")[1]
    assert "backward: lstm/kernel" in leaky and "gate blocks with wrong entries" in leaky
    assert "input:x differs from time step" in leaky


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("[0-9][0-9]_*.py")), ids=lambda p: p.name)
def test_examples_have_a_docstring_saying_what_they_show(path):
    source = path.read_text(encoding="utf-8")
    assert source.startswith('"""')
    docstring = source.split('"""')[1]
    assert "runs in" in docstring.lower() and "print" in docstring.lower()
