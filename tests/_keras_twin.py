"""Shared by the issue-14 tests: small float64 models, and their Keras twins.

A twin is ``to_keras(model, compile=False)`` (same graph, layer names and weights),
compiled by the test with Keras' own optimizer, loss and ``run_eagerly=True`` (no tracing:
these runs are a few steps each), in float64: both ``floatx`` and the dtype policy are set
while the twin is built, compiled and trained (``set_floatx`` alone leaves later layers
float32), and restored afterwards.
"""

import numpy as np

import mlstm
from mlstm.interop.keras import keras_dtype

TOL = 1e-9


def single_output_model(T=4, D=3, H=3, units_out=1, activation=None, seed=0, name="out"):
    x = mlstm.Input(shape=(T, D), name="x", dtype="float64")
    h = mlstm.LSTM(H, name="lstm", seed=seed)(x)
    out = mlstm.Dense(units_out, activation=activation, name=name, seed=seed + 1)(h)
    return mlstm.Model(x, out)


def two_output_model(T=4, D=3, H=3, seed=0):
    x = mlstm.Input(shape=(T, D), name="x", dtype="float64")
    h = mlstm.LSTM(H, name="lstm", seed=seed)(x)
    out1 = mlstm.Dense(2, name="out1", seed=seed + 1)(h)
    out2 = mlstm.Dense(1, activation="sigmoid", name="out2", seed=seed + 2)(h)
    return mlstm.Model(x, [out1, out2])


def data(n=12, T=4, D=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, T, D))
    y1 = rng.normal(size=(n, 2))
    y2 = (rng.random((n, 1)) > 0.5).astype(np.float64)
    return x, y1, y2


def float64(keras):
    """Keras in float64 for the block (floatx and dtype policy; mlstm's own helper)."""
    return keras_dtype("float64")


def keras_twin(keras, model, optimizer, loss, loss_weights=None, metrics=None):
    """The Keras model of ``model`` (same weights), compiled in float64, eager.

    ``optimizer`` is a function returning the Keras optimizer: made inside the float64
    context, its learning-rate variable is float64 (made outside, it would be float32 and
    round the rate, 0.1 to 0.10000000149).
    """
    from mlstm.interop.keras import to_keras

    with float64(keras):
        kmodel = to_keras(model, compile=False)
        kmodel.compile(optimizer=optimizer(), loss=loss, loss_weights=loss_weights,
                       metrics=metrics, run_eagerly=True)
    assert all(w.dtype == np.float64 for w in kmodel.get_weights())
    return kmodel


def keras_fit(keras, kmodel, *args, **kwargs):
    with float64(keras):
        return kmodel.fit(*args, verbose=0, shuffle=False, **kwargs)


def assert_same_history(mine, theirs, keys=None, tol=TOL):
    """The same keys (or ``keys``), epochs and values within ``tol``."""
    keys = sorted(theirs.history) if keys is None else keys
    assert sorted(mine.history) == sorted(theirs.history) if keys is None else True
    assert mine.epoch == theirs.epoch
    for key in keys:
        a, b = np.asarray(mine.history[key]), np.asarray(theirs.history[key])
        assert a.shape == b.shape, (key, a, b)
        np.testing.assert_allclose(a, b, rtol=0, atol=tol, err_msg=key)


def assert_same_weights(model, kmodel, tol=TOL):
    mine, theirs = model.get_weights(), kmodel.get_weights()
    assert len(mine) == len(theirs)
    for a, b in zip(mine, theirs):
        np.testing.assert_allclose(a, b, rtol=0, atol=tol)
    return max(float(np.max(np.abs(a - b))) for a, b in zip(mine, theirs))
