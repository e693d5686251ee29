"""The seed article's three setups, on built-in data, diagnosed side by side.

The seed article ("Why isn't my Keras LSTM multi-input, multi-output model updating weights
after each epoch?") builds two inputs, an LSTM on each, a concatenation, a linear head and
a sigmoid head, and offers:

* **Example 1** ("incorrect"): ``compile(optimizer="adam", loss="mse")``: MSE on both heads;
* **Example 2** ("correct"): one custom loss, ``0.7 * mean((y_true[0] - y_pred[0])²) +
  0.3 * mean(bce(y_true[1], y_pred[1]))``, given for the whole model;
* and advice to scale the inputs.

Keras applies a loss given once to **each output separately**, with that output's
``y_true``/``y_pred`` of shape (batch, units). So in Example 2, ``y_true[0]`` is the first
*sample* of the batch and ``y_true[1]`` the second: each output's loss reads 2 samples of
each batch of 32. :func:`run_seed_scenario` runs both as written (ported to NumPy) next to a
sound setup (MSE + binary cross-entropy from logits, loss weights, standardized inputs),
all from the same initial weights, and diagnoses each.
"""
from __future__ import annotations

import time
import warnings

import numpy as np

from ..data import make_demo_data
from ..losses import binary_crossentropy
from .diagnosis import diagnose

__all__ = ["seed_custom_loss", "make_seed_data", "standardize", "SCENARIO", "SETUPS",
           "run_seed_scenario"]


def seed_custom_loss(y_true, y_pred):
    """The seed's Example 2 loss, line for line in NumPy (``K.mean`` -> ``np.mean``).

    Called (like Keras does) once per output with that output's arrays of shape (N, 1):
    ``y_true[0]`` and ``y_pred[0]`` are the first sample, ``[1]`` the second.
    """
    mse_output1 = np.mean(np.square(y_true[0] - y_pred[0]))
    bce_output2 = np.mean(binary_crossentropy(y_true[1], y_pred[1]))
    return 0.7 * mse_output1 + 0.3 * bce_output2


def make_seed_data(samples=512, timesteps=10, features=(8, 8), seed=0, raw_scale=False):
    """The demo task (:func:`mlstm.data.make_demo_data`), inputs as recorded "in raw units".

    With ``raw_scale`` the second input is recorded in other units than the first: its
    features are ``RAW_SCALE * x + RAW_OFFSET`` per feature, as when one sequence comes
    from a sensor in different units. The targets do not change.

    Returns
    -------
    dict with ``x1``, ``x2`` (N, T, D) and ``y1`` (N, 1) regression, ``y2`` (N, 1) binary.
    """
    data = make_demo_data(n_samples=samples, timesteps=timesteps, features=features, seed=seed)
    if raw_scale:
        d2 = features[1]
        scale = np.geomspace(RAW_SCALE[0], RAW_SCALE[1], d2).astype("float32")
        offset = np.linspace(RAW_OFFSET[0], RAW_OFFSET[1], d2).astype("float32")
        data["x2"] = data["x2"] * scale + offset
    return data


#: Per-feature scales and offsets of the second input "in raw units" (first to last feature).
RAW_SCALE = (0.05, 20.0)
RAW_OFFSET = (0.0, 10.0)


def standardize(train, *others):
    """Per-feature ``(x - mean) / std`` with the mean and std of ``train`` (over N and T)."""
    mean = train.mean(axis=(0, 1), keepdims=True)
    std = train.std(axis=(0, 1), keepdims=True)
    std = np.where(std > 0, std, 1)
    return [((a - mean) / std).astype(a.dtype) for a in (train,) + others]


#: The scenario's sizes (those of the Keras measurement in the design notes).
SCENARIO = {"samples": 512, "val_samples": 256, "timesteps": 10, "features": (8, 8),
            "units": 16, "batch_size": 32, "epochs": 15, "learning_rate": 1e-3}

#: name -> (column label, title, compile keyword arguments, standardize the inputs?)
SETUPS = {
    "example1": ("Example 1", "Example 1: loss='mse' on both heads", dict(loss="mse"), False),
    "example2": ("Example 2", "Example 2: the seed's custom loss",
                 dict(loss=seed_custom_loss), False),
    "sound": ("Sound", "Sound: MSE + BCE, loss_weights [0.7, 0.3], standardized inputs",
              dict(loss=["mse", "binary_crossentropy"], loss_weights=[0.7, 0.3]), True),
}


def run_seed_scenario(epochs=SCENARIO["epochs"], samples=SCENARIO["samples"],
                      batch_size=SCENARIO["batch_size"], seed=0, raw_inputs=False,
                      setups=tuple(SETUPS)):
    """Train and diagnose each setup; the same data and initial weights for all.

    Parameters
    ----------
    epochs, samples, batch_size, seed : int
    raw_inputs : bool
        Record the second input in raw units (:func:`make_seed_data`); the sound setup
        standardizes its inputs either way.
    setups : names from :data:`SETUPS`

    Returns
    -------
    dict name -> dict with ``label``, ``title``, ``inputs`` (a description),
    ``report`` (DiagnosisReport; its trace covers the whole training), ``metrics``
    (on validation data: ``out1_mse``, ``out1_target_variance``, ``out2_accuracy``,
    ``out2_bce``) and ``seconds``.
    """
    from ..demo import build_demo_model
    from ..optimizers import Adam

    T, D, H = SCENARIO["timesteps"], SCENARIO["features"], SCENARIO["units"]
    train = make_seed_data(samples, T, D, seed=seed, raw_scale=raw_inputs)
    val = make_seed_data(SCENARIO["val_samples"], T, D, seed=seed + 1, raw_scale=raw_inputs)
    steps = epochs * -(-samples // batch_size)
    results = {}
    for name in setups:
        label, title, compile_kw, scaled = SETUPS[name]
        x_train, x_val = [train["x1"], train["x2"]], [val["x1"], val["x2"]]
        if scaled:
            x_train, x_val = map(list, zip(*(standardize(train[k], val[k]) for k in ("x1", "x2"))))
        model = build_demo_model(timesteps=T, features=D, units=H, seed=seed)
        with warnings.catch_warnings():
            # A plain-function loss warns that it is differentiated numerically: expected here.
            warnings.simplefilter("ignore", UserWarning)
            model.compile(optimizer=Adam(SCENARIO["learning_rate"]), metrics=["mae"],
                          **compile_kw)
        t0 = time.perf_counter()
        report = diagnose(model, x_train, [train["y1"], train["y2"]], steps=steps,
                          batch_size=batch_size, seed=seed)
        seconds = time.perf_counter() - t0
        p1, p2 = report.trained_model.predict(x_val, batch_size=256)
        results[name] = {
            "label": label, "title": title, "seconds": seconds, "report": report,
            "inputs": "standardized" if scaled else ("raw units" if raw_inputs else "as generated"),
            "metrics": {
                "out1_mse": float(np.mean(np.square(p1 - val["y1"]))),
                "out1_target_variance": float(np.var(val["y1"])),
                "out2_accuracy": float(np.mean((p2 > 0.5) == (val["y2"] > 0.5))),
                "out2_bce": float(np.mean(binary_crossentropy(val["y2"], p2))),
            }}
    return results
