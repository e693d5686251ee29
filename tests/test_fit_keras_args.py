"""fit / evaluate take Keras' arguments, with Keras 3.15's numbers (issue 14).

The Keras tests train the same float64 model with the same weights and data (shuffle off)
in Keras and in mlstm and compare every history value and the final weights within 1e-9:
``sample_weight`` (an array, a list per output, a dict by output name, per-step weights on
a masked sequence output), ``validation_split``, single-output ``class_weight``,
``steps_per_epoch`` and ``validation_freq``. The others check what Keras cannot be
compared on: multi-output ``class_weight`` (Keras refuses it) against the per-output
``sample_weight`` it means, and the refusals.
"""
import numpy as np
import pytest
from _keras_twin import (assert_same_history, assert_same_weights, data, float64, keras_fit,
                         keras_twin, single_output_model, two_output_model)

import mlstm
from mlstm.optimizers import SGD, Adam


@pytest.fixture(scope="module")
def keras():
    from mlstm.interop.keras import _import_keras
    return _import_keras()


def _weights(n=12, seed=1):
    return np.random.default_rng(seed).uniform(0.0, 2.0, n)


# --------------------------------------------------------------------------- against Keras
@pytest.mark.keras
def test_sample_weight_array_single_output(keras):
    """Keras' weighted reduction (Σ w·l / N) and epoch means over an uneven last batch."""
    x, y1, _ = data()
    model = single_output_model()
    model.compile(SGD(0.1), loss="mse", metrics=["mae"])
    kmodel = keras_twin(keras, model, lambda: keras.optimizers.SGD(0.1), "mse",
                        metrics=["mae"])
    w = _weights()
    theirs = keras_fit(keras, kmodel, x, y1[:, :1], batch_size=5, epochs=3, sample_weight=w)
    mine = model.fit(x, y1[:, :1], batch_size=5, epochs=3, sample_weight=w, shuffle=False,
                     verbose=0)
    assert_same_history(mine, theirs)
    assert_same_weights(model, kmodel)
    # the reduction divides by N, not by Σ w
    fresh = single_output_model()
    fresh.compile(SGD(0.1), loss="mse")
    p = fresh.predict(x)
    per_sample = np.mean((p - y1[:, :1]) ** 2, axis=-1)
    assert fresh.evaluate(x, y1[:, :1], batch_size=12, sample_weight=w) == pytest.approx(
        np.sum(w * per_sample) / 12, rel=1e-14)


@pytest.mark.keras
@pytest.mark.parametrize("form", ["list", "dict"])
def test_sample_weight_per_output(keras, form):
    x, y1, y2 = data()
    model = two_output_model()
    model.compile(Adam(0.01), loss=["mse", "binary_crossentropy"], loss_weights=[0.7, 0.3],
                  metrics=["mae"])
    kmodel = keras_twin(keras, model, lambda: keras.optimizers.Adam(0.01),
                        ["mse", "binary_crossentropy"], loss_weights=[0.7, 0.3],
                        metrics=[["mae"], ["mae"]])
    w1, w2 = _weights(seed=1), _weights(seed=2)
    if form == "list":
        ky, kw = [y1, y2], [w1, w2]
        my, mw = [y1, y2], [w1, w2]
    else:
        ky, kw = {"out1": y1, "out2": y2}, {"out1": w1, "out2": w2}
        my, mw = [y1, y2], {"out2": w2, "out1": w1}
    if form == "dict":         # Keras resolves dicts of targets by the outputs' names
        kmodel = keras.Model(kmodel.inputs, dict(zip(["out1", "out2"], kmodel.outputs)))
        with float64(keras):
            kmodel.compile(optimizer=keras.optimizers.Adam(0.01),
                           loss={"out1": "mse", "out2": "binary_crossentropy"},
                           loss_weights={"out1": 0.7, "out2": 0.3},
                           metrics={"out1": ["mae"], "out2": ["mae"]}, run_eagerly=True)
    theirs = keras_fit(keras, kmodel, x, ky, batch_size=5, epochs=3, sample_weight=kw)
    mine = model.fit(x, my, batch_size=5, epochs=3, sample_weight=mw, shuffle=False,
                     verbose=0)
    assert_same_history(mine, theirs)
    assert_same_weights(model, kmodel)


