"""The public API of issue 2: building, compiling, training, Keras' conventions."""
import numpy as np
import pytest

import mlstm
from mlstm import LSTM, Dense, Input, Masking, Model, Reshape, concatenate, losses
from mlstm.demo import build_demo_model, run_demo
from mlstm.data import make_demo_data
from mlstm.optimizers import SGD, Adam


def _data(n=16, seed=0):
    d = make_demo_data(n_samples=n, timesteps=6, features=(3, 2), seed=seed)
    return [d["x1"], d["x2"]], [d["y1"], d["y2"]]


def _model(dtype="float32", seed=0):
    return build_demo_model(timesteps=6, features=(3, 2), units=4, dtype=dtype, seed=seed)


def _compiled(**kwargs):
    model = _model()
    kwargs.setdefault("loss", ["mse", "binary_crossentropy"])
    model.compile(optimizer=Adam(1e-2), **kwargs)
    return model


def test_history_keys_and_values_follow_keras():
    x, y = _data()
    model = _compiled(loss_weights=[0.7, 0.3], metrics=["mae"])
    history = model.fit(x, y, epochs=2, batch_size=5, verbose=0, validation_data=(x, y))
    assert list(history.history) == [
        "loss", "out1_loss", "out2_loss", "out1_mae", "out2_mae",
        "val_loss", "val_out1_loss", "val_out2_loss", "val_out1_mae", "val_out2_mae"]
    assert history.epoch == [0, 1]
    h = history.history
    # The total is the weighted sum of the per-output losses (batch-size weighted means).
    for e in range(2):
        assert h["loss"][e] == pytest.approx(0.7 * h["out1_loss"][e] + 0.3 * h["out2_loss"][e],
                                             rel=1e-6)
    # Validation equals evaluate on the same data after training.
    final = model.evaluate(x, y, batch_size=5, return_dict=True)
    assert final["loss"] == pytest.approx(h["val_loss"][-1], rel=1e-6)
    assert model.metrics_names == ["loss", "out1_loss", "out2_loss", "out1_mae", "out2_mae"]


def test_evaluate_matches_a_direct_computation():
    x, y = _data(n=10)
    model = _compiled(loss_weights={"out2": 2.0}, metrics=[["mae"], ["accuracy"]])
    total, l1, l2, mae, acc = model.evaluate(x, y, batch_size=4)
    p1, p2 = model.predict(x)
    mse = np.mean((p1 - y[0]) ** 2)
    p2c = np.clip(p2.astype(np.float64), 1e-7, 1 - 1e-7)
    bce = -np.mean(y[1] * np.log(p2c) + (1 - y[1]) * np.log(1 - p2c))
    assert l1 == pytest.approx(mse, rel=1e-5)
    assert l2 == pytest.approx(bce, rel=1e-4)
    assert total == pytest.approx(mse + 2.0 * bce, rel=1e-4)
    assert mae == pytest.approx(np.mean(np.abs(p1 - y[0])), rel=1e-5)
    assert acc == pytest.approx(np.mean((p2 > 0.5) == y[1]), rel=1e-12)


def test_loss_specs_are_equivalent():
    x, y = _data()
    as_list = _compiled(loss=["mse", "mse"], loss_weights=[0.5, 2.0])
    as_dict = _compiled(loss={"out1": "mse", "out2": losses.MeanSquaredError()},
                        loss_weights={"out1": 0.5, "out2": 2.0})
    as_str = _compiled(loss="mse", loss_weights=[0.5, 2.0])
    values = [m.evaluate(x, y) for m in (as_list, as_dict, as_str)]
    np.testing.assert_allclose(values[0], values[1], rtol=1e-7)
    np.testing.assert_allclose(values[0], values[2], rtol=1e-7)
    g = [m.gradients(x, y) for m in (as_list, as_str)]
    for name in g[0]:
        np.testing.assert_allclose(g[0][name], g[1][name], rtol=1e-6, atol=1e-8)


def test_train_on_batch_is_one_step_with_keras_return_convention():
    x, y = _data()
    model = _compiled(metrics=["mae"])
    before = model.get_weights()
    expected_loss = model.evaluate(x, y, batch_size=len(x[0]))
    values = model.train_on_batch(x, y)
    assert isinstance(values, list) and len(values) == 5
    assert values[0] == pytest.approx(expected_loss[0], rel=1e-6)
    assert model.optimizer.iterations == 1
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    logs = model.train_on_batch(x, y, return_dict=True)
    assert list(logs) == model.metrics_names
    single = Model(model.inputs, model.outputs[0])
    single.compile(Adam(), loss="mse")
    assert isinstance(single.train_on_batch(x, y[0]), float)


