"""The demo: the seed article's two-input, two-output model on built-in synthetic data.

``python -m mlstm demo`` runs :func:`run_demo`. The benchmark, the Keras cross-check and
the diagnosis' seed scenario build the same model through :func:`build_demo_model` and
:func:`compile_demo_model`, so there is one definition of it.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from .data import make_demo_data
from .initializers import set_random_seed
from .layers import LSTM, Dense, Input, concatenate
from .model import Model
from .optimizers import Adam
from .training import History

__all__ = ["build_demo_model", "compile_demo_model", "run_demo", "DEMO_LOSSES",
           "DEMO_LOSS_WEIGHTS"]

#: The demo's losses: MSE on the linear head, binary cross-entropy on the sigmoid head.
DEMO_LOSSES = ("mse", "binary_crossentropy")
#: Their weights in the total loss.
DEMO_LOSS_WEIGHTS = (0.7, 0.3)



def build_demo_model(timesteps: int = 20, features: Sequence[int] = (8, 8), units: int = 16,
                     outputs: Sequence[int] = (1, 1), dtype: str = "float32",
                     seed: int = 0) -> Model:
    """The seed article's model: an LSTM per input, concatenate, linear + sigmoid heads.

    Returns an uncompiled :class:`mlstm.Model` with inputs ``x1``, ``x2`` and outputs
    ``out1`` (linear) and ``out2`` (sigmoid).
    """
    set_random_seed(seed)
    x1 = Input(shape=(timesteps, features[0]), name="x1", dtype=dtype)
    x2 = Input(shape=(timesteps, features[1]), name="x2", dtype=dtype)
    merged = concatenate([LSTM(units, name="lstm_a")(x1),
                          LSTM(units, name="lstm_b")(x2)], name="merged")
    out1 = Dense(outputs[0], name="out1")(merged)
    out2 = Dense(outputs[1], activation="sigmoid", name="out2")(merged)
    return Model(inputs=[x1, x2], outputs=[out1, out2], name="demo")


def compile_demo_model(model: Model, learning_rate: float = 1e-3,
                       metrics: Sequence[Any] | None = None) -> Model:
    """Compile ``model`` as the demo is trained: Adam, MSE + BCE weighted 0.7 / 0.3."""
    model.compile(optimizer=Adam(learning_rate), loss=list(DEMO_LOSSES),
                  loss_weights=list(DEMO_LOSS_WEIGHTS), metrics=metrics)
    return model


def run_demo(epochs: int = 15, samples: int = 1024, batch_size: int = 32,
             learning_rate: float = 3e-3, seed: int = 0,
             verbose: int = 1) -> tuple[Model, History, dict[str, float]]:
    """Train the demo model; returns ``(model, history, summary dict)``."""
    data = make_demo_data(n_samples=samples, timesteps=20, features=(8, 8), seed=seed)
    val = make_demo_data(n_samples=256, timesteps=20, features=(8, 8), seed=seed + 1)
    model = compile_demo_model(build_demo_model(seed=seed), learning_rate,
                               metrics=[["mae"], ["binary_accuracy"]])
    if verbose:
        model.summary()
        print(f"\nTraining on {samples} synthetic samples (T=20, D1=D2=8); targets depend on "
              "both inputs.\nloss = 0.7 * mse(out1) + 0.3 * binary_crossentropy(out2), "
              f"Adam(lr={learning_rate}), batch {batch_size}, seed {seed}\n")
    t0 = time.perf_counter()
    history = model.fit([data["x1"], data["x2"]], [data["y1"], data["y2"]], epochs=epochs,
                        batch_size=batch_size, seed=seed, verbose=2 if verbose else 0,
                        validation_data=([val["x1"], val["x2"]], [val["y1"], val["y2"]]))
    seconds = time.perf_counter() - t0
    h = history.history
    summary = {
        "out1_loss_first": h["out1_loss"][0], "out1_loss_last": h["out1_loss"][-1],
        "out2_loss_first": h["out2_loss"][0], "out2_loss_last": h["out2_loss"][-1],
        "out2_binary_accuracy": h["out2_binary_accuracy"][-1],
        "val_out2_binary_accuracy": h["val_out2_binary_accuracy"][-1],
        "seconds": seconds,
    }
    if verbose:
        ratio = summary["out1_loss_last"] / summary["out1_loss_first"]
        print(f"\nout1 (linear, MSE):   loss {summary['out1_loss_first']:.4f} -> "
              f"{summary['out1_loss_last']:.4f}  ({ratio:.2f} of its first value: "
              f"{'below' if ratio < 0.5 else 'NOT below'} half)")
        print(f"out2 (sigmoid, BCE):  loss {summary['out2_loss_first']:.4f} -> "
              f"{summary['out2_loss_last']:.4f}; binary accuracy "
              f"{summary['out2_binary_accuracy']:.3f} (validation "
              f"{summary['val_out2_binary_accuracy']:.3f})")
        print(f"trained {epochs} epochs in {seconds:.1f} s")
    return model, history, summary
