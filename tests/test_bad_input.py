"""Malformed input at every public entry point: a clear ValueError/TypeError, nothing changed.

Hypothesis draws the entry point (fit, evaluate, predict, predict_on_batch, train_on_batch,
gradients, fit's validation_data) and a malformation (wrong shape, rank, count, batch size,
dtype, NaN/inf at a random position, empty axes, BCE targets outside [0, 1], values beyond
float32). Every refusal must

* be a ValueError or TypeError (any other exception fails the test),
* name the offending input/output (and the position, for NaN/inf),
* not be a NumPy broadcasting message from deep inside,
* emit no warning,
* leave the weights, the optimizer state and the compile settings exactly as they were.
"""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mlstm
from mlstm import LSTM, Dense, Input, Model, Reshape, concatenate, losses
from mlstm.demo import build_demo_model
from mlstm.data import make_demo_data
from mlstm.optimizers import Adam

N, T, D1, D2 = 8, 4, 3, 2
NAMES = {"x1": 0, "x2": 1, "out1": 2, "out2": 3}     # position in [x1, x2, y1, y2]


def _data(n=N, seed=0):
    d = make_demo_data(n_samples=n, timesteps=T, features=(D1, D2), seed=seed)
    return [d["x1"], d["x2"], d["y1"], d["y2"]]


def _trained_model():
    """The demo model (two inputs, linear + sigmoid heads), one Adam step taken."""
    model = build_demo_model(timesteps=T, features=(D1, D2), units=3, seed=0)
    model.compile(optimizer=Adam(1e-2), loss=["mse", "binary_crossentropy"],
                  loss_weights=[0.7, 0.3], metrics=[["mae"], ["accuracy"]])
    x1, x2, y1, y2 = _data()
    model.train_on_batch([x1, x2], [y1, y2])
    return model


MODEL = _trained_model()


def _snapshot(model):
    return dict(weights=[w.copy() for w in model.get_weights()],
                state=model.optimizer.get_state() if model.compiled else None,
                compiled=model.compiled,
                compile_config=repr(getattr(model, "_compile_config", None)),
                optimizer=model.optimizer)


def _assert_unchanged(model, before):
    after = _snapshot(model)
    assert len(after["weights"]) == len(before["weights"])
    for a, b in zip(after["weights"], before["weights"]):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert after["compiled"] == before["compiled"]
    assert after["compile_config"] == before["compile_config"]
    assert after["optimizer"] is before["optimizer"]
    if before["state"] is not None:
        assert after["state"].keys() == before["state"].keys()
        for key, value in before["state"].items():
            assert np.array_equal(after["state"][key], value), key


def assert_refused(model, call, *names, exc=(ValueError, TypeError)):
    """``call()`` raises ``exc`` naming every one of ``names``; no warning; model unchanged."""
    before = _snapshot(model) if model is not None else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(exc) as info:
            call()
    message = str(info.value)
    assert not caught, [str(w.message) for w in caught]
    for name in names:
        assert name in message, (name, message)
    assert "broadcast" not in message and "operands" not in message, message
    if model is not None:
        _assert_unchanged(model, before)
    return message


# --------------------------------------------------------------------------- the strategies
KINDS = ["shape", "rank", "count", "batch", "dtype", "nonfinite", "empty", "overflow", "dict",
         "bce_range"]
X_ONLY = ["predict", "predict_on_batch"]
ENTRIES = ["fit", "evaluate", "train_on_batch", "gradients", "fit_validation"] + X_ONLY


