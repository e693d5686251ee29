"""Categorical and sparse categorical cross-entropy: formulas, logits on softmax heads,
class-id targets, refusals, Keras loss objects mapped to mlstm losses, Keras parity."""
import warnings

import numpy as np
import pytest

import mlstm
from mlstm import Dense, Input, LSTM, Masking, Model, losses
from mlstm.losses import CategoricalCrossentropy, SparseCategoricalCrossentropy
from mlstm.ops.softmax import softmax


def _fd_check(loss, y_true, y_pred, use_logits=False, h=1e-6):
    """Each per-row value against its own row's entries, five-point stencil (the rounding
    error stays that of one value, ~1e-16 · |ℓ| / h, not of a sum over the batch)."""
    call = loss.call_logits if use_logits else loss.call
    grad = loss.gradient_logits if use_logits else loss.gradient
    numeric = np.zeros_like(y_pred)
    for index in np.ndindex(y_pred.shape):
        def value(delta):
            moved = y_pred.copy()
            moved[index] += delta
            return call(y_true, moved)[index[:-1]]
        numeric[index] = (8 * (value(h) - value(-h)) - (value(2 * h) - value(-2 * h))) / (12 * h)
    np.testing.assert_allclose(grad(y_true, y_pred), numeric, rtol=1e-7, atol=1e-9)


def _one_hot(ids, n):
    return np.eye(n)[ids]


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4), size=(5, 3))
    t = _one_hot(rng.integers(0, 4, (5, 3)), 4)
    logits = rng.normal(scale=3, size=(5, 3, 4))
    ids = rng.integers(0, 4, (5, 3)).astype(float)
    for loss in (CategoricalCrossentropy(), CategoricalCrossentropy(label_smoothing=0.2)):
        _fd_check(loss, t, p)
        _fd_check(loss, t, logits, use_logits=True)
        _fd_check(loss, rng.dirichlet(np.ones(4), size=(5, 3)), p * 1.7)   # unnormalized p
    _fd_check(CategoricalCrossentropy(from_logits=True), t, logits)
    _fd_check(SparseCategoricalCrossentropy(), ids, p)
    _fd_check(SparseCategoricalCrossentropy(), ids, p * 0.6)               # Σ p̂ ≠ 1 counts
    _fd_check(SparseCategoricalCrossentropy(), ids, logits, use_logits=True)
    _fd_check(SparseCategoricalCrossentropy(from_logits=True), ids[..., None], logits)


def test_sparse_equals_categorical_on_one_hot_targets():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(6, 5))
    ids = rng.integers(0, 5, 6)
    p = softmax(logits)
    cce, scce = CategoricalCrossentropy(), SparseCategoricalCrossentropy()
    for a, b in ((cce.call_logits(_one_hot(ids, 5), logits), scce.call_logits(ids, logits)),
                 (cce.gradient_logits(_one_hot(ids, 5), logits),
                  scce.gradient_logits(ids, logits)),
                 (cce.call(_one_hot(ids, 5), p), scce.call(ids, p)),
                 (cce.call_logits(_one_hot(ids, 5), logits), -np.log(p[np.arange(6), ids]))):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_softmax_ce_gradient_is_p_minus_t():
    """docs/classification.md: on a softmax head dℓ/da = p - t for targets that sum to 1."""
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(4, 3))
    t = rng.dirichlet(np.ones(3), size=4)
    np.testing.assert_allclose(CategoricalCrossentropy().gradient_logits(t, logits),
                               softmax(logits) - t, rtol=1e-14, atol=1e-16)


def _softmax_model(units=3, dtype="float64", per_step=False):
    mlstm.set_random_seed(0)
    x = Input((4, 2), name="x", dtype=dtype)
    h = LSTM(5, return_sequences=per_step, name="lstm")(x)
    return Model(x, Dense(units, activation="softmax", name="head")(h))


