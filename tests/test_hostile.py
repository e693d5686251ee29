"""Hostile files and numbers: what a careful user's adversary tries, and what mlstm does.

Every case of issue 16's list must end in a ``ValueError`` or ``TypeError`` that names the
problem, or in correct behaviour; and in every case nothing is written outside the paths
the user passed (the working directory stays empty, the inputs unchanged).

Cases that could allocate run in a subprocess with a limited address space (``RLIMIT_AS``
of 1 GiB: a runaway allocation fails there instead of taking the machine's memory) and
must peak under 300 MB of resident memory, the ~55 MB of Python, NumPy, SciPy and mlstm
included. Their files are under 1 MB, except those that stand for a gigabyte (a few MB,
still inflating 1000:1) and one uncompressed 6 MB JSON. Those large members are made
without ever holding the inflated bytes: a raw deflate stream of one compressed chunk
repeated (after a full flush, every chunk compresses to the same bytes).
"""
import io
import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib

import numpy as np
import pytest

import mlstm
from mlstm import io as mio
from mlstm.demo import build_demo_model
from mlstm.data import make_demo_data
from mlstm.optimizers import Adam
from mlstm.validation import NonFiniteError, check_finite_weights

ADDRESS_SPACE = 1 << 30
PEAK_RSS = 300 * 2 ** 20


# --------------------------------------------------------------------------- files
def _data(n=24, seed=0):
    d = make_demo_data(n_samples=n, timesteps=4, features=(3, 2), seed=seed)
    return [d["x1"], d["x2"]], [d["y1"], d["y2"]]


def _model(lr=1e-2):
    model = build_demo_model(timesteps=4, features=(3, 2), units=3, seed=0)
    model.compile(optimizer=Adam(lr), loss=["mse", "binary_crossentropy"],
                  loss_weights=[0.7, 0.3])
    return model


class _StopAt(mlstm.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            self.model.stop_training = True


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A genuine checkpoint: fit stopped after epoch 1 of 4 (training_state resumes at 2)."""
    path = tmp_path_factory.mktemp("genuine") / "ckpt.npz"
    x, y = _data()
    _model().fit(x, y, epochs=4, batch_size=8, verbose=0, seed=3, checkpoint=path,
                 callbacks=[_StopAt(1)])
    return path


def _members(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _write_members(path, members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _edit_meta(src, dst, edit, text=None):
    members = _members(src)
    meta = json.loads(members["mlstm.json"])
    edit(meta)
    members["mlstm.json"] = text(json.dumps(meta)) if text else json.dumps(meta)
    return _write_members(dst, members)


def _npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _npy_header(shape, dtype):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": tuple(shape)})
    return buffer.getvalue()


def _repeated_deflate(prefix, chunk, count, suffix=b""):
    """A raw deflate stream of ``prefix + chunk * count + suffix`` made from one compressed
    chunk, its CRC-32 and its length, without ever holding the inflated bytes."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
    body = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH) == body
    tail = compressor.compress(suffix) + compressor.flush()
    crc = zlib.crc32(prefix)
    for _ in range(count):
        crc = zlib.crc32(chunk, crc)
    crc = zlib.crc32(suffix, crc)
    return head + body * count + tail, crc, len(prefix) + len(chunk) * count + len(suffix)


def _raw_zip(path, members):
    """A zip written field by field: ``members`` is a list of ``(name, data, method, crc,
    size)`` with ``data`` already compressed (method 8) or stored (0); ``size`` may lie."""
    out, central = bytearray(), bytearray()
    for name, data, method, crc, size in members:
        encoded = name.encode()
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc,
                           len(data), size, len(encoded), 0) + encoded + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21,
                               crc, len(data), size, len(encoded), 0, 0, 0, 0, 0,
                               offset) + encoded
    out += central + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members),
                                 len(central), len(out), 0)
    path.write_bytes(bytes(out))
    return path


def _stored(name, data):
    return (name, data, 0, zlib.crc32(data), len(data))