def _malform(data, kind, arrays, allowed):
    """Malform one of ``arrays`` (x1, x2, y1, y2); returns (arrays or dict, names, position)."""
    arrays = [a.copy() for a in arrays]
    name = data.draw(st.sampled_from(allowed), label="array")
    k = NAMES[name]
    a = arrays[k]
    if kind == "shape":
        axis = data.draw(st.integers(1, a.ndim - 1), label="axis")
        size = data.draw(st.integers(1, 6).filter(lambda s: s != a.shape[axis]), label="size")
        shape = list(a.shape)
        shape[axis] = size
        arrays[k] = np.zeros(shape, a.dtype)
        return arrays, [repr(name), str(tuple(shape))], None
    if kind == "rank":
        if data.draw(st.booleans(), label="add axis"):
            arrays[k] = a[..., None] if data.draw(st.booleans()) else a[:, None]
        else:
            arrays[k] = a[..., 0]
        return arrays, [repr(name), str(arrays[k].shape)], None
    if kind == "count":
        group = [0, 1] if k < 2 else [2, 3]
        extra = data.draw(st.booleans(), label="extra")
        chosen = [arrays[i] for i in group] + ([arrays[group[0]]] if extra else [])
        if not extra:
            chosen = [arrays[k]]
        arrays = ([chosen, arrays[2:]] if k < 2 else [arrays[:2], chosen])
        role_names = ["x1", "x2"] if k < 2 else ["out1", "out2"]
        return arrays, [str(role_names)], None
    if kind == "batch":
        arrays[k] = a[:-data.draw(st.integers(1, N - 1), label="drop")]
        return arrays, [name], None
    if kind == "dtype":
        how = data.draw(st.sampled_from(["complex", "str", "object", "datetime", "ragged",
                                         "none"]), label="dtype")
        arrays[k] = {"complex": lambda: a + 1j, "str": lambda: a.astype(str),
                     "object": lambda: a.astype(object),
                     "datetime": lambda: np.zeros(a.shape, "datetime64[s]"),
                     "ragged": lambda: [[1.0, 2.0], [3.0]],
                     "none": lambda: None}[how]()
        return arrays, [repr(name)], None
    if kind == "nonfinite":
        index = tuple(data.draw(st.integers(0, d - 1), label="index") for d in a.shape)
        value = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]), label="value")
        a[index] = value
        return arrays, [repr(name), f"at index {list(index)}"], index
    if kind == "empty":
        axis = data.draw(st.integers(0, a.ndim - 1), label="axis")
        shape = list(a.shape)
        shape[axis] = 0
        arrays[k] = np.zeros(shape, a.dtype)
        return arrays, [repr(name)], None
    if kind == "overflow":
        big = a.astype(np.float64)
        index = tuple(data.draw(st.integers(0, d - 1), label="index") for d in a.shape)
        big[index] = data.draw(st.sampled_from([1e300, -1e300, 1e39]), label="value")
        arrays[k] = big
        return arrays, [repr(name), f"at index {list(index)}", "float32"], index
    if kind == "dict":
        keys = ["x1", "x2"] if k < 2 else ["out1", "out2"]
        other = [i for i in (0, 1) if keys[i] != name]
        as_dict = {name + "_typo": arrays[k]}
        as_dict.update({keys[i]: arrays[(0 if k < 2 else 2) + i] for i in other})
        arrays = [as_dict, arrays[2:]] if k < 2 else [arrays[:2], as_dict]
        return arrays, [repr(name + "_typo"), repr(name)], None
    if kind == "bce_range":
        index = tuple(data.draw(st.integers(0, d - 1), label="index") for d in a.shape)
        a[index] = data.draw(st.sampled_from([-0.5, 1.5, 2.0, -1e-3]), label="value")
        return arrays, ["'out2'", f"at index {list(index)}", "[0, 1]"], index
    raise AssertionError(kind)


def _split(arrays):
    """``(x, y)`` from the flat list or the already grouped pair."""
    if len(arrays) == 2:
        return arrays[0], arrays[1]
    return arrays[:2], arrays[2:]


def _call(model, entry, x, y):
    good_x, good_y = _split(_data())
    return {
        "fit": lambda: model.fit(x, y, epochs=1, batch_size=4, verbose=0),
        "fit_validation": lambda: model.fit(good_x, good_y, epochs=1, batch_size=4, verbose=0,
                                            validation_data=(x, y)),
        "evaluate": lambda: model.evaluate(x, y, batch_size=4),
        "train_on_batch": lambda: model.train_on_batch(x, y),
        "gradients": lambda: model.gradients(x, y),
        "predict": lambda: model.predict(x, batch_size=4),
        "predict_on_batch": lambda: model.predict_on_batch(x),
    }[entry]


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_malformed_data_is_refused_at_every_entry_point(data):
    entry = data.draw(st.sampled_from(ENTRIES), label="entry")
    kinds = [k for k in KINDS if not (entry in X_ONLY and k == "bce_range")]
    kind = data.draw(st.sampled_from(kinds), label="kind")
    allowed = (["out2"] if kind == "bce_range" else
               ["x1", "x2"] if entry in X_ONLY else list(NAMES))
    arrays, names, _ = _malform(data, kind, _data(), allowed)
    x, y = _split(arrays)
    if entry == "fit_validation":
        names = names + ["validation_data"]
    assert_refused(MODEL, _call(MODEL, entry, x, y), *names)


