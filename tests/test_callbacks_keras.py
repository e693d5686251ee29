"""Callbacks with Keras' signatures and decisions (issue 14).

Against Keras 3.15 on the same float64 run (same model, weights, data, shuffle off): the
same hooks in the same order with the same ``logs`` keys; EarlyStopping stops at the same
epoch and restores the same weights; ReduceLROnPlateau cuts the rate at the same epochs
(the ``learning_rate`` history is identical); CSVLogger writes the same columns. Then what
mlstm checks before training: every callback object, its hooks and their arguments.
"""
import csv
import warnings

import numpy as np
import pytest
from _keras_twin import (assert_same_history, assert_same_weights, data, float64, keras_fit,
                         keras_twin, single_output_model)

import mlstm
from mlstm.callbacks import (Callback, CSVLogger, EarlyStopping, LambdaCallback,
                             ModelCheckpoint, ReduceLROnPlateau, TerminateOnNaN)
from mlstm.optimizers import SGD, Adam
from mlstm.validation import NonFiniteError


@pytest.fixture(scope="module")
def keras():
    from mlstm.interop.keras import _import_keras
    return _import_keras()


def _run(keras, callbacks, keras_callbacks, epochs=6, optimizer=("adam", 0.1), metrics=None):
    """The same fit in Keras and mlstm: ``(model, kmodel, my history, Keras' history)``."""
    x, y1, _ = data(n=16)
    vx, vy, _ = data(n=6, seed=9)
    name, lr = optimizer
    model = single_output_model()
    model.compile(Adam(lr) if name == "adam" else SGD(lr), loss="mse", metrics=metrics)
    kmodel = keras_twin(keras, model, lambda: (keras.optimizers.Adam(lr) if name == "adam"
                                               else keras.optimizers.SGD(lr)), "mse",
                        metrics=metrics)
    theirs = keras_fit(keras, kmodel, x, y1[:, :1], batch_size=8, epochs=epochs,
                       validation_data=(vx, vy[:, :1]), callbacks=keras_callbacks)
    mine = model.fit(x, y1[:, :1], batch_size=8, epochs=epochs, shuffle=False, verbose=0,
                     validation_data=(vx, vy[:, :1]), callbacks=callbacks)
    return model, kmodel, mine, theirs


class _Recording:
    """Every hook call: (hook, the positional arguments, the logs' keys or None)."""

    def _note(self, hook, *args, logs=None):
        self.calls.append((hook, args, None if logs is None else sorted(logs)))


def _recorder(base):
    names = ["on_train_begin", "on_train_end", "on_test_begin", "on_test_end"]
    paired = ["on_epoch_begin", "on_epoch_end", "on_train_batch_begin", "on_train_batch_end",
              "on_test_batch_begin", "on_test_batch_end"]
    body = {"__init__": lambda self: (base.__init__(self), setattr(self, "calls", []))[0]}
    for name in names:
        body[name] = (lambda n: lambda self, logs=None: self._note(n, logs=logs))(name)
    for name in paired:
        body[name] = (lambda n: lambda self, i, logs=None: self._note(n, i, logs=logs))(name)
    return type("Recorder", (_Recording, base), body)()


# --------------------------------------------------------------------------- against Keras
@pytest.mark.keras
def test_the_same_hooks_in_the_same_order_with_the_same_logs_keys(keras):
    mine, theirs = _recorder(Callback), _recorder(keras.callbacks.Callback)
    model, kmodel, history, kh = _run(keras, [mine], [theirs], epochs=2, metrics=["mae"])
    assert mine.calls == theirs.calls
    assert ("on_test_batch_end", (0,), ["loss", "mae"]) in mine.calls
    assert mine.calls[-1] == ("on_train_end", (), ["loss", "mae", "val_loss", "val_mae"])
    assert_same_history(history, kh)


@pytest.mark.keras
@pytest.mark.parametrize("options", [
    dict(monitor="val_loss", patience=1),
    dict(monitor="loss", min_delta=0.03, patience=2, restore_best_weights=True),
    dict(monitor="val_loss", patience=2, baseline=0.9, restore_best_weights=True),
    dict(monitor="val_loss", patience=0, start_from_epoch=3),
], ids=["patience", "min_delta-restore", "baseline", "start_from_epoch"])
def test_early_stopping_stops_at_the_same_epoch(keras, options):
    stopper = EarlyStopping(**options)
    kstopper = keras.callbacks.EarlyStopping(**options)
    model, kmodel, mine, theirs = _run(keras, [stopper], [kstopper], epochs=8)
    assert mine.epoch == theirs.epoch and len(mine.epoch) < 8
    assert (stopper.stopped_epoch, stopper.best_epoch) == (kstopper.stopped_epoch,
                                                           kstopper.best_epoch)
    assert_same_history(mine, theirs)
    assert_same_weights(model, kmodel)      # the restored ones, with restore_best_weights


