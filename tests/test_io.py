"""Save, load and resume: exact round trips, atomic writes, refused files, bit-identical resume.

* save -> load -> predict gives the same bits; compile settings and optimizer state
  (Adam moments, step count) come back;
* fit stopped at epoch k and resumed from its checkpoint ends with weights and optimizer
  state equal, bit for bit, to a run that was never interrupted;
* a crash before the rename (raised, or a killed process), or in the middle of the write,
  leaves the previous checkpoint intact and loadable; fsync comes before the rename;
* truncated, damaged, foreign and crafted files (a pickled object array that would run code)
  are refused with a ValueError, and nothing in them is executed.
"""
import json
import os
import subprocess
import sys
import warnings
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mlstm
from mlstm import io as mio
from mlstm import losses
from mlstm.demo import build_demo_model
from mlstm.callbacks import ModelCheckpoint
from mlstm.data import make_demo_data
from mlstm.optimizers import SGD, Adam


def _data(n=24, seed=0, dtype="float32"):
    d = make_demo_data(n_samples=n, timesteps=4, features=(3, 2), seed=seed, dtype=dtype)
    return [d["x1"], d["x2"]], [d["y1"], d["y2"]]


def _model(optimizer=None, dtype="float32", loss=("mse", "binary_crossentropy")):
    model = build_demo_model(timesteps=4, features=(3, 2), units=3, dtype=dtype, seed=0)
    model.compile(optimizer=optimizer or Adam(1e-2), loss=list(loss), loss_weights=[0.7, 0.3],
                  metrics=[["mae"], ["accuracy"]])
    return model


def _same_bits(u, v):
    u, v = np.asarray(u), np.asarray(v)
    return u.dtype == v.dtype and u.shape == v.shape and u.tobytes() == v.tobytes()


def _assert_same_model(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb) and all(_same_bits(u, v) for u, v in zip(wa, wb))
    if a.compiled:
        sa, sb = a.optimizer.get_state(), b.optimizer.get_state()
        assert sa.keys() == sb.keys()
        assert all(_same_bits(sa[k], sb[k]) for k in sa), "optimizer state differs"


def _members(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _write_members(path, members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _refused(path, *parts):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError) as info:
            mlstm.load_model(path)
    for part in parts:
        assert part in str(info.value), str(info.value)
    return str(info.value)


# --------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_load_predict_is_identical(tmp_path, dtype):
    x, y = _data(dtype=dtype)
    model = _model(dtype=dtype)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, seed=1)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = mlstm.load_model(path)
    _assert_same_model(model, loaded)
    for a, b in zip(model.predict(x), loaded.predict(x)):
        assert _same_bits(a, b)
    assert loaded.get_config() == model.get_config()
    assert loaded._compile_config == model._compile_config
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.iterations == model.optimizer.iterations == 6
    assert loaded.training_state is None
    assert model.evaluate(x, y) == loaded.evaluate(x, y)
    # the file is an ordinary .npz: np.load reads it without pickle, the JSON is readable
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(npz["mlstm.json"].decode())
        assert _same_bits(npz["w0"], model.get_weights()[0])
    assert meta["format"] == "mlstm.model" and meta["compile"]["optimizer"]["iterations"] == 6
    # the next steps agree too: the optimizer state really came back
    model.train_on_batch(x, y)
    loaded.train_on_batch(x, y)
    _assert_same_model(model, loaded)


def test_uncompiled_and_non_trainable_models_round_trip(tmp_path):
    model = build_demo_model(timesteps=4, features=(3, 2), units=3, seed=2)
    model.get_layer("lstm_b").trainable = False
    model.save(tmp_path / "m.npz")
    loaded = mlstm.load_model(tmp_path / "m.npz")
    assert not loaded.compiled and not loaded.get_layer("lstm_b").trainable
    _assert_same_model(model, loaded)
    compiled = _model()
    compiled.save(tmp_path / "c.npz")
    assert not mlstm.load_model(tmp_path / "c.npz", compile=False).compiled


class _Huber(losses.Loss):
    name = "huber_like"

    def call(self, y_true, y_pred):
        return np.mean(np.abs(y_pred - y_true), axis=-1)

    def gradient(self, y_true, y_pred):
        return np.sign(y_pred - y_true) / y_pred.shape[-1]


def test_custom_losses_need_custom_objects(tmp_path):
    x, y = _data()
    model = _model(loss=(_Huber(), "binary_crossentropy"))
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, seed=0)
    path = tmp_path / "custom.npz"
    model.save(path)
    _refused(path, "'huber_like'", "custom_objects")
    loaded = mlstm.load_model(path, custom_objects={"huber_like": _Huber})
    _assert_same_model(model, loaded)
    assert isinstance(loaded._losses[0], _Huber)


# --------------------------------------------------------------------------- resume
class _Crash(Exception):
    pass


class _CrashAt:
    """Raise in the middle of an epoch, as a killed job would stop."""

    def __init__(self, epoch, step):
        self.epoch, self.step = epoch, step

    def on_after_update_step(self, step, info):
        if info["epoch"] == self.epoch and step == self.step:
            raise _Crash()


