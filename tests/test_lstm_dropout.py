"""LSTM(dropout=, recurrent_dropout=) with Keras 3.15's mask semantics.

What Keras does (``keras/src/layers/rnn/lstm.py``, ``dropout_rnn_cell.py``, ``rnn.py``): the
masks are drawn once per call (per sequence) and used at every step; with
``recurrent_dropout = 0`` one input mask (N, D) is shared by the four gates; with
``recurrent_dropout > 0`` the cell switches to ``implementation=1`` and draws four input
masks (N, D) and four recurrent masks (N, H), one per gate. Checked here:

- the layer equals a line-by-line NumPy transcription of Keras' ``LSTMCell.call`` and RNN
  loop (both implementations, with sequence masks) given the same masks;
- float64 gradients match finite differences with the masks held fixed (hypothesis over
  shapes, rates, masks, go_backwards, return_state, initial states);
- inference, and a training pass without a generator, equal the LSTM without dropout;
  ``fit`` with the same seed gives the same masks;
- Keras: inference agrees, and a training pass with mlstm's masks injected into Keras' cell
  gives the same outputs and gradients (float32 1e-4, float64 1e-9); ``crosscheck`` sets
  the rates to 0 and says so; ``stateful=True`` stays refused with its reason.
"""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import mlstm
import mlstm.testing
from mlstm import LSTM, Dense, Input, Masking, Model

from fixed_mask_gradcheck import fixed_mask_gradcheck, unresolvable


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def keras_cell_transcription(x, kernel, recurrent_kernel, bias, dp_mask, rec_dp_mask,
                             implementation, mask=None):
    """Keras' LSTMCell.call and RNN loop in NumPy, line for line (tanh/sigmoid, training).

    ``dp_mask``: (N, D) for implementation 2, a list of 4 for implementation 1 (or None);
    ``rec_dp_mask``: a list of 4 (N, H) (implementation 1) or None. Returns the sequence.
    """
    N, T, _ = x.shape
    units = recurrent_kernel.shape[0]
    h_tm1 = np.zeros((N, units))
    c_tm1 = np.zeros((N, units))
    prev_output = np.zeros((N, units))
    outputs = []
    for t in range(T):
        inputs = x[:, t]
        if implementation == 1:
            if dp_mask is not None:
                inputs_i, inputs_f = inputs * dp_mask[0], inputs * dp_mask[1]
                inputs_c, inputs_o = inputs * dp_mask[2], inputs * dp_mask[3]
            else:
                inputs_i = inputs_f = inputs_c = inputs_o = inputs
            k_i, k_f, k_c, k_o = np.split(kernel, 4, axis=1)
            x_i, x_f = inputs_i @ k_i, inputs_f @ k_f
            x_c, x_o = inputs_c @ k_c, inputs_o @ k_o
            b_i, b_f, b_c, b_o = np.split(bias, 4, axis=0)
            x_i, x_f, x_c, x_o = x_i + b_i, x_f + b_f, x_c + b_c, x_o + b_o
            if rec_dp_mask is not None:
                h_tm1_i, h_tm1_f = h_tm1 * rec_dp_mask[0], h_tm1 * rec_dp_mask[1]
                h_tm1_c, h_tm1_o = h_tm1 * rec_dp_mask[2], h_tm1 * rec_dp_mask[3]
            else:
                h_tm1_i = h_tm1_f = h_tm1_c = h_tm1_o = h_tm1
            # _compute_carry_and_output
            i = _sigmoid(x_i + h_tm1_i @ recurrent_kernel[:, :units])
            f = _sigmoid(x_f + h_tm1_f @ recurrent_kernel[:, units:units * 2])
            c = f * c_tm1 + i * np.tanh(x_c + h_tm1_c @ recurrent_kernel[:, units * 2:units * 3])
            o = _sigmoid(x_o + h_tm1_o @ recurrent_kernel[:, units * 3:])
        else:
            if dp_mask is not None:
                inputs = inputs * dp_mask
            z = inputs @ kernel + h_tm1 @ recurrent_kernel + bias
            z0, z1, z2, z3 = np.split(z, 4, axis=1)
            i, f = _sigmoid(z0), _sigmoid(z1)
            c = f * c_tm1 + i * np.tanh(z2)
            o = _sigmoid(z3)
        h = o * np.tanh(c)
        if mask is not None:           # the RNN loop: masked steps keep state and output
            m = mask[:, t, None]
            h_tm1, c_tm1 = np.where(m, h, h_tm1), np.where(m, c, c_tm1)
            prev_output = np.where(m, h, prev_output)
        else:
            h_tm1, c_tm1, prev_output = h, c, h
        outputs.append(prev_output)
    return np.stack(outputs, axis=1)