@pytest.mark.parametrize("entry", ENTRIES)
def test_the_same_calls_succeed_on_good_data(entry):
    """The control: the entry points above accept the unmalformed data."""
    model = _trained_model()
    x, y = _split(_data())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _call(model, entry, x, y)()


def test_nonfinite_message_gives_the_position():
    x1, x2, y1, y2 = _data()
    x2[5, 2, 1] = np.nan
    x2[7, 0, 0] = np.inf
    message = assert_refused(MODEL, lambda: MODEL.predict([x1, x2]), "inputs 'x2'")
    assert "NaN at index [5, 2, 1] (2 non-finite values in all)" in message
    y1 = y1.copy()
    y1[3, 0] = -np.inf
    assert_refused(MODEL, lambda: MODEL.fit([x1, _data()[1]], [y1, y2], verbose=0),
                   "targets 'out1' holds -inf at index [3, 0]")


def test_shape_messages_name_the_layer_and_hint_at_the_trailing_axis():
    x1, x2, y1, y2 = _data()
    message = assert_refused(MODEL, lambda: MODEL.predict([x1[..., :2], x2]),
                             "inputs 'x1' expects shape (N, 4, 3), got (8, 4, 2)",
                             "it feeds LSTM 'lstm_a'")
    assert "reshape" not in message
    assert_refused(MODEL, lambda: MODEL.evaluate([x1, x2], [y1[:, 0], y2]),
                   "targets 'out1' expects shape (N, 1), got (8,)", "array.reshape(8, 1)",
                   "output of Dense 'out1'")


def test_integer_and_bool_inputs_are_cast_as_keras_does():
    x1, x2, y1, y2 = _data()
    ints = [np.round(x1 * 3).astype(np.int64), np.round(x2 * 3).astype(np.int32)]
    floats = [a.astype(np.float32) for a in ints]
    p_int, p_float = MODEL.predict(ints), MODEL.predict(floats)
    for a, b in zip(p_int, p_float):
        assert a.dtype == np.float32 and np.array_equal(a, b)
    # bool targets for the sigmoid head, uint8 for the linear one
    model = _trained_model()
    twin = _trained_model()
    model.train_on_batch([x1, x2], [y1.astype(np.uint8), y2.astype(bool)])
    twin.train_on_batch([x1, x2], [y1.astype(np.uint8).astype(np.float32), y2])
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), twin.get_weights()))


def test_bce_targets_outside_unit_interval_can_warn_or_be_ignored():
    x1, x2, y1, y2 = _data()
    y2 = y2.copy()
    y2[2, 0] = 1.25
    for policy in ("warn", "ignore"):
        model = build_demo_model(timesteps=T, features=(D1, D2), units=3, seed=0)
        model.compile(loss=["mse", losses.BinaryCrossentropy(invalid_targets=policy)])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.evaluate([x1, x2], [y1, y2])
        messages = [str(w.message) for w in caught]
        if policy == "warn":
            assert len(messages) == 1 and "targets 'out2'" in messages[0]
            assert "outside [0, 1]" in messages[0]
        else:
            assert messages == []
    assert_refused(None, lambda: losses.BinaryCrossentropy(invalid_targets="maybe"),
                   "invalid_targets", "'raise', 'warn', 'ignore'")