def test_saturated_softmax_head_uses_logits():
    """Logits 100 apart: the clipped formula gives -log(1e-7) = 16.1 and no gradient; the
    logits give the true loss and its gradient, as Keras does (100 in Keras too)."""
    x = Input((2,), name="z", dtype="float64")
    head = Dense(3, activation="softmax", use_bias=False, name="head")
    model = Model(x, head(x))
    head.set_weights([np.array([[50.0, -50.0, 0.0], [0.0, 0.0, 0.0]])])
    xs = np.array([[1.0, 0.0], [2.0, 1.0]])
    for loss, ys in ((CategoricalCrossentropy(), np.array([[0, 1.0, 0], [0, 0, 1.0]])),
                     (SparseCategoricalCrossentropy(), np.array([1, 2]))):
        model.compile("sgd", loss=loss)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert model.evaluate(xs, ys) == pytest.approx(100.0, rel=1e-12)
            grads = model.gradients(xs, ys)
        # dL/dW = mean_n x_n (p_n - t_n)^T; p_n = e_0 for both rows
        expected = (np.outer(xs[0], [1, -1, 0]) + np.outer(xs[1], [1, 0, -1])) / 2
        np.testing.assert_allclose(grads["head/kernel"], expected, atol=1e-15)
        # on the probabilities every entry is outside [ε, 1 - ε]: no gradient at all
        assert np.all(loss.gradient(ys, model.predict(xs)) == 0)


@pytest.mark.parametrize("loss", ["categorical_crossentropy", "sparse_categorical_crossentropy"])
@pytest.mark.parametrize("per_step", [False, True])
def test_softmax_head_gradient_check(loss, per_step):
    model = _softmax_model(per_step=per_step)
    model.compile("sgd", loss=loss)
    rng = np.random.default_rng(3)
    xs = rng.normal(size=(4, 4, 2))
    ids = rng.integers(0, 3, (4, 4) if per_step else (4,))
    ys = ids if loss.startswith("sparse") else _one_hot(ids, 3)
    report = mlstm.gradcheck(model, xs, ys)
    assert report.max_relative_error < 1e-7, str(report)


def test_masked_sequence_of_class_ids():
    """Per-step class ids under a Masking layer: the loss averages the valid steps; padded
    steps may hold any id in range (TensorFlow refuses ids outside at every position)."""
    mlstm.set_random_seed(1)
    x = Input((4, 2), name="x", dtype="float64")
    out = Dense(3, activation="softmax", name="head")(
        LSTM(3, return_sequences=True, name="lstm")(Masking()(x)))
    model = Model(x, out)
    model.compile("sgd", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(4)
    xs = rng.normal(size=(2, 4, 2))
    xs[0, 2:] = 0
    ids = rng.integers(0, 3, (2, 4))
    p = model.predict(xs)
    valid = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], bool)
    picked = -np.log(np.take_along_axis(p, ids[..., None], -1)[..., 0])
    assert model.evaluate(xs, ids) == pytest.approx(picked[valid].mean(), rel=1e-12)
    assert model.evaluate(xs, ids[..., None]) == pytest.approx(picked[valid].mean(), rel=1e-12)
    report = mlstm.gradcheck(model, xs, ids)
    assert report.max_relative_error < 1e-7, str(report)


def test_class_id_refusals_name_the_position():
    model = _softmax_model()
    model.compile("sgd", loss="sparse_categorical_crossentropy")
    xs = np.zeros((3, 4, 2))
    with pytest.raises(ValueError, match=r"class id 3 at index \[2\] \(sample 2\).*\[0, 3\)"):
        model.evaluate(xs, np.array([0, 1, 3]))
    with pytest.raises(ValueError, match=r"class id -1 at index \[0\]"):
        model.fit(xs, np.array([[-1], [1], [2]]), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"whole numbers, got 1.5 at index \[1\]"):
        model.gradients(xs, np.array([0.0, 1.5, 2.0]))
    with pytest.raises(ValueError, match="one-hot targets"):
        model.evaluate(xs, np.eye(3))
    with pytest.raises(ValueError, match=r"expects shape \(N,\) or \(N, 1\)"):
        model.evaluate(xs, np.zeros((3, 2)))
    per_step = _softmax_model(per_step=True)
    per_step.compile("sgd", loss="sparse_categorical_crossentropy")
    ids = np.zeros((3, 4), int)
    ids[1, 2] = 7
    with pytest.raises(ValueError, match=r"class id 7 at index \[1, 2\] \(sample 1, step 2\)"):
        per_step.evaluate(xs, ids)
    with pytest.raises(ValueError, match="outside"):
        SparseCategoricalCrossentropy()(np.array([0, 4]), np.full((2, 3), 1 / 3))