def _padded(n, t, d, seed=0, dtype="float64"):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, t, d)).astype(dtype)
    for k in range(n):
        x[k, rng.integers(1, t + 1):] = 0.0
    return x


def _model(dtype="float64", masked=True, units=3, **lstm):
    mlstm.set_random_seed(0)
    x = Input(shape=(5, 4), name="x", dtype=dtype)
    h = Masking(name="m")(x) if masked else x
    out = LSTM(units, return_sequences=True, name="lstm", **lstm)(h)
    model = Model(x, Dense(1, name="out")(out))
    model.compile(optimizer="adam", loss="mse")
    return model


@pytest.mark.parametrize("rates", [(0.4, 0.0), (0.3, 0.5), (0.0, 0.5)],
                         ids=["dropout", "both", "recurrent"])
def test_equals_a_transcription_of_keras_cell(rates):
    dropout, recurrent = rates
    model = _model(dropout=dropout, recurrent_dropout=recurrent)
    mlstm.testing.randomize_weights(model, 1)
    x = _padded(6, 5, 4)
    tape = model.forward([x], training=True, rng=np.random.default_rng(2))
    k = [n.layer.name for n in model.nodes].index("lstm")
    cache = tape.caches[k]
    lstm = model.get_layer("lstm")
    weights = [lstm.params[w] for w in ("kernel", "recurrent_kernel", "bias")]
    if recurrent == 0:
        dp_mask = cache["input_dropout_mask"][:, 0, :]
        assert np.any(dp_mask == 0)
        expected = keras_cell_transcription(x, *weights, dp_mask, None, implementation=2,
                                            mask=np.any(x != 0, axis=-1))
    else:
        dp_mask = None if cache["input_masks"] is None else list(cache["input_masks"])
        rec = list(cache["recurrent_masks"])
        assert all(np.any(r == 0) for r in rec)
        assert (dp_mask is None) == (dropout == 0)
        expected = keras_cell_transcription(x, *weights, dp_mask, rec, implementation=1,
                                            mask=np.any(x != 0, axis=-1))
    got = tape.value(model.nodes[k].outputs[0])
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert not np.allclose(got, model.forward([x]).values[id(model.nodes[k].outputs[0])])


@pytest.mark.parametrize("go_backwards", [False, True])
def test_gate_dropout_op_without_masks_is_the_lstm(go_backwards):
    """The plain per-gate op and the fast op agree when no mask drops anything: values and
    every gradient, with a sequence mask and initial states."""
    from mlstm.ops import lstm_backward, lstm_forward
    from mlstm.ops.recurrent_dropout import (lstm_gate_dropout_backward,
                                             lstm_gate_dropout_forward)
    rng = np.random.default_rng(0)
    N, T, D, H = 3, 5, 4, 2
    x = rng.normal(size=(N, T, D))
    weights = (rng.normal(size=(D, 4 * H)), rng.normal(size=(H, 4 * H)), rng.normal(size=4 * H))
    options = dict(h0=rng.normal(size=(N, H)), c0=rng.normal(size=(N, H)),
                   mask=np.array([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 0, 1, 0, 1]], bool),
                   go_backwards=go_backwards)
    ones = dict(input_masks=np.ones((4, N, D)), recurrent_masks=np.ones((4, N, H)))
    fast, fast_cache = lstm_forward(x, *weights, **options)
    d_out, d_h, d_c = rng.normal(size=(N, T, H)), rng.normal(size=(N, H)), rng.normal(size=(N, H))
    expected = lstm_backward(d_out, d_h, d_c, fast_cache)
    for masks in ({}, ones):
        plain, cache = lstm_gate_dropout_forward(x, *weights, **masks, **options)
        for a, b in zip(plain, fast):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)
        grads = lstm_gate_dropout_backward(d_out, d_h, d_c, cache)
        for key in ("x", "kernel", "recurrent_kernel", "bias", "h0", "c0", "d_h_steps"):
            np.testing.assert_allclose(grads[key], expected[key], rtol=1e-12, atol=1e-13,
                                       err_msg=key)


