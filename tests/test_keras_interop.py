"""Keras import/export: from_keras, to_keras, load_keras, refusals, and the command line.

The numbers themselves are cross-checked in test_keras_crosscheck.py; here the graph,
options, weights and compile settings must survive the trip, and everything mlstm does
not compute the way Keras does must be refused with the layer and option named.
"""
import contextlib
import json
import subprocess
import sys

import numpy as np
import pytest

import mlstm
from test_keras_crosscheck import distinct_gate_weights

keras_mark = pytest.mark.keras


@pytest.fixture(scope="module")
def keras():
    from mlstm.interop.keras import _import_keras
    return _import_keras()


def test_importing_mlstm_imports_no_framework():
    code = ("import sys, mlstm, mlstm.interop.keras, mlstm.interop.torch; "
            "loaded = [m for m in ('keras', 'tensorflow', 'torch') if m in sys.modules]; "
            "assert not loaded, loaded")
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- round trips
def _everything_model():
    """Every supported layer and option at once (masking and initial_state apart)."""
    x = mlstm.Input((5, 3), name="x")
    ctx = mlstm.Input((2,), name="ctx")
    seq = mlstm.LSTM(4, return_sequences=True, go_backwards=True, unit_forget_bias=False,
                     name="enc")(mlstm.Masking(0.0, name="mask")(x))
    last = mlstm.LSTM(3, use_bias=False, name="enc2")(seq)
    h0 = mlstm.Dense(3, activation="tanh", name="h0")(ctx)
    c0 = mlstm.Dense(3, activation="relu", name="c0")(ctx)
    dec, h, _ = mlstm.LSTM(3, return_state=True, name="dec")(x, initial_state=[h0, c0])
    merged = mlstm.Concatenate(name="merged")([last, dec, h])
    prob = mlstm.Activation("sigmoid", name="prob")(
        mlstm.Reshape((3, 2), name="reshape")(mlstm.Dense(6, name="logits")(merged)))
    out = mlstm.Dense(1, name="out", trainable=False)(merged)
    model = mlstm.Model([x, ctx], [prob, out], name="everything")
    distinct_gate_weights(model, 0)
    return model


def _everything_data(n=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5, 3)).astype("float32")
    x[0, :2] = 0
    x[1, -1] = 0
    ctx = rng.normal(size=(n, 2)).astype("float32")
    y = [(rng.random((n, 3, 2)) > 0.5).astype("float32"), rng.normal(size=(n, 1)).astype("float32")]
    return [x, ctx], y


