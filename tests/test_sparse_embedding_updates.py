"""Optimizer steps on an Embedding table's per-occurrence gradient, as Keras (TF backend).

Keras hands its optimizers an Embedding's gradient as ``tf.IndexedSlices``, one row per
token occurrence; ``ops.square`` / ``ops.abs`` act on each row before the rows are summed,
and clipping measures (clipnorm, global_clipnorm) or clips (clipvalue) the rows. mlstm
carries the rows as a :class:`mlstm.ops.embedding.SparseRowsGradient` from the Embedding's
backward to the optimizer (docs/optimizers.md, "Embedding tables"). Here:

* Keras parity, 3 steps of ``fit`` on an Embedding -> LSTM -> Dense model whose batch
  repeats ids, for every optimizer and clip option: every weight within 1e-9 in float64,
  1e-4 in float32 (marked ``keras``; Keras eager, but for one case run traced);
* without Keras: the per-occurrence step is the dense one bit for bit when no id repeats;
  it differs when one does (by the amount the worked example of the docs gives); the three
  per-id sums equal their ``np.add.at`` reference bit for bit; a shared Embedding's two
  lookups add up; SGD without clipping is unchanged bit for bit; the user-facing gradient
  stays the dense sum.
"""
import numpy as np
import pytest

import mlstm
from mlstm import optimizers
from mlstm.ops.embedding import SparseRowsGradient, embedding_backward_rows, scatter_add

V, D, T, H, N = 7, 3, 5, 3, 8

#: (optimizer class name, options): every rule, its variants and the clip options.
CASES = [
    ("Adam", {}), ("Adam", {"amsgrad": True}), ("Adam", {"clipnorm": 0.05}),
    ("Adam", {"clipvalue": 0.01}), ("Adam", {"global_clipnorm": 0.05}),
    ("Adam", {"weight_decay": 0.1}),
    ("AdamW", {}), ("AdamW", {"amsgrad": True, "clipvalue": 0.01}),
    ("Adamax", {}), ("Adamax", {"clipnorm": 0.05}),
    ("Nadam", {}), ("Nadam", {"clipvalue": 0.01}),
    # centered: ρ = 0.95, since v - ḡ² = (1 - ρ)(Σ g_i² - (1 - ρ)(Σ g_i)²) at the first step
    # is negative for an id repeated more than 1 / (1 - ρ) times with like gradients (ρ =
    # 0.9 fails at step 3 here, in both: test_centered_rmsprop_fails_where_keras_fails)
    ("RMSprop", {}), ("RMSprop", {"momentum": 0.5}), ("RMSprop", {"centered": True, "rho": 0.95}),
    ("RMSprop", {"centered": True, "rho": 0.95, "momentum": 0.5, "clipnorm": 0.05}),
    ("Adagrad", {}), ("Adagrad", {"global_clipnorm": 0.05}),
    # SGD: Keras casts μ through float32 (ops.cast), and so does mlstm
    # (tests/test_optimizers.py::test_float64_steps_are_keras_bit_for_bit)
    ("SGD", {}), ("SGD", {"momentum": 0.9}), ("SGD", {"momentum": 0.5, "nesterov": True}),
    ("SGD", {"momentum": 0.5, "clipvalue": 0.01}), ("SGD", {"clipnorm": 0.05}),
]


def _ids(seed=0, n=N):
    """Token ids (n, T) in [0, V) in which ids repeat (within rows and across the batch)."""
    ids = np.random.default_rng(seed).integers(0, V, size=(n, T))
    assert np.bincount(ids.reshape(-1)).max() >= 3
    return ids.astype(np.int32)


