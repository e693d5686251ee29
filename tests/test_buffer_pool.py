"""The LSTM buffer pool (mlstm.ops.lstm.BUFFERS) stays within one call's arrays.

- predicting (and training) on many sequence lengths keeps the bytes the pool holds at or
  below what one call at the longest length leaves in it (the old pool kept every length's
  arrays: 1 GB for 60 lengths at size L);
- after ``del model`` and a garbage collection the pool holds nothing of the model, and the
  memory is given back;
- at a fixed shape the same arrays are reused call after call (the point of the pool), also
  for a layer shared by inputs of different lengths and while the previous step's tape is
  still alive (as in ``fit``);
- an array someone still holds is never handed out again, and is forgotten once its call
  is over; ``max_bytes`` caps the whole pool; results do not depend on the pool.
"""
import gc
import threading
import tracemalloc

import numpy as np
import pytest

import mlstm
from mlstm.ops.lstm import BUFFERS

N, D, H = 64, 8, 64            # gate rows of 64 x 256 floats: every LSTM array is pooled


def _model(shared=False, return_sequences=False, seed=0):
    mlstm.set_random_seed(seed)
    x1, x2 = mlstm.Input((None, D), name="x1"), mlstm.Input((None, D), name="x2")
    if shared:
        lstm = mlstm.LSTM(H, name="shared")
        a, b = lstm(x1), lstm(x2)
    else:
        a = mlstm.LSTM(H, name="a", return_sequences=return_sequences)(x1)
        b = mlstm.LSTM(H, name="b")(x2)
    if return_sequences:
        return mlstm.Model([x1, x2], [a, mlstm.Dense(1, name="out2")(b)])
    merged = mlstm.concatenate([a, b])
    model = mlstm.Model([x1, x2], [mlstm.Dense(2, name="out1")(merged),
                                   mlstm.Dense(1, activation="sigmoid", name="out2")(merged)])
    model.compile("adam", ["mse", "binary_crossentropy"], loss_weights=[0.7, 0.3])
    return model


def _xs(T, rng, T2=None):
    return [rng.standard_normal((N, T, D)).astype(np.float32),
            rng.standard_normal((N, T if T2 is None else T2, D)).astype(np.float32)]


def _ys(rng):
    return [rng.standard_normal((N, 2)).astype(np.float32),
            (rng.random((N, 1)) < 0.5).astype(np.float32)]


def _pooled_arrays(model):
    """The ids of the arrays the pool holds for the model's LSTMs (ids only: holding the
    arrays would keep the pool from reusing them)."""
    held = set()
    for layer in model.layers:
        if isinstance(layer, mlstm.LSTM):
            buffers = BUFFERS.for_layer(layer.params["recurrent_kernel"])
            held.update(id(e.array) for e in buffers.entries)
    return held


@pytest.fixture(autouse=True)
def empty_pool():
    BUFFERS.clear()
    yield
    BUFFERS.clear()


LENGTHS = [23, 5, 40, 11, 31, 7, 40, 19, 2, 37, 13, 29, 3, 17, 40, 9, 25, 33, 6, 21]


def test_predicting_on_many_lengths_keeps_the_pool_within_one_call():
    rng = np.random.default_rng(0)
    model = _model()
    model.predict(_xs(max(LENGTHS), rng), batch_size=N)
    one_call = BUFFERS.nbytes
    # the two LSTMs' gates, h and c states at T = 40: 2 x (40·N·4H + 2·41·N·H) float32
    assert one_call >= 2 * (40 * N * 4 * H + 2 * 41 * N * H) * 4
    for T in LENGTHS:
        model.predict(_xs(T, rng), batch_size=N)
        assert BUFFERS.nbytes <= one_call, (T, BUFFERS.nbytes, one_call)
    # (keeping every length's gates and states, as the pool once did, would be 8x that)
    assert sum(2 * (T * N * 4 * H + 2 * (T + 1) * N * H) * 4 for T in set(LENGTHS)) > 8 * one_call


def test_training_on_many_lengths_keeps_the_pool_within_one_step():
    rng = np.random.default_rng(1)
    model = _model()
    ys = _ys(rng)
    model.train_on_batch(_xs(max(LENGTHS), rng), ys)
    one_step = BUFFERS.nbytes
    assert one_step > 0
    for T in LENGTHS:
        model.train_on_batch(_xs(T, rng), ys)
        assert BUFFERS.nbytes <= one_step, (T, BUFFERS.nbytes, one_step)


def test_nothing_is_retained_after_the_model_is_gone():
    gc.collect()
    tracemalloc.start()
    try:
        rng = np.random.default_rng(2)
        xs, ys = _xs(30, rng), _ys(rng)
        baseline = tracemalloc.get_traced_memory()[0]
        model = _model()
        model.fit(xs, ys, epochs=2, batch_size=32, verbose=0)
        model.predict(_xs(12, rng))
        assert BUFFERS.nbytes > 1 << 20
        in_use = tracemalloc.get_traced_memory()[0] - baseline
        del model
        gc.collect()
        assert BUFFERS.nbytes == 0
        left = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    # The pooled arrays and the gate constants went with the model's weights; what is left
    # is a few small Python objects (name counters and the like).
    assert in_use > 2 << 20
    assert left < 64 << 10, (left, in_use)


