"""mlstm against Keras, number by number: forward, per-output losses, gradients, Adam steps.

Every test gives every LSTM gate its own weights (scale and offset per gate block, checked
live), so a gate-order slip cannot hide. Tolerances: rtol 1e-4 / atol 1e-5 in float32,
1e-9 in float64. The demo model and the randomized variants take 5 Adam steps, the
option tests 3. Keras' traced training step costs ~2 s per model to trace, so most tests
run Keras eagerly (the same arithmetic); the float32 demo, masking, saturated-head and
seed Example 2 tests run Keras' traced step, as ``fit`` does.

``MLSTM_KERAS_MEASURED=path.json`` writes the largest differences seen per test.
"""
import itertools
import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mlstm
from mlstm.demo import build_demo_model
from mlstm.interop.keras import keras_dtype
from mlstm.data import make_demo_data

pytestmark = pytest.mark.keras

MEASURED = {}
_GATE_SCALE = np.array([1.0, 0.6, 1.4, 0.8])
_GATE_OFFSET = np.array([0.15, -0.25, 0.05, 0.3])


@pytest.fixture(scope="module")
def keras():
    from mlstm.interop.keras import _import_keras
    yield _import_keras()
    path = os.environ.get("MLSTM_KERAS_MEASURED")
    if path:
        with open(path, "w") as f:
            json.dump(MEASURED, f, indent=1)


@pytest.fixture
def floatx64(keras):
    """Keras in float64 for the test (floatx and dtype policy), restored afterwards.

    ``set_floatx`` alone does not reach layers once Keras has fixed its global dtype policy
    (the first layer created in the process does that), so the policy is set too.
    """
    previous = keras.config.floatx(), keras.config.dtype_policy()
    with keras_dtype("float64"):           # mlstm's own helper, restored on exit
        yield
    assert keras.config.floatx() == previous[0]
    assert keras.config.dtype_policy().name == previous[1].name