def test_inference_and_passes_without_a_generator_drop_nothing():
    plain, dropped = _model(), _model(dropout=0.5, recurrent_dropout=0.5)
    dropped.set_weights(plain.get_weights())
    x = _padded(4, 5, 4)
    np.testing.assert_array_equal(dropped.predict(x), plain.predict(x))
    np.testing.assert_array_equal(dropped.forward([x], training=True).outputs[0],
                                  plain.forward([x], training=True).outputs[0])
    assert dropped.get_layer("lstm").uses_rng and not plain.get_layer("lstm").uses_rng


def test_same_seed_same_masks():
    model = _model(dropout=0.3, recurrent_dropout=0.3)
    x = _padded(8, 5, 4)
    y = np.random.default_rng(0).normal(size=(8, 5, 1))
    runs = []
    for seed in (3, 3, 4):
        twin = model.clone()
        twin.fit(x, y, epochs=2, batch_size=4, seed=seed, verbose=0)
        runs.append(twin.get_weights())
    for a, b in zip(runs[0], runs[1]):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(runs[0], runs[2]))


@pytest.mark.parametrize("rates", [(0.4, 0.0), (0.3, 0.5), (0.0, 0.5)],
                         ids=["dropout", "both", "recurrent"])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_gradient_with_masks_held_fixed(rates, go_backwards):
    mlstm.set_random_seed(1)
    x = Input(shape=(4, 3), name="x", dtype="float64")
    h0, c0 = Input(shape=(2,), name="h0", dtype="float64"), Input(shape=(2,), name="c0",
                                                                   dtype="float64")
    seq, h, c = LSTM(2, return_sequences=True, return_state=True, go_backwards=go_backwards,
                     dropout=rates[0], recurrent_dropout=rates[1], name="lstm")(
        x, initial_state=[h0, c0])
    model = Model([x, h0, c0], [Dense(1, name="a")(seq), Dense(1, name="b")(c)])
    model.compile(optimizer="adam", loss="mse")
    mlstm.testing.randomize_weights(model, 2)
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(3, 4, 3)), rng.normal(size=(3, 2)), rng.normal(size=(3, 2))]
    ys = [rng.normal(size=(3, 4, 1)), rng.normal(size=(3, 1))]
    errors, _ = fixed_mask_gradcheck(model, xs, ys, seed=7)
    assert max(errors.values()) < 1e-6, errors


