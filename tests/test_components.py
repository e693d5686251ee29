"""Every registered component, checked the same way: adding one adds it here, unedited.

For each layer in :data:`mlstm.registry.LAYERS` and each of its ``examples()``: a float64
gradient check (entry by entry), the config round trip, save/load with identical
predictions, and -- when the layer declares a Keras class -- the Keras round trip. An
example may give ``input_dtypes`` (integer token ids) and ``input_ranges`` ([low, high) of
the ids drawn). For each loss and each configuration of its ``examples()``: its gradient
against finite differences of its values, and its config round trip; targets are drawn as
the loss says (``target_range``, or class ids when ``sparse_targets``). For each optimizer: its config and state round trip through save/load.
"""
import numpy as np
import pytest

import mlstm
from mlstm.registry import LAYERS, LOSSES, OPTIMIZERS


def _layer_cases():
    cases = []
    for cls in LAYERS.classes():
        for k, example in enumerate(cls.examples()):
            cases.append(pytest.param(cls, example, id=f"{cls.registered_name}-{k}"))
    return cases


def _input_dtypes(example, dtype):
    """Each input's dtype: the example's ``input_dtypes`` (integer token ids for an
    Embedding), else the test's float dtype."""
    return example.get("input_dtypes") or [dtype] * len(example["inputs"])


def _build(cls, example, dtype="float64", seed=0):
    mlstm.set_random_seed(seed)
    inputs = [mlstm.Input(shape=s, name=f"x{k}", dtype=d)
              for k, (s, d) in enumerate(zip(example["inputs"], _input_dtypes(example, dtype)))]
    # the layer is built in the test's float dtype (a layer fed by token ids has none to
    # inherit from its input)
    out = cls(**example["config"], name="subject", dtype=dtype)(
        inputs if len(inputs) > 1 else inputs[0])
    outputs = out if isinstance(out, list) else [out]
    model = mlstm.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="mse")
    model.example = example
    return model


def _data(model, n=3, seed=1):
    """Normal draws for float inputs and targets; integer inputs draw ids uniformly from the
    example's ``input_ranges`` [low, high), with a 0 (padding, for mask_zero) in sample 0."""
    rng = np.random.default_rng(seed)
    ranges = model.example.get("input_ranges") or [None] * len(model.inputs)
    xs = []
    for t, bounds in zip(model.inputs, ranges):
        shape = (n,) + tuple(t.shape)
        if np.dtype(t.dtype).kind == "i":
            x = rng.integers(*bounds, size=shape).astype(t.dtype)
            x[0, -1] = bounds[0]
        else:
            x = rng.normal(size=shape).astype(t.dtype)
            if x.ndim == 3:                      # a padded step, for layers that mask
                x[0, -1] = 0.0
        xs.append(x)
    ys = [rng.normal(size=(n,) + tuple(t.shape)).astype(t.dtype) for t in model.outputs]
    return xs, ys


