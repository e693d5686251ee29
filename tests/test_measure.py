"""mlstm.measure: per-output contributions, per-sample norms, gradient through time, Trace.

The reference for every decomposition is a plain computation: the total gradient
(``model.gradients``), backward passes seeded by one sample at a time, gradients of a batch
of one sample, weights before and after an optimizer step, and (marked ``keras``) Keras'
own ``tf.GradientTape`` gradients of each output's weighted loss.
"""
import json
import warnings

import numpy as np
import pytest

import mlstm
from mlstm.demo import build_demo_model
from mlstm.measure import (Trace, gate_saturation, gradient_contributions,
                           gradient_through_time, per_sample_gradient_norms, sample_coverage)
from mlstm.measure.gradients import forward_with_loss, output_backward
from mlstm.diagnostics.seed import seed_custom_loss

N = 6


# --------------------------------------------------------------------------- models
def demo_model(dtype="float64", loss_weights=(0.7, 0.3), loss=("mse", "binary_crossentropy"),
               timesteps=5):
    """The seed article's graph, small: two LSTMs, concatenate, linear + sigmoid heads."""
    model = build_demo_model(timesteps=timesteps, features=(3, 2), units=4, dtype=dtype, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)     # plain-function loss
        model.compile(optimizer=mlstm.optimizers.Adam(1e-2),
                      loss=list(loss) if isinstance(loss, tuple) else loss,
                      loss_weights=None if loss_weights is None else list(loss_weights))
    return model


def demo_data(dtype="float64", n=N, timesteps=5, seed=0):
    rng = np.random.default_rng(seed)
    x = [rng.standard_normal((n, timesteps, 3)).astype(dtype),
         rng.standard_normal((n, timesteps, 2)).astype(dtype)]
    y = [rng.standard_normal((n, 1)).astype(dtype),
         (rng.random((n, 1)) > 0.5).astype(dtype)]
    return x, y


def sequence_model():
    """Masked, go_backwards, return_sequences, a per-step Dense output and a sigmoid head."""
    mlstm.set_random_seed(3)
    x1 = mlstm.Input((5, 3), name="x1", dtype="float64")
    x2 = mlstm.Input((4, 2), name="x2", dtype="float64")
    enc = mlstm.LSTM(4, return_sequences=True, go_backwards=True, name="enc")(
        mlstm.Masking(0.0, name="mask")(x1))
    seq = mlstm.Dense(2, name="seq")(enc)
    summary = mlstm.LSTM(3, name="summ")(enc)
    merged = mlstm.concatenate([summary, mlstm.LSTM(3, name="lb")(x2)], name="merged")
    cls = mlstm.Dense(1, activation="sigmoid", name="cls")(merged)
    model = mlstm.Model([x1, x2], [seq, cls])
    model.compile(optimizer="adam", loss=["mse", "binary_crossentropy"], loss_weights=[2.0, 0.5])
    rng = np.random.default_rng(5)
    xa = rng.standard_normal((N, 5, 3))
    xa[1, 3:] = 0.0          # padded tails: masked steps
    xa[4, :2] = 0.0          # (processed last, since the LSTM goes backwards)
    x = [xa, rng.standard_normal((N, 4, 2))]
    y = [rng.standard_normal((N, 5, 2)), (rng.random((N, 1)) > 0.5).astype(float)]
    return model, x, y


def shared_layer_model():
    """A Dense layer called twice (two nodes): per-sample norms take the looped path."""
    mlstm.set_random_seed(4)
    x = mlstm.Input((4, 3), name="x", dtype="float64")
    h = mlstm.LSTM(4, name="lstm")(x)
    shared = mlstm.Dense(3, activation="tanh", name="shared")
    o1 = mlstm.Dense(1, name="o1")(shared(h))
    o2 = mlstm.Dense(1, activation="sigmoid", name="o2")(shared(h))
    model = mlstm.Model(x, [o1, o2])
    model.compile(optimizer="adam", loss=["mse", "binary_crossentropy"], loss_weights=[1.0, 3.0])
    rng = np.random.default_rng(6)
    return model, rng.standard_normal((N, 4, 3)), [rng.standard_normal((N, 1)),
                                                   (rng.random((N, 1)) > 0.5).astype(float)]


def all_cases():
    model = demo_model()
    x, y = demo_data()
    return {"demo": (model, x, y), "sequence": sequence_model(),
            "shared_layer": shared_layer_model()}


CASES = ("demo", "sequence", "shared_layer")