def distinct_gate_weights(model, seed=0, scale=0.5):
    """Random weights for every layer of an mlstm or Keras model.

    LSTM gate blocks (i, f, c, o) get their own scale and offset, and the blocks are
    checked to differ, so that swapping two gates changes every number downstream.
    """
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        new = []
        for w in weights:
            v = rng.normal(0.0, scale, w.shape)
            if type(layer).__name__ == "LSTM":
                blocks = v.reshape(v.shape[:-1] + (4, w.shape[-1] // 4))
                blocks *= _GATE_SCALE[:, None]
                blocks += _GATE_OFFSET[:, None]
            new.append(v.astype(w.dtype))
        layer.set_weights(new)
        if type(layer).__name__ == "LSTM":
            for w in layer.get_weights():
                for a, b in itertools.combinations(np.split(w, 4, axis=-1), 2):
                    assert not np.allclose(a, b), f"{layer.name}: two gate blocks are equal"


def check(label, model, x, y, steps=5, **kwargs):
    """crosscheck as a dict; every comparison must pass (the table is shown if not)."""
    from mlstm.interop.keras import crosscheck, format_report

    report = crosscheck(model, x, y, steps=steps, as_dict=True, **kwargs)
    assert report["ok"], format_report(report)
    assert len(report["steps"]) == steps
    assert report["checked"] > 0
    # Gradients were compared for every trainable parameter, in every group.
    params = set(report["gradients"]["total"])
    assert params and all(set(t) == params for t in report["gradients"].values())
    MEASURED[label] = dict(report["max_abs"], dtype=report["dtype"],
                           eager=report["run_eagerly"])
    return report


def demo(dtype="float32", seed=0, T=6, features=(3, 2), units=4, n=8):
    model = build_demo_model(timesteps=T, features=features, units=units, dtype=dtype,
                             seed=seed)
    distinct_gate_weights(model, seed)
    d = make_demo_data(n_samples=n, timesteps=T, features=features, seed=seed, dtype=dtype)
    return model, [d["x1"], d["x2"]], [d["y1"], d["y2"]]


# --------------------------------------------------------------------------- the demo model
def test_demo_model_float32_five_adam_steps(keras):
    model, x, y = demo()
    model.compile(optimizer=mlstm.optimizers.Adam(1e-2), loss=["mse", "binary_crossentropy"],
                  loss_weights=[0.7, 0.3])
    before = model.get_weights()
    report = check("demo float32", model, x, y, steps=5)
    assert report["started_as"] == "mlstm" and not report["run_eagerly"]
    assert set(report["gradients"]) == {"total", "out1", "out2"}
    assert set(report["steps"][-1]["loss"]) == {"loss", "out1_loss", "out2_loss"}
    # crosscheck works on copies: the model itself has not moved.
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    # The weights did move in the copies (five Adam steps of lr 1e-2 were compared).
    assert report["steps"][-1]["loss"]["loss"]["keras"] < report["loss"]["total"]["keras"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_demo_model_with_its_lstms_run_concurrently(keras, dtype):
    """Large enough (N·4H = 64·256 = 16,384) that mlstm runs the two LSTMs at the same time
    (mlstm.parallel), forward and backward, and sums dz a chunk of steps at a time."""
    from mlstm import parallel
    from mlstm.ops import lstm as lstm_module

    model, x, y = demo(dtype=dtype, seed=2, T=5, units=64, n=64)
    assert model.nodes[2].layer.step_elements(64) >= parallel.MIN_STEP_ELEMENTS
    model.compile(optimizer=mlstm.optimizers.Adam(1e-3), loss=["mse", "binary_crossentropy"],
                  loss_weights=[0.7, 0.3])
    saved = lstm_module.GRADIENT_CHUNK_BYTES
    lstm_module.GRADIENT_CHUNK_BYTES = 1            # one step per chunk
    try:
        check(f"demo, concurrent LSTMs, {dtype}", model, x, y, steps=3)
    finally:
        lstm_module.GRADIENT_CHUNK_BYTES = saved


def test_demo_model_float64(keras):
    model, x, y = demo(dtype="float64", seed=1)
    model.compile(optimizer=mlstm.optimizers.Adam(1e-2), loss=["mse", "binary_crossentropy"],
                  loss_weights=[0.7, 0.3])
    floatx = keras.config.floatx()
    report = check("demo float64", model, x, y, steps=5, run_eagerly=True)
    assert report["dtype"] == "float64" and report["rtol"] == report["atol"] == 1e-9
    assert keras.config.floatx() == floatx          # to_keras restored it
    assert report["max_abs"]["gradients"] < 1e-12


def test_keras_built_float64_model(keras, floatx64):
    x_in = keras.Input((5, 3), name="x")
    h = keras.layers.LSTM(4, return_sequences=True, name="l1")(x_in)
    h = keras.layers.LSTM(3, go_backwards=True, name="l2")(h)
    out = keras.layers.Dense(2, activation="sigmoid", name="out")(h)
    kmodel = keras.Model(x_in, out)
    kmodel.compile(optimizer=keras.optimizers.Adam(1e-2, amsgrad=True),
                   loss="binary_crossentropy")
    distinct_gate_weights(kmodel, 2)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 5, 3))
    y = (rng.random((6, 2)) > 0.5).astype(float)
    report = check("keras-built float64", kmodel, x, y, steps=5, run_eagerly=True)
    assert report["started_as"] == "keras" and report["dtype"] == "float64"


# --------------------------------------------------------------------------- options
def _two_head_keras_model(keras, T=5, D=3, H=4):
    x_in = keras.Input((T, D), name="x")
    h = keras.layers.LSTM(H, name="lstm")(x_in)
    out1 = keras.layers.Dense(2, name="out1")(h)
    out2 = keras.layers.Dense(1, activation="sigmoid", name="out2")(h)
    return keras.Model(x_in, [out1, out2])


def _two_head_data(seed, n=8, T=5, D=3):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, T, D)).astype("float32"),
            [rng.normal(size=(n, 2)).astype("float32"),
             (rng.random((n, 1)) > 0.5).astype("float32")])