@keras_mark
def test_to_keras_from_keras_round_trip(keras):
    from mlstm.interop.keras import crosscheck, from_keras, to_keras

    model = _everything_model()
    model.compile(optimizer=mlstm.optimizers.Adam(3e-3, amsgrad=True, clipnorm=0.5),
                  loss=["binary_crossentropy", "mse"], loss_weights=[0.25, 2.0])
    kmodel = to_keras(model)
    assert sorted(l.name for l in kmodel.layers) == sorted(l.name for l in model.layers)
    assert kmodel.get_layer("out").trainable is False
    x, y = _everything_data()
    for a, b in zip(kmodel.predict(x, verbose=0), model.predict(x)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    back = from_keras(kmodel)
    assert back.get_config() == model.get_config()
    for a, b in zip(back.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert [type(l) for l in back._losses] == [type(l) for l in model._losses]
    assert back._loss_weights == model._loss_weights
    opt, original = back.optimizer.get_config(), model.optimizer.get_config()
    assert opt.pop("learning_rate") == pytest.approx(original.pop("learning_rate"), rel=1e-7)
    assert opt == original
    # Every layer and option in one model, number by number (the sigmoid after Reshape is
    # an Activation head: BCE from its logits in both).
    report = crosscheck(model, x, y, steps=2, as_dict=True, run_eagerly=True)
    assert report["ok"], mlstm.interop.keras.format_report(report)
    assert "out/kernel" not in report["gradients"]["total"]       # not trainable ...
    for step in report["steps"]:                                 # ... and not moved
        assert step["weights"]["out/kernel"]["max_abs"] == 0


@keras_mark
def test_shared_layers_stay_shared(keras):
    """One LSTM read by two inputs (a siamese encoder): one set of weights, summed gradients."""
    from mlstm.interop.keras import crosscheck, from_keras

    a, b = keras.Input((4, 3), name="a"), keras.Input((4, 3), name="b")
    encoder = keras.layers.LSTM(3, name="encoder")
    head = keras.layers.Dense(1, activation="sigmoid", name="same")
    merged = keras.layers.Concatenate(name="pair")([encoder(a), encoder(b)])
    kmodel = keras.Model([a, b], head(merged))
    kmodel.compile(optimizer="adam", loss="binary_crossentropy")
    distinct_gate_weights(kmodel, 5)
    model = from_keras(kmodel)
    assert len(model.get_layer("encoder")._inbound_nodes) == 2
    assert len(model.get_weights()) == len(kmodel.get_weights()) == 5
    rng = np.random.default_rng(5)
    x = [rng.normal(size=(3, 4, 3)), rng.normal(size=(3, 4, 3))]
    y = (rng.random((3, 1)) > 0.5).astype("float32")
    report = crosscheck(kmodel, x, y, steps=2, as_dict=True, run_eagerly=True)
    assert report["ok"], mlstm.interop.keras.format_report(report)
    assert set(report["gradients"]["total"]) == {"encoder/kernel", "encoder/recurrent_kernel",
                                                 "encoder/bias", "same/kernel", "same/bias"}


@keras_mark
def test_sequential_model(keras):
    from mlstm.interop.keras import crosscheck, from_keras

    kmodel = keras.Sequential([keras.Input((5, 3)), keras.layers.Masking(0.0, name="mask"),
                               keras.layers.LSTM(4, return_sequences=True, name="l1"),
                               keras.layers.LSTM(3, name="l2"),
                               keras.layers.Dense(2, activation="sigmoid", name="head")],
                              name="seq")
    kmodel.compile(optimizer="adam", loss="binary_crossentropy")
    distinct_gate_weights(kmodel, 1)
    model = from_keras(kmodel)
    assert [l.name for l in model.layers][1:] == ["mask", "l1", "l2", "head"]
    assert model.name == "seq" and model._single_output and model.compiled
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 5, 3)).astype("float32")
    x[0, :2] = 0
    y = (rng.random((3, 2)) > 0.5).astype("float32")
    text = crosscheck(kmodel, x, y, steps=1, run_eagerly=True)
    assert isinstance(text, str)
    assert "started as keras" in text and "l1/recurrent_kernel" in text
    assert text.splitlines()[-1].startswith("OK: all")


@keras_mark
def test_crosscheck_reports_a_real_difference(keras):
    """The cross-check is not vacuous: a twin that computes something else is caught."""
    from mlstm.interop.keras import crosscheck, format_report, from_keras

    x_in = keras.Input((4, 2), name="x")
    kmodel = keras.Model(x_in, keras.layers.Dense(1, name="out")(
        keras.layers.LSTM(3, go_backwards=True, name="lstm")(x_in)))
    kmodel.compile(optimizer="adam", loss="mse")
    distinct_gate_weights(kmodel, 2)
    forwards = mlstm.Input((4, 2), name="x")
    twin = mlstm.Model(forwards, mlstm.Dense(1, name="out")(mlstm.LSTM(3, name="lstm")(forwards)))
    twin.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(3, 4, 2)), rng.normal(size=(3, 1))
    report = crosscheck(kmodel, x, y, steps=1, twin=twin, as_dict=True, run_eagerly=True)
    assert not report["ok"] and report["failed"] > 0
    assert not report["forward"]["out"]["ok"]
    assert "MISMATCH" in format_report(report)
    # A gate-order slip changes the outputs too (the test weights differ per gate).
    model = from_keras(kmodel)
    kernel = model.get_layer("lstm").params["kernel"]
    before = model.predict(x)
    kernel[:, :3], kernel[:, 3:6] = kernel[:, 3:6].copy(), kernel[:, :3].copy()
    assert np.abs(model.predict(x) - before).max() > 1e-3   # 100 x the float32 tolerance


# --------------------------------------------------------------------------- .keras files
# keras 3.15's model.save calls np.asarray(variable, copy=False), which NumPy 2 warns about.
_KERAS_SAVE_WARNING = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