def test_option_refusals():
    with pytest.raises(ValueError, match="axis=1 is not supported"):
        CategoricalCrossentropy(axis=1)
    with pytest.raises(ValueError, match="ignore_class=0 is not supported"):
        SparseCategoricalCrossentropy(ignore_class=0)
    with pytest.raises(ValueError, match="label_smoothing"):
        CategoricalCrossentropy(label_smoothing=1.5)
    with pytest.raises(TypeError, match=r"reduction='sum' not supported; "
                                        r"CategoricalCrossentropy takes \['from_logits'"):
        CategoricalCrossentropy(reduction="sum")
    with pytest.raises(TypeError, match="SparseCategoricalCrossentropy takes"):
        SparseCategoricalCrossentropy(label_smoothing=0.1)
    with pytest.raises(TypeError, match=r"MeanAbsoluteError takes \[\]"):
        losses.MeanAbsoluteError(delta=1)
    with pytest.raises(ValueError, match="targets in \\[0, 1\\]"):
        CategoricalCrossentropy()(np.array([[-1.0, 2.0]]), np.array([[0.5, 0.5]]))


def test_one_unit_softmax_warns_as_keras():
    with pytest.warns(UserWarning, match="single class"):
        CategoricalCrossentropy().call(np.ones((2, 1)), np.ones((2, 1)))


def test_from_logits_true_on_a_softmax_head_warns_and_uses_the_logits():
    model = _softmax_model()
    model.compile("sgd", loss=CategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(5)
    xs, ys = rng.normal(size=(3, 4, 2)), _one_hot([0, 2, 1], 3)
    with pytest.warns(UserWarning, match="from_logits=True"):
        value = model.evaluate(xs, ys)
    twin = _softmax_model()
    twin.compile("sgd", loss="categorical_crossentropy")
    assert value == twin.evaluate(xs, ys)


# --------------------------------------------------------------------------- Keras objects
class _FakeKerasLoss:
    """Shaped like a Keras 3 loss object, without Keras: recognized by module and name."""

    def __init__(self, cls_name, config, fn_kwargs=None):
        self.__class__ = type(cls_name, (_FakeKerasLoss,),
                              {"__module__": "keras.src.losses.losses"})
        self._config = config
        if fn_kwargs is not None:
            self._fn_kwargs = fn_kwargs

    def get_config(self):
        return dict(self._config)

    def __call__(self, y_true, y_pred):
        raise AssertionError("mlstm must never call a Keras loss")


_FakeKerasLoss.__module__ = "keras.src.losses.loss"


def test_keras_shaped_objects_map_without_keras():
    cce = losses.get(_FakeKerasLoss("CategoricalCrossentropy", {
        "name": "cce", "reduction": "sum_over_batch_size", "from_logits": True,
        "label_smoothing": 0.1, "axis": -1}))
    assert type(cce) is CategoricalCrossentropy and cce.from_logits and cce.label_smoothing == 0.1
    huber = losses.get(_FakeKerasLoss("Huber", {"name": "huber_loss",
                                                "reduction": "sum_over_batch_size"},
                                      {"delta": 0.25}))
    assert type(huber) is losses.Huber and huber.delta == 0.25
    with pytest.raises(ValueError, match="reduction='sum' is not supported"):
        losses.get(_FakeKerasLoss("MeanSquaredError", {"reduction": "sum"}))
    with pytest.raises(ValueError, match="'Poisson' has no mlstm counterpart"):
        losses.get(_FakeKerasLoss("Poisson", {"reduction": "sum_over_batch_size"}))


@pytest.mark.keras
def test_keras_loss_objects_and_functions_map_to_mlstm_losses():
    import keras
    cases = [
        (keras.losses.MeanSquaredError(), losses.MeanSquaredError, {}),
        (keras.losses.mean_squared_error, losses.MeanSquaredError, {}),
        (keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.2),
         losses.BinaryCrossentropy, {"from_logits": True, "label_smoothing": 0.2}),
        (keras.losses.binary_crossentropy, losses.BinaryCrossentropy, {}),
        (keras.losses.CategoricalCrossentropy(label_smoothing=0.1), CategoricalCrossentropy,
         {"label_smoothing": 0.1, "from_logits": False}),
        (keras.losses.categorical_crossentropy, CategoricalCrossentropy, {}),
        (keras.losses.SparseCategoricalCrossentropy(from_logits=True),
         SparseCategoricalCrossentropy, {"from_logits": True}),
        (keras.losses.sparse_categorical_crossentropy, SparseCategoricalCrossentropy, {}),
        (keras.losses.MeanAbsoluteError(), losses.MeanAbsoluteError, {}),
        (keras.losses.mean_absolute_error, losses.MeanAbsoluteError, {}),
        (keras.losses.Huber(delta=0.5), losses.Huber, {"delta": 0.5}),
        (keras.losses.huber, losses.Huber, {"delta": 1.0}),
        (keras.losses.MeanSquaredError, losses.MeanSquaredError, {}),
    ]
    for keras_loss, cls, options in cases:
        mine = losses.get(keras_loss)
        assert type(mine) is cls, keras_loss
        for key, value in options.items():
            assert getattr(mine, key) == value, (keras_loss, key)