def _randomize(model, seed=2):
    """Random trainable parameters; non-trainable state (moving statistics) keeps the values
    it starts with, which are valid (a random moving variance could be negative)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        trainable = len([k for k in layer.param_names if k in layer.params])
        layer.set_weights([rng.normal(scale=0.5, size=w.shape) if k < trainable else w
                           for k, w in enumerate(layer.get_weights())])


def test_every_registered_layer_has_examples_or_is_an_input():
    for cls in LAYERS.classes():
        assert cls.examples() or cls.is_input, cls


@pytest.mark.parametrize("cls, example", _layer_cases())
def test_layer_gradient_check_float64(cls, example):
    model = _build(cls, example)
    _randomize(model)
    xs, ys = _data(model)
    report = mlstm.gradcheck(model, xs, ys, method="entries")
    assert report.max_relative_error < 1e-6, str(report)


@pytest.mark.parametrize("cls, example", _layer_cases())
def test_layer_config_round_trip(cls, example):
    layer = cls(**example["config"], name="subject")
    config = layer.get_config()
    twin = cls.from_config(config)
    assert twin.get_config() == config
    assert LAYERS.get(type(layer).registered_name) is cls


@pytest.mark.parametrize("cls, example", _layer_cases())
def test_layer_save_load_identical_predictions(cls, example, tmp_path):
    model = _build(cls, example, dtype="float32")
    _randomize(model)
    xs, _ = _data(model)
    path = tmp_path / "m.mlstm.npz"
    model.save(str(path))
    loaded = mlstm.load_model(str(path))
    for a, b in zip(model.forward(xs).outputs, loaded.forward(xs).outputs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.keras
@pytest.mark.parametrize("cls, example", [c for c in _layer_cases() if c.values[0].keras_name])
def test_layer_keras_round_trip(cls, example):
    from mlstm.interop.keras import from_keras, keras_dtype, to_keras
    model = _build(cls, example, dtype="float64")
    _randomize(model)
    xs, _ = _data(model)
    keras_model = to_keras(model)
    # Keras' predict casts float inputs to floatx (float32 unless set; its data adapter,
    # keras/src/trainers/data_adapters/array_slicing.py): run it with floatx float64.
    with keras_dtype("float64"):
        theirs = keras_model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    theirs = theirs if isinstance(theirs, list) else [theirs]
    for ours, other in zip(model.forward(xs).outputs, theirs):
        np.testing.assert_allclose(ours, other, rtol=1e-9, atol=1e-9)
    back = from_keras(keras_model)
    assert type(back.get_layer("subject")) is cls
    for a, b in zip(model.forward(xs).outputs, back.forward(xs).outputs):
        np.testing.assert_allclose(a, b, rtol=0, atol=0)


# --------------------------------------------------------------------------- losses
def _loss_cases():
    """Each registered loss with each configuration of its ``examples()`` (default: ``{}``)."""
    cases = []
    for cls in LOSSES.classes():
        examples = cls.examples() if hasattr(cls, "examples") else [{}]
        for k, config in enumerate(examples):
            cases.append(pytest.param(cls, config, id=f"{cls.registered_name}-{k}"))
    return cases


def _loss_arrays(loss, seed=0):
    """Predictions (4, 3, 2) and targets as the loss takes them: class ids (4, 3) when its
    ``sparse_targets`` says so, else drawn in its ``target_range`` (or normal)."""
    rng = np.random.default_rng(seed)
    low, high = getattr(loss, "target_range", None) or (None, None)
    if low is not None or getattr(loss, "sparse_targets", False):
        y_pred = rng.uniform(0.1, 0.9, size=(4, 3, 2))
    else:
        y_pred = rng.normal(size=(4, 3, 2))
    if getattr(loss, "sparse_targets", False):
        y_true = rng.integers(0, y_pred.shape[-1], size=y_pred.shape[:-1]).astype(float)
    elif low is not None:
        y_true = rng.uniform(low, high, size=y_pred.shape)
    else:
        y_true = rng.normal(size=y_pred.shape)
    return y_true, y_pred


@pytest.mark.parametrize("cls, config", _loss_cases())
def test_loss_gradient_matches_finite_differences(cls, config):
    loss = cls(**config)
    y_true, y_pred = _loss_arrays(loss)
    analytic = loss.gradient(y_true, y_pred)
    numeric = np.zeros_like(y_pred)
    h = 1e-6
    for index in np.ndindex(y_pred.shape):
        step = np.zeros_like(y_pred)
        step[index] = h
        plus = loss.call(y_true, y_pred + step)
        minus = loss.call(y_true, y_pred - step)
        # each per-sample value depends only on its own row: d values[i] / d y_pred[i, j]
        numeric[index] = (plus - minus)[index[:-1]] / (2 * h)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)
    if cls.logits_activation is not None:
        logits = np.random.default_rng(3).normal(size=y_pred.shape)
        analytic = loss.gradient_logits(y_true, logits)
        numeric = np.zeros_like(logits)
        for index in np.ndindex(logits.shape):
            step = np.zeros_like(logits)
            step[index] = h
            numeric[index] = ((loss.call_logits(y_true, logits + step)
                               - loss.call_logits(y_true, logits - step))[index[:-1]] / (2 * h))
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("cls, config", _loss_cases())
def test_loss_config_round_trip(cls, config):
    loss = cls(**config)
    config = dict(loss.get_config())
    config.pop("name", None)
    twin = cls(**config)
    assert twin.get_config() == loss.get_config()
    y_true, y_pred = _loss_arrays(loss)
    assert twin(y_true, y_pred) == loss(y_true, y_pred)


# --------------------------------------------------------------------------- optimizers
@pytest.mark.parametrize("cls", OPTIMIZERS.classes(), ids=lambda c: c.registered_name)
def test_optimizer_state_survives_save_and_load(cls, tmp_path):
    mlstm.set_random_seed(0)
    x = mlstm.Input(shape=(3, 2), name="x")
    out = mlstm.Dense(1, name="out")(mlstm.LSTM(2, name="l")(x))
    model = mlstm.Model(x, out)
    model.compile(optimizer=cls(), loss="mse")
    rng = np.random.default_rng(0)
    xs, ys = rng.normal(size=(8, 3, 2)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")
    model.fit(xs, ys, epochs=1, batch_size=4, seed=0, verbose=0)
    path = tmp_path / "m.mlstm.npz"
    model.save(str(path))
    loaded = mlstm.load_model(str(path))
    assert type(loaded.optimizer) is cls
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    model.fit(xs, ys, epochs=1, batch_size=4, seed=1, verbose=0, shuffle=False)
    loaded.fit(xs, ys, epochs=1, batch_size=4, seed=1, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- Keras round trips
def _loss_model(cls, dtype="float64", seed=0):
    """Input (3, 4) -> LSTM(3, sequences) -> Dense(3, the activation the loss takes logits
    from) compiled with ``cls()``, with targets the loss accepts."""
    mlstm.set_random_seed(seed)
    loss = cls()
    x = mlstm.Input(shape=(3, 4), name="x", dtype=dtype)
    h = mlstm.LSTM(3, return_sequences=True, name="l")(x)
    out = mlstm.Dense(3, activation=loss.logits_activation, name="out")(h)
    model = mlstm.Model(x, out)
    model.compile(optimizer="adam", loss=loss)
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(4, 3, 4))
    low, high = getattr(loss, "target_range", None) or (None, None)
    if getattr(loss, "sparse_targets", False):
        ys = rng.integers(0, 3, size=(4, 3)).astype(dtype)
    elif loss.logits_activation == "softmax":
        ys = np.eye(3)[rng.integers(0, 3, size=(4, 3))]          # one-hot
    elif low is not None:
        ys = rng.uniform(low, high, size=(4, 3, 3))
    else:
        ys = rng.normal(size=(4, 3, 3))
    return model, xs.astype(dtype), ys.astype(dtype)


@pytest.mark.keras
@pytest.mark.parametrize("cls", [c for c in LOSSES.classes() if c.keras_name],
                         ids=lambda c: c.registered_name)
def test_loss_keras_round_trip(cls, tmp_path):
    """A loss that declares a Keras name: the model goes to Keras and back with the same
    loss, the two agree number by number (crosscheck, 2 steps, float64), and the loss
    survives save/load."""
    from mlstm.interop.keras import crosscheck, from_keras, to_keras
    model, xs, ys = _loss_model(cls)
    back = from_keras(to_keras(model))
    assert type(back._losses[0]) is cls
    assert back._losses[0].get_config() == model._losses[0].get_config()
    report = crosscheck(model, xs, ys, steps=2, as_dict=True)
    assert report["ok"], report
    model.save(str(tmp_path / "m.npz"))
    loaded = mlstm.load_model(str(tmp_path / "m.npz"))
    assert loaded._losses[0].get_config() == model._losses[0].get_config()


@pytest.mark.keras
@pytest.mark.parametrize("cls", OPTIMIZERS.classes(), ids=lambda c: c.registered_name)
def test_optimizer_keras_round_trip(cls):
    """Every registered optimizer (each carries its Keras class name): to Keras and back with
    the same configuration, and 3 steps that agree with Keras' (crosscheck, float64)."""
    from mlstm.interop.keras import crosscheck, from_keras, to_keras
    model, xs, ys = _loss_model(LOSSES.get("MeanSquaredError"))
    model.compile(optimizer=cls(), loss="mse")
    back = from_keras(to_keras(model))
    assert type(back.optimizer) is cls
    assert back.optimizer.get_config() == model.optimizer.get_config()
    report = crosscheck(model, xs, ys, steps=3, as_dict=True)
    assert report["ok"], report
