"""The memory a batch implies: estimated before allocating, checked against measurements,
refused beyond ``mlstm.io.limits.MAX_BATCH_BYTES`` (issue 16).

The estimate (:mod:`mlstm.io.memory`, from each layer's ``activation_bytes``) must be an
upper bound of what a step really takes, and not a loose one: for every model below, the
peak that ``tracemalloc`` sees during a training step and during ``predict`` (NumPy reports
its arrays to it; the buffer pool is emptied first, so the step allocates every array it
uses) satisfies ``measured <= estimate <= FACTOR * measured``. The ratios measured for
these cases (docs/reliability.md, section 6) were 1.014-1.121 for a training step and
1.051-1.204 for predict and evaluate (the highest for TimeDistributed, whose estimate
assumes its input is copied into rows).
"""
import gc
import time
import tracemalloc

import numpy as np
import pytest

import mlstm
from mlstm.io import limits
from mlstm.io import memory as io_memory
from mlstm.io.memory import check_memory, estimate_memory
from mlstm.layers.memory import ActivationBytes, CallShapes
from mlstm.ops.lstm import BUFFERS
from test_components import _build, _data, _layer_cases
from test_hostile import _npy, _npy_header, _raw_zip, _refused_in_child, _stored

#: measured <= estimate <= FACTOR * measured (the largest ratio measured here: 1.204).
FACTOR = 1.3


def _model(kind, T, D, H, dtype="float32"):
    mlstm.set_random_seed(0)
    if kind == "embedding":
        x = mlstm.Input((T,), name="x", dtype="int32")
        h = mlstm.Embedding(50, D, mask_zero=True, dtype=dtype)(x)
    else:
        x = mlstm.Input((T, D), name="x", dtype=dtype)
        h = x
    if kind == "lstm":
        y = mlstm.Dense(1)(mlstm.LSTM(H)(h))
    elif kind == "sequence":
        y = mlstm.Dense(2)(mlstm.LSTM(H, return_sequences=True)(h))
    elif kind == "stacked":
        y = mlstm.Dense(1)(mlstm.LSTM(H)(mlstm.LSTM(H, return_sequences=True)(h)))
    elif kind == "bidirectional":
        h = mlstm.Bidirectional(mlstm.LSTM(H, return_sequences=True))(h)
        y = mlstm.TimeDistributed(mlstm.Dense(1))(h)
    elif kind == "embedding":
        y = mlstm.Dense(1, activation="sigmoid")(mlstm.LSTM(H)(h))
    elif kind == "time_distributed":
        h = mlstm.TimeDistributed(mlstm.Dense(H, activation="tanh"))(h)
        y = mlstm.TimeDistributed(mlstm.Dense(3))(mlstm.LSTM(H, return_sequences=True)(h))
    elif kind == "dropout":          # dropout acts in fit: the per-gate dropout op
        y = mlstm.Dense(1)(mlstm.LSTM(H, dropout=0.2, recurrent_dropout=0.2)(h))
    model = mlstm.Model(x, y)
    model.compile(optimizer="adam",
                  loss="binary_crossentropy" if kind == "embedding" else "mse")
    rng = np.random.default_rng(1)
    return model, rng


def _arrays(model, rng, kind, N, T, D):
    if kind == "embedding":
        x = rng.integers(0, 50, (N, T)).astype("int32")
    else:
        x = rng.standard_normal((N, T, D)).astype(model.dtype)
    y = rng.random((N,) + model.outputs[0].shape).astype(model.dtype)
    return x, y


def _peak(run):
    """Peak bytes ``tracemalloc`` sees during ``run()``, the buffer pool emptied first."""
    BUFFERS.clear()
    gc.collect()
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


KINDS = ["lstm", "sequence", "stacked", "bidirectional", "embedding", "time_distributed",
         "dropout"]