# --------------------------------------------------------------------------- the runner
CHILD = r"""
import json, resource, sys, time
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
paths = json.loads(sys.argv[3])
outcome = {"exception": None, "message": None, "value": None}
start = time.perf_counter()
namespace = {"paths": paths}
try:
    exec(compile(sys.argv[2], "<case>", "exec"), namespace)
    outcome["value"] = namespace.get("value")
except BaseException as exc:
    kinds = [c.__name__ for c in type(exc).__mro__]
    kind = next((k for k in ("ValueError", "TypeError") if k in kinds), kinds[0])
    outcome.update(exception=kind, exception_class=kinds[0], message=str(exc)[:5000])
outcome["seconds"] = time.perf_counter() - start
# VmHWM: the peak resident set of this process's memory since exec (ru_maxrss would
# start from the parent's resident set at fork, which Linux carries across exec).
with open("/proc/self/status") as status:
    outcome["peak_rss"] = next(int(line.split()[1]) * 1024 for line in status
                               if line.startswith("VmHWM:"))
print(json.dumps(outcome))
"""


def _tree(root):
    return {os.path.relpath(os.path.join(d, f), root):
            (os.path.getsize(os.path.join(d, f)), os.stat(os.path.join(d, f)).st_mtime_ns)
            for d, _, files in os.walk(root) for f in files}


def _in_child(tmp_path, code, **paths):
    """Run ``code`` (with ``paths``) in a memory-limited child whose working directory is
    empty; check the peak, that nothing was written, and return the outcome."""
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    before = _tree(tmp_path)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1", MALLOC_ARENA_MAX="2",
               PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(ADDRESS_SPACE), "import mlstm, mlstm.io\n" + code,
         json.dumps({k: str(v) for k, v in paths.items()})],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["exception"] != "MemoryError", outcome
    assert outcome["peak_rss"] < PEAK_RSS, outcome
    assert _tree(tmp_path) == before, "the case wrote or changed a file"
    return outcome


def _refused_in_child(tmp_path, code, *parts, kind="ValueError", **paths):
    outcome = _in_child(tmp_path, code, **paths)
    assert outcome["exception"] == kind, outcome
    for part in parts:
        assert part in outcome["message"], outcome["message"]
    return outcome