def test_masked_sequence_targets_are_checked_only_at_valid_steps():
    """Padding in the targets of a masked sequence output does not enter the loss."""
    mlstm.set_random_seed(1)
    x = Input((5, 2), name="seq")
    h = LSTM(3, return_sequences=True, name="lstm")(mlstm.Masking(name="mask")(x))
    model = Model(x, Dense(1, activation="sigmoid", name="p")(h))
    model.compile(loss="binary_crossentropy")
    xs = np.random.default_rng(0).standard_normal((3, 5, 2)).astype(np.float32)
    xs[0, 3:] = 0                                 # steps 3 and 4 of sample 0 are padding
    ys = np.ones((3, 5, 1), np.float32)
    ys[0, 3:] = -1                                # padded targets, as Keras users write them
    padded = model.evaluate(xs, ys)
    ys_clean = ys.copy()
    ys_clean[0, 3:] = 0
    assert padded == model.evaluate(xs, ys_clean)
    ys[1, 2] = -1                                 # a valid step: refused, position given
    assert_refused(model, lambda: model.train_on_batch(xs, ys), "'p'", "at index [1, 2, 0]")


@pytest.mark.parametrize("call", ["fit", "fit_no_shuffle", "evaluate", "validation_data"])
def test_masked_target_refusals_give_the_index_in_the_users_array(call):
    """Checked per batch, but reported where it is in the user's targets: targets[70, 3, 0],
    not its position within the batch ([6, 3, 0] with batches of 32)."""
    mlstm.set_random_seed(1)
    x = Input((5, 2), name="seq")
    h = LSTM(3, return_sequences=True, name="lstm")(mlstm.Masking(name="mask")(x))
    model = Model(x, Dense(1, activation="sigmoid", name="p")(h))
    model.compile(optimizer=Adam(1e-2), loss="binary_crossentropy")
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((100, 5, 2)).astype(np.float32)
    ys = (rng.random((100, 5, 1)) > 0.5).astype(np.float32)
    ys[70, 3, 0] = 2.0
    good = ys % 2                                 # the same targets, all in [0, 1]
    calls = {
        "fit": lambda: model.fit(xs, ys, epochs=1, batch_size=32, seed=3, verbose=0),
        "fit_no_shuffle": lambda: model.fit(xs, ys, epochs=1, batch_size=32, shuffle=False,
                                            verbose=0),
        "evaluate": lambda: model.evaluate(xs, ys, batch_size=32),
        "validation_data": lambda: model.fit(xs, good, epochs=1, batch_size=32, verbose=0,
                                             seed=3, validation_data=(xs, ys))}
    message = str(pytest.raises(ValueError, calls[call]).value)
    assert "at index [70, 3, 0]" in message and "'p'" in message, message


WEIGHT_CASES = ["count", "shape_first", "shape_last", "dtype_last", "ragged_last", "not_a_list"]


@pytest.mark.parametrize("case", WEIGHT_CASES)
def test_set_weights_refusals_change_nothing(case):
    weights = MODEL.get_weights()
    last = len(weights) - 1
    names = MODEL.layers and [n for l in MODEL.layers for n in l.weight_names]
    if case == "count":
        bad, expect = weights[:-1], ["has 10 weight arrays", "got 9"]
    elif case == "shape_first":
        bad = list(weights)
        bad[0] = np.zeros((weights[0].shape[0] + 1, weights[0].shape[1]))
        bad[last] = bad[last] + 1     # a valid change later on must not be applied either
        expect = [repr(names[0])]
    elif case == "shape_last":
        bad = [w + 1 for w in weights]
        bad[last] = np.zeros(weights[last].shape + (1,))
        expect = [repr(names[last])]
    elif case == "dtype_last":
        bad = [w + 1 for w in weights]
        bad[last] = bad[last].astype(complex)
        expect = [repr(names[last]), "complex"]
    elif case == "ragged_last":
        bad = [w + 1 for w in weights]
        bad[last] = [[1.0, 2.0], [3.0]]
        expect = [repr(names[last])]
    else:
        bad, expect = {"lstm_a/kernel": weights[0]}, ["set_weights", "dict"]
    assert_refused(MODEL, lambda: MODEL.set_weights(bad), *expect)
    layer = MODEL.get_layer("out2")
    assert_refused(MODEL, lambda: layer.set_weights([np.zeros((2, 2))]), "'out2'", "2 weights")


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_set_weights_malformed_at_a_random_position_changes_nothing(data):
    """Any one entry malformed, every other entry a valid new value: nothing is set."""
    weights = [w + 1 for w in MODEL.get_weights()]
    names = [n for layer in MODEL.layers for n in layer.weight_names]
    k = data.draw(st.integers(0, len(weights) - 1), label="entry")
    how = data.draw(st.sampled_from(["axis", "rank", "complex", "str", "ragged", "none"]),
                    label="how")
    w = weights[k]
    if how == "axis":
        axis = data.draw(st.integers(0, w.ndim - 1), label="axis")
        shape = list(w.shape)
        shape[axis] += data.draw(st.sampled_from([-1, 1, 5]), label="delta")
        weights[k] = np.zeros(shape, np.float32)
        expect = [repr(names[k]), str(w.shape)]
    elif how == "rank":
        weights[k] = w[None] if data.draw(st.booleans()) else w.ravel()[:1].reshape(())
        expect = [repr(names[k]), str(w.shape)]
    else:
        weights[k] = {"complex": w + 1j, "str": w.astype(str), "ragged": [[1.0], [1.0, 2.0]],
                      "none": None}[how]
        expect = [repr(names[k])]
    assert_refused(MODEL, lambda: MODEL.set_weights(weights), *expect)