@pytest.mark.parametrize("options", [
    {"amsgrad": True},
    {"clipnorm": 0.05},
    {"global_clipnorm": 0.05},
    {"weight_decay": 0.1},
    {"clipvalue": 0.01},
    {"amsgrad": True, "global_clipnorm": 0.1, "weight_decay": 0.05, "beta_1": 0.8,
     "epsilon": 1e-4},
], ids=["amsgrad", "clipnorm", "global_clipnorm", "weight_decay", "clipvalue", "combined"])
def test_adam_options(keras, options):
    kmodel = _two_head_keras_model(keras)
    distinct_gate_weights(kmodel, 3)
    kmodel.compile(optimizer=keras.optimizers.Adam(1e-2, **options),
                   loss=["mse", "binary_crossentropy"], loss_weights=[0.4, 1.5])
    x, y = _two_head_data(3)
    report = check(f"adam {options}", kmodel, x, y, steps=3, run_eagerly=True)
    # The options really act: the clipping thresholds sit below the gradient norms.
    grads = mlstm.interop.keras.from_keras(kmodel).gradients(x, y)
    norms = [np.linalg.norm(g) for g in grads.values()]
    for key in ("clipnorm", "global_clipnorm"):
        if key in options:
            total = np.sqrt(sum(n * n for n in norms))
            assert (max(norms) if key == "clipnorm" else total) > options[key]
    if "clipvalue" in options:
        assert max(np.abs(g).max() for g in grads.values()) > options["clipvalue"]
    assert report["started_as"] == "keras"


def test_sgd_with_nesterov_momentum(keras):
    kmodel = _two_head_keras_model(keras)
    distinct_gate_weights(kmodel, 13)
    kmodel.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True,
                                                  clipnorm=1.0),
                   loss=["mse", "binary_crossentropy"])
    x, y = _two_head_data(13)
    report = check("sgd nesterov", kmodel, x, y, steps=3, run_eagerly=True)
    assert mlstm.interop.keras.from_keras(kmodel).optimizer.get_config()["nesterov"] is True
    assert report["ok"]


def test_go_backwards_stacked_and_per_step_head(keras):
    x_in = mlstm.Input((6, 3), name="x")
    h = mlstm.LSTM(4, return_sequences=True, go_backwards=True, name="l1")(x_in)
    h = mlstm.LSTM(5, return_sequences=True, name="l2")(h)
    per_step = mlstm.Dense(2, name="per_step")(h)
    last = mlstm.Dense(1, activation="sigmoid", name="last")(mlstm.LSTM(3, name="l3")(h))
    model = mlstm.Model(x_in, [per_step, last])
    distinct_gate_weights(model, 4)
    model.compile(optimizer="adam", loss=["mse", "binary_crossentropy"])
    rng = np.random.default_rng(4)
    x = rng.normal(size=(5, 6, 3)).astype("float32")
    y = [rng.normal(size=(5, 6, 2)).astype("float32"),
         (rng.random((5, 1)) > 0.5).astype("float32")]
    check("go_backwards, stacked, per-step head", model, x, y, steps=3, run_eagerly=True)