@pytest.mark.keras
def test_validation_split_takes_the_tail_with_its_weights(keras):
    x, y1, _ = data(n=13)
    model = single_output_model()
    # momentum 0.5: Keras casts the momentum through float32 (tf.cast of a Python float),
    # mlstm's SGD does not; 0.5 is the same in both
    model.compile(SGD(0.05, momentum=0.5), loss="mse")
    kmodel = keras_twin(keras, model, lambda: keras.optimizers.SGD(0.05, momentum=0.5),
                        "mse")
    w = _weights(13)
    theirs = keras_fit(keras, kmodel, x, y1[:, :1], batch_size=4, epochs=3,
                       validation_split=0.3, sample_weight=w)
    mine = model.fit(x, y1[:, :1], batch_size=4, epochs=3, validation_split=0.3,
                     sample_weight=w, shuffle=False, verbose=0)
    assert sorted(mine.history) == ["loss", "val_loss"]
    assert_same_history(mine, theirs)
    assert_same_weights(model, kmodel)
    at = int(np.floor(13 * 0.7))
    assert model.evaluate(x[at:], y1[at:, :1], sample_weight=w[at:]) == pytest.approx(
        mine.history["val_loss"][-1], rel=1e-14)


@pytest.mark.keras
def test_class_weight_single_output(keras):
    x, _, y2 = data()
    model = single_output_model(activation="sigmoid")
    model.compile(Adam(0.02), loss="binary_crossentropy", metrics=["accuracy"])
    kmodel = keras_twin(keras, model, lambda: keras.optimizers.Adam(0.02),
                        "binary_crossentropy", metrics=["accuracy"])
    class_weight = {0: 0.3, 1: 2.5}
    theirs = keras_fit(keras, kmodel, x, y2, batch_size=5, epochs=3,
                       class_weight=class_weight, validation_split=0.25)
    mine = model.fit(x, y2, batch_size=5, epochs=3, class_weight=class_weight,
                     validation_split=0.25, shuffle=False, verbose=0)
    assert_same_history(mine, theirs)     # val_loss unweighted, as in Keras
    assert_same_weights(model, kmodel)


@pytest.mark.keras
def test_per_step_weights_on_a_masked_sequence_output(keras):
    """Masked steps combine with (N, T) weights as Keras combines them: Σ w·m·l / Σ m."""
    T = 5
    x_in = mlstm.Input(shape=(T, 3), name="x", dtype="float64")
    h = mlstm.Masking(0.0, name="mask")(x_in)
    h = mlstm.LSTM(3, return_sequences=True, name="lstm", seed=0)(h)
    model = mlstm.Model(x_in, mlstm.Dense(1, name="out", seed=1)(h))
    model.compile(SGD(0.1), loss="mse")
    kmodel = keras_twin(keras, model, lambda: keras.optimizers.SGD(0.1), "mse")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(9, T, 3))
    x[0, 3:] = 0.0
    x[4, 1:] = 0.0
    y = rng.normal(size=(9, T, 1))
    w = rng.uniform(0.0, 2.0, (9, T))
    theirs = keras_fit(keras, kmodel, x, y, batch_size=4, epochs=2, sample_weight=w)
    mine = model.fit(x, y, batch_size=4, epochs=2, sample_weight=w, shuffle=False, verbose=0)
    assert_same_history(mine, theirs)
    assert_same_weights(model, kmodel)


@pytest.mark.keras
def test_steps_per_epoch_and_validation_freq(keras):
    """Epochs walk on through the data as Keras' do (the one reaching its end is shorter);
    validation only at the epochs validation_freq names."""
    x, y1, _ = data(n=12)
    model = single_output_model()
    model.compile(SGD(0.1), loss="mse")
    kmodel = keras_twin(keras, model, lambda: keras.optimizers.SGD(0.1), "mse")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")            # Keras: "Your input ran out of data"
        theirs = keras_fit(keras, kmodel, x[:9], y1[:9, :1], batch_size=3, epochs=4,
                           steps_per_epoch=2, validation_data=(x[9:], y1[9:, :1]),
                           validation_freq=2)
    mine = model.fit(x[:9], y1[:9, :1], batch_size=3, epochs=4, steps_per_epoch=2,
                     validation_data=(x[9:], y1[9:, :1]), validation_freq=2, shuffle=False,
                     verbose=0)
    assert len(mine.history["val_loss"]) == 2
    assert_same_history(mine, theirs)
    assert_same_weights(model, kmodel)
    assert model.optimizer.iterations == 6        # 2 + 1 (the data ran out) + 2 + 1