@pytest.fixture
def quiet_dir(tmp_path, monkeypatch):
    """An empty working directory that must stay empty (for cases run in this process)."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    yield tmp_path
    assert not list(cwd.iterdir()), "something was written to the working directory"


def _refused(path, *parts, **kwargs):
    with pytest.raises(ValueError) as info:
        mlstm.io.load_model(path, **kwargs)
    for part in parts:
        assert part in str(info.value), str(info.value)
    return str(info.value)


# --------------------------------------------------------------------------- 1. instructions
@pytest.mark.parametrize("key, value", [
    ("checkpoint", "victim_notes.txt"), ("callbacks", ["victim_notes.txt"]),
    ("validation_data", "victim_notes.txt"), ("trace", True), ("x", [[1.0]])])
def test_a_crafted_training_state_is_refused_and_writes_nothing(checkpoint, quiet_dir, key,
                                                                value):
    crafted = _edit_meta(checkpoint, quiet_dir / "crafted.npz",
                         lambda m: m["training_state"].update({key: value}))
    message = _refused(crafted, f"training_state holds {key!r}", "not allowed")
    assert "initial_epoch" in message
    assert not (quiet_dir / "cwd" / "victim_notes.txt").exists()


@pytest.mark.parametrize("where", ["top", "compile", "optimizer", "weights", "model", "node"])
def test_a_key_the_format_does_not_define_is_refused_anywhere(checkpoint, quiet_dir, where):
    edits = {"top": lambda m: m.update(on_load="victim_notes.txt"),
             "compile": lambda m: m["compile"].update(callbacks=["x"]),
             "optimizer": lambda m: m["compile"]["optimizer"].update(path="victim_notes.txt"),
             "weights": lambda m: m["weights"][0].update(url="file:///etc/passwd"),
             "model": lambda m: m["model"].update(hooks=[]),
             "node": lambda m: m["model"]["nodes"][0].update(kwargs={"training": True})}
    message = _refused(_edit_meta(checkpoint, quiet_dir / "k.npz", edits[where]))
    assert any(k in message for k in ("on_load", "callbacks", "path", "url", "hooks",
                                      "training")), message


@pytest.mark.parametrize("edit, part", [
    (lambda s: s.update(seed=-1), "seed"), (lambda s: s.update(batch_size=0), "batch_size"),
    (lambda s: s.update(shuffle="yes"), "shuffle"), (lambda s: s.update(epochs=10 ** 400),
                                                     "epochs"),
    (lambda s: s.update(initial_epoch=9), "initial_epoch"), (lambda s: s.pop("seed"), "seed"),
    (lambda s: s.update(epochs=2.0), "epochs")])
def test_training_state_values_are_checked(checkpoint, quiet_dir, edit, part):
    crafted = _edit_meta(checkpoint, quiet_dir / "s.npz", lambda m: edit(m["training_state"]))
    message = _refused(crafted, part)
    assert len(message) < 600          # a 400-digit number is shortened
    with pytest.raises(ValueError, match="training_state"):
        mlstm.io.save_model(_model(), quiet_dir / "out.npz",
                            training_state={"initial_epoch": 0, "epochs": 1, "batch_size": 1,
                                            "seed": 0, "shuffle": True, "checkpoint": "x"})
    assert not (quiet_dir / "out.npz").exists()


def test_resuming_writes_only_where_the_user_says(checkpoint, quiet_dir):
    x, y = _data()
    model = mlstm.io.load_model(checkpoint)
    state = model.training_state
    assert state == {"initial_epoch": 2, "epochs": 4, "batch_size": 8, "seed": 3,
                     "shuffle": True}
    before = _tree(checkpoint.parent), _tree(quiet_dir)
    history = model.fit(x, y, verbose=0, **state)
    assert history.epoch == [2, 3]
    assert (_tree(checkpoint.parent), _tree(quiet_dir)) == before     # nothing written
    mine = quiet_dir / "mine.npz"
    mlstm.io.load_model(checkpoint).fit(x, y, verbose=0, checkpoint=mine, **state)
    assert set(_tree(quiet_dir)) == set(before[1]) | {"mine.npz"}
    assert _tree(checkpoint.parent) == before[0]


# --------------------------------------------------------------------------- 2. NaN and inf
@pytest.mark.parametrize("member, value, name", [
    ("w0.npy", np.nan, "weight 'lstm_a/kernel'"), ("w0.npy", -np.inf, "weight 'lstm_a/kernel'"),
    ("s0.npy", np.inf, "optimizer state")])
def test_nonfinite_arrays_in_a_file_are_refused(checkpoint, quiet_dir, member, value, name):
    members = _members(checkpoint)
    array = np.load(io.BytesIO(members[member]))
    array[1, 2] = value
    members[member] = _npy(array)
    crafted = _write_members(quiet_dir / "nan.npz", members)
    kind = "NaN" if np.isnan(value) else ("inf" if value > 0 else "-inf")
    _refused(crafted, name, f"{kind} at index [1, 2]", "allow_nonfinite=True")
    loaded = mlstm.io.load_model(crafted, allow_nonfinite=True)   # to look at, on request
    if member == "w0.npy":
        assert np.array_equal(loaded.get_layer("lstm_a").get_weights()[0], array,
                              equal_nan=True)


def test_check_finite_weights_names_the_weight_and_the_index():
    check_finite_weights(np.ones((2, 3)), "w")
    check_finite_weights(np.arange(3), "ints are finite")
    bad = np.ones((2, 3), np.float32)
    bad[1, 0] = np.inf
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"Dense 'd': weight 'd/kernel' holds inf at index "
                                         r"\[1, 0\], 2 of 6 entries.*\(see here\)"):
        check_finite_weights(bad, "Dense 'd': weight 'd/kernel'", hint="see here")


@pytest.mark.parametrize("config, text, part", [
    ({"learning_rate": 1e39}, None, "learning_rate = 1e+39"),
    ({"learning_rate": 1e20, "weight_decay": 1e20}, None, "weight_decay * learning_rate"),
    ({"learning_rate": 1.0}, lambda t: t.replace('"learning_rate": 1.0', '"learning_rate": 1e400'),
     "beyond the range of a float"),
    ({"learning_rate": 1.0}, lambda t: t.replace('"learning_rate": 1.0', '"learning_rate": NaN'),
     "NaN")])
def test_learning_rates_that_cannot_be_finite_are_refused_in_files(checkpoint, quiet_dir,
                                                                   config, text, part):
    crafted = _edit_meta(checkpoint, quiet_dir / "lr.npz",
                         lambda m: m["compile"]["optimizer"]["config"].update(config), text)
    _refused(crafted, part)
    if text is None:                                   # valid JSON: the weights alone load
        assert not mlstm.io.load_model(crafted, compile=False).compiled


def test_an_update_that_overflows_stops_fit_with_the_last_good_weights(checkpoint, quiet_dir):
    x, y = _data()
    for make in (lambda: Adam(1e39), lambda: mlstm.optimizers.SGD(1e39),
                 lambda: Adam(1e20, weight_decay=1e20)):
        with pytest.raises(ValueError, match="beyond the range of float32"):
            _model().compile(optimizer=make(), loss=["mse", "binary_crossentropy"])
    model = mlstm.io.load_model(checkpoint)
    model.optimizer.learning_rate = 3e38          # finite in float32; its steps are not
    before, state = model.get_weights(), model.optimizer.get_state()
    path = quiet_dir / "after.npz"
    with pytest.raises(NonFiniteError) as info:
        model.fit(x, [y[0] * 1e3, y[1]], epochs=1, batch_size=8, verbose=0, seed=0,
                  checkpoint=path)
    message = str(info.value)
    for part in ("epoch 0, step 0", "the update would make non-finite", "'lstm_a/kernel'",
                 "gradient from outputs 'out1', 'out2'", "learning_rate=3e+38", "not applied"):
        assert part in message, message
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))
    assert model.optimizer.iterations == state["iterations"]
    assert all(np.isfinite(p).all() for p in model.predict(x))
    assert not path.exists()                        # no checkpoint of a failed epoch


# --------------------------------------------------------------------------- 4. sizes
LOAD = "mlstm.io.load_model(paths['file'])\n"


@pytest.mark.parametrize("units, parts", [
    (10 ** 9, ["more than 1 GiB of weights", "'lstm_a/kernel'", "MAX_MODEL_BYTES"]),
    (4000, ["'lstm_a/kernel'", "[3, 12]", "(3, 16000)"])])
def test_a_huge_architecture_is_refused_before_allocating(checkpoint, tmp_path, units, parts):
    crafted = _edit_meta(checkpoint, tmp_path / "units.npz",
                         lambda m: [layer["config"].update(units=units)
                                    for layer in m["model"]["layers"]
                                    if layer["class_name"] == "LSTM"])
    outcome = _refused_in_child(tmp_path, LOAD, *parts, file=crafted)
    assert outcome["seconds"] < 5, outcome        # it took 24-99 s and 2.5 GB for 4000


def test_the_memory_limit_can_be_raised(checkpoint, tmp_path):
    """A file whose architecture is consistent but above the limit: refused, then loaded
    when the user allows it (here the limit is lowered to the model's size)."""
    code = ("try:\n    mlstm.io.load_model(paths['file'], max_bytes=500)\n"
            "except ValueError as exc:\n    refused = str(exc)\n"
            "m = mlstm.io.load_model(paths['file'], max_bytes=10**6)\n"
            "value = [refused, m.optimizer.iterations]\n")
    outcome = _in_child(tmp_path, code, file=checkpoint)
    refused, iterations = outcome["value"]
    assert "max_bytes" in refused and iterations == 6


def test_an_inflated_array_is_refused_from_its_header(checkpoint, tmp_path):
    """w0.npy: 1.6 MB in the file, a header claiming (20000, 20000) float32 (1.6 GB)."""
    members = _members(checkpoint)
    data, crc, size = _repeated_deflate(_npy_header((20000, 20000), "<f4"), bytes(1 << 20),
                                        1526)
    assert len(data) < 2e6 and size > 1.6e9
    entries = [_stored(n, d) for n, d in members.items() if n != "w0.npy"]
    crafted = _raw_zip(tmp_path / "inflated.npz", entries + [("w0.npy", data, 8, crc, size)])
    _refused_in_child(tmp_path, LOAD, "'lstm_a/kernel'", "(20000, 20000)", file=crafted)
    # the right header, then 1.5 GB more than it announces
    data, crc, size = _repeated_deflate(members["w0.npy"], bytes(1 << 20), 1500)
    crafted = _raw_zip(tmp_path / "trailing.npz", entries + [("w0.npy", data, 8, crc, size)])
    _refused_in_child(tmp_path, LOAD, "'lstm_a/kernel'", "damaged", "1.46 GiB", file=crafted)


def test_a_config_padded_to_a_gigabyte_is_refused_unread(checkpoint, tmp_path):
    members = _members(checkpoint)
    entries = [_stored(n, d) for n, d in members.items() if n != "mlstm.json"]
    text = members["mlstm.json"]
    data, crc, size = _repeated_deflate(text[:-1], b" " * (1 << 20), 1024, b"}")
    assert len(data) < 5e6 and size > 2 ** 30
    crafted = _raw_zip(tmp_path / "padded.npz", [("mlstm.json", data, 8, crc, size)] + entries)
    outcome = _refused_in_child(tmp_path, LOAD, "MAX_CONFIG_BYTES", "1 GiB", file=crafted)
    assert outcome["seconds"] < 2
    # the same, its directory claiming the original size: the read stops there
    lying = _raw_zip(tmp_path / "lying.npz", [("mlstm.json", data, 8, crc, len(text))] + entries)
    _refused_in_child(tmp_path, LOAD, "mlstm.json", file=lying)


_ITEMS_BOMB = b'{"format": "mlstm.model", "pad": [' + b"[]," * 2_100_000 + b"[]]}"


@pytest.mark.parametrize("text, method, parts", [
    (_ITEMS_BOMB, zipfile.ZIP_DEFLATED, ["MAX_INFLATION", "(1020:1)"]),
    (_ITEMS_BOMB, zipfile.ZIP_STORED, ["MAX_CONFIG_ITEMS"]),        # 6 MB, uncompressed
    (b"[" * 200_000 + b"]" * 200_000, zipfile.ZIP_DEFLATED, ["nested too deeply"]),
    (b'{"format": "mlstm.model", "n": ' + b"7" * 5000 + b"}", zipfile.ZIP_DEFLATED,
     ["not valid JSON"])], ids=["inflation", "items", "nesting", "long-int"])
def test_json_bombs_are_refused(checkpoint, tmp_path, text, method, parts):
    members = _members(checkpoint)
    members["mlstm.json"] = text
    crafted = tmp_path / "bomb.npz"
    with zipfile.ZipFile(crafted, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    _refused_in_child(tmp_path, LOAD, *parts, file=crafted)


def test_iterations_beyond_any_count_are_refused(checkpoint, tmp_path, quiet_dir):
    crafted = _edit_meta(checkpoint, tmp_path / "it.npz",
                         lambda m: m["compile"]["optimizer"].update(iterations=10 ** 400))
    outcome = _refused_in_child(tmp_path, LOAD, "iterations", "2**53", file=crafted)
    assert len(outcome["message"]) < 400
    x, y = _data()
    model = mlstm.io.load_model(checkpoint)
    before = model.get_weights()
    model.optimizer.iterations = 10 ** 400        # by hand: refused, and not bumped
    with pytest.raises(ValueError, match="iterations"):
        model.fit(x, y, epochs=1, batch_size=8, verbose=0, seed=0)
    assert model.optimizer.iterations == 10 ** 400
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))