def _model(dtype, shared=False):
    tokens = mlstm.Input((T,), name="tokens", dtype="int32")
    embed = mlstm.Embedding(V, D, name="embed", dtype=dtype, seed=1)
    if shared:
        other = mlstm.Input((T,), name="other", dtype="int32")
        h = mlstm.Concatenate(name="cat")([embed(tokens), embed(other)])
        inputs = [tokens, other]
    else:
        h, inputs = embed(tokens), tokens
    h = mlstm.LSTM(H, name="lstm", seed=2)(h)
    out = mlstm.Dense(2, name="out", seed=3)(h)
    model = mlstm.Model(inputs, out)
    # table entries of 0.5 (Keras' uniform(0.05) init gives gradients too small to see)
    rng = np.random.default_rng(4)
    model.set_weights([rng.normal(scale=0.5, size=w.shape).astype(dtype)
                       for w in model.get_weights()])
    return model


def _data(dtype):
    ids = _ids()
    y = np.random.default_rng(5).normal(size=(N, 2)).astype(dtype)
    return ids, y


# --------------------------------------------------------------------------- Keras parity
@pytest.mark.keras
@pytest.mark.parametrize("dtype, tol", [("float64", 1e-9), ("float32", 1e-4)])
@pytest.mark.parametrize("name, options", CASES,
                         ids=[f"{n}-{'-'.join(f'{k}={v}' for k, v in o.items()) or 'default'}"
                              for n, o in CASES])
def test_embedding_steps_match_keras(name, options, dtype, tol):
    """3 steps of fit (one batch of 8 with ids repeated up to 5 times): every weight after
    each step, and the losses, as Keras'."""
    import keras

    from mlstm.interop.keras import keras_dtype, to_keras
    model = _model(dtype)
    ids, y = _data(dtype)
    learning_rate = 0.01
    model.compile(getattr(optimizers, name)(learning_rate=learning_rate, **options), loss="mse")
    # Keras eager (each traced fit step costs seconds), but for one case: the same ops on
    # the same IndexedSlices in a tf.function
    eager = (name, options, dtype) != ("Adam", {}, "float64")
    with keras_dtype(dtype):
        theirs = to_keras(model, compile=False)
        theirs.compile(getattr(keras.optimizers, name)(learning_rate=learning_rate, **options),
                       loss="mse", run_eagerly=eager)
        for step in range(3):
            k_loss = theirs.train_on_batch(ids, y)
            loss = model.train_on_batch(ids, y)
            assert abs(loss - k_loss) <= tol * (1 + abs(k_loss)), (step, loss, k_loss)
            for w, kw in zip(model.get_weights(), theirs.get_weights()):
                np.testing.assert_allclose(w, kw, rtol=0, atol=tol, err_msg=f"step {step + 1}")


@pytest.mark.keras
def test_keras_differs_from_the_dense_rule_here():
    """The parity above is not vacuous: on the same batch, Adam with the dense rule (the
    per-occurrence rows withheld) ends 3 steps far from Keras (the sparse rule is 1e-9
    away); SGD without clipping, which has no per-occurrence term, is the same either way."""
    import keras

    from mlstm.interop.keras import keras_dtype, to_keras
    ids, y = _data("float64")
    for name, expect_gap in (("Adam", True), ("RMSprop", True), ("SGD", False)):
        dense, sparse = _model("float64"), _model("float64")
        for m in (dense, sparse):
            m.compile(getattr(optimizers, name)(learning_rate=0.01), loss="mse")
        with keras_dtype("float64"):
            theirs = to_keras(sparse, compile=False)
            theirs.compile(getattr(keras.optimizers, name)(learning_rate=0.01), loss="mse",
                           run_eagerly=True)
            for _ in range(3):
                theirs.train_on_batch(ids, y)
        for _ in range(3):
            sparse.train_on_batch(ids, y)
            _dense_step(dense, ids, y)
        table = theirs.get_weights()[0]
        assert np.max(np.abs(sparse.get_weights()[0] - table)) < 1e-9
        gap = np.max(np.abs(dense.get_weights()[0] - table))
        assert (gap > 1e-4) if expect_gap else (gap < 1e-12), (name, gap)