def test_a_fixed_shape_reuses_the_same_arrays():
    rng = np.random.default_rng(3)
    model = _model()
    xs, ys = _xs(20, rng), _ys(rng)
    for _ in range(2):
        model.train_on_batch(xs, ys)
        model.predict_on_batch(xs)
    held = _pooled_arrays(model)
    assert held
    for _ in range(3):
        model.train_on_batch(xs, ys)
        model.predict_on_batch(xs)
        assert _pooled_arrays(model) == held


def test_a_shared_layer_on_two_lengths_reuses_its_arrays_step_after_step():
    """Both inputs' gates and states stay in the pool and are reused. (The two backward
    passes run at the same time or one after the other, as the threads happen to go: a
    second set of the small per-pass scratch is kept only while calls use it.)"""
    rng = np.random.default_rng(4)
    model = _model(shared=True)
    xs, ys = _xs(20, rng, T2=9), _ys(rng)
    model.train_on_batch(xs, ys)
    buffers = BUFFERS.for_layer(model.get_layer("shared").params["recurrent_kernel"])

    def forward_arrays():
        shapes = {(20 * N, 4 * H), (21, N, H), (9 * N, 4 * H), (10, N, H)}
        return {id(e.array) for e in buffers.entries if e.array.shape in shapes}

    # What the two passes can need at once, for each length T: gates (T·N, 4H), h and c
    # states (T+1, N, H), dz (T, N, 4H), dh' (T, N, H) and the local factors' scratch
    # (8 steps: 8·N·4H + 3 · 8·N·H), float32.
    at_once = sum(4 * (T * N * 4 * H + 2 * (T + 1) * N * H + T * N * 4 * H + T * N * H
                       + 8 * N * 4 * H + 3 * 8 * N * H) for T in (20, 9))
    held = forward_arrays()
    assert len(held) == 6                   # gates, h and c states for each length
    for _ in range(6):
        model.train_on_batch(xs, ys)
        assert forward_arrays() == held
        assert BUFFERS.nbytes <= at_once


def test_fit_keeps_two_steps_of_arrays_and_reuses_them():
    """fit holds the previous step's tape while the next runs: two sets, alternately."""
    rng = np.random.default_rng(5)
    model = _model()
    xs = [np.concatenate([a] * 4) for a in _xs(20, rng)]
    ys = [np.concatenate([a] * 4) for a in _ys(rng)]
    model.fit(xs, ys, epochs=1, batch_size=N, verbose=0, shuffle=False)
    held = _pooled_arrays(model)
    model.fit(xs, ys, epochs=2, batch_size=N, verbose=0, shuffle=False)
    assert _pooled_arrays(model) == held


def test_an_array_still_held_is_never_reused_and_is_forgotten_after_its_call():
    rng = np.random.default_rng(6)
    model = _model(return_sequences=True)
    xs = _xs(20, rng)
    first = model.predict_on_batch(xs)[0]            # a view of the LSTM's pooled states
    expected = first.copy()
    for T in (20, 20, 13, 20):
        model.predict_on_batch(_xs(T, rng))
    np.testing.assert_array_equal(first, expected)
    base = first.base
    while base.base is not None:
        base = base.base
    assert id(base) not in _pooled_arrays(model)


def test_max_bytes_caps_the_whole_pool(monkeypatch):
    monkeypatch.setattr(BUFFERS, "max_bytes", 3 << 20)
    rng = np.random.default_rng(7)
    model = _model()
    for T in (40, 20, 40, 33):
        model.train_on_batch(_xs(T, rng), _ys(rng))
        assert BUFFERS.nbytes <= 3 << 20


def test_results_do_not_depend_on_the_pool(monkeypatch):
    rng = np.random.default_rng(8)
    xs, ys = _xs(17, rng), _ys(rng)
    results = []
    for enabled in (True, False):
        monkeypatch.setattr(BUFFERS, "enabled", enabled)
        model = _model(seed=3)
        model.train_on_batch(xs, ys)
        results.append((model.predict_on_batch(_xs(11, np.random.default_rng(9))),
                        model.get_weights()))
    for a, b in zip(*(r[0] + r[1] for r in results)):
        np.testing.assert_array_equal(a, b)


def test_two_models_in_two_threads_stay_bounded_and_correct():
    rng = np.random.default_rng(10)
    models = [_model(seed=0), _model(seed=1)]
    data = [_xs(T, rng) for T in LENGTHS[:8]]
    expected = [[m.predict_on_batch(x) for x in data] for m in models]
    for m in models:
        m.predict_on_batch(_xs(max(LENGTHS), rng))
    bound = BUFFERS.nbytes
    got, errors = [None, None], []

    def run(k):
        try:
            got[k] = [models[k].predict_on_batch(x) for x in data]
        except BaseException as error:       # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for k in range(2):
        for a, b in zip(got[k], expected[k]):
            for u, v in zip(a, b):
                np.testing.assert_array_equal(u, v)
    assert BUFFERS.nbytes <= bound