# --------------------------------------------------------------------------- beyond Keras
def test_multi_output_class_weight_is_the_per_output_sample_weight_it_means():
    x, y1, y2 = data(n=14)
    y3 = np.eye(3)[np.random.default_rng(4).integers(0, 3, 14)]
    x_in = mlstm.Input(shape=(4, 3), name="x", dtype="float64")
    h = mlstm.LSTM(3, name="lstm", seed=0)(x_in)
    outs = [mlstm.Dense(1, activation="sigmoid", name="bin", seed=1)(h),
            mlstm.Dense(3, activation="sigmoid", name="cat", seed=2)(h),
            mlstm.Dense(2, name="reg", seed=3)(h)]

    def fresh():
        m = mlstm.Model(x_in, outs).clone()
        m.compile(Adam(0.01), loss=["binary_crossentropy", "binary_crossentropy", "mse"],
                  metrics=["mae"])
        return m

    base = mlstm.Model(x_in, outs)
    start = base.get_weights()
    class_weight = {"bin": {0: 0.5, 1: 3.0}, "cat": {0: 1.0, 1: 0.2, 2: 4.0}}
    by_class = fresh()
    by_class.set_weights(start)
    h1 = by_class.fit(x, [y2, y3, y1], batch_size=4, epochs=3, seed=1, verbose=0,
                      class_weight=class_weight)
    sample_weight = {"bin": np.where(y2[:, 0] > 0.5, 3.0, 0.5),
                     "cat": np.array([1.0, 0.2, 4.0])[np.argmax(y3, axis=1)]}
    by_sample = fresh()
    by_sample.set_weights(start)
    h2 = by_sample.fit(x, [y2, y3, y1], batch_size=4, epochs=3, seed=1, verbose=0,
                       sample_weight=sample_weight)
    assert h1.history == h2.history
    for a, b in zip(by_class.get_weights(), by_sample.get_weights()):
        assert np.array_equal(a, b)


def test_a_flat_class_weight_for_several_outputs_says_what_to_write():
    x, y1, y2 = data()
    model = two_output_model()
    model.compile("adam", loss=["mse", "binary_crossentropy"])
    with pytest.raises(ValueError, match=r"dict by output name.*sample_weight\[output\]"):
        model.fit(x, [y1, y2], class_weight={0: 1.0, 1: 2.0}, verbose=0)
    with pytest.raises(ValueError, match="unknown output names"):
        model.fit(x, [y1, y2], class_weight={"nope": {0: 1.0}}, verbose=0)
    with pytest.raises(ValueError, match="not both"):
        model.fit(x, [y1, y2], class_weight={"out2": {0: 1.0}}, sample_weight=_weights(),
                  verbose=0)


def test_sample_weight_shapes_on_a_sequence_output():
    """(N,), (N, 1) and (N, T) of the same per-sample weights give the same run."""
    x_in = mlstm.Input(shape=(4, 3), name="x", dtype="float64")
    h = mlstm.LSTM(3, return_sequences=True, name="lstm", seed=0)(x_in)
    model = mlstm.Model(x_in, mlstm.Dense(1, name="out", seed=1)(h))
    model.compile(SGD(0.1), loss="mse")
    x, _, _ = data()
    y = np.random.default_rng(2).normal(size=(12, 4, 1))
    w = _weights()
    runs = []
    for given in (w, w[:, None], np.repeat(w[:, None], 4, axis=1)):
        m = model.clone()
        m.compile(SGD(0.1), loss="mse")
        runs.append((m.fit(x, y, batch_size=5, epochs=2, seed=0, verbose=0,
                           sample_weight=given).history, m.get_weights()))
    for history, weights in runs[1:]:
        assert history == runs[0][0]
        assert all(np.array_equal(a, b) for a, b in zip(weights, runs[0][1]))
    with pytest.raises(ValueError, match=r"shape \(12, 2\).*\(12,\), \(12, 1\), \(12, 4\)"):
        model.fit(x, y, sample_weight=np.ones((12, 2)), verbose=0)
    with pytest.raises(ValueError, match="negative"):
        model.fit(x, y, sample_weight=-w, verbose=0)
    with pytest.raises(ValueError, match="NaN"):
        model.fit(x, y, sample_weight=np.where(w > 1, np.nan, w), verbose=0)


