"""The benchmark's Bidirectional model: Bidirectional(LSTM) + softmax head + categorical
cross-entropy, in mlstm, Keras 3 and PyTorch (issue 13).

Float inputs (N, T, D) go through ``Bidirectional(LSTM(H))`` (the two directions' last
outputs concatenated, 2H), then a Dense softmax over C classes, trained with categorical
cross-entropy and Adam (the demo's learning rate). Its size ``BiLSTM-M`` takes the demo's M
for N, T, D and H, and 10 classes. :mod:`bench` runs it like a size of the demo model: the
same workers, rounds, tables and JSON.

- mlstm: ``train_on_batch`` / ``predict_on_batch`` on the model below (the two directions
  run at the same time, one thread each, :mod:`mlstm.parallel`);
- Keras: the same model through ``to_keras`` (same weights, loss and Adam);
- PyTorch: ``nn.LSTM(bidirectional=True)`` + ``nn.Linear`` on the two final hidden states,
  ``CrossEntropyLoss`` on the logits with class indices, ``torch.optim.Adam`` (eps 1e-7 as
  Keras); forward under ``inference_mode`` with the softmax applied.

The input is a model input in all three: none of them computes dL/dx.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["SIZES", "REPS", "CASES", "LEARNING_RATE", "gemm_flops", "backward_must_keep_bytes",
           "make_data", "bidirectional_model"]

#: N batch, T time, D features, H units per direction, C classes.
SIZES = {"BiLSTM-M": dict(N=64, T=50, D=32, H=128, C=10)}
#: Timed repetitions per round (as the demo's M).
REPS = {"BiLSTM-M": 6}
#: Adam's learning rate, the demo's (bench.LEARNING_RATE; tests/test_bench.py checks).
LEARNING_RATE = 1e-3


def gemm_flops(size: str | dict) -> dict[str, int]:
    """GEMM FLOPs of one forward pass and one training step (multiply + add = 2).

    Per direction (two LSTMs): the input projection ``2 N T D 4H`` and the recurrence
    ``2 N T H 4H``; backward, ``dW`` (``2 N T D 4H``), ``dU`` and ``dh_{t-1}`` (``2 N T H 4H``
    each); dL/dx is not needed (a model input). Head on the concatenated 2H: ``2 N 2H C``
    forward, twice that backward.
    """
    s = SIZES[size] if isinstance(size, str) else size
    N, T, D, H, C = s["N"], s["T"], s["D"], s["H"], s["C"]
    projection, recurrence, head = 2 * N * T * D * 4 * H, 2 * N * T * H * 4 * H, 2 * N * 2 * H * C
    forward = 2 * (projection + recurrence) + head
    backward = 2 * (projection + 2 * recurrence) + 2 * head
    return {"forward": forward, "train": forward + backward}


def backward_must_keep_bytes(size: str | dict, itemsize: int = 4) -> int:
    """Both directions' gates and entering states of every step: ``2 T N 6H x itemsize``."""
    s = SIZES[size] if isinstance(size, str) else size
    return 2 * s["T"] * s["N"] * 6 * s["H"] * itemsize


def make_data(size: str, seed: int = 0) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """The same batch for every framework: x (N, T, D) float32 and one-hot (N, C) float32."""
    s = SIZES[size]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((s["N"], s["T"], s["D"])).astype(np.float32)
    labels = rng.integers(0, s["C"], size=s["N"])
    return x, np.eye(s["C"], dtype=np.float32)[labels]


def bidirectional_model(size: str) -> Any:
    """The mlstm model at ``size``, compiled (CCE, Adam)."""
    import mlstm

    s = SIZES[size]
    mlstm.set_random_seed(0)
    x = mlstm.Input((s["T"], s["D"]), name="x", dtype="float32")
    state = mlstm.Bidirectional(mlstm.LSTM(s["H"], name="lstm"), name="bidirectional")(x)
    probabilities = mlstm.Dense(s["C"], activation="softmax", name="label")(state)
    model = mlstm.Model(x, probabilities, name="bidirectional_classifier")
    model.compile(optimizer=mlstm.optimizers.Adam(LEARNING_RATE),
                  loss="categorical_crossentropy")
    return model


class MlstmCase:
    name = "mlstm"

    def __init__(self, size: str, threads: int) -> None:
        self.x, self.one_hot = make_data(size)
        self.model = bidirectional_model(size)

    def steps(self) -> dict:
        return {"train": lambda: self.model.train_on_batch(self.x, self.one_hot),
                "forward": lambda: self.model.predict_on_batch(self.x)}


class KerasCase:
    """``train_on_batch``, and the faster of ``predict_on_batch`` and a ``tf.function`` call."""

    name = "keras"

    def __init__(self, size: str, threads: int) -> None:
        import tensorflow as tf

        from mlstm.interop.keras import to_keras

        self.x, self.one_hot = make_data(size)
        self.model = to_keras(bidirectional_model(size))
        self.tensor = tf.constant(self.x)
        self.call = tf.function(lambda x: self.model(x, training=False))
        self.jit_compile = bool(getattr(self.model, "jit_compile", False))

    def steps(self) -> dict:
        return {"train": lambda: self.model.train_on_batch(self.x, self.one_hot),
                "forward": lambda: self.model.predict_on_batch(self.x),
                "forward_compiled_call": lambda: self.call(self.tensor).numpy()}


class TorchCase:
    name = "torch"

    def __init__(self, size: str, threads: int) -> None:
        import torch
        from torch import nn

        s = SIZES[size]
        torch.manual_seed(0)
        x, one_hot = make_data(size)
        self.x = torch.from_numpy(x)
        self.labels = torch.from_numpy(one_hot.argmax(axis=1))

        class BidirectionalClassifier(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.lstm = nn.LSTM(s["D"], s["H"], batch_first=True, bidirectional=True)
                self.label = nn.Linear(2 * s["H"], s["C"])

            def forward(self, x):
                _, (h, _) = self.lstm(x)            # h: (2, N, H), forward then backward
                return self.label(torch.cat([h[0], h[1]], dim=1))   # logits

        self.torch = torch
        self.model = BidirectionalClassifier()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LEARNING_RATE, eps=1e-7)
        self.loss = nn.CrossEntropyLoss()

    def steps(self) -> dict:
        torch, model = self.torch, self.model

        def train():
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss(model(self.x), self.labels)
            loss.backward()
            self.optimizer.step()
            return float(loss.detach())

        def forward():
            with torch.inference_mode():
                return torch.softmax(model(self.x), dim=-1).numpy()

        return {"train": train, "forward": forward}


CASES = {"mlstm": MlstmCase, "keras": KerasCase, "torch": TorchCase}