@pytest.mark.keras
def test_unmappable_keras_losses_are_refused_by_name():
    import keras

    class MyLoss(keras.losses.Loss):
        def call(self, y_true, y_pred):
            return keras.ops.mean(y_pred - y_true)

    for keras_loss, words in ((keras.losses.Poisson(), "'Poisson' has no mlstm counterpart"),
                              (keras.losses.poisson, "'poisson' has no mlstm counterpart"),
                              (keras.losses.KLDivergence(), "'KLDivergence'"),
                              (MyLoss(), "custom Keras loss class 'MyLoss'"),
                              (keras.losses.MeanSquaredError(reduction="sum"),
                               "reduction='sum'"),
                              (keras.losses.CategoricalCrossentropy(axis=1), "axis=1"),
                              (keras.losses.BinaryCrossentropy(axis=0), "option axis=0"),
                              (keras.losses.SparseCategoricalCrossentropy(ignore_class=0),
                               "ignore_class=0")):
        with pytest.raises(ValueError, match=words):
            losses.get(keras_loss)


def _demo_pair(seed=0):
    from mlstm.demo import build_demo_model
    model = build_demo_model(timesteps=6, features=(3, 2), units=4, seed=seed)
    rng = np.random.default_rng(seed)
    xs = [rng.normal(size=(16, 6, 3)), rng.normal(size=(16, 6, 2))]
    ys = [rng.normal(size=(16, 1)), rng.integers(0, 2, (16, 1)).astype(float)]
    return model, [x.astype("float32") for x in xs], [y.astype("float32") for y in ys]