def _saved_seed_model(keras, path):
    x1 = keras.Input((6, 3), name="x1")
    x2 = keras.Input((6, 2), name="x2")
    merged = keras.layers.concatenate([keras.layers.LSTM(4, name="lstm_a")(x1),
                                       keras.layers.LSTM(4, name="lstm_b")(x2)], name="merged")
    out1 = keras.layers.Dense(1, name="out1")(merged)
    out2 = keras.layers.Dense(1, activation="sigmoid", name="out2")(merged)
    kmodel = keras.Model([x1, x2], [out1, out2])
    distinct_gate_weights(kmodel, 3)
    kmodel.compile(optimizer=keras.optimizers.Adam(3e-3, beta_2=0.99, amsgrad=True,
                                                   global_clipnorm=1.0, weight_decay=0.01),
                   loss={"out1": "mse", "out2": keras.losses.BinaryCrossentropy()},
                   loss_weights={"out1": 0.7, "out2": 0.3})
    kmodel.save(path)
    return kmodel


@keras_mark
@_KERAS_SAVE_WARNING
def test_load_keras_brings_the_compile_config(keras, tmp_path):
    from mlstm.interop.keras import load_keras

    path = tmp_path / "seed.keras"
    kmodel = _saved_seed_model(keras, path)
    model = mlstm.load_keras(path)
    assert model.input_names == ["x1", "x2"] and model.output_names == ["out1", "out2"]
    for a, b in zip(model.get_weights(), kmodel.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert [type(l).__name__ for l in model._losses] == ["MeanSquaredError",
                                                         "BinaryCrossentropy"]
    assert model._loss_weights == [0.7, 0.3]
    config = model.optimizer.get_config()
    assert config["name"] == "adam" and config["amsgrad"] is True
    assert config["learning_rate"] == pytest.approx(3e-3, rel=1e-7)
    assert config["beta_2"] == pytest.approx(0.99) and config["global_clipnorm"] == 1.0
    assert config["weight_decay"] == pytest.approx(0.01)
    assert not load_keras(path, compile=False).compiled
    with pytest.raises(ValueError, match=r"\.keras file"):
        load_keras(tmp_path / "seed.h5")


@keras_mark
def test_command_line_demo(keras, capsys):
    from mlstm.__main__ import main

    assert main(["crosscheck", "--samples", "16", "--steps", "1"]) == 0
    out = capsys.readouterr().out
    assert "started as mlstm" in out and "graph (tf.function)" in out
    assert "lstm_a/kernel" in out and out.strip().splitlines()[-1].startswith("OK: all")


@keras_mark
@_KERAS_SAVE_WARNING
def test_command_line_user_model(keras, tmp_path, capsys):
    from mlstm.interop.keras import cli_main

    path = tmp_path / "seed.keras"
    _saved_seed_model(keras, path)
    rng = np.random.default_rng(4)
    data = tmp_path / "batch.npz"
    np.savez(data, x1=rng.normal(size=(5, 6, 3)), x2=rng.normal(size=(5, 6, 2)),
             out1=rng.normal(size=(5, 1)), out2=(rng.random((5, 1)) > 0.5).astype(float))
    assert cli_main([str(path), str(data), "--steps", "2", "--json", "--eager"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["started_as"] == "keras" and len(report["steps"]) == 2
    assert set(report["loss"]) == {"total", "out1", "out2"}
    bad = tmp_path / "bad.npz"
    np.savez(bad, a=np.zeros((2, 6, 3)))
    assert cli_main([str(path), str(bad)]) == 2
    err = capsys.readouterr().err
    assert "x1" in err and len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as exit_info:       # argparse: model without data
        cli_main([str(path)])
    assert exit_info.value.code == 2
    assert len(capsys.readouterr().err.splitlines()) == 1


# --------------------------------------------------------------------------- refusals
def _refused(keras, build, match):
    from mlstm.interop.keras import from_keras

    with pytest.raises(ValueError, match=match):
        from_keras(build(keras))


def _lstm_model(keras, **options):
    x = keras.Input((5, 3), name="x")
    return keras.Model(x, keras.layers.LSTM(4, name="the_lstm", **options)(x))


def _custom_layer(keras):
    class MyDense(keras.layers.Dense):
        pass
    x = keras.Input((3,))
    return keras.Model(x, MyDense(2, name="mine")(x))


def _nested(keras):
    x = keras.Input((3,))
    inner = keras.Model(x, keras.layers.Dense(2)(x), name="inner")
    y = keras.Input((3,))
    return keras.Model(y, inner(y))


def _op_in_path(keras):
    x = keras.Input((3,))
    return keras.Model(x, keras.layers.Dense(2, name="d")(x * 2.0))


def _explicit_mask(keras):
    x = keras.Input((5, 3))
    mask = keras.Input((5,), dtype="bool")
    return keras.Model([x, mask], keras.layers.LSTM(2, name="masked_by_hand")(x, mask=mask))


def _initial_state_on_masked_input(keras):
    x = keras.Input((5, 3))
    h0, c0 = keras.Input((2,)), keras.Input((2,))
    masked = keras.layers.Masking()(x)
    return keras.Model([x, h0, c0], keras.layers.LSTM(2, name="stateful_start")(
        masked, initial_state=[h0, c0]))


def _subclassed(keras):
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)

        def call(self, x):
            return self.dense(x)
    net = Net()
    net(np.zeros((1, 3)))
    return net


def _dict_outputs(keras):
    x = keras.Input((3,))
    return keras.Model(x, {"a": keras.layers.Dense(1, name="a")(x)})


def _activity_regularized(keras):
    x = keras.Input((3,))
    return keras.Model(x, keras.layers.Dense(2, name="reg", activity_regularizer="l1")(x))


def _stateful(keras):
    x = keras.Input(batch_shape=(2, 5, 3))
    return keras.Model(x, keras.layers.LSTM(2, stateful=True, name="keeps_state")(x))


@keras_mark
@pytest.mark.parametrize("build,match", [
    (lambda k: _lstm_model(k, dropout=1.0), "'the_lstm'.*dropout=1.0.*\\[0, 1\\)"),
    (lambda k: _lstm_model(k, recurrent_dropout=1.0),
     "'the_lstm'.*recurrent_dropout=1.0.*\\[0, 1\\)"),
    (lambda k: _lstm_model(k, kernel_regularizer="l2"), "'the_lstm'.*kernel_regularizer"),
    (lambda k: _lstm_model(k, recurrent_constraint="non_neg"),
     "'the_lstm'.*recurrent_constraint"),
    (lambda k: _lstm_model(k, zero_output_for_mask=True), "'the_lstm'.*zero_output_for_mask"),
    (lambda k: _lstm_model(k, activation="gelu"), "'the_lstm'.*activation='gelu'"),
    (lambda k: _lstm_model(k, recurrent_activation="hard_sigmoid"),
     "'the_lstm'.*recurrent_activation='hard_sigmoid'"),
    (lambda k: _lstm_model(k, dtype="mixed_float16"), "'the_lstm'.*dtype='mixed_float16'"),
    (_stateful, "'keeps_state'.*stateful=True.*carries its last state into the next batch"),
    (_activity_regularized, "Dense 'reg'.*activity_regularizer"),
    (lambda k: k.Sequential([k.Input((5, 3)), k.layers.GRU(2, name="gru")]),
     "'gru' \\(GRU\\).*not support"),
    (lambda k: k.Sequential([k.Input((5, 3)),
                             k.layers.Bidirectional(k.layers.GRU(2), name="bi")]),
     "'forward_gru' \\(GRU\\)"),
    (lambda k: k.Sequential([k.Input((4, 4, 3)),
                             k.layers.SpatialDropout2D(0.5, name="drop")]),
     "'drop' \\(SpatialDropout2D\\)"),
    (_custom_layer, "'mine' \\(MyDense\\)"),
    (_nested, "'inner'.*nested model"),
    (_op_in_path, "Operation .*multiply"),
    (_explicit_mask, "'masked_by_hand'.*explicit mask"),
    (_initial_state_on_masked_input, "'stateful_start'.*initial_state on a masked input"),
    (_subclassed, "subclassed model"),
    (_dict_outputs, "dict outputs"),
], ids=["dropout_1", "recurrent_dropout_1", "kernel_regularizer", "constraint",
        "zero_output_for_mask", "activation", "recurrent_activation", "mixed_precision",
        "stateful", "activity_regularizer", "GRU", "Bidirectional_GRU", "SpatialDropout2D",
        "custom_layer", "nested_model", "op_in_path", "explicit_mask",
        "initial_state_on_mask", "subclassed", "dict_outputs"])
def test_from_keras_refuses_with_layer_and_option(keras, build, match):
    _refused(keras, build, match)


@keras_mark
@pytest.mark.parametrize("compile_kwargs,match", [
    ({"optimizer": "ftrl", "loss": "mse"}, "optimizer 'Ftrl' has no mlstm counterpart"),
    ({"optimizer": "adam", "loss": "poisson"}, "'poisson' has no mlstm translation"),
    ({"optimizer": "adam", "loss": "kl_divergence"}, "has no mlstm translation"),
    ({"optimizer": "adam", "loss": ["mse"]}, None),
], ids=["ftrl", "poisson", "kl_divergence", "list-ok"])
def test_from_keras_compile_refusals(keras, compile_kwargs, match):
    from mlstm.interop.keras import from_keras

    kmodel = _lstm_model(keras)
    kmodel.compile(**compile_kwargs)
    if match is None:
        assert from_keras(kmodel).compiled
        return
    with pytest.raises(ValueError, match=match):
        from_keras(kmodel)
    assert not from_keras(kmodel, compile=False).compiled


@keras_mark
def test_from_keras_carries_a_learning_rate_schedule(keras):
    """A Keras schedule becomes the mlstm schedule of the same name and options (it used to
    be refused, before mlstm.schedules)."""
    from mlstm.interop.keras import from_keras

    kmodel = _lstm_model(keras)
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, 10, 0.9)
    kmodel.compile(optimizer=keras.optimizers.Adam(schedule), loss="mse")
    optimizer = from_keras(kmodel).optimizer
    for step in (0, 5, 17):
        assert optimizer.learning_rate_at(step) == float(schedule(step))


@keras_mark
def test_to_keras_refusals(keras):
    from mlstm.interop.keras import to_keras

    x = mlstm.Input((5, 3))
    h0, c0 = mlstm.Input((2,)), mlstm.Input((2,))
    out = mlstm.LSTM(2, name="starts_from_state")(mlstm.Masking()(x), initial_state=[h0, c0])
    with pytest.raises(ValueError, match="'starts_from_state'.*initial_state on a masked"):
        to_keras(mlstm.Model([x, h0, c0], out))

    class Halved(mlstm.losses.MeanSquaredError):
        name = "halved"

    x = mlstm.Input((5, 3))
    model = mlstm.Model(x, mlstm.Dense(1, name="out")(mlstm.LSTM(2)(x)))
    model.compile(optimizer="adam", loss=Halved())
    with pytest.raises(ValueError, match="output 'out': loss 'halved'.*compile=False"):
        to_keras(model)
    assert not to_keras(model, compile=False).compiled


# --------------------------------------------------------------------------- the registry
class FlattenSteps(mlstm.Layer):
    """(N, T, D) -> (N, T·D): a layer of the public contract that names its Keras twin.

    Registered only while a test runs (see ``_registered``), so that the rest of the
    session sees the built-in registry.
    """

    keras_name = "Flatten"
    keras_options = mlstm.layers.KerasOptions(fixed={"data_format": "channels_last"})

    def compute_output_shape(self, input_shapes):
        (shape,) = input_shapes
        return [(int(np.prod(shape)),)]

    def call(self, inputs, training=False):
        (x,) = inputs
        return [x.reshape(x.shape[0], -1)], x.shape

    def backward(self, d_outputs, cache):
        (d,) = d_outputs
        return [d.reshape(cache)], {}


class LogCosh(mlstm.losses.Loss):
    """``mean_O log cosh(p - t)``, Keras' ``log_cosh``: a loss mlstm does not ship."""

    name = "log_cosh"
    keras_name = "LogCosh"
    keras_function = "log_cosh"

    def call(self, y_true, y_pred):
        d = y_pred - y_true
        return np.mean(d + np.logaddexp(0.0, -2.0 * d) - np.log(2.0), axis=-1)

    def gradient(self, y_true, y_pred):
        return np.tanh(y_pred - y_true) / y_pred.shape[-1]


@contextlib.contextmanager
def _registered(registry, cls):
    """Register ``cls`` for the block only (the registry has no public way to remove a
    class: a test must not leave its components to the rest of the session)."""
    registry.register(cls)
    try:
        yield cls
    finally:
        registry._classes.pop(cls.registered_name)


@keras_mark
def test_a_registered_layer_converts_with_no_edit_to_the_interop(keras):
    from mlstm.interop.keras import (crosscheck, format_report, from_keras, keras_dtype,
                                     supported_keras_layers, to_keras)
    from mlstm.registry import LAYERS

    x_in = mlstm.Input((4, 3), name="x", dtype="float64")
    h = mlstm.LSTM(2, return_sequences=True, name="lstm")(x_in)
    with _registered(LAYERS, FlattenSteps):
        assert "Flatten" in supported_keras_layers()
        model = mlstm.Model(x_in, mlstm.Dense(1, name="out")(FlattenSteps(name="flat")(h)))
        distinct_gate_weights(model, 14)
        model.compile(optimizer=mlstm.optimizers.Adam(1e-2), loss="mse")
        kmodel = to_keras(model)
        assert type(kmodel.get_layer("flat")) is keras.layers.Flatten
        rng = np.random.default_rng(14)
        x, y = rng.normal(size=(5, 4, 3)), rng.normal(size=(5, 1))
        with keras_dtype("float64"):
            np.testing.assert_allclose(kmodel.predict(x, verbose=0), model.predict(x),
                                       rtol=1e-12, atol=1e-12)
        back = from_keras(kmodel)
        assert type(back.get_layer("flat")) is FlattenSteps
        assert back.get_config() == model.get_config()
        report = crosscheck(model, x, y, steps=2, as_dict=True, run_eagerly=True)
        assert report["ok"] and report["dtype"] == "float64", format_report(report)
        # its fixed option is checked like a built-in's
        channels_first = keras.Sequential([keras.Input((4, 3)), keras.layers.Flatten(
            data_format="channels_first", name="cf")])
        with pytest.raises(ValueError, match="'cf'.*data_format='channels_first'.*only "
                                             "'channels_last'"):
            from_keras(channels_first)
    assert "Flatten" not in supported_keras_layers()
    with pytest.raises(ValueError, match=r"'flat' \(Flatten\).*not support"):
        from_keras(kmodel)


@keras_mark
def test_unsupported_layer_error_lists_the_registry(keras):
    from mlstm.interop.keras import from_keras, to_keras
    from mlstm.registry import LAYERS

    declared = sorted({vars(c)["keras_name"] for c in LAYERS.classes() if vars(c).get("keras_name")})
    assert {"InputLayer", "LSTM", "Dense", "Concatenate"} <= set(declared)
    gru = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(2, name="gru")])
    with pytest.raises(ValueError) as info:
        from_keras(gru)
    assert f"Supported Keras layers: {', '.join(declared)}" in str(info.value)

    class Unmapped(mlstm.Layer):            # no keras_name: no Keras twin
        def call(self, inputs, training=False):
            return [inputs[0]], None

    x = mlstm.Input((3,), name="x")
    with pytest.raises(ValueError, match=r"'odd' \(Unmapped\) has no Keras counterpart.*"
                                         "Supported Keras layers: "):
        to_keras(mlstm.Model(x, Unmapped(name="odd")(x)))