@settings(max_examples=15)
@given(n=st.integers(1, 3), t=st.integers(1, 4), d=st.integers(1, 3), units=st.integers(1, 3),
       dropout=st.sampled_from([0.0, 0.2, 0.6]), recurrent=st.sampled_from([0.0, 0.3, 0.7]),
       masked=st.booleans(), return_sequences=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_property_gradient(n, t, d, units, dropout, recurrent, masked, return_sequences, seed):
    mlstm.set_random_seed(seed)
    x = Input(shape=(t, d), name="x", dtype="float64")
    h = Masking(name="m")(x) if masked else x
    out = LSTM(units, dropout=dropout, recurrent_dropout=recurrent,
               return_sequences=return_sequences, name="lstm")(h)
    model = Model(x, Dense(1, name="out")(out))
    model.compile(optimizer="adam", loss="mse")
    mlstm.testing.randomize_weights(model, seed)
    xv = _padded(n, t, d, seed) if masked else np.random.default_rng(seed).normal(size=(n, t, d))
    yv = np.random.default_rng(seed + 1).normal(size=(n,) + model.outputs[0].shape)
    errors, _ = fixed_mask_gradcheck(model, [xv], [yv], seed=seed, inputs=not masked)
    if max(errors.values()) >= 1e-6:
        # a gradient below the loss's rounding noise / h (units=1, few steps): rejected as
        # the other property tests reject what finite differences cannot judge
        assume(not unresolvable(model, [xv], [yv], errors, seed=seed))
    assert max(errors.values()) < 1e-6, errors


def test_per_sample_norms_with_gate_masks_match_a_loop():
    model = _model(dropout=0.3, recurrent_dropout=0.4, masked=False)
    x = _padded(3, 5, 4)
    y = np.random.default_rng(1).normal(size=(3, 5, 1))
    tape = model.forward([x], training=True, rng=np.random.default_rng(5))
    result = model.loss_and_output_grads(tape, [y])
    extras = {}
    model.backward(tape, result.d_outputs, result.d_logits, extras=extras)
    k = [n.layer.name for n in model.nodes].index("lstm")
    lstm = model.get_layer("lstm")
    norms = lstm.per_sample_grad_norms(tape.caches[k], extras["lstm"])
    cache = tape.caches[k]
    for i in range(3):           # one sample's gradient: its own dz, its own masks
        d_gates = extras["lstm"]["d_gates"].copy()
        d_gates[:, np.arange(3) != i] = 0
        T = d_gates.shape[0]
        kernel = np.concatenate([
            np.einsum("tnd,tnh->dh", cache["x_tm"] * cache["input_masks"][g],
                      d_gates[..., g * 3:(g + 1) * 3]) for g in range(4)], axis=1)
        np.testing.assert_allclose(norms["kernel"][i], np.linalg.norm(kernel), rtol=1e-10)
        recurrent = np.concatenate([
            np.einsum("tnd,tnh->dh", cache["h_states"][:T] * cache["recurrent_masks"][g],
                      d_gates[..., g * 3:(g + 1) * 3]) for g in range(4)], axis=1)
        np.testing.assert_allclose(norms["recurrent_kernel"][i], np.linalg.norm(recurrent),
                                   rtol=1e-10)


@pytest.mark.parametrize("kwargs, message", [
    ({"dropout": 1.0}, "dropout must be a number in \\[0, 1\\)"),
    ({"recurrent_dropout": -0.1}, "recurrent_dropout must be a number in \\[0, 1\\)"),
    ({"dropout": "0.1"}, "dropout must be a number")])
def test_bad_rates_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LSTM(2, name="l", **kwargs)


# --------------------------------------------------------------------------- Keras
def _keras_lstm_model(dtype, dropout, recurrent):
    import keras
    keras.utils.set_random_seed(0)
    x = keras.Input((5, 4), name="x", dtype=dtype)
    h = keras.layers.Masking(name="m", dtype=dtype)(x)
    h = keras.layers.LSTM(3, return_sequences=True, dropout=dropout,
                          recurrent_dropout=recurrent, name="lstm", dtype=dtype)(h)
    model = keras.Model(x, keras.layers.Dense(1, name="out", dtype=dtype)(h))
    model.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(3)
    model.set_weights([rng.normal(scale=0.5, size=w.shape).astype(dtype)
                       for w in model.get_weights()])
    return model


@pytest.mark.keras
@pytest.mark.parametrize("dtype, tol", [("float32", 1e-4), ("float64", 1e-9)])
@pytest.mark.parametrize("rates", [(0.4, 0.0), (0.3, 0.5), (0.0, 0.5)],
                         ids=["dropout", "both", "recurrent"])
def test_keras_training_pass_with_mlstm_masks_injected(dtype, tol, rates):
    """Keras' cell keeps its masks in ``_dropout_mask`` / ``_recurrent_dropout_mask`` and
    draws only when they are None (``DropoutRNNCell.get_dropout_mask``); set them to mlstm's
    masks before an eager call and Keras computes with them."""
    import tensorflow as tf
    from mlstm.interop.keras import from_keras, keras_dtype
    with keras_dtype(dtype):
        keras_model = _keras_lstm_model(dtype, *rates)
    model = from_keras(keras_model)
    lstm = model.get_layer("lstm")
    assert (lstm.dropout, lstm.recurrent_dropout) == rates
    x = _padded(4, 5, 4, dtype=dtype)
    y = np.random.default_rng(1).normal(size=(4, 5, 1)).astype(dtype)
    np.testing.assert_allclose(model.predict(x), np.asarray(keras_model(x, training=False)),
                               rtol=tol, atol=tol)
    tape = model.forward([x], training=True, rng=np.random.default_rng(9))
    cache = tape.caches[[n.layer.name for n in model.nodes].index("lstm")]
    cell = keras_model.get_layer("lstm").cell
    if rates[1] == 0:
        cell._dropout_mask = tf.constant(cache["input_dropout_mask"][:, 0, :])
    else:
        if cache["input_masks"] is not None:
            cell._dropout_mask = [tf.constant(m) for m in cache["input_masks"]]
        cell._recurrent_dropout_mask = [tf.constant(m) for m in cache["recurrent_masks"]]
    # Keras' compiled loss (over the valid steps only: the output carries the mask), in the
    # model's dtype (it computes in floatx)
    with keras_dtype(dtype), tf.GradientTape() as gtape:
        pred = keras_model(x, training=True)
        loss = keras_model.compute_loss(x=x, y=y, y_pred=pred, training=True)
    kgrads = gtape.gradient(loss, keras_model.trainable_weights)
    np.testing.assert_allclose(tape.outputs[0], np.asarray(pred), rtol=tol, atol=tol)
    result = model.loss_and_output_grads(tape, [y])
    grads = model.backward(tape, result.d_outputs, result.d_logits)
    names = [f"{l.name}/{w.name}" for l in keras_model.layers for w in l.weights]
    assert names == list(grads)
    for name, g in zip(names, kgrads):
        np.testing.assert_allclose(grads[name], np.asarray(g), rtol=tol, atol=tol,
                                   err_msg=name)


@pytest.mark.keras
def test_keras_crosscheck_zeroes_the_rates_and_says_so():
    from mlstm.interop.keras import crosscheck, format_report, keras_dtype
    with keras_dtype("float64"):
        keras_model = _keras_lstm_model("float64", 0.25, 0.5)
    x = _padded(4, 5, 4)
    y = np.random.default_rng(1).normal(size=(4, 5, 1))
    report = crosscheck(keras_model, x, y, steps=2, as_dict=True, run_eagerly=True)
    assert report["ok"], format_report(report)
    assert report["dropout_rates_zeroed"] == ["lstm: dropout=0.25",
                                              "lstm: recurrent_dropout=0.5"]


@pytest.mark.keras
def test_keras_bidirectional_lstm_with_dropout_round_trip():
    import keras
    from mlstm.interop.keras import from_keras, keras_dtype, to_keras
    with keras_dtype("float64"):
        x = keras.Input((5, 4))
        y = keras.layers.Bidirectional(keras.layers.LSTM(3, dropout=0.2,
                                                         recurrent_dropout=0.1), name="bi")(x)
        keras_model = keras.Model(x, y)
    model = from_keras(keras_model)
    bi = model.get_layer("bi")
    assert bi.uses_rng and bi.forward_layer.recurrent_dropout == 0.1
    back = to_keras(model)
    assert back.get_layer("bi").forward_layer.dropout == 0.2
    xv = np.random.default_rng(0).normal(size=(2, 5, 4))
    np.testing.assert_allclose(model.predict(xv), np.asarray(back(xv)), rtol=1e-9, atol=1e-9)


@pytest.mark.keras
def test_keras_stateful_stays_refused_with_the_reason():
    import keras
    from mlstm.interop.keras import from_keras
    x = keras.Input(batch_shape=(2, 5, 3))
    keras_model = keras.Model(x, keras.layers.LSTM(2, stateful=True, name="keeps")(x))
    with pytest.raises(ValueError, match="'keeps'.*stateful=True.*carries its last state"):
        from_keras(keras_model)