def test_masking_left_right_padding_and_masked_first_step(keras):
    T = 6
    x1 = keras.Input((T, 3), name="x1")
    x2 = keras.Input((T, 2), name="x2")
    seq = keras.layers.LSTM(4, return_sequences=True, name="la")(
        keras.layers.Masking(0.0, name="mask1")(x1))
    per_step = keras.layers.Dense(2, name="per_step")(seq)
    back = keras.layers.LSTM(3, go_backwards=True, name="lb")(
        keras.layers.Masking(0.0, name="mask2")(x2))
    out = keras.layers.Dense(1, activation="sigmoid", name="out")(back)
    kmodel = keras.Model([x1, x2], [per_step, out])
    distinct_gate_weights(kmodel, 5)
    kmodel.compile(optimizer=keras.optimizers.Adam(1e-2),
                   loss=["mse", "binary_crossentropy"], loss_weights=[1.0, 0.5])
    rng = np.random.default_rng(5)
    n = 6
    a = rng.normal(size=(n, T, 3)).astype("float32")
    b = rng.normal(size=(n, T, 2)).astype("float32")
    a[0, :2] = 0      # left padding: the first two steps are masked
    a[1, -2:] = 0     # right padding
    a[2, 0] = 0       # only the first step masked
    a[3, :1] = 0
    a[3, -1:] = 0     # both sides
    b[0, -3:] = 0     # right padding seen backwards: masked first processed steps
    b[1, :2] = 0
    b[4, 0] = 0
    y = [rng.normal(size=(n, T, 2)).astype("float32"),
         (rng.random((n, 1)) > 0.5).astype("float32")]
    report = check("masking", kmodel, [a, b], y, steps=5)
    # The masks were live: mlstm saw them, and the masked per-step loss differs from the
    # unmasked mean.
    from mlstm.interop.keras import from_keras
    m = from_keras(kmodel)
    tape = m.forward(m._inputs([a, b]))
    assert tape.output_masks[0] is not None and not tape.output_masks[0].all()
    unmasked = float(np.mean(np.mean((tape.outputs[0] - y[0]) ** 2, axis=-1)))
    assert abs(report["loss"]["per_step"]["keras"] - unmasked) > 1e-4


def test_initial_state_and_return_state(keras):
    seq = mlstm.Input((5, 3), name="seq")
    ctx = mlstm.Input((2,), name="ctx")
    h0 = mlstm.Dense(4, activation="tanh", name="h0")(ctx)
    c0 = mlstm.Dense(4, name="c0")(ctx)
    out, h, c = mlstm.LSTM(4, return_sequences=True, return_state=True, name="lstm")(
        seq, initial_state=[h0, c0])
    head = mlstm.Dense(1, name="head")(mlstm.LSTM(2, name="top")(out))
    state_head = mlstm.Dense(2, name="state_head")(mlstm.concatenate([h, c], name="hc"))
    model = mlstm.Model([seq, ctx], [head, state_head])
    distinct_gate_weights(model, 6)
    model.compile(optimizer=mlstm.optimizers.Adam(1e-2), loss="mse", loss_weights=[1.0, 0.3])
    rng = np.random.default_rng(6)
    x = [rng.normal(size=(6, 5, 3)).astype("float32"), rng.normal(size=(6, 2)).astype("float32")]
    y = [rng.normal(size=(6, 1)).astype("float32"), rng.normal(size=(6, 2)).astype("float32")]
    report = check("initial_state, return_state", model, x, y, steps=3, run_eagerly=True)
    # Gradient reached the layers that make the initial state.
    assert report["gradients"]["total"]["h0/kernel"]["ok"]
    grads = model.gradients(x, y)
    assert np.abs(grads["h0/kernel"]).max() > 0 and np.abs(grads["c0/kernel"]).max() > 0


def test_unit_forget_bias_off_carried_both_ways(keras):
    """unit_forget_bias only sets the initial forget bias; it must survive both ways.
    (The Keras LSTM is also unrolled: accepted by from_keras as the same arithmetic.)"""
    from mlstm.interop.keras import from_keras, to_keras

    x_in = keras.Input((4, 2), name="x")
    out = keras.layers.Dense(1, name="out")(
        keras.layers.LSTM(3, unit_forget_bias=False, unroll=True, name="lstm")(x_in))
    kmodel = keras.Model(x_in, out)
    kmodel.compile(optimizer="adam", loss="mse")
    # Keras' own initial weights: zero forget bias, as the option says.
    assert np.all(kmodel.get_layer("lstm").get_weights()[2] == 0)
    m = from_keras(kmodel)
    assert m.get_layer("lstm").unit_forget_bias is False
    assert to_keras(m).get_layer("lstm").get_config()["unit_forget_bias"] is False
    fresh = mlstm.Model.from_config(m.get_config(), seed=0)
    assert np.all(fresh.get_layer("lstm").get_weights()[2] == 0)
    distinct_gate_weights(kmodel, 7)
    rng = np.random.default_rng(7)
    check("unit_forget_bias off", kmodel, rng.normal(size=(4, 4, 2)).astype("float32"),
          rng.normal(size=(4, 1)).astype("float32"), steps=3, run_eagerly=True)