@pytest.mark.keras
def test_keras_loss_objects_give_the_gradients_of_their_names():
    """compile(loss=[keras.losses.MeanSquaredError(), keras.losses.BinaryCrossentropy()])
    used to be differentiated numerically in float32 by the Keras object (9-37 % off
    loss="mse"); it now is the mlstm loss itself: the same gradients, bit for bit."""
    import keras
    by_name, xs, ys = _demo_pair()
    by_object = by_name.clone()
    by_name.compile("adam", loss=["mse", "binary_crossentropy"], loss_weights=[0.7, 0.3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no "differentiated numerically" warning
        by_object.compile("adam", loss=[keras.losses.MeanSquaredError(),
                                        keras.losses.BinaryCrossentropy()],
                          loss_weights=[0.7, 0.3])
    assert [type(l) for l in by_object._losses] == [losses.MeanSquaredError,
                                                     losses.BinaryCrossentropy]
    exact, mapped = by_name.gradients(xs, ys), by_object.gradients(xs, ys)
    for name in exact:
        np.testing.assert_array_equal(mapped[name], exact[name])
    # and a Keras object wrapped as a plain function by hand computes in float32: refused
    with pytest.raises(TypeError, match="lower precision"):
        losses.FunctionLoss(keras.losses.MeanSquaredError()).gradient(
            ys[0].astype("float64"), np.zeros((16, 1)))


# --------------------------------------------------------------------------- Keras parity
def _arrays(dtype, seed=6, shape=(5, 4)):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(shape[-1]), size=shape[:-1]).astype(dtype)
    logits = rng.normal(scale=2, size=shape).astype(dtype)
    ids = rng.integers(0, shape[-1], shape[:-1])
    return p, logits, ids, _one_hot(ids, shape[-1]).astype(dtype)


@pytest.mark.keras
@pytest.mark.parametrize("dtype, tol", [("float32", 1e-4), ("float64", 1e-9)])
def test_loss_functions_match_keras_values_and_gradients(dtype, tol):
    import keras
    import tensorflow as tf
    p, logits, ids, one_hot = _arrays(dtype)
    smooth = one_hot * 0.8 + 0.1 * np.random.default_rng(7).dirichlet(np.ones(4), 5)
    cases = [
        (CategoricalCrossentropy(), one_hot, p,
         lambda t, y: keras.losses.categorical_crossentropy(t, y)),
        (CategoricalCrossentropy(), smooth.astype(dtype), p * 1.3,
         lambda t, y: keras.losses.categorical_crossentropy(t, y)),
        (CategoricalCrossentropy(label_smoothing=0.15), one_hot, p,
         lambda t, y: keras.losses.categorical_crossentropy(t, y, label_smoothing=0.15)),
        (CategoricalCrossentropy(from_logits=True, label_smoothing=0.1), one_hot, logits,
         lambda t, y: keras.losses.categorical_crossentropy(t, y, from_logits=True,
                                                            label_smoothing=0.1)),
        (SparseCategoricalCrossentropy(), ids, p,
         lambda t, y: keras.losses.sparse_categorical_crossentropy(t, y)),
        (SparseCategoricalCrossentropy(), ids[:, None], p * 0.7,
         lambda t, y: keras.losses.sparse_categorical_crossentropy(t, y)),
        (SparseCategoricalCrossentropy(from_logits=True), ids, logits,
         lambda t, y: keras.losses.sparse_categorical_crossentropy(t, y, from_logits=True)),
    ]
    for loss, t, y, theirs in cases:
        y = y.astype(dtype)
        var = tf.Variable(y)
        with tf.GradientTape() as tape:
            values = theirs(t, var)
            total = tf.reduce_sum(values)
        np.testing.assert_allclose(loss.call(t, y), values.numpy(), rtol=tol, atol=tol)
        np.testing.assert_allclose(loss.gradient(t, y), tape.gradient(total, var).numpy(),
                                   rtol=tol, atol=tol)


def _keras_softmax_model(keras, per_step, units=3):
    x = keras.Input((4, 2), name="x")
    h = keras.layers.LSTM(5, return_sequences=per_step, name="lstm")(x)
    return keras.Model(x, keras.layers.Dense(units, activation="softmax", name="head")(h))


@pytest.mark.keras
@pytest.mark.parametrize("dtype, tol", [("float32", 1e-4), ("float64", 1e-9)])
@pytest.mark.parametrize("loss, per_step, target", [
    ("categorical_crossentropy", False, "one_hot"),
    ("sparse_categorical_crossentropy", False, "ids"),
    ("sparse_categorical_crossentropy", False, "ids_column"),
    ("sparse_categorical_crossentropy", True, "ids"),
    ("sparse_categorical_crossentropy", True, "ids_column"),
    ("categorical_crossentropy", True, "one_hot"),
])
def test_softmax_head_matches_keras(dtype, tol, loss, per_step, target):
    """LSTM -> Dense(softmax): predictions, loss (from the softmax's logits in both) and
    every gradient, with large weights so that some rows are nearly saturated."""
    from keras_parity import assert_model_matches_keras, keras_dtype
    rng = np.random.default_rng(8)
    model = _softmax_model(dtype=dtype, per_step=per_step)
    weights = [rng.normal(scale=1.5, size=w.shape).astype(dtype) for w in model.get_weights()]
    weights[-2] *= 4                                        # head kernel: sharp softmax
    model.set_weights(weights)
    model.compile("sgd", loss=loss)
    xs = [rng.normal(size=(6, 4, 2)).astype(dtype)]
    ids = rng.integers(0, 3, (6, 4) if per_step else (6,))
    ys = {"one_hot": _one_hot(ids, 3), "ids": ids, "ids_column": ids[..., None]}[target]
    with keras_dtype(dtype) as keras:
        theirs = _keras_softmax_model(keras, per_step)
        theirs.set_weights(weights)
        theirs.compile("sgd", loss=loss)
        ours, keras_loss = assert_model_matches_keras(model, theirs, xs, [ys], tol)
    assert ours > 0.5 and keras_loss > 0.5
