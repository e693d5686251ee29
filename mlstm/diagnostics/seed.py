"""The seed article's three setups, on built-in data, diagnosed side by side.

The seed article ("Why isn't my Keras LSTM multi-input, multi-output model updating weights
after each epoch?") builds two inputs, an LSTM on each, a concatenation, a linear head and
a sigmoid head, and offers:

* **Example 1** ("incorrect"): ``compile(optimizer="adam", loss="mse")``: MSE on both heads;
* **Example 2** ("correct"): one custom loss, ``0.7 * mean((y_true[0] - y_pred[0])²) +
  0.3 * mean(bce(y_true[1], y_pred[1]))``, given for the whole model;
* and advice to scale the inputs.

* **Example 3** ("different output shapes"): the second head is ``Dense(2 * units)`` reshaped
  to ``(units, 2)``, with a custom loss ``0.6 * mean((y_true[0] - y_pred[0])²) + 0.4 *
  mean((y_true[1] - y_pred[1])²)``;
* and advice to scale the inputs.

Keras applies a loss given once to **each output separately**, with that output's
``y_true``/``y_pred`` of shape (batch, units). So in Example 2, ``y_true[0]`` is the first
*sample* of the batch and ``y_true[1]`` the second: each output's loss reads 2 samples of
each batch of 32. :func:`run_seed_scenario` runs Examples 1 and 2 as written (ported to
NumPy) next to a sound setup (MSE + binary cross-entropy from logits, loss weights,
standardized inputs), all from the same initial weights, and diagnoses each;
:func:`run_example3` does the same for Example 3 and its sound version (one MSE per output).
"""
from __future__ import annotations

import time
import warnings
from typing import Any, Iterable, TypedDict

import numpy as np

from ..data import make_demo_data
from ..layers import LSTM, Dense, Input, Reshape, concatenate
from ..losses import binary_crossentropy
from ..model import Model
from .._typing import Array
from .diagnosis import diagnose

__all__ = ["seed_custom_loss", "example3_custom_loss", "make_seed_data", "make_example3_data",
           "build_example3_model", "standardize", "SCENARIO", "SETUPS", "run_seed_scenario",
           "run_example3"]


def seed_custom_loss(y_true: Array, y_pred: Array) -> Any:
    """The seed's Example 2 loss, line for line in NumPy (``K.mean`` -> ``np.mean``).

    Called (like Keras does) once per output with that output's arrays of shape (N, 1):
    ``y_true[0]`` and ``y_pred[0]`` are the first sample, ``[1]`` the second.
    """
    mse_output1 = np.mean(np.square(y_true[0] - y_pred[0]))
    bce_output2 = np.mean(binary_crossentropy(y_true[1], y_pred[1]))
    return 0.7 * mse_output1 + 0.3 * bce_output2


def example3_custom_loss(y_true: Array, y_pred: Array) -> Any:
    """The seed's Example 3 loss in NumPy: ``y_true[0]``, ``y_true[1]`` are the first two
    *samples* of the batch (of shape (units,) or (units, 2) per output), not the outputs."""
    mse_output1 = np.mean(np.square(y_true[0] - y_pred[0]))
    mse_output2 = np.mean(np.square(y_true[1] - y_pred[1]))
    return 0.6 * mse_output1 + 0.4 * mse_output2


def make_seed_data(samples: int = 512, timesteps: int = 10, features: tuple[int, int] = (8, 8),
                   seed: int = 0, raw_scale: bool = False) -> dict[str, Array]:
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


def make_example3_data(samples: int = 512, timesteps: int = 10,
                       features: tuple[int, int] = (8, 8), seed: int = 0) -> dict[str, Array]:
    """Example 3's task: ``y1`` (N, 1) as in the demo, ``y2`` (N, 2, 2) four regression
    targets that need both sequences (the two sums, their difference, a last-step product)."""
    data = make_demo_data(n_samples=samples, timesteps=timesteps, features=features, seed=seed)
    x1, x2 = data["x1"].astype(np.float64), data["x2"].astype(np.float64)
    s1 = x1[:, :, 0].sum(axis=1) / np.sqrt(timesteps)
    s2 = x2[:, :, 0].sum(axis=1) / np.sqrt(timesteps)
    y2 = np.stack([s1, s2, s1 - s2, x1[:, -1, 1] * x2[:, -1, 1]], axis=1).reshape(-1, 2, 2)
    return {"x1": data["x1"], "x2": data["x2"], "y1": data["y1"],
            "y2": y2.astype(data["x1"].dtype)}


def build_example3_model(timesteps: int = 10, features: tuple[int, int] = (8, 8), units: int = 16,
                         seed: int = 0) -> Model:
    """Example 3's graph: the seed model with ``out2 = Reshape((2, 2))(Dense(4)(merged))``."""
    x1 = Input(shape=(timesteps, features[0]), name="x1")
    x2 = Input(shape=(timesteps, features[1]), name="x2")
    merged = concatenate([LSTM(units, name="lstm_a", seed=seed)(x1),
                          LSTM(units, name="lstm_b", seed=seed + 1)(x2)], name="merged")
    out1 = Dense(1, name="out1", seed=seed + 2)(merged)
    out2 = Reshape((2, 2), name="out2")(Dense(4, name="dense2", seed=seed + 3)(merged))
    return Model(inputs=[x1, x2], outputs=[out1, out2], name="example3")