COMPILE_CASES = [
    (dict(loss="hinge"), ["'hinge'", "binary_crossentropy", "mean_squared_error"]),
    (dict(loss="mse", optimizer="ftrl"), ["'ftrl'", "adam", "sgd", "rmsprop"]),
    (dict(loss="mse", metrics=["f1"]), ["'f1'", "binary_accuracy"]),
    (dict(loss=["mse"]), ["got 1 entries for 2 outputs", "out1"]),
    (dict(loss={"out3": "mse"}), ["out3", "out1", "out2"]),
    (dict(loss="mse", loss_weights=[1.0]), ["loss_weights", "got 1 entries"]),
    (dict(loss="mse", loss_weights={"outX": 1.0}), ["outX"]),
    (dict(loss="mse", loss_weights=[1.0, float("nan")]), ["'out2'", "finite"]),
    (dict(loss="mse", loss_weights=[1.0, "big"]), ["'out2'"]),
    (dict(loss="mse", loss_weights=2.0), ["loss_weights", "float"]),
    (dict(loss=None), ["needs a loss"]),
    (dict(loss=3), ["Cannot interpret 3"]),
]


@pytest.mark.parametrize("kwargs, names", COMPILE_CASES)
def test_compile_refusals_keep_the_old_settings(kwargs, names):
    assert_refused(MODEL, lambda: MODEL.compile(**kwargs), *names)


FIT_OPTIONS = [
    (dict(batch_size=0), ["batch_size"]), (dict(batch_size=2.5), ["batch_size"]),
    (dict(batch_size=True), ["batch_size"]), (dict(epochs=-1), ["epochs"]),
    (dict(initial_epoch=-2), ["initial_epoch"]), (dict(initial_epoch=1.0), ["initial_epoch"]),
    (dict(seed=-3), ["seed"]), (dict(seed="abc"), ["seed"]), (dict(shuffle="yes"), ["shuffle"]),
    (dict(verbose=7), ["verbose"]), (dict(validation_data=([1],)), ["validation_data"]),
    (dict(checkpoint="/no/such/dir/ck.npz"), ["/no/such/dir", "does not exist"]),
    (dict(checkpoint=3.5), ["filepath", "float"]),
]


@pytest.mark.parametrize("kwargs, names", FIT_OPTIONS)
def test_fit_option_refusals_change_nothing(kwargs, names):
    x, y = _split(_data())
    assert_refused(MODEL, lambda: MODEL.fit(x, y, verbose=0, **kwargs), *names)


