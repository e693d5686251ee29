"""The BLAS threading of an LSTM's own passes (mlstm.parallel.lstm_forward_threads,
lstm_backward_threads) and the backward pass's helper thread.

- below RECURRENT_MULTITHREAD_MIN_MACS per step, lstm_forward and lstm_backward run their
  GEMMs with NumPy's BLAS single-threaded; at or above it they keep the caller's threads;
  the count is restored after every pass, also when the pass raises;
- a lone LSTM worth a thread whose gradients come in chunks adds its weight gradients on
  the helper thread, in order, with the same bits as without the helper (float32 and
  float64, masks, go_backwards); an error there is raised after the pass;
- no helper inside concurrent work (the directions of a Bidirectional), nor with
  ``set_num_threads(1)``, nor for a small layer;
- the results agree to rounding with the rules and without them.
"""
from __future__ import annotations

import threading

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


def _lstm_call(N=16, T=5, D=3, H=8, dtype=np.float32, mask=False, go_backwards=False, seed=0,
               keep_d_gates=True):
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
        grads = lstm_ops.lstm_backward(d_out, None, None, cache, keep_d_gates=keep_d_gates)
        names = ["x", "kernel", "recurrent_kernel", "bias", "h0", "c0", "d_h_steps"]
        names += ["d_gates"] if keep_d_gates else []
        return [out, h, c] + [np.array(grads[k], copy=True) for k in names]
    return run


def _spy(monkeypatch, blas):
    """Record NumPy's BLAS thread count, and the thread's name, inside the forward loop
    (gate activation), the backward loop (local factors), the input projection and the
    weight gradients."""
    seen = {"forward loop": set(), "backward loop": set(), "input projection": set(),
            "weight gradients": set()}
    threads = {label: set() for label in seen}

    def spy(label, function):
        def wrapped(*args, **kwargs):
            seen[label].add(blas.get())
            threads[label].add(threading.current_thread().name.split("_")[0])
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
    return seen, threads


@needs_blas_control
def test_small_lstms_run_single_threaded_blas_and_restore_it(two_blas_threads, monkeypatch):
    assert 16 * 8 * 32 < parallel.RECURRENT_MULTITHREAD_MIN_MACS
    seen, _ = _spy(monkeypatch, two_blas_threads)
    _lstm_call(N=16, H=8)()
    assert seen == {"forward loop": {1}, "backward loop": {1}, "input projection": {1},
                    "weight gradients": {1}}
    assert two_blas_threads.get() == 2


@needs_blas_control
def test_large_lstms_keep_the_threads(two_blas_threads, monkeypatch):
    monkeypatch.setattr(parallel, "RECURRENT_MULTITHREAD_MIN_MACS", 16 * 8 * 32)
    seen, _ = _spy(monkeypatch, two_blas_threads)
    _lstm_call(N=16, H=8)()
    assert seen == {"forward loop": {2}, "backward loop": {2}, "input projection": {2},
                    "weight gradients": {2}}
    assert two_blas_threads.get() == 2


def test_the_rules_are_parallels_and_decide_by_the_gemm_size():
    assert _lstm_threads._forward_rule is parallel.lstm_forward_threads
    assert _lstm_threads._backward_rule is parallel.lstm_backward_threads
    limit = parallel.RECURRENT_MULTITHREAD_MIN_MACS
    # the benchmark's sizes: M (N 64, H 128) below, L (N 128, H 256) above
    assert 64 * 128 * 4 * 128 < limit <= 128 * 256 * 4 * 256
    assert isinstance(parallel.lstm_forward_threads(64, 128), parallel.single_threaded_blas)
    assert not isinstance(parallel.lstm_forward_threads(128, 256),
                          parallel.single_threaded_blas)


@needs_blas_control
def test_threads_are_restored_when_a_pass_raises(two_blas_threads, monkeypatch):
    def broken(self, z):
        assert two_blas_threads.get() == 1
        raise FloatingPointError("gate activation failed")

    monkeypatch.setattr(_lstm_gates.GateActivation, "__call__", broken)
    with pytest.raises(FloatingPointError, match="gate activation failed"):
        _lstm_call()()
    assert two_blas_threads.get() == 2


# N·4H = 16,384 (worth a thread), N·H·4H = 1 M multiply-adds (below the limit); chunks of
# 2 steps of the 9
HELPED = dict(N=64, T=9, D=5, H=64)


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(lstm_ops, "GRADIENT_CHUNK_BYTES", 2 * 64 * 4 * 64 * 4)