SHAPES = [(96, 30, 8, 48), (192, 20, 16, 96)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("N, T, D, H", SHAPES)
def test_the_estimate_bounds_the_measured_peak(kind, N, T, D, H):
    model, rng = _model(kind, T, D, H)
    x, y = _arrays(model, rng, kind, N, T, D)
    # a first step: the optimizer's moments exist, as in every step but the first
    model.fit(x, y, batch_size=N, epochs=1, verbose=0, seed=0)
    model.predict(x, batch_size=N)
    if kind == "dropout":
        train = _peak(lambda: model.fit(x, y, batch_size=N, epochs=1, verbose=0, seed=0,
                                        shuffle=False))
    else:
        train = _peak(lambda: model.train_on_batch(x, y))
    predict = _peak(lambda: model.predict(x, batch_size=N))
    evaluate = _peak(lambda: model.evaluate(x, y, batch_size=N))
    for mode, measured, samples in (("train", train, N if kind == "dropout" else None),
                                    ("predict", predict, N), ("evaluate", evaluate, None)):
        estimate = estimate_memory(model, [x.shape], N, mode, samples=samples).total
        assert measured <= estimate <= FACTOR * measured, (mode, measured, estimate,
                                                           estimate / measured)


@pytest.mark.parametrize("cls, example", _layer_cases())
def test_every_registered_layer_answers_with_an_upper_bound(cls, example):
    """Each registered layer (its own answer or the default): sizes in bytes, growing with
    the batch, and the model's estimate bounds what its training step and predict take."""
    model = _build(cls, example, dtype="float32")
    xs, ys = _data(model, n=8192)
    shapes = [a.shape for a in xs]
    node = next(n for n in model.nodes if n.layer.name == "subject")
    call = CallShapes([tuple(t.shape) if None not in t.shape else tuple(a.shape[1:])
                       for t, a in zip(node.inputs, xs)],
                      [tuple(t.shape) for t in node.outputs],
                      [t.has_mask for t in node.inputs], 8192, 4, True)
    answer = node.layer.activation_bytes(call)
    assert isinstance(answer, ActivationBytes)
    assert all(isinstance(v, int) and v >= 0 for v in answer[:3]), answer
    assert answer.note and node.layer.name in answer.note
    for mode in ("train", "predict", "evaluate"):
        small = estimate_memory(model, shapes, 64, mode).total
        assert estimate_memory(model, shapes, 8192, mode).total > small > 0
    model.train_on_batch(xs, ys)
    train = _peak(lambda: model.train_on_batch(xs, ys))
    predict = _peak(lambda: model.predict(xs, batch_size=8192))
    assert train <= estimate_memory(model, shapes, 8192, "train").total
    assert predict <= estimate_memory(model, shapes, 8192, "predict", samples=8192).total


# --------------------------------------------------------------------------- refusals
def _big_lstm():
    """An LSTM whose batch of 4096 sequences of 2000 steps needs tens of GB (its weights:
    270 KB). The data are zero-strided: they take no memory."""
    mlstm.set_random_seed(0)
    x = mlstm.Input((2000, 8), name="x")
    model = mlstm.Model(x, mlstm.Dense(1, name="out")(mlstm.LSTM(128, name="lstm_1")(x)))
    model.compile(optimizer="adam", loss="mse")
    return model


def _zero_strided(shape):
    return np.broadcast_to(np.float32(0.5), shape)


def test_a_batch_beyond_the_limit_is_refused_saying_why_and_how_to_go_on():
    model = _big_lstm()
    x, y = _zero_strided((4096, 2000, 8)), _zero_strided((4096, 1))
    before = model.get_weights()
    with pytest.raises(ValueError) as info:
        model.fit(x, y, batch_size=4096, epochs=1, verbose=0)
    message = str(info.value)
    for part in ("fit: one training step at batch_size 4096 would need about 27.9 GiB",
                 "beyond 4 GiB (mlstm.io.limits.MAX_BATCH_BYTES); refused before allocating",
                 "LSTM 'lstm_1' keeps 4·N·T·H gate values, 2·N·(T+1)·H states and N·T·H "
                 "step gradients for backward (N 4096, T 2000, H 128): 27.4 GiB",
                 "pass batch_size=", "mlstm.io.limits.MAX_BATCH_BYTES = 28 * 2**30"):
        assert part in message, message
    fits = int(message.split("pass batch_size=")[1].split()[0])
    assert estimate_memory(model, [x.shape], fits, "train").total <= limits.MAX_BATCH_BYTES
    assert estimate_memory(model, [x.shape], fits + 1, "train").total > limits.MAX_BATCH_BYTES
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))
    assert model.optimizer.iterations == 0
    for call, words in ((lambda: model.predict(x, batch_size=4096), "predicting at batch"),
                        (lambda: model.evaluate(x, y, batch_size=4096), "evaluating one batch"),
                        (lambda: model.train_on_batch(x, y), "train_on_batch: one training"),
                        (lambda: model.predict_on_batch(x), "predict_on_batch: predicting"),
                        (lambda: model.gradients(x, y), "gradients: one training step")):
        with pytest.raises(ValueError, match="MAX_BATCH_BYTES") as info:
            call()
        assert words in str(info.value)
    # smaller batches of the same data are not refused by the check
    assert check_memory(model, [x.shape], 32, "train", "fit").total < 2 ** 30


