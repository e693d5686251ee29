"""Independent LSTMs run at the same time (mlstm.parallel) and nothing observable changes.

- outputs, gradients and extras are bit-identical to running the layers one after the
  other (float32 and float64; masks, go_backwards, a stacked branch, a layer shared by two
  inputs);
- the model hands independent LSTMs to run_concurrently as one group (forward and
  backward), and run_concurrently really runs its calls at the same time, with NumPy's BLAS
  single-threaded meanwhile and its thread count restored afterwards, also when a call
  raises; the calls see the caller's np.errstate;
- small layers are not grouped; ``set_num_threads(1)`` runs everything on the caller's thread;
- the BLAS mlstm controls is NumPy's own, found by threadpoolctl; MKL or an OpenBLAS on
  OpenMP are left alone; the count is restored whichever thread leaves last.
"""
import threading

import numpy as np
import pytest
from hypothesis import given, settings

import mlstm
from mlstm import parallel, testing
from mlstm.layers import LSTM
from mlstm.ops import lstm as lstm_module

needs_blas_control = pytest.mark.skipif(
    not parallel.blas_controllable(),
    reason="NumPy's BLAS is not an OpenBLAS mlstm can make single-threaded: "
           "layers run one after the other there")


@pytest.fixture(autouse=True)
def default_threads():
    parallel.set_num_threads(2)
    yield
    parallel.set_num_threads(None)


T = 12


def _model(units=32, shared=False):
    mlstm.set_random_seed(0)
    x1, x2 = mlstm.Input((T, 3), name="x1"), mlstm.Input((T, 5), name="x2")
    masked = mlstm.Masking(0.0)(x1)
    if shared:
        branch = mlstm.LSTM(units, name="shared")
        a, b = branch(mlstm.Dense(4)(masked)), branch(mlstm.Dense(4)(x2))
    else:
        a = mlstm.LSTM(units, return_sequences=True, name="first")(masked)
        a = mlstm.LSTM(units, name="second")(a)
        b = mlstm.LSTM(units, go_backwards=True, name="other")(x2)
    merged = mlstm.concatenate([a, b])
    model = mlstm.Model([x1, x2], [mlstm.Dense(2, name="y")(merged),
                                   mlstm.Dense(1, activation="sigmoid", name="p")(merged)])
    model.compile("adam", ["mse", "binary_crossentropy"], loss_weights=[0.7, 0.3])
    return model


