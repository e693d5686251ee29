"""What every real model of tests/models/ goes through, and small synthetic data.

Each model is built in Keras (the dtype policy and floatx set to the test's dtype while it
is built and compiled, so every layer and the compiled losses take that dtype), then

1. imported with :func:`mlstm.interop.keras.from_keras` (graph, weights, losses, loss
   weights, metrics and optimizer);
2. cross-checked with :func:`mlstm.interop.keras.crosscheck`: forward pass, each output's
   loss, every gradient, and the weights after 3 optimizer steps, at crosscheck's default
   tolerances (1e-4 / 1e-5 in float32, 1e-9 in float64), every comparison passing;
3. diagnosed with :func:`mlstm.diagnose`, which must return a report (text and JSON) that
   covers every output with a loss.

Sizes are the source's with vocabularies, units, lengths and batches shrunk so that each
model takes about a second; each test file says what it shrank.
"""
import contextlib
import json
import os
import warnings

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

STEPS = 3
DTYPES = ("float32", "float64")



@contextlib.contextmanager
def keras_building(dtype, seed=0):
    """Keras with floatx and the global dtype policy at ``dtype`` and seeded initializers,
    for building and compiling one model; the previous settings are restored after."""
    from mlstm.interop.keras import keras_dtype
    from mlstm.interop.keras.backend import import_keras

    keras = import_keras()
    with keras_dtype(dtype):
        keras.utils.set_random_seed(seed)
        yield keras


def import_quietly(keras_model):
    """from_keras, without the warning about Keras initializers mlstm does not name (the
    weights are copied; the warning only concerns re-initializing the mlstm model)."""
    from mlstm.interop.keras import from_keras

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*has no mlstm equivalent; the weights are "
                                                  "copied")
        return from_keras(keras_model)


def check_real_model(keras_model, x, y, dtype, run_eagerly=True, diagnose_steps=2):
    """Import, cross-check (3 steps) and diagnose ``keras_model``; returns
    ``(mlstm model, crosscheck report dict, diagnosis report)``.

    ``run_eagerly`` runs Keras' training steps eagerly (the same arithmetic as the traced
    step ``fit`` uses, without its ~2 s of tracing per model).
    """
    import mlstm
    from mlstm.diagnostics.report import DiagnosisReport
    from mlstm.interop.keras import DEFAULT_TOLERANCES, crosscheck, format_report

    model = import_quietly(keras_model)
    assert model.compiled and model.dtype == dtype
    # the same outputs, by the names of the Keras layers producing them
    assert model.output_names == [t._keras_history[0].name for t in keras_model.outputs]

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*has no mlstm equivalent; the weights are "
                                                  "copied")
        report = crosscheck(keras_model, x, y, steps=STEPS, as_dict=True,
                            run_eagerly=run_eagerly)
    assert (report["rtol"], report["atol"]) == DEFAULT_TOLERANCES[dtype]
    assert report["ok"], format_report(report)
    assert report["dtype"] == dtype and len(report["steps"]) == STEPS
    # every weight's gradient was compared, and every weight after every step
    assert set(report["gradients"]["total"]) == set(model.params)
    # (and the non-trainable state, e.g. BatchNormalization's moving statistics, when any)
    assert all(set(model.params) <= set(s["weights"]) for s in report["steps"])
    # the optimizer steps did move the model (the same way in both)
    first = report["loss"]["total"]["keras"]
    last = report["steps"][-1]["loss"]["loss"]["keras"]
    assert last != first, "three optimizer steps left the loss unchanged"

    xs = model._inputs(x)
    diagnosis = mlstm.diagnose(model, x, y, steps=diagnose_steps,
                               batch_size=xs[0].shape[0])
    assert isinstance(diagnosis, DiagnosisReport)
    assert diagnosis.stopped is None, diagnosis.stopped
    text = str(diagnosis)
    assert model.name in text
    as_dict = json.loads(json.dumps(diagnosis.to_dict()))
    losses = [n for n, loss in zip(model.output_names, model._losses) if loss is not None]
    assert diagnosis.loss_outputs == losses
    assert as_dict
    return model, report, diagnosis


# --------------------------------------------------------------------------- synthetic data
def rng_for(name):
    """A generator seeded from the model's name (stable across runs and test order)."""
    return np.random.default_rng(sum(map(ord, name)))


def sequences(rng, n, steps, features, dtype):
    """Standard-normal sequences (N, T, D)."""
    return rng.standard_normal((n, steps, features)).astype(dtype)


def token_ids(rng, n, steps, vocabulary, padded=True):
    """Token ids (N, T) in [1, V), int32; with ``padded``, some rows zero-padded at the
    front as ``pad_sequences`` leaves them (id 0)."""
    ids = rng.integers(1, vocabulary, size=(n, steps)).astype("int32")
    if padded:
        for row in range(0, n, 3):
            ids[row, :rng.integers(1, steps)] = 0
    return ids


def one_hot(rng, shape, classes, dtype):
    """One-hot targets (*shape, C)."""
    return np.eye(classes, dtype=dtype)[rng.integers(0, classes, size=shape)]


def binary(rng, shape, dtype):
    """0/1 targets."""
    return (rng.random(shape) < 0.5).astype(dtype)