@pytest.mark.keras
def test_centered_rmsprop_fails_where_keras_fails():
    """Centered RMSprop, ρ = 0.9, on this batch: Σ g_i² < (1 - ρ)(Σ g_i)² for a repeated id
    makes v - ḡ² negative at step 3, its square root NaN. Keras fails there (its sparse
    division gathers out of range: InvalidArgumentError); mlstm refuses the step
    (NonFiniteError), all or nothing: its weights are those after step 2, where both agree
    to 1e-9 (Keras' failed step has already updated the weights before the table's)."""
    import keras
    import tensorflow as tf

    from mlstm.interop.keras import keras_dtype, to_keras
    model = _model("float64")
    ids, y = _data("float64")
    model.compile(optimizers.RMSprop(0.01, centered=True), loss="mse")
    with keras_dtype("float64"):
        theirs = to_keras(model, compile=False)
        theirs.compile(keras.optimizers.RMSprop(0.01, centered=True), loss="mse",
                       run_eagerly=True)
        for _ in range(2):
            theirs.train_on_batch(ids, y)
            model.train_on_batch(ids, y)
        after_two = theirs.get_weights()
        with pytest.raises(tf.errors.InvalidArgumentError):
            theirs.train_on_batch(ids, y)   # (having updated the weights before the table)
    with pytest.raises(mlstm.validation.NonFiniteError, match="NaN"):
        model.train_on_batch(ids, y)
    for w, kw in zip(model.get_weights(), after_two):
        np.testing.assert_allclose(w, kw, rtol=0, atol=1e-9)


def _dense_step(model, ids, y):
    """One step with the dense gradient only (what mlstm did before the sparse rule)."""
    tape = model.forward([ids], training=True)
    result = model.loss_and_output_grads(tape, model._targets(y, len(ids)))
    grads = model.backward(tape, result.d_outputs, result.d_logits)
    model.optimizer.apply(model.trainable_params, {k: grads[k] for k in model.trainable_params})


# --------------------------------------------------------------------------- without Keras
def _optimizer(name, options):
    return getattr(optimizers, name)(learning_rate=0.01, **options)


def _table_gradient(ids, seed=7, dtype=np.float64):
    rows = np.random.default_rng(seed).normal(size=(ids.size, D)).astype(dtype)
    return SparseRowsGradient(ids.reshape(-1), rows, V)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, options", CASES)
def test_sparse_rule_is_the_dense_rule_when_no_id_repeats(name, options, dtype):
    """Ids all distinct: Σ g_i² = (Σ g_i)², Σ |g_i| = |Σ g_i|, the occurrences' norm is the
    sum's: 3 steps with the rows give the dense steps' parameters, updates and state, bit
    for bit."""
    ids = np.random.default_rng(1).permutation(V)[:5]
    theta = np.random.default_rng(2).normal(size=(V, D)).astype(dtype)
    params_dense, params_sparse = {"e": theta.copy()}, {"e": theta.copy()}
    dense_opt, sparse_opt = _optimizer(name, options), _optimizer(name, options)
    for step in range(3):
        g = _table_gradient(ids, seed=10 + step, dtype=dtype)
        dense = g.dense().copy()
        u_dense = dense_opt.apply(params_dense, {"e": dense})
        u_sparse = sparse_opt.apply(params_sparse, {"e": dense.copy()}, sparse_grads={"e": g})
        assert u_sparse["e"].tobytes() == u_dense["e"].tobytes()
        assert params_sparse["e"].tobytes() == params_dense["e"].tobytes()
    a, b = dense_opt.get_state(), sparse_opt.get_state()
    assert sorted(a) == sorted(b)
    assert all(np.asarray(a[k]).tobytes() == np.asarray(b[k]).tobytes() for k in a)