@keras_mark
def test_a_registered_loss_converts_both_ways(keras):
    from mlstm.interop.keras import crosscheck, format_report, from_keras, to_keras
    from mlstm.registry import LOSSES

    kmodel = _lstm_model(keras)
    distinct_gate_weights(kmodel, 15)
    rng = np.random.default_rng(15)
    x, y = rng.normal(size=(4, 5, 3)).astype("float32"), rng.normal(size=(4, 4)).astype("float32")
    with _registered(LOSSES, LogCosh):
        for spec in ("log_cosh", keras.losses.LogCosh()):
            kmodel.compile(optimizer="adam", loss=spec)
            model = from_keras(kmodel)
            assert type(model._losses[0]) is LogCosh
            assert type(to_keras(model).loss) is keras.losses.LogCosh
        report = crosscheck(kmodel, x, y, steps=2, as_dict=True, run_eagerly=True)
        assert report["ok"], format_report(report)
    with pytest.raises(ValueError, match="'log_cosh' has no mlstm translation"):
        from_keras(kmodel)


# --------------------------------------------------------------------------- command line
def _save(kmodel, path, **compile_kwargs):
    if compile_kwargs:
        kmodel.compile(**compile_kwargs)
    kmodel.save(path)
    return str(path)


def _one_line_error(capsys, argv, *needles):
    """cli_main(argv) exits with status 2 and one line on stderr naming the problem."""
    from mlstm.interop.keras import cli_main

    assert cli_main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert lines[0].startswith("python -m mlstm crosscheck: error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@keras_mark
@_KERAS_SAVE_WARNING
def test_command_line_user_mistakes_are_one_line(keras, tmp_path, capsys):
    good = _save(_lstm_model(keras), tmp_path / "good.keras", optimizer="adam", loss="mse")
    rng = np.random.default_rng(0)
    data = tmp_path / "data.npz"
    np.savez(data, x=rng.normal(size=(3, 5, 3)), the_lstm=rng.normal(size=(3, 4)))
    # files
    _one_line_error(capsys, [str(tmp_path / "missing.keras"), str(data)], "no such file")
    _one_line_error(capsys, [str(tmp_path / "model.h5"), str(data)], "must be a .keras file")
    npy = tmp_path / "x.npy"
    np.save(npy, np.zeros((3, 5, 3)))
    _one_line_error(capsys, [good, str(npy)], "single .npy array", ".npz")
    disguised = tmp_path / "disguised.npz"
    with open(disguised, "wb") as f:
        np.save(f, np.zeros(3))
    _one_line_error(capsys, [good, str(disguised)], "single array", ".npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file")
    _one_line_error(capsys, [good, str(garbage)], "cannot read DATA")
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a keras file")
    _one_line_error(capsys, [str(broken), str(data)], "cannot load MODEL")
    # arrays that do not fit the model
    wrong_names = tmp_path / "names.npz"
    np.savez(wrong_names, a=np.zeros((3, 5, 3)))
    _one_line_error(capsys, [good, str(wrong_names)], "expected arrays named ['x']", "['a']")
    wrong_shape = tmp_path / "shape.npz"
    np.savez(wrong_shape, x=np.zeros((3, 5, 2)), the_lstm=np.zeros((3, 4)))
    _one_line_error(capsys, [good, str(wrong_shape)], "does not fit MODEL")
    wrong_count = tmp_path / "count.npz"
    np.savez(wrong_count, x=np.zeros((3, 5, 3)), the_lstm=np.zeros((2, 4)))
    _one_line_error(capsys, [good, str(wrong_count)], "does not fit MODEL")
    # models mlstm does not support
    gru = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(4, name="gru")])
    _one_line_error(capsys, [_save(gru, tmp_path / "gru.keras", optimizer="adam", loss="mse"),
                             str(data)], "'gru' (GRU)", "Supported Keras layers: ", "LSTM")
    stateful = _save(keras.Sequential([keras.Input(batch_shape=(3, 5, 3)), keras.layers.LSTM(
        4, stateful=True, name="the_lstm")]), tmp_path / "stateful.keras", optimizer="adam",
        loss="mse")
    _one_line_error(capsys, [stateful, str(data)], "'the_lstm'", "stateful=True")
    poisson = _save(_lstm_model(keras), tmp_path / "poisson.keras", optimizer="adam",
                    loss="poisson")
    _one_line_error(capsys, [poisson, str(data)], "'poisson' has no mlstm translation",
                    "MeanSquaredError")
    ftrl = _save(_lstm_model(keras), tmp_path / "ftrl.keras", optimizer="ftrl", loss="mse")
    _one_line_error(capsys, [ftrl, str(data)], "optimizer 'Ftrl'", "Adam, AdamW")
    uncompiled = _save(_lstm_model(keras), tmp_path / "uncompiled.keras")
    _one_line_error(capsys, [uncompiled, str(data)], "no compile config")