@pytest.mark.parametrize("optimizer", [
    lambda: Adam(1e-2), lambda: Adam(3e-3, amsgrad=True, clipnorm=0.5),
    lambda: SGD(0.05, momentum=0.9, nesterov=True)], ids=["adam", "amsgrad", "sgd"])
def test_resumed_training_is_bit_identical(tmp_path, optimizer):
    x, y = _data()
    val = _data(n=8, seed=5)
    kwargs = dict(epochs=5, batch_size=7, verbose=0, validation_data=val)
    mlstm.set_random_seed(11)
    straight = _model(optimizer())
    mlstm.set_random_seed(11)             # fit draws its shuffling seed from this stream
    straight_history = straight.fit(x, y, **kwargs)

    mlstm.set_random_seed(11)
    interrupted = _model(optimizer())
    mlstm.set_random_seed(11)
    path = tmp_path / "ckpt.npz"
    with pytest.raises(_Crash):
        interrupted.fit(x, y, checkpoint=path, callbacks=[_CrashAt(epoch=3, step=1)], **kwargs)
    resumed = mlstm.load_model(path)
    state = resumed.training_state
    assert state == {"initial_epoch": 3, "epochs": 5, "batch_size": 7,
                     "seed": straight_history.params["seed"], "shuffle": True}
    history = resumed.fit(x, y, verbose=0, validation_data=val, **state)
    _assert_same_model(straight, resumed)
    assert history.epoch == [3, 4]
    for key in history.history:
        assert history.history[key] == straight_history.history[key][3:], key


def test_checkpoint_names_every_epoch_and_keeps_the_best(tmp_path):
    x, y = _data()
    model = _model()
    pattern = str(tmp_path / "ck-{epoch:02d}-{loss:.3f}.npz")
    best = ModelCheckpoint(tmp_path / "best.npz", monitor="val_loss", save_best_only=True)
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0, seed=0,
                        validation_data=_data(n=8, seed=3), checkpoint=pattern,
                        callbacks=[best])
    names = sorted(p.name for p in tmp_path.iterdir())
    losses_ = history.history["loss"]
    expected = [f"ck-{e + 1:02d}-{losses_[e]:.3f}.npz" for e in range(3)]
    assert names == sorted(expected + ["best.npz"])          # and no temporary file left
    last = mlstm.load_model(tmp_path / expected[-1])
    _assert_same_model(model, last)
    best_epoch = int(np.argmin(history.history["val_loss"]))
    assert mlstm.load_model(tmp_path / "best.npz").training_state["initial_epoch"] == \
        best_epoch + 1


# --------------------------------------------------------------------------- atomic writes
def _saved(tmp_path, name="model.npz"):
    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, seed=0)
    path = tmp_path / name
    model.save(path)
    return model, path


def test_crash_between_write_and_rename_leaves_the_old_file(tmp_path, monkeypatch):
    old, path = _saved(tmp_path)
    before = path.read_bytes()
    newer = _model(SGD())
    events = []
    real_fsync = os.fsync

    def fsync(fd):
        events.append("fsync")
        real_fsync(fd)

    def crash(src, dst):
        events.append("replace")
        assert os.path.getsize(src) > 0
        raise OSError("simulated power cut before the rename")

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        newer.save(path)
    assert events == ["fsync", "replace"]           # flushed to disk before the rename
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]   # temporary file removed
    _assert_same_model(old, mlstm.load_model(path))


def test_crash_in_the_middle_of_the_write_leaves_the_old_file(tmp_path, monkeypatch):
    old, path = _saved(tmp_path)
    before = path.read_bytes()
    real = np.lib.format.write_array
    calls = []

    def write_then_die(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        _model().save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]
    _assert_same_model(old, mlstm.load_model(path))


def test_killed_process_leaves_the_old_file(tmp_path):
    """A real crash: the process dies (os._exit) between fsync and rename."""
    old, path = _saved(tmp_path)
    before = path.read_bytes()
    script = (
        "import os, sys\n"
        "from mlstm.demo import build_demo_model\n"
        "model = build_demo_model(timesteps=4, features=(3, 2), units=3, seed=9)\n"
        "os.replace = lambda src, dst: os._exit(3)\n"
        "model.save(sys.argv[1])\n")
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                          timeout=120)
    assert done.returncode == 3, done.stderr.decode()
    assert path.read_bytes() == before
    _assert_same_model(old, mlstm.load_model(path))
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "model.npz"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".model.npz.")  # the orphan temp


# --------------------------------------------------------------------------- refused files
@settings(max_examples=60, deadline=None)
@given(cut=st.floats(0.0, 0.999))
def test_truncated_files_are_refused(tmp_path_factory, cut):
    path = _SAVED_COPY(tmp_path_factory)
    data = path.read_bytes()
    bad = path.with_name("truncated.npz")
    bad.write_bytes(data[:int(len(data) * cut)])
    _refused(bad, "load_model")