# --------------------------------------------------------------------------- contributions
@pytest.mark.parametrize("case", CASES)
def test_contributions_sum_to_the_gradient(case):
    model, x, y = all_cases()[case]
    contributions = model.gradient_contributions(x, y)
    assert sorted(contributions) == sorted(model.output_names)
    direct = gradient_contributions(model, x, y)            # the function behind the method
    for out, grads in direct.items():
        for name, g in grads.items():
            np.testing.assert_array_equal(g, contributions[out][name])
    total = model.gradients(x, y)
    for name, g in total.items():
        summed = sum(c[name] for c in contributions.values())
        assert np.max(np.abs(summed - g)) <= 1e-12 * max(1.0, np.max(np.abs(g))), name
    # Each output really contributes something to the shared weights of this graph.
    shared = mlstm.measure.shared_parameters(model)
    assert shared
    for c in contributions.values():
        assert any(np.any(c[p] != 0) for p in shared)


def test_contributions_scale_linearly_with_the_loss_weights():
    x, y = demo_data()
    base = demo_model(loss_weights=(0.7, 0.3)).gradient_contributions(x, y)
    scaled = demo_model(loss_weights=(1.4, 0.03)).gradient_contributions(x, y)
    for out, factor in (("out1", 2.0), ("out2", 0.1)):
        for name, g in base[out].items():
            np.testing.assert_allclose(scaled[out][name], factor * g, rtol=1e-12, atol=1e-15)


def test_an_output_without_a_loss_contributes_nothing_and_is_left_out():
    x, y = demo_data()
    model = demo_model(loss=("mse", None), loss_weights=None)
    contributions = model.gradient_contributions(x, y)
    assert list(contributions) == ["out1"]
    total = model.gradients(x, y)
    for name, g in total.items():
        np.testing.assert_allclose(contributions["out1"][name], g, rtol=0, atol=1e-15)
    assert not np.any(total["out2/kernel"])


# --------------------------------------------------------------------------- per sample
def _norms_by_one_sample_backward_passes(model, x, y):
    """N backward passes, each from a forward pass on one sample and its row of the seeds."""
    xs = model._inputs(x)
    _, result = forward_with_loss(model, x, y)
    out = {}
    for k, name in enumerate(model.output_names):
        d_outputs, d_logits = result.for_output(k)
        rows = {p: [] for p in model.params}
        for n in range(xs[0].shape[0]):
            tape_n = model.forward([a[n:n + 1] for a in xs], training=True)
            grads = model.backward(tape_n, {j: g[n:n + 1] for j, g in d_outputs.items()},
                                   {j: g[n:n + 1] for j, g in d_logits.items()})
            for p, g in grads.items():
                rows[p].append(np.linalg.norm(g))
        out[name] = {p: np.array(v) for p, v in rows.items()}
    return out


@pytest.mark.parametrize("case", CASES)
def test_per_sample_norms_equal_one_sample_backward_passes(case):
    model, x, y = all_cases()[case]
    vectorized = per_sample_gradient_norms(model, x, y)
    via_model = model.gradient_contributions(x, y, per_sample=True)
    for out in model.output_names:
        for p in model.params:
            np.testing.assert_array_equal(via_model[out][p], vectorized[out][p])
    reference = _norms_by_one_sample_backward_passes(model, x, y)
    for out in model.output_names:
        for p in model.params:
            assert vectorized[out][p].shape == (N,)
            np.testing.assert_allclose(vectorized[out][p], reference[out][p], rtol=1e-10,
                                       atol=1e-14, err_msg=f"{out} {p}")


def test_per_sample_norms_are_batch_of_one_gradients_over_n_for_mean_losses():
    """MSE and BCE average over the batch: sample n's term is its own gradient / N."""
    model = demo_model()
    x, y = demo_data()
    per_sample = model.gradient_contributions(x, y, per_sample=True)
    for n in range(N):
        alone = model.gradient_contributions([a[n:n + 1] for a in x], [a[n:n + 1] for a in y])
        for out in model.output_names:
            for p, g in alone[out].items():
                np.testing.assert_allclose(per_sample[out][p][n], np.linalg.norm(g) / N,
                                           rtol=1e-10, atol=1e-15)


def test_per_sample_norms_stay_in_float32():
    model = demo_model(dtype="float32")
    x, y = demo_data(dtype="float32")
    per_sample = per_sample_gradient_norms(model, x, y)
    reference = per_sample_gradient_norms(demo_model(dtype="float64"), demo_data()[0],
                                          demo_data()[1])
    for out, by_param in per_sample.items():
        for p, v in by_param.items():
            assert v.dtype == np.float32, p
            np.testing.assert_allclose(v, reference[out][p], rtol=2e-4, atol=1e-6)