#: Per-feature scales and offsets of the second input "in raw units" (first to last feature).
RAW_SCALE = (0.05, 20.0)
RAW_OFFSET = (0.0, 10.0)


def standardize(train: Array, *others: Array) -> list[Array]:
    """Per-feature ``(x - mean) / std`` with the mean and std of ``train`` (over N and T)."""
    mean = train.mean(axis=(0, 1), keepdims=True)
    std = train.std(axis=(0, 1), keepdims=True)
    std = np.where(std > 0, std, 1)
    return [((a - mean) / std).astype(a.dtype) for a in (train,) + others]


class Scenario(TypedDict):
    """The seed scenario's sizes."""

    samples: int
    val_samples: int
    timesteps: int
    features: tuple[int, int]
    units: int
    batch_size: int
    epochs: int
    learning_rate: float


#: The scenario's sizes (those of the Keras measurement in the design notes).
SCENARIO: Scenario = {"samples": 512, "val_samples": 256, "timesteps": 10, "features": (8, 8),
            "units": 16, "batch_size": 32, "epochs": 15, "learning_rate": 1e-3}

#: name -> (column label, title, compile keyword arguments, standardize the inputs?)
SETUPS: dict[str, tuple[str, str, dict[str, Any], bool]] = {
    "example1": ("Example 1", "Example 1: loss='mse' on both heads", dict(loss="mse"), False),
    "example2": ("Example 2", "Example 2: the seed's custom loss",
                 dict(loss=seed_custom_loss), False),
    "sound": ("Sound", "Sound: MSE + BCE, loss_weights [0.7, 0.3], standardized inputs",
              dict(loss=["mse", "binary_crossentropy"], loss_weights=[0.7, 0.3]), True),
}


def run_seed_scenario(epochs: int = SCENARIO["epochs"], samples: int = SCENARIO["samples"],
                      batch_size: int = SCENARIO["batch_size"], seed: int = 0,
                      raw_inputs: bool = False, setups: Iterable[str] = tuple(SETUPS),
                      verify: bool = False) -> dict[str, dict[str, Any]]:
    """Train and diagnose each setup; the same data and initial weights for all.

    Parameters
    ----------
    epochs, samples, batch_size, seed : int
    raw_inputs : bool
        Record the second input in raw units (:func:`make_seed_data`); the sound setup
        standardizes its inputs either way.
    setups : names from :data:`SETUPS`
    verify : bool
        Try each finding's fix by retraining (``diagnose(..., verify=True)``).

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
    results: dict[str, dict[str, Any]] = {}
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
                          batch_size=batch_size, seed=seed, verify=verify,
                          validation_data=(x_val, [val["y1"], val["y2"]]))
        seconds = time.perf_counter() - t0
        trained = report.trained_model
        assert trained is not None              # steps > 0: the copy was trained
        p1, p2 = trained.predict(x_val, batch_size=256)
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


#: Example 3 and its sound version: name -> (title, compile keyword arguments).
EXAMPLE3_SETUPS: dict[str, tuple[str, dict[str, Any]]] = {
    "example3": ("Example 3: Reshape head, the seed's custom loss",
                 dict(loss=example3_custom_loss)),
    "example3_sound": ("Example 3, sound: one MSE per output, loss_weights [0.6, 0.4]",
                       dict(loss=["mse", "mse"], loss_weights=[0.6, 0.4])),
}


def run_example3(epochs: int = SCENARIO["epochs"], samples: int = SCENARIO["samples"],
                 batch_size: int = SCENARIO["batch_size"], seed: int = 0, verify: bool = False
                 ) -> dict[str, dict[str, Any]]:
    """Example 3 (Reshape head, custom loss indexing ``y_true[0]``) and its sound version,
    from the same weights and data; ``{name: {"title", "report", "metrics", "seconds"}}``
    with ``metrics`` the validation MSE per output."""
    from ..optimizers import Adam

    T, D, H = SCENARIO["timesteps"], SCENARIO["features"], SCENARIO["units"]
    train = make_example3_data(samples, T, D, seed=seed)
    val = make_example3_data(SCENARIO["val_samples"], T, D, seed=seed + 1)
    steps = epochs * -(-samples // batch_size)
    results: dict[str, dict[str, Any]] = {}
    for name, (title, compile_kw) in EXAMPLE3_SETUPS.items():
        model = build_example3_model(T, D, H, seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            model.compile(optimizer=Adam(SCENARIO["learning_rate"]), **compile_kw)
        t0 = time.perf_counter()
        report = diagnose(model, [train["x1"], train["x2"]], [train["y1"], train["y2"]],
                          steps=steps, batch_size=batch_size, seed=seed, verify=verify,
                          validation_data=([val["x1"], val["x2"]], [val["y1"], val["y2"]]))
        seconds = time.perf_counter() - t0
        trained = report.trained_model
        assert trained is not None              # steps > 0: the copy was trained
        p1, p2 = trained.predict([val["x1"], val["x2"]], batch_size=256)
        results[name] = {"title": title, "report": report, "seconds": seconds,
                         "metrics": {"out1_mse": float(np.mean(np.square(p1 - val["y1"]))),
                                     "out2_mse": float(np.mean(np.square(p2 - val["y2"]))),
                                     "out2_target_variance": float(np.var(val["y2"]))}}
    return results