def test_one_array_for_several_outputs_must_be_per_sample():
    x, y1, y2 = data()
    model = two_output_model()
    model.compile(SGD(0.1), loss=["mse", "binary_crossentropy"])
    w = _weights()
    shared = model.clone()
    shared.compile(SGD(0.1), loss=["mse", "binary_crossentropy"])
    listed = model.clone()
    listed.compile(SGD(0.1), loss=["mse", "binary_crossentropy"])
    h1 = shared.fit(x, [y1, y2], sample_weight=w, epochs=2, seed=0, verbose=0)
    h2 = listed.fit(x, [y1, y2], sample_weight=[w, w], epochs=2, seed=0, verbose=0)
    assert h1.history == h2.history
    with pytest.raises(ValueError, match="one weight per sample"):
        model.fit(x, [y1, y2], sample_weight=np.ones((12, 2)), verbose=0)
    with pytest.raises(ValueError, match="3 entries for 2 outputs"):
        model.fit(x, [y1, y2], sample_weight=[w, w, w], verbose=0)


def test_validation_split_is_the_tail_before_shuffling():
    x, y1, _ = data(n=10)
    model = single_output_model()
    model.compile(SGD(0.0), loss="mse", metrics=["mae"])     # lr 0: the weights stay
    history = model.fit(x, y1[:, :1], validation_split=0.3, epochs=2, batch_size=3, seed=5,
                        verbose=0)
    tail = model.evaluate(x[7:], y1[7:, :1], return_dict=True)
    head = model.evaluate(x[:7], y1[:7, :1], batch_size=7, return_dict=True)
    assert history.history["val_loss"] == [tail["loss"]] * 2
    assert history.history["val_mae"] == [tail["mae"]] * 2
    assert history.history["mae"][0] == pytest.approx(head["mae"], rel=1e-14)
    with pytest.raises(ValueError, match="not both"):
        model.fit(x, y1[:, :1], validation_split=0.2, validation_data=(x, y1[:, :1]),
                  verbose=0)
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        model.fit(x, y1[:, :1], validation_split=1.5, verbose=0)


def test_unknown_arguments_are_a_value_error_listing_the_taken_ones():
    x, y1, _ = data()
    model = single_output_model()
    model.compile("sgd", loss="mse")
    with pytest.raises(ValueError, match=r"does not take \['epoch'\].*It takes: x, y, "
                                         r"batch_size, epochs"):
        model.fit(x, y1[:, :1], epoch=3)
    with pytest.raises(ValueError, match="validation_steps.*validation_data"):
        model.fit(x, y1[:, :1], validation_steps=2)
    with pytest.raises(ValueError, match="evaluate.*steps"):
        model.evaluate(x, y1[:, :1], steps=2)
    with pytest.raises(ValueError, match="predict.*workers"):
        model.predict(x, workers=2)
    with pytest.raises(ValueError, match="steps_per_epoch=9 is more than the 3 batches"):
        model.fit(x, y1[:, :1], batch_size=4, steps_per_epoch=9, verbose=0)
    with pytest.raises(ValueError, match="validation_freq"):
        model.fit(x, y1[:, :1], validation_freq=0, verbose=0)
    with pytest.raises(ValueError, match="verbose"):
        model.fit(x, y1[:, :1], verbose=3)


