"""The benchmark's classification model: Embedding + LSTM + softmax head + categorical
cross-entropy, in mlstm, Keras 3 and PyTorch (issue 12).

Token ids (N, T) from a vocabulary of V go through an Embedding of D dimensions, an LSTM of
H units and a Dense softmax over C classes, trained with categorical cross-entropy and Adam
(the demo's learning rate). Its size ``CLS-M`` takes the demo's M for N, T, D and H, a
vocabulary of 10,000 (IMDB-like) and 10 classes. :mod:`bench` runs it like a size of the
demo model: the same workers, rounds, tables and JSON.

- mlstm: ``train_on_batch`` / ``predict_on_batch`` on the model below;
- Keras: the same model through ``to_keras`` (same weights, loss and Adam); Keras hands
  Adam the Embedding's gradient as sparse slices (docs/real_models.md, finding 1), mlstm and
  PyTorch a dense (V, D) gradient: each framework is timed doing what it does;
- PyTorch: ``nn.Embedding`` + ``nn.LSTM`` + ``nn.Linear``, ``CrossEntropyLoss`` on the logits
  with class indices, ``torch.optim.Adam`` (eps 1e-7 as Keras); forward under
  ``inference_mode`` with the softmax applied.
"""
from __future__ import annotations

import numpy as np

__all__ = ["SIZES", "REPS", "CASES", "LEARNING_RATE", "gemm_flops", "backward_must_keep_bytes",
           "make_data", "classification_model"]

#: N batch, T time, V vocabulary, D embedding dimensions, H units, C classes.
SIZES = {"CLS-M": dict(N=64, T=50, V=10_000, D=32, H=128, C=10)}
#: Timed repetitions per round (as the demo's M).
REPS = {"CLS-M": 6}
#: Adam's learning rate, the demo's (bench.LEARNING_RATE; tests/test_bench.py checks).
LEARNING_RATE = 1e-3


def gemm_flops(size):
    """GEMM FLOPs of one forward pass and one training step (multiply + add = 2).

    The LSTM's input projection ``2 N T D 4H`` and recurrence ``2 N T H 4H``; backward, its
    ``dW`` and the gradient of its input (``2 N T D 4H`` each: the Embedding is trained, so
    the LSTM's input gradient is needed) and ``dU`` and ``dh_{t-1}`` (``2 N T H 4H`` each).
    Head: ``2 N H C`` forward, twice that backward. The lookup and its scatter-add are not
    GEMMs.
    """
    s = SIZES[size] if isinstance(size, str) else size
    N, T, D, H, C = s["N"], s["T"], s["D"], s["H"], s["C"]
    projection, recurrence, head = 2 * N * T * D * 4 * H, 2 * N * T * H * 4 * H, 2 * N * H * C
    forward = projection + recurrence + head
    backward = 2 * projection + 2 * recurrence + 2 * head
    return {"forward": forward, "train": forward + backward}


def backward_must_keep_bytes(size, itemsize=4):
    """The one LSTM's gates and entering states of every step: ``T N 6H x itemsize``."""
    s = SIZES[size] if isinstance(size, str) else size
    return s["T"] * s["N"] * 6 * s["H"] * itemsize


def make_data(size, seed=0):
    """The same batch for every framework: ids (N, T) int32 in [1, V) and one-hot (N, C)."""
    s = SIZES[size]
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, s["V"], size=(s["N"], s["T"])).astype(np.int32)
    labels = rng.integers(0, s["C"], size=s["N"])
    return ids, np.eye(s["C"], dtype=np.float32)[labels]


def classification_model(size):
    """The mlstm model at ``size``, compiled (CCE, Adam)."""
    import mlstm

    s = SIZES[size]
    mlstm.set_random_seed(0)
    ids = mlstm.Input((s["T"],), name="ids", dtype="int32")
    embedded = mlstm.Embedding(s["V"], s["D"], name="embedding", dtype="float32")(ids)
    state = mlstm.LSTM(s["H"], name="lstm")(embedded)
    probabilities = mlstm.Dense(s["C"], activation="softmax", name="label")(state)
    model = mlstm.Model(ids, probabilities, name="classification")
    model.compile(optimizer=mlstm.optimizers.Adam(LEARNING_RATE),
                  loss="categorical_crossentropy")
    return model


class MlstmCase:
    name = "mlstm"

    def __init__(self, size, threads):
        self.ids, self.one_hot = make_data(size)
        self.model = classification_model(size)

    def steps(self):
        return {"train": lambda: self.model.train_on_batch(self.ids, self.one_hot),
                "forward": lambda: self.model.predict_on_batch(self.ids)}


class KerasCase:
    """``train_on_batch``, and the faster of ``predict_on_batch`` and a ``tf.function`` call."""

    name = "keras"

    def __init__(self, size, threads):
        import tensorflow as tf

        from mlstm.interop.keras import to_keras

        self.ids, self.one_hot = make_data(size)
        self.model = to_keras(classification_model(size))
        self.tensor = tf.constant(self.ids)
        self.call = tf.function(lambda ids: self.model(ids, training=False))
        self.jit_compile = bool(getattr(self.model, "jit_compile", False))

    def steps(self):
        return {"train": lambda: self.model.train_on_batch(self.ids, self.one_hot),
                "forward": lambda: self.model.predict_on_batch(self.ids),
                "forward_compiled_call": lambda: self.call(self.tensor).numpy()}


class TorchCase:
    name = "torch"

    def __init__(self, size, threads):
        import torch
        from torch import nn

        s = SIZES[size]
        torch.manual_seed(0)
        ids, one_hot = make_data(size)
        self.ids = torch.from_numpy(ids.astype(np.int64))
        self.labels = torch.from_numpy(one_hot.argmax(axis=1))

        class Classifier(nn.Module):
            def __init__(self):
                super().__init__()
                self.embedding = nn.Embedding(s["V"], s["D"])
                self.lstm = nn.LSTM(s["D"], s["H"], batch_first=True)
                self.label = nn.Linear(s["H"], s["C"])

            def forward(self, ids):
                _, (h, _) = self.lstm(self.embedding(ids))
                return self.label(h[-1])                       # logits

        self.torch = torch
        self.model = Classifier()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LEARNING_RATE, eps=1e-7)
        self.loss = nn.CrossEntropyLoss()

    def steps(self):
        torch, model = self.torch, self.model

        def train():
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss(model(self.ids), self.labels)
            loss.backward()
            self.optimizer.step()
            return float(loss.detach())

        def forward():
            with torch.inference_mode():
                return torch.softmax(model(self.ids), dim=-1).numpy()

        return {"train": train, "forward": forward}


CASES = {"mlstm": MlstmCase, "keras": KerasCase, "torch": TorchCase}
