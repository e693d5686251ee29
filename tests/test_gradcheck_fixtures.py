"""The default gradient check catches the wrong-backward fixtures of mlstm.testing, on every
one of 200 seeds, and its drill-down names the wrong arrays.

The fixtures (mlstm.testing.faults) are a plain step-by-step BPTT with one bug each: gate
blocks c and o swapped, the masked-step carry term of dL/dh dropped, dL/dz of the forget
block with the wrong sign. Each seed draws new weights (no two gate blocks alike) and new
data (every row with a padded step inside the sequence, so the mask term matters).

Measured (the counts this test asserts, and the gate block of the worst drill-down entry in
the bias, printed with ``pytest -s``): see docs/gradcheck.md.
"""
import collections

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mlstm
from mlstm import testing
from mlstm.ops import lstm_backward

SEEDS = range(200)
#: Arrays whose gradient the wrong LSTM backward pass computes: the only ones that may fail.
WRONG_ARRAYS = {f"{testing.WRONG_LAYER}/kernel", f"{testing.WRONG_LAYER}/recurrent_kernel",
                f"{testing.WRONG_LAYER}/bias", "input:x"}


@settings(max_examples=40)
@given(config=testing.lstm_configs(max_timesteps=5), data=st.data())
def test_the_plain_backward_without_a_bug_is_the_fast_one(config, data):
    """The fixtures differ from the right BPTT by their bug only."""
    model = testing.lstm_model(config)
    testing.randomize_weights(model, seed=data.draw(st.integers(0, 2 ** 16), label="weights"))
    xs = model._inputs(data.draw(testing.sequences(model), label="x"))
    tape = model.forward(xs)
    cache = tape.caches[[n.layer.name for n in model.nodes].index("lstm")]
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 16), label="seeds"))
    d_out = rng.standard_normal(tape.outputs[0].shape)
    d_h, d_c = ((rng.standard_normal(o.shape) for o in tape.outputs[1:])
                if config["return_state"] else (None, None))
    fast = lstm_backward(d_out, d_h, d_c, cache)
    plain = testing.lstm_backward_plain(d_out, d_h, d_c, cache)
    for key in ("x", "kernel", "recurrent_kernel", "bias", "h0", "c0"):
        if key in fast or key in plain:
            np.testing.assert_allclose(plain[key], fast[key], rtol=1e-10, atol=1e-13,
                                       err_msg=key)


def test_the_right_plain_backward_passes_the_default_check():
    for seed in range(20):
        model, x, y = testing.wrong_backward_case(None, seed)
        report = mlstm.gradcheck(model, x, y)
        assert report.ok(), f"seed {seed}:\n{report}"


@pytest.mark.parametrize("bug", list(testing.WRONG_BACKWARDS))
def test_the_default_check_catches_each_wrong_backward_on_every_seed(bug):
    caught, named_right, failing_arrays = 0, 0, collections.Counter()
    bias_blocks = collections.Counter()
    for seed in SEEDS:
        model, x, y = testing.wrong_backward_case(bug, seed)
        report = mlstm.gradcheck(model, x, y)             # the default check
        failing = report.failing()
        caught += bool(failing)
        failing_arrays.update(failing)
        # The drill-down names the right arrays: only those the wrong backward computes
        # fail, and in each of them it finds entries that are wrong, described by gate
        # block and unit (LSTM weights) or sample, time step and feature (the input).
        right = set(failing) <= WRONG_ARRAYS
        for name in failing:
            drill = report.rows[name]["drill_down"]
            worst = drill["worst"][0]
            right &= drill["failing_entries"] >= 1 and not worst["rel_error"] < report.rtol
            if name == "input:x":
                right &= "sample" in worst["where"] and "time step" in worst["where"]
            else:
                right &= "gate block" in worst["where"] and "unit" in worst["where"]
        named_right += bool(failing) and right
        if "lstm/bias" in failing:
            where = report.rows["lstm/bias"]["drill_down"]["worst"][0]["where"]
            bias_blocks[where.split("gate block ")[1][0]] += 1
    print(f"\n{bug}: caught {caught}/{len(SEEDS)}, drill-down names the right arrays "
          f"{named_right}/{len(SEEDS)}; failing arrays {dict(failing_arrays)}; gate block of "
          f"the bias's worst entry {dict(sorted(bias_blocks.items()))}")
    assert caught == len(SEEDS)
    assert named_right == len(SEEDS)
    if bug == "sign_error":
        # The sign error sits in the forget block: the drill-down points there.
        assert bias_blocks["f"] >= 0.95 * len(SEEDS), bias_blocks
    if bug == "swapped_gates":
        assert bias_blocks["c"] + bias_blocks["o"] >= 0.95 * len(SEEDS), bias_blocks
