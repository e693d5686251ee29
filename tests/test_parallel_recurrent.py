"""The BLAS threading of an LSTM's recurrent loop (mlstm.parallel.recurrent_loop_blas).

- below RECURRENT_MULTITHREAD_MIN_MACS per step the time loops of lstm_forward and
  lstm_backward run with NumPy's BLAS single-threaded, while the whole-sequence GEMMs
  around them (input projection, weight gradients) keep the caller's threads; at or above
  it the loops keep them too;
- the thread count is restored after every loop, also when the loop raises;
- the results agree to rounding with the rule and without it (float32 and float64, masks,
  go_backwards), and with everything single-threaded;
- inside concurrent work (Bidirectional's directions) BLAS stays single-threaded.
"""
from __future__ import annotations

import numpy as np
import pytest

import mlstm
from mlstm import parallel
from mlstm.ops import _lstm_gates, _lstm_gradients, _lstm_threads
from mlstm.ops import lstm as lstm_ops

needs_blas_control = pytest.mark.skipif(
    not parallel.blas_controllable(),
    reason="NumPy's BLAS is not an OpenBLAS mlstm can set the thread count of")


@pytest.fixture
def two_blas_threads():
    """NumPy's BLAS at 2 threads for the test (whatever the machine's default), restored."""
    blas = parallel._numpy_blas()
    before = blas.get()
    blas.set(2)
    parallel.set_num_threads(2)
    yield blas
    parallel.set_num_threads(None)
    blas.set(before)


def _lstm_call(N=16, T=5, D=3, H=8, dtype=np.float32, mask=False, go_backwards=False, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, T, D)).astype(dtype)
    kernel = (0.3 * rng.standard_normal((D, 4 * H))).astype(dtype)
    recurrent_kernel = (0.3 * rng.standard_normal((H, 4 * H))).astype(dtype)
    bias = (0.1 * rng.standard_normal(4 * H)).astype(dtype)
    step_mask = None
    if mask:
        step_mask = rng.random((N, T)) < 0.7
        step_mask[0] = False
    d_out = rng.standard_normal((N, T, H)).astype(dtype)

    def run():
        (out, h, c), cache = lstm_ops.lstm_forward(x, kernel, recurrent_kernel, bias,
                                                   mask=step_mask, go_backwards=go_backwards)
        out, h, c = out.copy(), h.copy(), c.copy()
        grads = lstm_ops.lstm_backward(d_out, None, None, cache)
        return [out, h, c] + [np.array(grads[k], copy=True) for k in
                              ("x", "kernel", "recurrent_kernel", "bias", "h0", "c0",
                               "d_h_steps", "d_gates")]
    return run