def test_the_seed_custom_loss_reaches_two_samples_and_per_sample_norms_agree():
    """Keras applies the loss per output: y_true[0], y_true[1] are samples 0 and 1."""
    model = demo_model(loss=seed_custom_loss, loss_weights=None)
    x, y = demo_data()
    y[0][:] = 0.5                      # inside (0, 1): the clipped BCE term has a gradient
    _, result = forward_with_loss(model, x, y)
    coverage = sample_coverage(model, result)
    per_sample = per_sample_gradient_norms(model, x, y)
    for out in model.output_names:
        assert coverage[out].tolist() == [True, True] + [False] * (N - 2)
        totals = np.sqrt(sum(v ** 2 for v in per_sample[out].values()))
        assert np.all(totals[:2] > 0) and np.all(totals[2:] == 0)


# --------------------------------------------------------------------------- through time
def test_gradient_through_time_starts_with_what_the_heads_send_back():
    model = demo_model()
    x, y = demo_data()
    through = gradient_through_time(model, x, y)
    tape, result = forward_with_loss(model, x, y)
    H = 4
    for k, out in enumerate(model.output_names):
        head = model.get_layer(out)
        seed = result.d_outputs.get(k)
        d_logits = seed if seed is not None else result.d_logits[k]
        d_merged = d_logits @ head.params["kernel"].T            # (N, 2H): [lstm_a, lstm_b]
        for j, lstm in enumerate(("lstm_a", "lstm_b")):
            norms = through[out][lstm]
            assert norms.shape == (5,)
            np.testing.assert_allclose(norms[-1], np.linalg.norm(d_merged[:, j * H:(j + 1) * H]),
                                       rtol=1e-12)
            assert np.all(norms[:-1] > 0)


def test_gradient_through_time_is_linear_over_outputs_and_none_where_unreached():
    model, x, y = sequence_model()
    through = gradient_through_time(model, x, y)
    assert through["seq"]["lb"] is None            # lb feeds only the sigmoid head
    assert through["cls"]["lb"].shape == (4,)
    tape, result = forward_with_loss(model, x, y)
    total, parts = {}, []
    model.backward(tape, result.d_outputs, result.d_logits, extras=total)
    for k in range(2):
        extras = {}
        output_backward(model, tape, result, k, extras=extras)
        parts.append(extras)
    summed = sum(p["enc"]["d_h_steps"] for p in parts)
    np.testing.assert_allclose(summed, total["enc"]["d_h_steps"], rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------------------- saturation
def test_gate_saturation_counts_pre_activations_beyond_five():
    """T = 1 and h0 = 0: z = x W + b exactly, so the fraction can be counted directly."""
    model = demo_model(timesteps=1)
    x, y = demo_data(timesteps=1, n=40)
    x[0] *= 4.0
    tape = model.forward(model._inputs(x))
    measured = gate_saturation(model, tape)["lstm_a"]
    layer = model.get_layer("lstm_a")
    z = x[0][:, 0] @ layer.params["kernel"] + layer.params["bias"]
    H = 4
    for j, gate in enumerate("ifco"):
        expected = np.mean(np.abs(z[:, j * H:(j + 1) * H]) > 5)
        assert measured[gate] == pytest.approx(expected)
    assert max(measured.values()) > 0.05            # the scaled input does saturate some
    calm = gate_saturation(model, model.forward(model._inputs(demo_data(timesteps=1)[0])))
    assert max(calm["lstm_b"].values()) == 0.0


# --------------------------------------------------------------------------- Trace
def test_trace_records_what_one_step_did():
    model = demo_model()
    x, y = demo_data()
    before = {p: v.copy() for p, v in model.trainable_params.items()}
    contributions = model.gradient_contributions(x, y)
    gradients = model.gradients(x, y)
    history = model.fit(x, y, epochs=1, batch_size=N, shuffle=False, verbose=0, trace=True)
    trace = history.trace
    assert isinstance(trace, Trace) and len(trace) == 1
    P = len(trace.param_names)
    assert trace.grad_norm.shape == (1, 2, P)
    assert trace.iteration.tolist() == [1]
    for j, p in enumerate(trace.param_names):
        after = model.trainable_params[p]
        for k, out in enumerate(trace.output_names):
            assert trace.grad_norm[0, k, j] == pytest.approx(np.linalg.norm(contributions[out][p]),
                                                             rel=1e-12, abs=1e-15)
        assert trace.total_grad_norm[0, j] == pytest.approx(np.linalg.norm(gradients[p]),
                                                            rel=1e-12, abs=1e-15)
        assert trace.update_norm[0, j] == pytest.approx(np.linalg.norm(after - before[p]),
                                                        rel=1e-12, abs=1e-15)
        assert trace.weight_norm[0, j] == pytest.approx(np.linalg.norm(before[p]), rel=1e-12)
        if np.linalg.norm(before[p]) > 0:
            assert trace.update_ratio[0, j] == pytest.approx(
                np.linalg.norm(after - before[p]) / np.linalg.norm(before[p]), rel=1e-12)
        else:                                       # zero-initialized biases
            assert np.isnan(trace.update_ratio[0, j])
    assert trace.coverage.tolist() == [[1.0, 1.0]]
    assert trace.gate_saturation.shape == (1, 2, 4) and trace.head_names == ["out2"]
    cos = trace.shared_cosine[0]
    assert cos[0, 0] == pytest.approx(1.0) and cos[0, 1] == pytest.approx(cos[1, 0])
    assert not trace.nonfinite.any()


def test_trace_as_a_callback_over_several_epochs_and_its_npz(tmp_path):
    model = demo_model(dtype="float32")
    x, y = demo_data(dtype="float32", n=20)
    trace = Trace()
    model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[trace], seed=0)
    assert len(trace) == 9
    assert trace.epoch.tolist() == [0] * 3 + [1] * 3 + [2] * 3
    assert trace.batch.tolist() == [0, 1, 2] * 3
    assert trace.iteration.tolist() == list(range(1, 10))
    assert trace.output_loss.shape == (9, 2) and np.all(np.isfinite(trace.update_ratio[:, 0]))
    path = tmp_path / "trace.npz"
    trace.save(path)
    with np.load(path, allow_pickle=False) as data:      # plain arrays, no pickle
        assert data["param_names"].tolist() == trace.param_names
        np.testing.assert_array_equal(data["update_norm"], trace.update_norm)
    loaded = Trace.load(path)
    for field in ("grad_norm", "update_ratio", "gate_saturation", "coverage", "iteration"):
        np.testing.assert_array_equal(getattr(loaded, field), getattr(trace, field))
    assert loaded.output_names == trace.output_names
    json.dumps({k: v.tolist() for k, v in loaded.to_arrays().items()})
    with pytest.raises(AttributeError):
        trace.not_a_field