@pytest.mark.keras
def test_restore_best_weights_restores_even_without_stopping(keras):
    options = dict(monitor="val_loss", patience=50, restore_best_weights=True)
    stopper, kstopper = EarlyStopping(**options), keras.callbacks.EarlyStopping(**options)
    model, kmodel, mine, theirs = _run(keras, [stopper], [kstopper], epochs=5)
    assert mine.epoch == [0, 1, 2, 3, 4] and stopper.stopped_epoch == 0
    assert stopper.best_epoch == kstopper.best_epoch < 4
    assert_same_weights(model, kmodel)


@pytest.mark.keras
def test_reduce_lr_on_plateau_cuts_at_the_same_epochs(keras):
    options = dict(monitor="loss", factor=0.5, patience=1, min_delta=0.02, cooldown=1,
                   min_lr=0.02)
    model, kmodel, mine, theirs = _run(keras, [ReduceLROnPlateau(**options)],
                                       [keras.callbacks.ReduceLROnPlateau(**options)],
                                       epochs=9, optimizer=("sgd", 0.2))
    rates = mine.history["learning_rate"]
    assert rates == theirs.history["learning_rate"]          # exactly
    assert sorted(set(rates)) == [0.02, 0.025, 0.05, 0.1, 0.2]    # the last cut: min_lr
    assert_same_history(mine, theirs)
    assert_same_weights(model, kmodel)


@pytest.mark.keras
def test_improvements_are_judged_in_float32_as_keras_does(keras):
    """1.0 - 1e-9 is not below 1.0 in float32: neither Keras nor mlstm counts it."""
    mine = EarlyStopping(monitor="loss")
    theirs = keras.callbacks.EarlyStopping(monitor="loss")
    theirs._set_monitor_op()
    for current, best in [(1.0 - 1e-9, 1.0), (1.0 - 1e-7, 1.0), (0.5, 0.5000001),
                          (3.0, 2.0), (2.0, 2.0000000001)]:
        assert mine.is_improvement(current, best) == bool(theirs._is_improvement(current,
                                                                                 best))
    assert not mine.is_improvement(1.0 - 1e-9, 1.0)
    assert mine.is_improvement(1.0 - 1e-7, 1.0)


@pytest.mark.keras
def test_csv_logger_writes_keras_columns(keras, tmp_path):
    mine_path, their_path = tmp_path / "mine.csv", tmp_path / "theirs.csv"
    _run(keras, [CSVLogger(mine_path)], [keras.callbacks.CSVLogger(str(their_path))],
         epochs=2, metrics=["mae"])
    mine = list(csv.reader(mine_path.open()))
    theirs = list(csv.reader(their_path.open()))
    assert mine[0] == theirs[0] == ["epoch", "loss", "mae", "val_loss", "val_mae"]
    assert [r[0] for r in mine] == [r[0] for r in theirs]
    np.testing.assert_allclose(np.array(mine[1:], float), np.array(theirs[1:], float),
                               rtol=0, atol=1e-9)