def _spy_thread_counts(monkeypatch, blas):
    """Record NumPy's BLAS thread count inside the forward loop (gate activation), the
    backward loop (local factors), the input projection and the weight gradients."""
    seen = {"forward loop": set(), "backward loop": set(), "input projection": set(),
            "weight gradients": set()}

    def spy(label, function):
        def wrapped(*args, **kwargs):
            seen[label].add(blas.get())
            return function(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(_lstm_gates.GateActivation, "__call__",
                        spy("forward loop", _lstm_gates.GateActivation.__call__))
    monkeypatch.setattr(_lstm_gradients.LocalFactors, "compute",
                        spy("backward loop", _lstm_gradients.LocalFactors.compute))
    monkeypatch.setattr(lstm_ops, "input_projection",
                        spy("input projection", lstm_ops.input_projection))
    monkeypatch.setattr(_lstm_gradients.WeightGradients, "add",
                        spy("weight gradients", _lstm_gradients.WeightGradients.add))
    return seen


@needs_blas_control
def test_small_recurrent_loops_run_single_threaded_and_the_rest_keeps_the_threads(
        two_blas_threads, monkeypatch):
    assert 16 * 8 * 32 < parallel.RECURRENT_MULTITHREAD_MIN_MACS
    seen = _spy_thread_counts(monkeypatch, two_blas_threads)
    _lstm_call(N=16, H=8)()
    assert seen == {"forward loop": {1}, "backward loop": {1}, "input projection": {2},
                    "weight gradients": {2}}
    assert two_blas_threads.get() == 2


@needs_blas_control
def test_large_recurrent_loops_keep_the_threads(two_blas_threads, monkeypatch):
    monkeypatch.setattr(parallel, "RECURRENT_MULTITHREAD_MIN_MACS", 16 * 8 * 32)
    seen = _spy_thread_counts(monkeypatch, two_blas_threads)
    _lstm_call(N=16, H=8)()
    assert seen == {"forward loop": {2}, "backward loop": {2}, "input projection": {2},
                    "weight gradients": {2}}
    assert two_blas_threads.get() == 2


def test_the_rule_is_parallels_and_decides_by_the_gemm_size():
    assert _lstm_threads._rule is parallel.recurrent_loop_blas
    limit = parallel.RECURRENT_MULTITHREAD_MIN_MACS
    # the benchmark's sizes: M (N 64, H 128) below, L (N 128, H 256) above
    assert 64 * 128 * 4 * 128 < limit <= 128 * 256 * 4 * 256
    assert isinstance(parallel.recurrent_loop_blas(64, 128), parallel.single_threaded_blas)
    assert not isinstance(parallel.recurrent_loop_blas(128, 256),
                          parallel.single_threaded_blas)


@needs_blas_control
def test_threads_are_restored_when_the_loop_raises(two_blas_threads, monkeypatch):
    def broken(self, z):
        assert two_blas_threads.get() == 1
        raise FloatingPointError("gate activation failed")

    monkeypatch.setattr(_lstm_gates.GateActivation, "__call__", broken)
    with pytest.raises(FloatingPointError, match="gate activation failed"):
        _lstm_call()()
    assert two_blas_threads.get() == 2


@needs_blas_control
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mask,go_backwards", [(False, False), (True, False), (True, True)])
def test_the_rule_changes_results_by_rounding_only(two_blas_threads, dtype, mask, go_backwards):
    """With and without the rule, and all single-threaded: the same values to rounding.

    Not bit for bit: OpenBLAS computes a small GEMM with another kernel (another order of
    the sums) when it runs it on one thread, so the loop's GEMMs may round differently
    from before; as they did before between a BLAS of 1 and of 2 threads.
    """
    # N·H·4H = 1.3 M multiply-adds: OpenBLAS splits these GEMMs over its 2 threads when
    # the rule does not stop it
    run = _lstm_call(N=80, T=7, D=5, H=64, dtype=dtype, mask=mask, go_backwards=go_backwards)
    with_rule = run()
    _lstm_threads.install(None)
    try:
        without_rule = run()
        with parallel.single_threaded_blas():
            one_thread = run()
    finally:
        _lstm_threads.install(parallel.recurrent_loop_blas)
    assert two_blas_threads.get() == 2
    tolerance = 1e-12 if dtype == np.float64 else 2e-6       # as tests/test_parallel.py
    for k, (a, b, c) in enumerate(zip(with_rule, without_rule, one_thread)):
        assert a.dtype == dtype
        scale = max(1.0, np.abs(b).max())
        np.testing.assert_allclose(a, b, rtol=tolerance, atol=tolerance * scale, err_msg=k)
        np.testing.assert_allclose(a, c, rtol=tolerance, atol=tolerance * scale, err_msg=k)


@needs_blas_control
def test_bidirectional_directions_stay_single_threaded(two_blas_threads, monkeypatch):
    mlstm.set_random_seed(0)
    x = mlstm.Input((6, 3))
    y = mlstm.Dense(2)(mlstm.Bidirectional(mlstm.LSTM(32))(x))
    model = mlstm.Model(x, y)
    model.compile("adam", "mse")
    N = 160
    assert N * 4 * 32 >= parallel.MIN_STEP_ELEMENTS         # the directions run at once
    seen = _spy_thread_counts(monkeypatch, two_blas_threads)
    rng = np.random.default_rng(0)
    model.train_on_batch(rng.standard_normal((N, 6, 3)).astype(np.float32),
                         rng.standard_normal((N, 2)).astype(np.float32))
    assert seen == {"forward loop": {1}, "backward loop": {1}, "input projection": {1},
                    "weight gradients": {1}}
    assert two_blas_threads.get() == 2