def test_repeated_id_worked_example():
    """docs/optimizers.md's example: one id, two occurrences g_1 = 1, g_2 = -1 (sum 0).
    Adam's first step: v = (1 - β2)·(1² + (-1)²) = 0.002 (the dense rule: 0), m = 0, so the
    weight does not move; the next step with g = 1 once then moves it by far less than
    lr, because v remembers the two occurrences: the dense rule moves it by lr."""
    ids = np.array([0, 0])
    g = SparseRowsGradient(ids, np.array([[1.0], [-1.0]]), 1)
    assert g.dense().tolist() == [[0.0]] and g.squares().tolist() == [[2.0]]
    opt, dense_opt = optimizers.Adam(0.1), optimizers.Adam(0.1)
    p, q = {"e": np.zeros((1, 1))}, {"e": np.zeros((1, 1))}
    opt.apply(p, {"e": g.dense()}, sparse_grads={"e": g})
    dense_opt.apply(q, {"e": g.dense()})
    assert np.isclose(opt.v["e"][0, 0], 0.002, rtol=1e-15) and dense_opt.v["e"][0, 0] == 0
    assert opt.m["e"][0, 0] == 0 and p["e"][0, 0] == 0
    one = SparseRowsGradient(np.array([0]), np.array([[1.0]]), 1)
    step_sparse = opt.apply(p, {"e": one.dense()}, sparse_grads={"e": one})["e"][0, 0]
    step_dense = dense_opt.apply(q, {"e": one.dense()})["e"][0, 0]
    # v_2 = 0.999·0.002 + 0.001 = 0.002998, m_2 = 0.1; α_2 = 0.1·sqrt(1-β2²)/(1-β1²)
    b1, b2 = float(np.float32(0.9)), float(np.float32(0.999))
    alpha = 0.1 * np.sqrt(1 - b2 ** 2) / (1 - b1 ** 2)
    assert np.isclose(step_sparse, -alpha * 0.1 / (np.sqrt(0.999 * 0.002 + 0.001) + 1e-7))
    assert np.isclose(step_dense, -alpha * 0.1 / (np.sqrt(0.001) + 1e-7))
    assert abs(step_sparse) < 0.6 * abs(step_dense)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_per_id_sums_match_their_reference(dtype):
    """The pick-matrix sums (dense, squares, magnitudes) equal np.add.at bit for bit, and
    dense() is the Embedding backward's gradient bit for bit."""
    ids = _ids(3, n=6)
    d_y = np.random.default_rng(8).normal(size=(6, T, D)).astype(dtype)
    g = embedding_backward_rows(d_y, {"ids": ids, "vocabulary": V})
    dense, squares, magnitudes = g.reference()
    assert g.dense().tobytes() == dense.tobytes()
    assert g.dense().tobytes() == scatter_add(ids, d_y, V).tobytes()
    assert g.squares().tobytes() == squares.tobytes()
    assert g.magnitudes().tobytes() == magnitudes.tobytes()
    assert g.dense().dtype == g.squares().dtype == dtype
    repeated = np.bincount(ids.reshape(-1), minlength=V) > 1
    assert np.all(g.squares()[repeated] != np.square(g.dense())[repeated])


def test_model_gradient_stays_dense_and_shared_lookups_add_up():
    """gradients() is the dense sum (an ndarray); the training step's per-occurrence rows of
    a shared Embedding hold both lookups' occurrences, and their sum is that gradient."""
    model = _model("float64", shared=True)
    model.compile("adam", loss="mse")
    ids, y = _data("float64")
    other = _ids(9)
    grads = model.gradients([ids, other], y)
    assert type(grads["embed/embeddings"]) is np.ndarray
    tape = model.forward([ids, other], training=True)
    result = model.loss_and_output_grads(tape, model._targets(y, N))
    sparse = {}
    again = model.backward(tape, result.d_outputs, result.d_logits, sparse_grads=sparse)
    assert set(sparse) == {"embed/embeddings"}
    rows = sparse["embed/embeddings"]
    # both lookups' occurrences (in the order the backward pass reaches them)
    assert sorted(rows.ids.tolist()) == sorted(ids.reshape(-1).tolist()
                                               + other.reshape(-1).tolist())
    np.testing.assert_allclose(rows.dense(), again["embed/embeddings"], rtol=0, atol=1e-15)
    assert again["embed/embeddings"].tobytes() == grads["embed/embeddings"].tobytes()