# --------------------------------------------------------------------------- graph limits
def _chain_file(path, n):
    x = mlstm.Input((2,), name="x")
    h = x
    for k in range(n):
        h = mlstm.Dense(2, name=f"d{k}")(h)
    mlstm.Model(x, h).save(path)
    return path


@pytest.mark.parametrize("limit, value", [("MAX_DEPTH", 50), ("MAX_LAYERS", 50),
                                          ("MAX_NODES", 50), ("MAX_CONFIG_BYTES", 10_000)])
def test_graph_limits_are_stated_and_raisable(tmp_path, quiet_dir, monkeypatch, limit, value):
    path = _chain_file(tmp_path / "chain.npz", 60)
    monkeypatch.setattr(mio.limits, limit, value)
    _refused(path, f"mlstm.io.limits.{limit}")
    monkeypatch.undo()
    assert len(mlstm.io.load_model(path).layers) == 61


def test_a_layer_call_with_too_many_inputs_is_refused(checkpoint, quiet_dir):
    def widen(meta):
        node = meta["model"]["nodes"][0]
        node["inputs"] = node["inputs"] * 1001
    _refused(_edit_meta(checkpoint, quiet_dir / "wide.npz", widen), "MAX_NODE_INPUTS")


def test_a_reference_to_a_later_or_missing_call_is_refused(checkpoint, quiet_dir):
    _refused(_edit_meta(checkpoint, quiet_dir / "later.npz",
                        lambda m: m["model"]["nodes"][0]["inputs"][0].__setitem__(0, "out2")),
             "does not come earlier")