@settings(max_examples=60, deadline=None)
@given(position=st.floats(0.0, 0.999), flip=st.integers(1, 255))
def test_damaged_files_are_refused_or_load_identically(tmp_path_factory, position, flip):
    """A flipped byte: refused (CRC, structure, JSON, header) with a ValueError, or, where it
    only touched zip metadata such as a timestamp, the model loads unchanged."""
    path = _SAVED_COPY(tmp_path_factory)
    data = bytearray(path.read_bytes())
    data[int(len(data) * position)] ^= flip
    bad = path.with_name("damaged.npz")
    bad.write_bytes(bytes(data))
    try:
        loaded = mlstm.load_model(bad)
    except ValueError as exc:
        assert "load_model" in str(exc)
    else:
        _assert_same_model(mlstm.load_model(path), loaded)


_CACHE = {}


def _SAVED_COPY(factory):
    if "path" not in _CACHE:
        _, path = _saved(factory.mktemp("saved"))
        _CACHE["path"] = path
    return _CACHE["path"]


def test_foreign_files_are_refused(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    _refused(text, "not an mlstm model file")
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    _refused(empty, "not an mlstm model file")
    npy = tmp_path / "array.npy"
    np.save(npy, np.zeros(3))
    _refused(npy, "not an mlstm model file")
    plain = tmp_path / "weights.npz"
    np.savez(plain, a=np.zeros(3))
    _refused(plain, "has no mlstm.json", "set_weights")
    with pytest.raises(FileNotFoundError, match="no file"):
        mlstm.load_model(tmp_path / "missing.npz")


def _edit_meta(path, out, edit):
    members = _members(path)
    meta = json.loads(members["mlstm.json"])
    edit(meta)
    members["mlstm.json"] = json.dumps(meta)
    _write_members(out, members)
    return out


def test_inconsistent_files_are_refused(tmp_path):
    _, path = _saved(tmp_path)
    cases = [
        (lambda m: m.update(format="keras"), ["not an mlstm model"]),
        (lambda m: m.update(format_version=99), ["format version 99"]),
        (lambda m: m["model"]["layers"][2].update(class_name="GRU"), ["'GRU'", "LSTM"]),
        (lambda m: m["model"]["layers"][2]["config"].update(units=5),
         ["'lstm_a/kernel'", "(3, 20)", "[3, 12]"]),
        (lambda m: m["weights"].pop(), ["do not match the architecture"]),
        (lambda m: m["weights"][0].update(key="w99"), ["w99.npy", "missing"]),
        (lambda m: m["compile"]["optimizer"]["state"][0].update(name="m/ghost/kernel"),
         ["'m/ghost/kernel'", "unknown parameter"]),
        (lambda m: m["compile"]["optimizer"].update(iterations=-1), ["iterations"]),
        (lambda m: m["compile"]["optimizer"].update(class_name="Ftrl"),
         ["'adam'", "Ftrl", "custom_objects"]),
        (lambda m: m.update(model=[]), ["architecture cannot be rebuilt"]),
        (lambda m: m.pop("weights"), ["'weights' must be a list"]),
    ]
    for k, (edit, parts) in enumerate(cases):
        _refused(_edit_meta(path, tmp_path / f"case{k}.npz", edit), *parts)
    members = _members(path)
    members["mlstm.json"] = b"{not json"
    _write_members(tmp_path / "badjson.npz", members)
    _refused(tmp_path / "badjson.npz", "not valid JSON")
    members = _members(path)
    members["w1.npy"] = members["w2.npy"]            # the bias (12,) where (3, 12) belongs
    _write_members(tmp_path / "swapped.npz", members)
    _refused(tmp_path / "swapped.npz", "'lstm_a/recurrent_kernel'", "shape")
    members = _members(path)
    buffer = __import__("io").BytesIO()
    np.save(buffer, np.zeros((3, 12), np.int64))
    members["w0.npy"] = buffer.getvalue()
    _write_members(tmp_path / "ints.npz", members)
    _refused(tmp_path / "ints.npz", "'lstm_a/kernel'", "float32 or float64", "int64")


class _Payload:
    """Unpickling this runs code: exactly what allow_pickle=False must never do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('executed')",))


def test_a_pickled_object_array_is_refused_and_never_executed(tmp_path):
    _, path = _saved(tmp_path)
    marker = tmp_path / "executed.txt"
    evil = np.empty(1, dtype=object)
    evil[0] = _Payload(str(marker))
    buffer = __import__("io").BytesIO()
    np.save(buffer, evil, allow_pickle=True)
    for member in ("w0.npy", "s0.npy"):
        members = _members(path)
        members[member] = buffer.getvalue()
        crafted = tmp_path / f"crafted_{member}.npz"
        _write_members(crafted, members)
        _refused(crafted, "cannot be read safely", "never unpickles")
        assert not marker.exists()
    # the JSON member disguised as an array is refused too
    members = _members(path)
    members["mlstm.json"] = buffer.getvalue()
    _write_members(tmp_path / "crafted_json.npz", members)
    _refused(tmp_path / "crafted_json.npz", "load_model")
    assert not marker.exists()


def test_save_refuses_a_missing_directory(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        _model().save(tmp_path / "nope" / "m.npz")
    with pytest.raises(ValueError, match="is a directory"):
        _model().save(tmp_path)