def test_uncompiled_model_refuses_training_calls():
    model = build_demo_model(timesteps=T, features=(D1, D2), units=3, seed=0)
    x, y = _split(_data())
    for call in (lambda: model.fit(x, y), lambda: model.evaluate(x, y),
                 lambda: model.train_on_batch(x, y), lambda: model.gradients(x, y)):
        with pytest.raises(RuntimeError, match="model.compile"):
            call()


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_graph_construction_refusals(data):
    case = data.draw(st.sampled_from(["units", "activation", "input_shape", "lstm_rank",
                                      "not_tensor", "dense_rebuild", "name", "dtype"]))
    x = Input((3, 2), name="gx")
    if case == "units":
        bad = data.draw(st.sampled_from([0, -1, 2.5, "4", None, True]))
        layer = data.draw(st.sampled_from([LSTM, Dense]))
        assert_refused(None, lambda: layer(bad, name="lay"), "'lay'", "units")
    elif case == "activation":
        bad = data.draw(st.sampled_from(["elu", "Sigmoid", 3]))
        assert_refused(None, lambda: Dense(2, activation=bad), repr(bad), "sigmoid", "tanh")
    elif case == "input_shape":
        bad = data.draw(st.sampled_from([(0, 2), (-1, 2), (2.5,), ("a",)]))
        assert_refused(None, lambda: Input(bad, name="inp"), "'inp'", "shape")
    elif case == "lstm_rank":
        assert_refused(None, lambda: LSTM(2, name="lr")(Input((4,))), "'lr'", "(N, T, D)")
    elif case == "not_tensor":
        assert_refused(None, lambda: Dense(2, name="dn")(np.zeros((3, 2))), "'dn'",
                       "symbolic")
        assert_refused(None, lambda: Model(np.zeros(3), x), "inputs[0]", "symbolic")
    elif case == "dense_rebuild":
        dense = Dense(2, name="dr")
        dense(LSTM(4)(x))
        assert_refused(None, lambda: dense(LSTM(5)(x)), "'dr'", "(..., 4)", "(N, 5)")
    elif case == "name":
        bad = data.draw(st.sampled_from(["a/b", "", 7]))
        assert_refused(None, lambda: Dense(2, name=bad), "name")
    else:
        assert_refused(None, lambda: Input((3, 2), dtype="int8"), "float32", "int32", "int8")


def test_free_dimensions_are_checked_at_run_time():
    """Inputs with T = None: Concatenate and Reshape check the sizes that meet at run time."""
    x1, x2 = Input((None, 3), name="v1"), Input((None, 3), name="v2")
    seq = concatenate([LSTM(2, return_sequences=True, name="va")(x1),
                       LSTM(2, return_sequences=True, name="vb")(x2)], name="vcat")
    model = Model([x1, x2], Dense(1, name="vo")(seq))
    a, b = np.zeros((2, 4, 3), np.float32), np.zeros((2, 5, 3), np.float32)
    assert_refused(model, lambda: model.predict([a, b]), "Concatenate 'vcat'", "(2, 4, 2)",
                   "(2, 5, 2)")
    assert model.predict([a, a]).shape == (2, 4, 1)
    x = Input((None, 4), name="vr")
    reshaped = Model(x, Reshape((2, 2), name="vreshape")(x))
    assert_refused(reshaped, lambda: reshaped.predict(np.zeros((2, 3, 4))),
                   "Reshape 'vreshape'", "(2, 3, 4)", "(2, 2)")
    assert reshaped.predict(np.zeros((2, 1, 4))).shape == (2, 2, 2)


def test_standalone_loss_refuses_a_silent_broadcast():
    y_true, y_pred = np.zeros(4), np.zeros((4, 1))
    assert_refused(None, lambda: losses.MeanSquaredError()(y_true, y_pred), "y_true",
                   "(4,)", "(4, 1)", "reshape(4, 1)")
    assert_refused(None, lambda: losses.BinaryCrossentropy()(np.full((4, 1), 3.0), y_pred),
                   "binary_crossentropy", "[0, 1]")
    assert losses.MeanSquaredError()(np.ones((4, 1)), y_pred) == 1.0


def test_set_weights_refuses_a_nan_naming_the_weight_and_the_index():
    from mlstm.demo import build_demo_model
    model = build_demo_model()
    before = model.get_weights()
    weights = model.get_weights()
    weights[0][1, 2] = np.nan
    with pytest.raises(ValueError, match=r"'lstm_a/kernel' holds NaN at index \[1, 2\]"):
        model.set_weights(weights)
    for a, b in zip(model.get_weights(), before):      # nothing was changed
        np.testing.assert_array_equal(a, b)