# --------------------------------------------------------------------------- losses
def test_bce_from_logits_on_linear_head(keras):
    kmodel = _two_head_keras_model(keras)
    distinct_gate_weights(kmodel, 8)
    logits_head = keras.Model(kmodel.inputs, kmodel.get_layer("out1").output)
    logits_head.compile(optimizer="adam",
                        loss=keras.losses.BinaryCrossentropy(from_logits=True,
                                                             label_smoothing=0.1))
    x, _ = _two_head_data(8)
    y = (np.random.default_rng(8).random((8, 2)) > 0.5).astype("float32")
    report = check("bce from_logits", logits_head, x, y, steps=3, run_eagerly=True)
    m = mlstm.interop.keras.from_keras(logits_head)
    assert m._losses[0].from_logits and m._losses[0].label_smoothing == 0.1
    assert report["loss"]["total"]["ok"]


def test_bce_on_saturated_sigmoid_head(keras):
    """Logits ±40: Keras computes BCE from the logits, a clipped computation would not."""
    x_in = mlstm.Input((4, 3), name="x")
    out = mlstm.Dense(2, activation="sigmoid", name="out")(mlstm.LSTM(3, name="lstm")(x_in))
    model = mlstm.Model(x_in, out)
    distinct_gate_weights(model, 9)
    layer = model.get_layer("out")
    layer.set_weights([0.01 * layer.get_weights()[0], np.array([40.0, -40.0], "float32")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    rng = np.random.default_rng(9)
    x = rng.normal(size=(8, 4, 3)).astype("float32")
    y = (rng.random((8, 2)) > 0.5).astype("float32")
    logits = model.forward([x]).caches[-1]["logits"]
    assert np.all(np.abs(np.abs(logits) - 40) < 0.5)
    report = check("saturated sigmoid head", model, x, y)
    # Wrong-side entries cost ~40 each (the clipped formula would give -log(1e-7) = 16.1).
    wrong = np.mean(np.where(logits > 0, 1 - y, y))
    expected = np.mean(np.where(logits > 0, 1 - y, y) * np.abs(logits)
                       + np.log1p(np.exp(-np.abs(logits))))
    assert wrong > 0
    assert report["loss"]["total"]["keras"] == pytest.approx(expected, rel=1e-5)
    # ... and the head still gets a gradient (clipping would give exactly zero).
    assert np.abs(model.gradients(x, y)["out/bias"]).max() > 0.1


@pytest.mark.parametrize("loss,loss_weights", [
    ("mse", None),
    (["mse", "binary_crossentropy"], [0.7, 0.3]),
    ({"out1": "mean_squared_error", "out2": "binary_crossentropy"}, {"out1": 2.0, "out2": 0.5}),
    ({"out2": "binary_crossentropy", "out1": "mse"}, [0.3, 0.7]),
], ids=["string", "list+list", "dict+dict", "dict+list"])
def test_loss_given_as_string_list_dict(keras, loss, loss_weights):
    kmodel = _two_head_keras_model(keras)
    distinct_gate_weights(kmodel, 10)
    kmodel.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss, loss_weights=loss_weights)
    x, y = _two_head_data(10)
    report = check(f"loss {loss!r}", kmodel, x, y, steps=3, run_eagerly=True)
    assert set(report["loss"]) == {"total", "out1", "out2"}


# --------------------------------------------------------------------------- the seed
def _seed_model(keras):
    """The seed article's model (Example 1/2), tiny: two inputs, linear + sigmoid heads."""
    x1 = keras.Input((6, 3), name="x1")
    x2 = keras.Input((6, 2), name="x2")
    merged = keras.layers.concatenate([keras.layers.LSTM(4, name="lstm_a")(x1),
                                       keras.layers.LSTM(4, name="lstm_b")(x2)], name="merged")
    out1 = keras.layers.Dense(1, activation="linear", name="out1")(merged)
    out2 = keras.layers.Dense(1, activation="sigmoid", name="out2")(merged)
    kmodel = keras.Model(inputs=[x1, x2], outputs=[out1, out2])
    distinct_gate_weights(kmodel, 11)
    return kmodel


def test_seed_example_1_mse_on_both_heads(keras):
    kmodel = _seed_model(keras)
    kmodel.compile(optimizer="adam", loss="mse")   # the seed also passes metrics=["mae"],
    # which Keras 3.15 refuses for two outputs (it wants one list per output)
    _, x, y = demo(seed=11)
    report = check("seed example 1", kmodel, x, y, run_eagerly=True)
    # MSE is applied to each head separately, with weight 1 each.
    assert report["loss"]["total"]["keras"] == pytest.approx(
        report["loss"]["out1"]["keras"] + report["loss"]["out2"]["keras"], rel=1e-6)


class SeedCustomLoss(mlstm.losses.Loss):
    """The seed's Example 2 loss in NumPy, with its exact gradient.

    Keras calls it once per output with that output's (N, O) arrays, so ``y_true[0]`` is
    the first *sample* and ``y_pred[1]`` the second: the loss sees two samples per batch.
    """

    name = "seed_custom_loss"

    def call(self, y_true, y_pred):
        return 0.7 * np.mean(np.square(y_true[0] - y_pred[0])) + 0.3 * np.mean(
            mlstm.losses.binary_crossentropy(y_true[1:2], y_pred[1:2]))

    def gradient(self, y_true, y_pred):
        grad = np.zeros_like(y_pred)
        grad[0] = 0.7 * 2.0 * (y_pred[0] - y_true[0]) / y_pred.shape[-1]
        grad[1] = 0.3 * mlstm.losses.BinaryCrossentropy().gradient(y_true[1:2], y_pred[1:2])[0]
        return grad


def seed_custom_loss_numpy(y_true, y_pred):
    """The same as a plain function (mlstm differentiates it numerically)."""
    eps = 1e-7
    p = np.clip(y_pred[1], eps, 1 - eps)
    bce = -(y_true[1] * np.log(p) + (1 - y_true[1]) * np.log(1 - p))
    return 0.7 * np.mean(np.square(y_true[0] - y_pred[0])) + 0.3 * np.mean(bce)


def test_seed_example_2_custom_loss(keras):
    from keras import ops

    from mlstm.interop.keras import from_keras

    def custom_loss(y_true, y_pred):      # the seed's function, keras.ops for K.*
        mse_output1 = ops.mean(ops.square(y_true[0] - y_pred[0]))
        bce_output2 = ops.mean(ops.binary_crossentropy(y_true[1], y_pred[1]))
        return 0.7 * mse_output1 + 0.3 * bce_output2

    kmodel = _seed_model(keras)
    kmodel.compile(optimizer="adam", loss=custom_loss)
    _, x, y = demo(seed=12)
    with pytest.raises(ValueError, match="custom_loss.*no mlstm translation"):
        from_keras(kmodel)
    exact = from_keras(kmodel, compile=False)
    exact.compile(optimizer="adam", loss=SeedCustomLoss())
    report = check("seed example 2 (Loss subclass)", kmodel, x, y, twin=exact)
    with pytest.warns(UserWarning, match="central differences"):
        numeric = from_keras(kmodel, compile=False)
        numeric.compile(optimizer="adam", loss=seed_custom_loss_numpy)
    numeric_report = check("seed example 2 (plain function)", kmodel, x, y, twin=numeric,
                           steps=1, run_eagerly=True)
    for name in ("total", "out1", "out2"):
        assert numeric_report["loss"][name]["keras"] == report["loss"][name]["keras"]
    # What the seed's loss really sees: samples 0 and 1 only. Changing every other
    # sample's targets leaves Keras' loss unchanged.
    y_changed = [t.copy() for t in y]
    for t in y_changed:
        t[2:] = 1.0 - t[2:] + 3.0
    changed = check("seed example 2, other samples changed", kmodel, x, y_changed,
                    twin=exact, steps=0, run_eagerly=True)
    assert changed["loss"]["total"]["keras"] == pytest.approx(report["loss"]["total"]["keras"],
                                                             rel=1e-6)


# --------------------------------------------------------------------------- randomized
def _variant(n, t, d, h, go_backwards, return_sequences, stacked, padding, unit_forget_bias,
             seed, dtype="float32"):
    """A masked/stacked/backwards variant of a two-head model, with a batch of data."""
    x_in = mlstm.Input((t, d), name="x", dtype=dtype)
    z = mlstm.Masking(0.0, name="mask")(x_in) if padding != "none" else x_in
    if stacked:
        z = mlstm.LSTM(h, return_sequences=True, name="lower")(z)
    z = mlstm.LSTM(h, return_sequences=return_sequences, go_backwards=go_backwards,
                   unit_forget_bias=unit_forget_bias, name="upper")(z)
    out1 = mlstm.Dense(2, name="out1")(z)
    out2 = mlstm.Dense(1, activation="sigmoid", name="out2")(z)
    model = mlstm.Model(x_in, [out1, out2])
    distinct_gate_weights(model, seed)
    model.compile(optimizer=mlstm.optimizers.Adam(1e-2), loss=["mse", "binary_crossentropy"],
                  loss_weights=[0.6, 0.4])
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, t, d)).astype(dtype)
    if padding != "none" and t > 1:
        cut = rng.integers(1, t, size=n)      # at least one valid and one padded step
        for k in range(n):
            if padding == "left":
                x[k, :cut[k]] = 0
            else:
                x[k, cut[k]:] = 0
    shape = (n, t) if return_sequences else (n,)
    y = [rng.normal(size=shape + (2,)).astype(dtype),
         (rng.random(shape + (1,)) > 0.5).astype(dtype)]
    return model, x, y