def _data(N, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x1 = rng.standard_normal((N, T, 3)).astype(dtype)
    x1[0, T // 2:] = 0                  # masked tail
    x1[1] = 0                           # a fully masked row
    xs = [x1, rng.standard_normal((N, T, 5)).astype(dtype)]
    ys = [rng.standard_normal((N, 2)).astype(dtype), (rng.random((N, 1)) < .5).astype(dtype)]
    return xs, ys


def _forward_backward(model, xs, ys, threads):
    parallel.set_num_threads(threads)
    tape = model.forward(xs)
    result = model.loss_and_output_grads(tape, ys)
    extras = {}
    grads, d_inputs = model.backward(tape, result.d_outputs, result.d_logits,
                                     input_grads=True, extras=extras)
    return tape.outputs, grads, d_inputs, extras


def _groups_run_together(monkeypatch):
    """Record the layer names of every group Model hands to run_concurrently."""
    groups = []
    run = parallel.run_concurrently

    def spy(calls):
        calls = list(calls)
        results = run(calls)
        names = []
        for call in calls:
            # forward: partial(run, pos); backward: partial(layer.backward, ...)
            owner = getattr(call.func, "__self__", None)
            names.append(owner.name if owner is not None else call.args[0])
        groups.append(names)
        return results

    monkeypatch.setattr(parallel, "run_concurrently", spy)
    return groups


@needs_blas_control
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shared", [False, True])
def test_concurrent_layers_give_bit_identical_results(dtype, shared, monkeypatch):
    N = 160                              # N·4H = 20480: above MIN_STEP_ELEMENTS
    assert N * 4 * 32 >= parallel.MIN_STEP_ELEMENTS
    model = _model(shared=shared)
    if dtype == np.float64:
        model = model.clone(np.float64)
    xs, ys = _data(N, dtype)
    groups = _groups_run_together(monkeypatch)
    out_c, grads_c, d_in_c, extras_c = _forward_backward(model, xs, ys, threads=2)
    names = [[model.nodes[n].layer.name if isinstance(n, int) else n for n in g]
             for g in groups if len(g) > 1]
    # Forward: the first LSTM of each branch. Backward: the last LSTM of each branch, as
    # the merge hands gradients to both at once (the stacked branch's first layer: alone).
    expected = ([["shared", "shared"]] * 2 if shared
                else [["first", "other"], ["other", "second"]])
    assert [sorted(g) for g in names] == expected, groups
    out_s, grads_s, d_in_s, extras_s = _forward_backward(model, xs, ys, threads=1)
    for a, b in zip(out_c, out_s):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)
    assert grads_c.keys() == grads_s.keys()
    for name in grads_s:
        np.testing.assert_array_equal(grads_c[name], grads_s[name], err_msg=name)
    for a, b in zip(d_in_c, d_in_s):
        np.testing.assert_array_equal(a, b)
    assert extras_c.keys() == extras_s.keys()
    for layer in extras_s:
        for key in extras_s[layer]:
            np.testing.assert_array_equal(extras_c[layer][key], extras_s[layer][key])


@needs_blas_control
def test_training_with_concurrent_layers_follows_the_same_path(monkeypatch):
    xs, ys = _data(320, np.float32, seed=1)
    groups = _groups_run_together(monkeypatch)
    histories = []
    for threads in (2, 1):
        parallel.set_num_threads(threads)
        model = _model()
        # batches of 160: N·4H = 20480, so the LSTMs are grouped in every step
        history = model.fit(xs, ys, epochs=2, batch_size=160, shuffle=False, verbose=0)
        histories.append((history.history["loss"], model.get_weights()))
    assert sum(len(g) == 2 for g in groups) == 2 * 2 * 2 * 2   # 2 runs x 4 steps x fwd, bwd
    assert histories[0][0] == histories[1][0]
    for a, b in zip(histories[0][1], histories[1][1]):
        np.testing.assert_array_equal(a, b)


def test_small_layers_are_not_grouped(monkeypatch):
    groups = _groups_run_together(monkeypatch)
    model = _model(units=4)              # N·4H = 16·16 = 256: below the threshold
    xs, ys = _data(16, np.float32)
    _forward_backward(model, xs, ys, threads=2)
    assert groups and all(len(g) == 1 for g in groups), groups


def test_one_thread_runs_every_call_on_the_calling_thread():
    parallel.set_num_threads(1)
    names = parallel.run_concurrently([lambda: threading.current_thread().name] * 3)
    assert names == [threading.current_thread().name] * 3


@needs_blas_control
def test_calls_really_run_at_the_same_time():
    # Each call waits for the other: one after the other, the barrier would time out.
    barrier = threading.Barrier(2, timeout=30)
    names = parallel.run_concurrently([lambda: (barrier.wait(),
                                                threading.current_thread().name)[1]] * 2)
    assert len(set(names)) == 2 and names[0] == threading.current_thread().name


@needs_blas_control
def test_blas_is_single_threaded_during_concurrent_work_and_restored_after():
    blas = parallel._numpy_blas()
    before = blas.get()
    seen = []
    results = parallel.run_concurrently([lambda: seen.append(blas.get()) or "a",
                                         lambda: seen.append(blas.get()) or "b"])
    assert results == ["a", "b"]
    assert seen == [1, 1]
    assert blas.get() == before


@needs_blas_control
def test_an_error_in_one_concurrent_call_is_raised_after_all_finish():
    blas = parallel._numpy_blas()
    before = blas.get()
    finished = threading.Event()

    def slow():
        finished.wait(0.05)
        finished.set()
        return 1

    def broken():
        raise RuntimeError("layer failed")

    with pytest.raises(RuntimeError, match="layer failed"):
        parallel.run_concurrently([broken, slow])
    assert finished.is_set()
    assert blas.get() == before


def test_run_concurrently_keeps_order_with_more_calls_than_threads():
    assert parallel.run_concurrently([lambda k=k: k * k for k in range(5)]) == [0, 1, 4, 9, 16]


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_set_num_threads_refuses_what_is_not_a_positive_int(bad):
    with pytest.raises(ValueError, match="positive int"):
        parallel.set_num_threads(bad)


def test_num_threads_defaults_to_the_blas_thread_count():
    parallel.set_num_threads(None)
    if parallel.blas_controllable():
        assert parallel.get_num_threads() == parallel._numpy_blas().get()
    else:
        assert parallel.get_num_threads() == 1
    parallel.set_num_threads(3)
    assert parallel.get_num_threads() == 3


@needs_blas_control
def test_concurrent_calls_see_the_callers_numpy_error_state():
    def overflow():
        return np.exp(np.float64(1000.0))

    with np.errstate(over="raise"):
        with pytest.raises(FloatingPointError):
            parallel.run_concurrently([lambda: 0.0, overflow])
        with pytest.raises(FloatingPointError):
            parallel.run_concurrently([overflow, lambda: 0.0])
    with np.errstate(over="ignore"):
        assert parallel.run_concurrently([overflow, overflow]) == [np.inf, np.inf]


@needs_blas_control
def test_small_models_run_with_single_threaded_blas_and_restore_it(monkeypatch):
    blas = parallel._numpy_blas()
    before = blas.get()
    seen = {}
    forward = LSTM.forward

    def spy(self, *args, **kwargs):
        seen.setdefault(self.name, set()).add(blas.get())
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(LSTM, "forward", spy)
    _forward_backward(_model(units=4), *_data(16, np.float32), threads=2)
    assert seen == {"first": {1}, "second": {1}, "other": {1}}
    assert blas.get() == before
    seen.clear()
    _forward_backward(_model(), *_data(160, np.float32), threads=2)
    # the grouped LSTMs run single-threaded; "second", alone, keeps the BLAS's threads
    assert seen == {"first": {1}, "other": {1}, "second": {before}}
    assert blas.get() == before


@needs_blas_control
@settings(max_examples=20, deadline=None)
@given(case=testing.cases())
def test_drawn_graphs_agree_with_every_lstm_concurrent_and_dz_in_one_step_chunks(case):
    """Drawn graphs (testing.cases: stacked LSTMs, masks, initial states from inputs or from
    the LSTM below, several inputs and heads) with every LSTM counted as worth a thread and
    dz summed one time step at a time: the same gradients as one after the other with
    whole-sequence sums, and the gradient check still passes."""
    def gradients():
        return case.model.gradients(case.x, case.y)

    reference = gradients()
    saved = parallel.MIN_STEP_ELEMENTS, lstm_module.GRADIENT_CHUNK_BYTES
    parallel.MIN_STEP_ELEMENTS, lstm_module.GRADIENT_CHUNK_BYTES = 0, 1   # chunks of 1 step
    try:
        concurrent = gradients()
        try:
            testing.assert_gradients_close(case.model, case.x, case.y)
        except testing.GradientMismatch as mismatch:
            if not mismatch.caveats:      # else finite differences cannot judge this draw
                raise
    finally:
        parallel.MIN_STEP_ELEMENTS, lstm_module.GRADIENT_CHUNK_BYTES = saved
    assert concurrent.keys() == reference.keys()
    for name in reference:
        tolerance = 1e-12 if reference[name].dtype == np.float64 else 2e-6
        np.testing.assert_allclose(concurrent[name], reference[name], rtol=tolerance,
                                   atol=tolerance * max(1.0, np.abs(reference[name]).max()),
                                   err_msg=name)


@needs_blas_control
def test_the_blas_mlstm_controls_is_numpys_own_even_with_scipys_loaded():
    import os

    import scipy.linalg  # noqa: F401 - loads SciPy's own OpenBLAS where its wheel has one
    from threadpoolctl import ThreadpoolController

    found = parallel._NumpyBLAS()
    loaded = {lib.filepath for lib in ThreadpoolController().lib_controllers
              if lib.internal_api == "openblas"}
    assert found.path in loaded
    numpy_dir = os.path.dirname(np.__file__)
    bundled = [p for p in loaded if os.path.basename(os.path.dirname(p)) == "numpy.libs"
               or p.startswith(numpy_dir)]
    if bundled:                          # a NumPy wheel: its own bundled OpenBLAS
        assert found.path in bundled, (found.path, loaded)


def test_no_blas_is_controlled_where_it_cannot_be_made_single_threaded(monkeypatch):
    """MKL, or an OpenBLAS on OpenMP (its limit holds per calling thread): layers then run
    one after the other."""
    import threadpoolctl

    class Lib:
        def __init__(self, internal_api, threading_layer):
            self.internal_api, self.threading_layer = internal_api, threading_layer
            self.filepath = f"/opt/lib/lib{internal_api}.so"
            self.dynlib = None            # would fail if mlstm tried to use it

    class Controller:
        lib_controllers = [Lib("mkl", "intel"), Lib("openblas", "openmp")]

    monkeypatch.setattr(threadpoolctl, "ThreadpoolController", Controller)
    blas = parallel._NumpyBLAS()
    assert blas.get is None and blas.set is None
    monkeypatch.setattr(parallel, "_blas", blas)
    assert not parallel.blas_controllable()
    parallel.set_num_threads(None)
    assert parallel.get_num_threads() == 1
    with parallel.single_threaded_blas():         # nothing to set: no error
        pass


@needs_blas_control
def test_blas_threads_are_restored_when_threads_enter_and_leave_in_any_order():
    """Thread A enters single_threaded_blas, thread B enters, A leaves, then B: the count
    goes back to what it was (the last to leave restores it, whichever thread that is)."""
    blas = parallel._numpy_blas()
    before = blas.get()
    a_entered, b_entered, a_left = threading.Event(), threading.Event(), threading.Event()
    seen = []

    def a():
        with parallel.single_threaded_blas():
            a_entered.set()
            b_entered.wait(10)
            seen.append(blas.get())
        a_left.set()

    def b():
        a_entered.wait(10)
        with parallel.single_threaded_blas():
            b_entered.set()
            a_left.wait(10)
            seen.append(blas.get())

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [1, 1]
    assert blas.get() == before