def test_same_seed_same_bits():
    x, y = _data(n=20)
    runs = []
    for _ in range(2):
        model = _compiled(metrics=["mae"])
        history = model.fit(x, y, epochs=2, batch_size=6, seed=7, verbose=0)
        runs.append((model.get_weights(), history.history))
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)
    assert runs[0][1] == runs[1][1]
    other = _compiled()
    other.fit(x, y, epochs=2, batch_size=6, seed=8, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(runs[0][0], other.get_weights()))


def test_float64_flows_from_the_inputs():
    model = _model(dtype="float64")
    model.compile(Adam(), loss=["mse", "binary_crossentropy"])
    x, y = _data()
    assert all(p.dtype == np.float64 for p in model.params.values())
    outs = model.predict(x)
    assert all(o.dtype == np.float64 for o in outs)
    assert all(g.dtype == np.float64 for g in model.gradients(x, y).values())
    model32 = _compiled()
    assert all(o.dtype == np.float32 for o in model32.predict(x))
    assert all(g.dtype == np.float32 for g in model32.gradients(x, y).values())


def test_weights_api():
    model = _model()
    layer = model.get_layer("lstm_a")
    kernel, recurrent, bias = layer.get_weights()
    assert (kernel.shape, recurrent.shape, bias.shape) == ((3, 16), (4, 16), (16,))
    weights = model.get_weights()
    assert len(weights) == 10
    new = [w + 1 for w in weights]
    model.set_weights(new)
    for a, b in zip(model.get_weights(), new):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="has 10 weight arrays"):
        model.set_weights(new[:-1])
    bad = list(new)
    bad[0] = np.zeros((4, 16))
    with pytest.raises(ValueError, match=r"lstm_a/kernel.*\(3, 16\).*\(4, 16\)"):
        model.set_weights(bad)
    np.testing.assert_array_equal(model.get_weights()[1], new[1])   # nothing half-set
    with pytest.raises(ValueError, match="No layer named 'nope'"):
        model.get_layer("nope")


def test_summary_lists_layers(capsys):
    _model().summary()
    text = capsys.readouterr().out
    for name in ("lstm_a (LSTM)", "out2 (Dense)", "merged (Concatenate)", "Total params"):
        assert name in text


def test_bad_inputs_name_the_input_and_shapes():
    model = _compiled()
    x, y = _data()
    with pytest.raises(ValueError, match=r"inputs 'x2' expects shape \(N, 6, 2\), got \(16, 6, 3\)"):
        model.predict([x[0], x[0]])
    with pytest.raises(ValueError, match="the model has 2 inputs"):
        model.predict([x[0]])
    with pytest.raises(ValueError, match="batch sizes differ: x1 has 16, x2 has 15"):
        model.predict([x[0], x[1][:15]])
    with pytest.raises(ValueError, match="targets 'out1' expects shape"):
        model.fit(x, [y[0][:, :, None], y[1]], verbose=0)
    with pytest.raises(ValueError, match="targets have 15 samples, inputs have 16"):
        model.evaluate(x, [y[0][:15], y[1][:15]])
    with pytest.raises(ValueError, match=r"LSTM 'lstm_z' expects input of shape \(N, T, D\)"):
        LSTM(3, name="lstm_z")(Input((4,)))
    with pytest.raises(TypeError, match="complex"):
        model.predict([x[0] + 1j, x[1]])
    with pytest.raises(ValueError, match="loss: got 3 entries for 2 outputs"):
        _model().compile(loss=["mse", "mse", "mse"])
    with pytest.raises(ValueError, match="Unknown loss 'hinge'"):
        _model().compile(loss="hinge")
    with pytest.raises(ValueError, match="unknown output names"):
        _model().compile(loss={"out3": "mse"})


def test_graph_errors():
    x = Input((3, 2), name="gx")
    other = Input((3, 2), name="gother")
    h = LSTM(2, name="gl")(concatenate([x, other], name="gcat"))
    with pytest.raises(ValueError, match="depends on input 'gother'"):
        Model(x, h)
    with pytest.raises(ValueError, match="must match except on axis"):
        concatenate([x, Input((4, 2))])
    a, b = Dense(1, name="same"), Dense(1, name="same")
    with pytest.raises(ValueError, match="unique"):
        Model(x, [a(LSTM(2)(x)), b(LSTM(2)(x))])