def test_a_10000_layer_chain_builds_runs_saves_and_loads(tmp_path, quiet_dir):
    x = mlstm.Input((2,), name="x")
    h = x
    for k in range(10_000):
        h = mlstm.Dense(2, name=f"d{k}")(h)
    model = mlstm.Model(x, h)
    out = model.predict(np.ones((3, 2), np.float32))
    assert out.shape == (3, 2) and np.isfinite(out).all()
    model.save(tmp_path / "chain.npz")
    loaded = mlstm.io.load_model(tmp_path / "chain.npz")
    assert np.array_equal(loaded.predict(np.ones((3, 2), np.float32)), out)


# --------------------------------------------------------------------------- data files
DATA = "value = {k: list(v.shape) for k, v in mlstm.io.read_data_npz(paths['file']).items()}\n"


def test_a_data_header_claiming_a_huge_shape_is_refused_unread(tmp_path):
    header = _npy_header((10 ** 12, 20, 8), "<f4")
    crafted = _raw_zip(tmp_path / "huge.npz", [_stored("x1.npy", header + bytes(64)),
                                               _stored("y1.npy", _npy(np.zeros((4, 1))))])
    _refused_in_child(tmp_path, DATA, "'x1'", "(1000000000000, 20, 8)", "MAX_DATA_BYTES",
                      file=crafted)