_VARIANTS = [   # every flag on in at least one variant and off in another
    dict(n=3, t=5, d=2, h=3, go_backwards=True, return_sequences=True, stacked=False,
         padding="left", unit_forget_bias=True),
    dict(n=4, t=4, d=3, h=2, go_backwards=False, return_sequences=True, stacked=True,
         padding="right", unit_forget_bias=False),
    dict(n=2, t=6, d=1, h=4, go_backwards=True, return_sequences=False, stacked=True,
         padding="right", unit_forget_bias=True),
    dict(n=1, t=1, d=2, h=1, go_backwards=False, return_sequences=False, stacked=False,
         padding="none", unit_forget_bias=False),
]


@pytest.mark.parametrize("seed,variant", list(enumerate(_VARIANTS)))
def test_seeded_variants(keras, seed, variant):
    model, x, y = _variant(seed=100 + seed, **variant)
    check(f"variant {variant}", model, x, y, steps=5, run_eagerly=True)


@pytest.mark.parametrize("seed", [0, 2])
def test_seeded_variants_float64(keras, seed):
    model, x, y = _variant(seed=200 + seed, dtype="float64", **_VARIANTS[seed])
    report = check(f"variant float64 {_VARIANTS[seed]}", model, x, y, steps=5,
                   run_eagerly=True)
    assert report["dtype"] == "float64" and report["atol"] == 1e-9


@settings(max_examples=3, deadline=None)
@given(n=st.integers(1, 4), t=st.integers(1, 5), d=st.integers(1, 3), h=st.integers(1, 4),
       go_backwards=st.booleans(), return_sequences=st.booleans(), stacked=st.booleans(),
       padding=st.sampled_from(["none", "left", "right"]), unit_forget_bias=st.booleans(),
       seed=st.integers(0, 2 ** 16))
def test_randomized_variants(keras, n, t, d, h, go_backwards, return_sequences, stacked,
                             padding, unit_forget_bias, seed):
    model, x, y = _variant(n, t, d, h, go_backwards, return_sequences, stacked, padding,
                           unit_forget_bias, seed)
    check(f"random n{n} t{t} d{d} h{h} gb{go_backwards} rs{return_sequences} "
          f"st{stacked} {padding} ufb{unit_forget_bias}", model, x, y, steps=5,
          run_eagerly=True)