@needs_blas_control
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mask,go_backwards", [(False, False), (True, False), (True, True)])
def test_the_helper_adds_the_weight_gradients_with_the_same_bits(
        two_blas_threads, small_chunks, monkeypatch, dtype, mask, go_backwards):
    assert HELPED["N"] * 4 * HELPED["H"] >= parallel.MIN_STEP_ELEMENTS
    run = _lstm_call(**HELPED, dtype=dtype, mask=mask, go_backwards=go_backwards,
                     keep_d_gates=False)
    seen, threads = _spy(monkeypatch, two_blas_threads)
    helped = run()
    assert threads["weight gradients"] == {"mlstm-helper"}, threads
    assert threads["backward loop"] == {threading.current_thread().name.split("_")[0]}
    assert seen["weight gradients"] == {1} and two_blas_threads.get() == 2
    parallel.set_num_threads(1)                      # no helper
    threads["weight gradients"].clear()
    alone = run()
    assert threads["weight gradients"] == {threading.current_thread().name.split("_")[0]}
    for a, b in zip(helped, alone):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)


@needs_blas_control
def test_an_error_on_the_helper_is_raised_after_the_pass(two_blas_threads, small_chunks,
                                                          monkeypatch):
    calls = []

    def broken(self, start, stop, d_gates):
        calls.append(start)
        if len(calls) == 2:
            raise FloatingPointError("weight gradients failed")

    monkeypatch.setattr(_lstm_gradients.WeightGradients, "add", broken)
    with pytest.raises(FloatingPointError, match="weight gradients failed"):
        _lstm_call(**HELPED, keep_d_gates=False)()
    # in order; the pass stops at the error, once what it handed over has finished
    assert calls == [7, 5, 3, 1, 0][:len(calls)] and len(calls) >= 2
    done = len(calls)
    assert parallel._helper_pool().submit(lambda: len(calls)).result() == done
    assert two_blas_threads.get() == 2


@needs_blas_control
def test_no_helper_for_small_layers_or_whole_sequence_sums(two_blas_threads, small_chunks,
                                                            monkeypatch):
    _, threads = _spy(monkeypatch, two_blas_threads)
    _lstm_call(N=16, T=9, D=5, H=64, keep_d_gates=False)()   # N·4H = 4096: not worth it
    _lstm_call(**HELPED, keep_d_gates=True)()                 # one chunk: nothing to overlap
    assert threads["weight gradients"] == {threading.current_thread().name.split("_")[0]}


@needs_blas_control
def test_no_helper_inside_concurrent_work(two_blas_threads, small_chunks, monkeypatch):
    mlstm.set_random_seed(0)
    x = mlstm.Input((HELPED["T"], 3))
    y = mlstm.Dense(2)(mlstm.Bidirectional(mlstm.LSTM(HELPED["H"]))(x))
    model = mlstm.Model(x, y)
    model.compile("adam", "mse")
    seen, threads = _spy(monkeypatch, two_blas_threads)
    rng = np.random.default_rng(0)
    model.train_on_batch(rng.standard_normal((HELPED["N"], HELPED["T"], 3)).astype(np.float32),
                         rng.standard_normal((HELPED["N"], 2)).astype(np.float32))
    assert "mlstm-helper" not in threads["weight gradients"], threads
    assert len(threads["backward loop"]) == 2        # the two directions at once
    assert seen == {"forward loop": {1}, "backward loop": {1}, "input projection": {1},
                    "weight gradients": {1}}
    assert two_blas_threads.get() == 2


@needs_blas_control
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_rules_change_results_by_rounding_only(two_blas_threads, small_chunks, dtype):
    """With the rules (and the helper) and without them: the same values to rounding.

    Not bit for bit: OpenBLAS computes a small GEMM with another kernel (another order of
    the sums) when it runs it on one thread; as before between a BLAS of 1 and 2 threads.
    """
    run = _lstm_call(N=80, T=7, D=5, H=64, dtype=dtype, mask=True, keep_d_gates=False)
    with_rules = run()
    _lstm_threads.install(None, None)
    try:
        without_rules = run()
    finally:
        _lstm_threads.install(parallel.lstm_forward_threads, parallel.lstm_backward_threads)
    assert two_blas_threads.get() == 2
    tolerance = 1e-12 if dtype == np.float64 else 2e-6       # as tests/test_parallel.py
    for k, (a, b) in enumerate(zip(with_rules, without_rules)):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=tolerance,
                                   atol=tolerance * max(1.0, np.abs(b).max()), err_msg=k)