def test_sgd_without_clipping_is_unchanged_by_the_rows():
    """SGD has no per-occurrence term: with the rows it steps bit for bit as without them,
    repeated ids and all (with or without momentum)."""
    ids = _ids(2, n=4)
    for options in ({}, {"momentum": 0.9}, {"momentum": 0.9, "nesterov": True}):
        a, b = _optimizer("SGD", options), _optimizer("SGD", options)
        theta = np.random.default_rng(3).normal(size=(V, D))
        p, q = {"e": theta.copy()}, {"e": theta.copy()}
        for step in range(3):
            g = _table_gradient(ids, seed=step)
            a.apply(p, {"e": g.dense()}, sparse_grads={"e": g})
            b.apply(q, {"e": g.dense()})
        assert p["e"].tobytes() == q["e"].tobytes()


def test_all_or_nothing_and_clear_errors_with_rows():
    """A step that would overflow changes nothing (rows given); mismatched rows are refused."""
    ids = _ids(2, n=4)
    g = _table_gradient(ids)
    opt = optimizers.Adagrad(learning_rate=1e308, epsilon=0.0, initial_accumulator_value=0.0)
    theta = np.ones((V, D))
    params = {"e": theta.copy()}
    with pytest.raises(mlstm.validation.NonFiniteError):
        opt.apply(params, {"e": g.dense()}, sparse_grads={"e": g})
    assert params["e"].tobytes() == theta.tobytes() and opt.iterations == 0
    opt = optimizers.Adam()
    with pytest.raises(ValueError, match="no dense gradient"):
        opt.apply(params, {}, sparse_grads={"e": g})
    with pytest.raises(ValueError, match=r"shape \(7, 3\)"):
        opt.apply({"e": np.ones((7, 2))}, {"e": np.ones((7, 2))}, sparse_grads={"e": g})
    with pytest.raises(TypeError, match="must be a SparseRowsGradient"):
        opt.apply(params, {"e": g.dense()}, sparse_grads={"e": g.dense()})
    assert opt.iterations == 0


def test_a_rule_that_does_not_take_rows_gets_their_sum():
    """A user's optimizer (handles_sparse_rows left False) sees an ndarray: the sum."""
    seen = []

    class Plain(optimizers.Optimizer):
        def rule(self, theta, g, state, step):
            seen.append(g)
            theta -= g
            return theta, {}

    g = _table_gradient(_ids(2, n=4))
    Plain().apply({"e": np.zeros((V, D))}, {"e": g.dense()}, sparse_grads={"e": g})
    assert type(seen[0]) is np.ndarray and seen[0].tobytes() == g.dense().tobytes()


def test_a_layer_whose_backward_takes_kwargs_is_not_sent_the_rows():
    """Only a backward that names ``sparse_grads`` gets it: a layer passing ``**kwargs`` on to
    Dense's backward (which does not take it) trains as before."""
    class PassingOn(mlstm.Dense):
        def backward(self, d_outputs, cache, **kwargs):
            return super().backward(d_outputs, cache, **kwargs)

    tokens = mlstm.Input((T,), name="tokens", dtype="int32")
    h = mlstm.LSTM(H, name="lstm", seed=2)(mlstm.Embedding(V, D, name="embed", seed=1)(tokens))
    model = mlstm.Model(tokens, PassingOn(2, name="out", seed=3)(h))
    model.compile("adam", loss="mse")
    ids, y = _data("float32")
    before = model.get_weights()
    model.train_on_batch(ids, y)
    assert all(np.any(a != b) for a, b in zip(before, model.get_weights()))
