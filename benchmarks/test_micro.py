"""pytest-benchmark micro-suite of the hot ops, so that regressions show.

Not part of the test run (``testpaths = tests``). Run it with::

    python -m pytest benchmarks -q                       # all
    python -m pytest benchmarks -q -k "M and backward"   # a subset
    python -m pytest benchmarks --benchmark-save=NAME    # keep results, compare later with
    python -m pytest benchmarks --benchmark-compare       # ... the last saved run

Each benchmark also checks what it timed (shapes, dtype, finiteness), so a fast wrong
answer cannot pass for an improvement.
"""
import numpy as np
import pytest

from benchmarks.bench import SIZES, demo_model, make_data
from mlstm.ops import dense_backward, dense_forward, lstm_backward, lstm_forward
from mlstm.optimizers import Adam

pytest.importorskip("pytest_benchmark")


def _lstm_args(size, seed=0):
    s = SIZES[size]
    N, T, D, H = s["N"], s["T"], s["D"], s["H"]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, T, D)).astype(np.float32)
    kernel = (rng.standard_normal((D, 4 * H)) / np.sqrt(D)).astype(np.float32)
    recurrent = (rng.standard_normal((H, 4 * H)) / np.sqrt(H)).astype(np.float32)
    bias = np.zeros(4 * H, np.float32)
    bias[H:2 * H] = 1
    return x, kernel, recurrent, bias


@pytest.mark.parametrize("size", list(SIZES))
def test_lstm_forward(benchmark, size):
    x, W, U, b = _lstm_args(size)
    (out, h, c), _ = benchmark(lstm_forward, x, W, U, b)
    assert out.shape == (x.shape[0], x.shape[1], U.shape[0]) and out.dtype == np.float32
    assert np.isfinite(out).all()


@pytest.mark.parametrize("size", list(SIZES))
def test_lstm_forward_masked(benchmark, size):
    x, W, U, b = _lstm_args(size)
    mask = np.ones(x.shape[:2], dtype=bool)
    mask[::2, -x.shape[1] // 4:] = False            # right padding on half the rows
    (out, h, c), _ = benchmark(lstm_forward, x, W, U, b, mask=mask)
    assert np.isfinite(out).all()


@pytest.mark.parametrize("size", list(SIZES))
def test_lstm_backward(benchmark, size):
    x, W, U, b = _lstm_args(size)
    (out, h, c), cache = lstm_forward(x, W, U, b)
    d_last = np.random.default_rng(1).standard_normal(h.shape).astype(np.float32)
    grads = benchmark(lstm_backward, d_last, None, None, cache)
    assert grads["recurrent_kernel"].shape == U.shape
    assert all(g.dtype == np.float32 for g in grads.values())


@pytest.mark.parametrize("size", list(SIZES))
def test_dense_forward_backward(benchmark, size):
    s = SIZES[size]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((s["N"], 2 * s["H"])).astype(np.float32)
    W = rng.standard_normal((2 * s["H"], s["O"][0])).astype(np.float32)
    b = np.zeros(s["O"][0], np.float32)

    def step():
        y, cache = dense_forward(x, W, b, "sigmoid")
        return dense_backward(np.ones_like(y), cache)

    grads = benchmark(step)
    assert grads["kernel"].shape == W.shape


@pytest.mark.parametrize("size", list(SIZES))
def test_adam_step(benchmark, size):
    """One Adam update of the demo model's parameters at this size."""
    rng = np.random.default_rng(0)
    params = demo_model(size).params
    grads = {k: rng.standard_normal(p.shape).astype(np.float32) for k, p in params.items()}
    adam = Adam(1e-3)
    updates = benchmark(adam.apply, params, grads)
    assert set(updates) == set(params)


@pytest.mark.parametrize("size", ["S", "M"])
def test_demo_model_train_step(benchmark, size):
    """The whole training step (forward, losses, backward, Adam) of the benchmark model."""
    from benchmarks.bench import MlstmCase
    case = MlstmCase(size, threads=None)
    train = case.steps()["train"]
    train()
    logs = benchmark(train)
    assert np.isfinite(logs[0] if isinstance(logs, list) else logs)


def test_make_data_is_float32():
    xs, ys = make_data("S")
    assert all(a.dtype == np.float32 for a in xs + ys)