def test_validation_data_is_checked_at_its_own_batch_size():
    model = _big_lstm()
    x, y = _zero_strided((2, 2000, 8)), _zero_strided((2, 1))
    xv, yv = _zero_strided((4096, 2000, 8)), _zero_strided((4096, 1))
    with pytest.raises(ValueError, match="fit: validation_data: evaluating one batch at "
                                         "batch_size 4096"):
        model.fit(x, y, validation_data=(xv, yv), validation_batch_size=4096, verbose=0)
    assert model.optimizer.iterations == 0


def test_the_limit_is_raised_the_way_the_other_limits_are(monkeypatch):
    model, rng = _model("lstm", 20, 4, 8)
    x, y = _arrays(model, rng, "lstm", 64, 20, 4)
    needed = estimate_memory(model, [x.shape], 64, "train").total
    monkeypatch.setattr(limits, "MAX_BATCH_BYTES", needed - 1)
    with pytest.raises(ValueError, match="MAX_BATCH_BYTES"):
        model.train_on_batch(x, y)
    monkeypatch.setattr(limits, "MAX_BATCH_BYTES", needed)
    model.train_on_batch(x, y)
    assert model.optimizer.iterations == 1


def test_a_layer_must_answer_with_activation_bytes():
    model, rng = _model("lstm", 5, 2, 3)
    layer = model.layers[1]
    layer.activation_bytes = lambda call: 12
    with pytest.raises(TypeError, match="activation_bytes must return an ActivationBytes"):
        estimate_memory(model, [(4, 5, 2)], 4, "train")


# --------------------------------------------------------------------------- cost
def test_the_check_runs_once_per_call_not_per_batch(monkeypatch):
    model, rng = _model("stacked", 10, 3, 4)
    x, y = _arrays(model, rng, "stacked", 64, 10, 3)
    calls = []
    real = io_memory.estimate_memory
    monkeypatch.setattr(io_memory, "estimate_memory",
                        lambda *a, **k: calls.append(a[3]) or real(*a, **k))
    model.fit(x, y, batch_size=4, epochs=2, verbose=0, validation_data=(x, y))
    assert calls == ["train", "evaluate"]                 # 32 steps, 2 validations
    calls.clear()
    for _ in range(5):
        model.train_on_batch(x, y)
    assert calls == ["train"]                             # remembered for these shapes
    calls.clear()
    model.predict(x, batch_size=8)
    model.evaluate(x, y, batch_size=8)
    assert calls == ["predict", "evaluate"]


def test_the_check_costs_little_next_to_a_step():
    from mlstm.demo import build_demo_model
    from mlstm.data import make_demo_data

    model = build_demo_model(timesteps=20, features=(8, 4), units=16, seed=0)
    model.compile(optimizer="adam", loss=["mse", "binary_crossentropy"])
    d = make_demo_data(n_samples=32, timesteps=20, features=(8, 4), seed=0)
    x, y = [d["x1"], d["x2"]], [d["y1"], d["y2"]]
    shapes = [a.shape for a in x]
    model.train_on_batch(x, y)
    repeats = 20
    start = time.perf_counter()
    for _ in range(repeats):
        estimate_memory(model, shapes, 32, "train")
    estimate = (time.perf_counter() - start) / repeats
    start = time.perf_counter()
    for _ in range(repeats):
        model.train_on_batch(x, y)
    step = (time.perf_counter() - start) / repeats
    # computed once per fit call (above); even once per step it would be a small share
    assert estimate < 0.25 * step, (estimate, step)