def test_a_bare_npy_gets_a_clear_message(tmp_path, quiet_dir):
    bare = tmp_path / "data.npy"
    np.save(bare, np.zeros((4, 20, 8)))
    with pytest.raises(ValueError, match=r"bare \.npy.*np\.savez"):
        mio.read_data_npz(bare)
    _refused(bare, "bare .npy", "not an mlstm model file")


def test_a_zip_bomb_data_file_is_refused_unread(tmp_path):
    """x1.npy: 256 MB of float64 zeros deflated to about 250 kB (1000:1)."""
    total = 200_000 * 20 * 8 * 8
    data, crc, size = _repeated_deflate(_npy_header((200_000, 20, 8), "<f8"), bytes(1 << 20),
                                        total >> 20, bytes(total - (total >> 20 << 20)))
    assert size == 128 + total
    crafted = _raw_zip(tmp_path / "bomb.npz", [("x1.npy", data, 8, crc, size),
                                               _stored("y1.npy", _npy(np.zeros((4, 1))))])
    assert crafted.stat().st_size < 1e6
    _refused_in_child(tmp_path, DATA, "'x1'", "MAX_INFLATION", file=crafted)
    # raising that limit brings the size limit into play, still before inflating
    code = "mlstm.io.limits.MAX_INFLATION = 10**6\n" + DATA.replace(
        "(paths['file'])", "(paths['file'], max_bytes=64 * 2**20)")
    _refused_in_child(tmp_path, code, "'x1'", "MAX_DATA_BYTES", file=crafted)
    # and an expected shape is checked from the header too
    code = DATA.replace("(paths['file'])", "(paths['file'], shapes={'x1': (None, 20, 9)})")
    _refused_in_child(tmp_path, code, "'x1'", "expected (N, 20, 9)", file=crafted)


def test_a_good_data_file_reads_exactly(tmp_path):
    x = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    y = np.array([[True], [False]])
    f = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    path = tmp_path / "good.npz"
    np.savez_compressed(path, x1=x, y1=y, f=f)
    arrays = mio.read_data_npz(path, shapes={"x1": (None, 3, 4)})
    assert list(arrays) == ["x1", "y1", "f"]
    for got, want in zip(arrays.values(), (x, y, f)):
        assert got.dtype == want.dtype and np.array_equal(got, want)
    assert list(mio.read_data_npz(path, names=["y1"])) == ["y1"]
    with pytest.raises(ValueError, match="no array 'x2'"):
        mio.read_data_npz(path, names=["x2"])
    np.savez(tmp_path / "strings.npz", x1=np.array(["a", "b"]))
    with pytest.raises(ValueError, match="real numbers"):
        mio.read_data_npz(tmp_path / "strings.npz")