def test_batch_size_from_steps_per_epoch_and_initial_epoch():
    x, y1, _ = data(n=12)
    model = single_output_model()
    model.compile(SGD(0.01), loss="mse")
    history = model.fit(x, y1[:, :1], steps_per_epoch=3, epochs=3, initial_epoch=1,
                        verbose=0)
    assert history.params["batch_size"] == 4 and history.params["steps"] == 3
    assert history.epoch == [1, 2]
    assert model.optimizer.iterations == 6


def test_evaluate_and_train_on_batch_take_sample_weight():
    x, y1, y2 = data()
    model = two_output_model()
    model.compile(SGD(0.1), loss=["mse", "binary_crossentropy"], loss_weights=[2.0, 0.5])
    w = _weights()
    p1, p2 = model.predict(x)
    l1 = np.sum(w * np.mean((p1 - y1) ** 2, axis=-1)) / 12
    logs = model.evaluate(x, [y1, y2], sample_weight={"out1": w}, batch_size=12,
                          return_dict=True)
    assert logs["out1_loss"] == pytest.approx(l1, rel=1e-13)
    assert logs["loss"] == pytest.approx(2.0 * l1 + 0.5 * logs["out2_loss"], rel=1e-13)
    assert model.train_on_batch(x, [y1, y2], sample_weight={"out1": w},
                                return_dict=True) == pytest.approx(logs, rel=1e-13)
    with pytest.raises(ValueError, match="train_on_batch.*It takes"):
        model.train_on_batch(x, [y1, y2], reset_metrics=True)


def test_verbose_as_keras(capsys):
    x, y1, _ = data()
    model = single_output_model()
    model.compile(SGD(0.01), loss="mse", metrics=["mae"])
    model.fit(x, y1[:, :1], epochs=2, batch_size=5, verbose=2, seed=0)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Epoch 1/2" and out[2] == "Epoch 2/2"
    assert out[1].startswith("3/3 - ") and "ms/step - loss: " in out[1] and "mae: " in out[1]
    model.fit(x, y1[:, :1], epochs=1, batch_size=5, verbose="auto", seed=0)
    out = capsys.readouterr().out.splitlines()     # not a terminal: one final line
    assert out[0] == "Epoch 1/1"
    assert out[1].startswith("3/3 ━━━━━━━━━━━━━━━━━━━━ ") and "elapsed" in out[1]
    model.evaluate(x, y1[:, :1], verbose=2)
    assert capsys.readouterr().out.startswith("1/1 - ")
    model.evaluate(x, y1[:, :1])                   # mlstm's default: silent
    assert capsys.readouterr().out == ""
    model.predict(x, batch_size=5, verbose=1)
    assert capsys.readouterr().out.startswith("3/3 ━")
    assert np.array_equal(model(x), model.predict(x))


def test_a_run_with_steps_per_epoch_resumes_bit_identically(tmp_path):
    """Epochs walk on through shuffled passes; the checkpoint's training_state carries
    steps_per_epoch, so the resumed run takes the same batches."""
    x, y1, _ = data(n=14)
    straight = single_output_model()
    straight.compile(Adam(0.01), loss="mse")
    h1 = straight.fit(x, y1[:, :1], batch_size=3, steps_per_epoch=2, epochs=6, seed=4,
                      verbose=0)
    first = single_output_model()
    first.compile(Adam(0.01), loss="mse")
    first.fit(x, y1[:, :1], batch_size=3, steps_per_epoch=2, epochs=3, seed=4, verbose=0,
              checkpoint=tmp_path / "ck.npz")
    resumed = mlstm.load_model(tmp_path / "ck.npz")
    state = resumed.training_state
    assert state["steps_per_epoch"] == 2 and state["initial_epoch"] == 3
    h2 = resumed.fit(x, y1[:, :1], verbose=0, **dict(state, epochs=6))
    assert h2.history["loss"] == h1.history["loss"][3:]
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        assert np.array_equal(a, b)
    # 5 batches: epochs take 2, 2, 1 (the end of the data), then a new pass
    from mlstm.training.fit import batch_positions
    assert [batch_positions(e, 2, 5) for e in range(4)] == [(0, 0, 2), (0, 2, 2), (0, 4, 1),
                                                           (1, 0, 2)]