@pytest.mark.keras
def test_a_keras_callback_is_refused_with_the_mlstm_name(keras):
    x, y1, _ = data()
    model = single_output_model()
    model.compile("sgd", loss="mse")
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"Keras callback.*mlstm\.callbacks\.EarlyStopping"):
        model.fit(x, y1[:, :1], callbacks=[keras.callbacks.EarlyStopping()], verbose=0)
    with pytest.raises(ValueError, match="no counterpart"):
        model.fit(x, y1[:, :1], callbacks=[keras.callbacks.RemoteMonitor()], verbose=0)
    with pytest.raises(ValueError, match="Keras callback"):
        model.fit(x, y1[:, :1], callbacks=keras.callbacks.CallbackList([]), verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


# --------------------------------------------------------------------------- checked first
class _OldStyle:
    def on_epoch_end(self, model, epoch, logs):
        pass


class _Misspelt(Callback):
    def on_epoch_ends(self, epoch, logs=None):
        pass


class _Renamed:
    def on_before_update(self, model, step, info):
        pass


@pytest.mark.parametrize("callback, message", [
    (_OldStyle(), r"on_epoch_end must take \(epoch, logs\).*self\.model"),
    (_Misspelt(), "on_epoch_ends is not a callback hook"),
    (_Renamed(), "renamed on_before_update_step"),
    (EarlyStopping, "is a class; pass an instance"),
    (object(), "has none of the callback hooks"),
    (LambdaCallback(on_epoch_end=lambda logs: None), r"on_epoch_end must take \(epoch, logs\)"),
])
def test_callbacks_are_checked_before_any_weight_changes(callback, message):
    x, y1, _ = data()
    model = single_output_model()
    model.compile("sgd", loss="mse")
    before = model.get_weights()
    with pytest.raises((ValueError, TypeError), match=message):
        model.fit(x, y1[:, :1], callbacks=[callback], verbose=0, epochs=2)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert model.optimizer.iterations == 0


def test_other_refusals():
    with pytest.raises(ValueError, match="not callback hooks"):
        LambdaCallback(on_epoch_finish=print)
    with pytest.raises(ValueError, match="cannot tell whether 'val_thing'"):
        EarlyStopping(monitor="val_thing")
    with pytest.raises(ValueError, match="Keras file name"):
        ModelCheckpoint("best.keras")
    with pytest.raises(ValueError, match="must end with '.weights.npz'"):
        ModelCheckpoint("best.npz", save_weights_only=True)
    with pytest.raises(ValueError, match="factor"):
        ReduceLROnPlateau(factor=1.5)
    x, y1, _ = data()
    model = single_output_model()
    lr = mlstm.schedules.ExponentialDecay(0.1, 10, 0.5)
    model.compile(SGD(lr), loss="mse")
    with pytest.raises(TypeError, match="schedule"):
        model.fit(x, y1[:, :1], callbacks=[ReduceLROnPlateau()], verbose=0)
    with pytest.raises(TypeError, match="list"):
        model.fit(x, y1[:, :1], callbacks=EarlyStopping(), verbose=0)


def test_keras_hooks_with_self_model_and_stop_training():
    x, y1, _ = data(n=20)
    model = single_output_model()
    model.compile(SGD(0.1), loss="mse")

    class StopAtThirdBatch(Callback):
        def on_train_batch_end(self, batch, logs=None):
            self.seen = (batch, sorted(logs), self.params["steps"])
            if batch == 2:
                self.model.stop_training = True

    stop = StopAtThirdBatch()
    history = model.fit(x, y1[:, :1], batch_size=4, epochs=3, callbacks=[stop], verbose=0)
    assert stop.model is model and stop.seen == (2, ["loss"], 5)
    assert history.epoch == [0] and model.optimizer.iterations == 3
    assert model.history is history and history.params["epochs"] == 3


def test_mlstm_hooks_see_the_step_before_and_after_the_update():
    x, y1, _ = data()
    model = single_output_model()
    model.compile(SGD(0.1), loss="mse")
    seen = []

    class Steps(Callback):
        def on_before_update_step(self, step, info):
            seen.append(("before", step, info["epoch"], [w.copy() for w in
                                                         self.model.get_weights()],
                         info["grads"]))

        def on_after_update_step(self, step, info):
            seen.append(("after", step, info["learning_rate"], info["updates"],
                         sorted(info["batch_logs"])))

    model.fit(x, y1[:, :1], batch_size=6, epochs=1, callbacks=[Steps()], verbose=0, seed=0)
    assert [s[:2] for s in seen] == [("before", 0), ("after", 0), ("before", 1), ("after", 1)]
    _, _, epoch, weights, grads = seen[2]
    _, _, rate, updates, keys = seen[3]
    assert epoch == 0 and rate == 0.1 and keys == ["loss"]
    for name, w in zip(model.params, weights):
        np.testing.assert_allclose(updates[name], -0.1 * grads[name], rtol=1e-12, atol=1e-15)
        np.testing.assert_array_equal(w + updates[name], model.params[name])


def test_terminate_on_nan_stops_cleanly_with_the_last_good_weights():
    x, y1, _ = data(n=16)
    y_bad = y1[:, :1].copy()
    y_bad[13] = 1e300                      # (p - t)^2 overflows at the 4th batch
    model = single_output_model()
    model.compile(SGD(0.01), loss="mse")
    kept = []
    terminate = TerminateOnNaN()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        history = model.fit(x, y_bad, batch_size=4, epochs=2, shuffle=False, verbose=0,
                            callbacks=[terminate, LambdaCallback(
                                on_after_update_step=lambda s, i: kept.append(
                                    model.get_weights()))])
    assert isinstance(terminate.error, NonFiniteError)
    assert (terminate.error.epoch, terminate.error.step) == (0, 3)
    assert history.epoch == [] and model.optimizer.iterations == 3
    assert all(np.array_equal(a, b) for a, b in zip(kept[-1], model.get_weights()))
    raising = single_output_model()
    raising.compile(SGD(0.01), loss="mse")
    with warnings.catch_warnings(), pytest.raises(NonFiniteError):
        warnings.simplefilter("ignore")
        raising.fit(x, y_bad, batch_size=4, shuffle=False, verbose=0,
                    callbacks=[TerminateOnNaN(raise_error=True)])


def test_model_checkpoint_weights_only_and_best_in_float32(tmp_path):
    x, y1, _ = data()
    model = single_output_model()
    model.compile(SGD(0.05), loss="mse")
    path = tmp_path / "w-{epoch}.weights.npz"
    checkpoint = ModelCheckpoint(path, monitor="loss", save_weights_only=True)
    model.fit(x, y1[:, :1], epochs=2, callbacks=[checkpoint], verbose=0, seed=0)
    twin = single_output_model(seed=7)
    twin.load_weights(tmp_path / "w-2.weights.npz")
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), twin.get_weights()))
    best = ModelCheckpoint(tmp_path / "best.npz", monitor="loss", save_best_only=True)
    best.set_model(model)
    best.on_train_begin()
    best.on_epoch_end(0, {"loss": 1.0})
    assert best.last_saved is not None
    best.last_saved = None
    best.on_epoch_end(1, {"loss": 1.0 - 1e-9})      # not better in float32
    best.on_epoch_end(2, {"loss": float("nan")})    # never an improvement
    assert best.last_saved is None and best.best == 1.0