@keras_mark
@_KERAS_SAVE_WARNING
def test_command_line_in_a_fresh_process_prints_no_tensorflow_logs(keras, tmp_path):
    """A user's mistake: one line, status 2; a run: the report only (TensorFlow's start-up
    notices filtered out)."""
    gru = keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(4, name="gru")])
    bad = _save(gru, tmp_path / "gru.keras", optimizer="adam", loss="mse")
    good = _save(_lstm_model(keras), tmp_path / "good.keras", optimizer="adam", loss="mse")
    data = tmp_path / "data.npz"
    rng = np.random.default_rng(1)
    np.savez(data, x=rng.normal(size=(3, 5, 3)), the_lstm=rng.normal(size=(3, 4)))

    def run(*argv):
        return subprocess.run([sys.executable, "-m", "mlstm", "crosscheck", *argv],
                              capture_output=True, text=True, timeout=300)

    refused = run(bad, str(data))
    assert refused.returncode == 2, refused.stderr
    assert refused.stdout == ""
    assert len(refused.stderr.splitlines()) == 1, refused.stderr
    assert "'gru' (GRU)" in refused.stderr and "Traceback" not in refused.stderr
    ran = run(good, str(data), "--steps", "1", "--eager")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stderr == ""
    assert ran.stdout.strip().splitlines()[-1].startswith("OK: all")