# --------------------------------------------------------------------------- Keras
@pytest.mark.keras
def test_contributions_match_keras_gradient_tape_per_output():
    """Same graph and weights in Keras (float64); ∇ of each output's weighted loss."""
    import keras
    import tensorflow as tf

    model = demo_model(loss_weights=(0.7, 0.3))
    x, y = demo_data()
    mine = model.gradient_contributions(x, y)

    def keras_lstm(name):
        return keras.layers.LSTM(4, name=name, dtype="float64")

    k1 = keras.Input((5, 3), name="x1", dtype="float64")
    k2 = keras.Input((5, 2), name="x2", dtype="float64")
    merged = keras.layers.Concatenate(name="merged", dtype="float64")(
        [keras_lstm("lstm_a")(k1), keras_lstm("lstm_b")(k2)])
    head1 = keras.layers.Dense(1, name="out1", dtype="float64")
    head2 = keras.layers.Dense(1, name="out2", dtype="float64")   # logits; sigmoid below
    kmodel = keras.Model([k1, k2], [head1(merged), head2(merged)])
    for name in ("lstm_a", "lstm_b", "out1", "out2"):
        kmodel.get_layer(name).set_weights(model.get_layer(name).get_weights())

    weights = {"out1": 0.7, "out2": 0.3}
    t1, t2 = (tf.constant(a) for a in y)
    grads = {}
    for out in ("out1", "out2"):
        with tf.GradientTape() as tape:
            p1, logits2 = kmodel([tf.constant(a) for a in x])
            if out == "out1":
                loss = tf.reduce_mean(tf.square(p1 - t1))
            else:   # binary cross-entropy from the logits, as Keras computes it on a sigmoid
                loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(t2, logits2))
            loss = weights[out] * loss
        variables = kmodel.trainable_variables
        values = tape.gradient(loss, variables)
        grads[out] = {v.path.split("/")[0] + "/" + v.path.split("/")[-1]: g
                      for v, g in zip(variables, values)}
    for out in ("out1", "out2"):
        for name, g in mine[out].items():
            theirs = grads[out].get(name)
            theirs = np.zeros_like(g) if theirs is None else np.asarray(theirs)
            np.testing.assert_allclose(g, theirs, rtol=1e-9, atol=1e-12,
                                       err_msg=f"{out}: {name}")
    # The sigmoid head's probabilities are the sigmoid of those logits (same graph).
    np.testing.assert_allclose(model.predict(x)[1],
                               tf.sigmoid(kmodel([tf.constant(a) for a in x])[1]).numpy(),
                               rtol=1e-12)