def test_reshape_masking_and_dense_per_step():
    mlstm.set_random_seed(3)
    x = Input((5, 3), name="seq")
    seq = LSTM(4, return_sequences=True, name="s1")(Masking(name="m")(x))
    stacked = LSTM(3, return_sequences=True, name="s2")(seq)
    per_step = Dense(2, activation="relu", name="per_step")(stacked)
    flat = Reshape((10,), name="flat")(per_step)
    model = Model(x, [per_step, flat])
    model.compile(SGD(0.1), loss="mse")
    xs = np.random.default_rng(0).standard_normal((3, 5, 3)).astype(np.float32)
    xs[0, 3:] = 0     # right padding
    p_step, p_flat = model.predict(xs)
    np.testing.assert_array_equal(p_flat, p_step.reshape(3, 10))
    tape = model.forward([xs])
    np.testing.assert_array_equal(tape.output_masks[0][0], [True, True, True, False, False])
    assert tape.output_masks[1] is None
    # Masked steps repeat the last valid output.
    np.testing.assert_array_equal(p_step[0, 3], p_step[0, 2])


def test_function_loss_warns_and_matches_the_exact_loss():
    x, y = _data(n=6)

    def my_mse(y_true, y_pred):
        return np.mean((y_pred - y_true) ** 2, axis=-1)

    exact = _model()
    exact.compile(Adam(), loss="mse")
    approx = _model()
    with pytest.warns(UserWarning, match="differentiates it numerically"):
        approx.compile(Adam(), loss=my_mse)
    assert approx.evaluate(x, y)[0] == pytest.approx(exact.evaluate(x, y)[0], rel=1e-6)
    g_exact, g_approx = exact.gradients(x, y), approx.gradients(x, y)
    for name in g_exact:
        np.testing.assert_allclose(g_approx[name], g_exact[name], rtol=1e-3, atol=1e-6)


def test_seed_example_2_loss_reaches_one_sample_per_output():
    """Keras calls a loss once per output: y_true[0] is the first *sample*."""
    x, y = _data(n=8)

    class SeedCustomLoss(losses.Loss):
        name = "custom_loss"

        def call(self, y_true, y_pred):
            mse_first = np.mean((y_true[0] - y_pred[0]) ** 2)
            p = np.clip(y_pred[1], 1e-7, 1 - 1e-7)
            bce_second = np.mean(-(y_true[1] * np.log(p) + (1 - y_true[1]) * np.log(1 - p)))
            return 0.7 * mse_first + 0.3 * bce_second

        def gradient(self, y_true, y_pred):
            g = np.zeros_like(y_pred)
            g[0] = 0.7 * 2 * (y_pred[0] - y_true[0]) / y_pred.shape[-1]
            p = np.clip(y_pred[1], 1e-7, 1 - 1e-7)
            g[1] = 0.3 * -(y_true[1] / p - (1 - y_true[1]) / (1 - p)) / y_pred.shape[-1]
            return g

    model = _model()
    model.compile(Adam(), loss=SeedCustomLoss())
    tape = model.forward(model._inputs(x))
    result = model.loss_and_output_grads(tape, model._targets(y, 8))
    for k in (0, 1):
        reached = np.flatnonzero(np.any(result.d_outputs.get(k, result.d_logits.get(k)) != 0,
                                        axis=-1))
        np.testing.assert_array_equal(reached, [0, 1])


def test_demo_learns_both_heads():
    _, history, summary = run_demo(epochs=15, verbose=0)
    assert summary["out1_loss_last"] < 0.5 * summary["out1_loss_first"]
    assert summary["out2_binary_accuracy"] > 0.9
    assert summary["seconds"] < 60


def test_keras_argument_order_and_model_call():
    """fit(x, y, batch_size, epochs, ...) in Keras' positional order (issue 14); model(x) is
    the prediction; the History is a callback recording what fit passed to on_epoch_end."""
    x, y = _data(n=12)
    model = _compiled()
    history = model.fit(x, y, 4, 2, 0)
    assert history.params["batch_size"] == 4 and history.epoch == [0, 1]
    assert history.params["verbose"] == 0 and model.optimizer.iterations == 6
    assert isinstance(history, mlstm.callbacks.History) and model.history is history
    for a, b in zip(model(x), model.predict(x)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="fit needs x and y"):
        model.fit(x)