# --------------------------------------------------------------------------- limited memory
BIG = ("import numpy as np\n"
       "x = mlstm.Input((2000, 8), name='x')\n"
       "m = mlstm.Model(x, mlstm.Dense(1)(mlstm.LSTM(128, name='lstm_1')(x)))\n"
       "m.compile(optimizer='adam', loss='mse')\n"
       "xs = np.broadcast_to(np.float32(0.5), (4096, 2000, 8))\n"
       "ys = np.broadcast_to(np.float32(0.5), (4096, 1))\n")


@pytest.mark.parametrize("call, parts", [
    ("m.fit(xs, ys, batch_size=4096, verbose=0)", ["fit: one training step", "27.9 GiB"]),
    ("m.predict(xs, batch_size=4096)", ["predict: predicting", "23.8 GiB"]),
    ("m.evaluate(xs, ys, batch_size=4096)", ["evaluate: evaluating one batch"])])
def test_data_implying_tens_of_gigabytes_is_refused_in_a_limited_process(tmp_path, call,
                                                                          parts):
    outcome = _refused_in_child(tmp_path, BIG + call + "\n", "LSTM 'lstm_1' keeps",
                                "MAX_BATCH_BYTES", *parts)
    assert outcome["seconds"] < 10, outcome


def test_the_diagnose_command_refuses_such_data_from_its_headers(tmp_path, monkeypatch,
                                                                 capsys):
    """The data file's header claims (4096, 2000, 8): refused before it is read (the
    member holds no data to read), exit status 2, one line."""
    from mlstm.diagnostics import cli

    model = _big_lstm()
    monkeypatch.setattr(cli, "_load_model", lambda path: model)
    fake = tmp_path / "model.keras"
    _raw_zip(fake, [_stored("config.json", b"{}")])
    data = _raw_zip(tmp_path / "data.npz",
                    [_stored("x.npy", _npy_header((4096, 2000, 8), "<f4") + bytes(64)),
                     _stored("y.npy", _npy(np.zeros((4096, 1), np.float32)))])
    assert cli.main([str(fake), str(data), "--batch-size", "4096", "--no-verify"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    for part in ("data file", "(--batch-size 4096)", "LSTM 'lstm_1' keeps",
                 "MAX_BATCH_BYTES", "pass batch_size="):
        assert part in err[0], err[0]


def test_the_crosscheck_command_refuses_before_its_steps(tmp_path, monkeypatch, capsys):
    """The whole data is one batch of the cross-check: 1024 sequences of 2000 steps into an
    LSTM of 512 units need about 27 GiB (the file: 8 MB). Keras is not needed to refuse."""
    from mlstm.interop.keras import command_line, importing

    mlstm.set_random_seed(0)
    x = mlstm.Input((2000, 1), name="x")
    model = mlstm.Model(x, mlstm.Dense(1, name="y")(mlstm.LSTM(512, name="big")(x)))
    model.compile(optimizer="adam", loss="mse")
    monkeypatch.setattr(command_line, "_load_keras", lambda path: None)
    monkeypatch.setattr(importing, "from_keras", lambda kmodel: model)
    (tmp_path / "m.keras").write_bytes(b"PK")
    np.savez(tmp_path / "d.npz", x=np.zeros((1024, 2000, 1), np.float32),
             y=np.zeros((1024, 1), np.float32))
    assert command_line.cli_main([str(tmp_path / "m.keras"), str(tmp_path / "d.npz")]) == 2
    err = capsys.readouterr().err
    for part in ("d.npz", "one training step at batch_size 1024",
                 "LSTM 'big' keeps", "MAX_BATCH_BYTES", "--samples"):
        assert part in err, err
