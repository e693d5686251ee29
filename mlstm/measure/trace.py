"""The update trace: what every training step did to every weight.

``fit(..., trace=True)`` adds a :class:`Trace` callback; after each step it records, for
each trainable parameter p and output k (S steps, O outputs, P parameters)::

    grad_norm[s, k, p]      ||∇p (w_k L_k)||          each output's push on p
    total_grad_norm[s, p]   ||∇p L||                   what the optimizer received
    update_norm[s, p]       ||Δp||                     the step the optimizer took
    weight_norm[s, p]       ||p||  before the step
    update_ratio[s, p]      ||Δp|| / ||p||             (nan where ||p|| = 0)

and per step the losses, the learning rate the step used, the cosine between outputs'
gradients on the shared weights, the fraction of each batch that each output's loss
reaches, and the saturation of LSTM gates and sigmoid heads. The per-output gradients cost
one extra backward pass per output, run in ``on_before_update_step``, while the weights
are still those the step started from.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ..callbacks.base import Callback
from ..validation import all_finite
from . import gradients as G

if TYPE_CHECKING:
    from .._typing import Array, BoolArray
    from ..model_protocol import TrainableModel

__all__ = ["Trace"]

_STEP_FIELDS = ("iteration", "epoch", "batch", "loss", "learning_rate", "output_loss",
                "grad_norm", "total_grad_norm", "update_norm", "weight_norm", "update_ratio",
                "shared_cosine", "coverage", "gate_saturation", "head_saturation", "nonfinite")
_NAME_FIELDS = ("param_names", "output_names", "shared_names", "lstm_names", "head_names")


class Trace(Callback):
    """A ``fit`` callback recording per-step gradient, update and saturation figures.

    Attributes (arrays, S recorded steps)
    -------------------------------------
    iteration, epoch, batch : (S,) int
        Optimizer iteration after the step (1, 2, ...), epoch, batch within the epoch.
    loss : (S,)
        Weighted total loss of the batch (before the step).
    learning_rate : (S,)
        The learning rate the step used (a schedule's value at that step).
    output_loss : (S, O)
        Unweighted loss per output (nan for an output without a loss).
    grad_norm : (S, O, P)
        Norm of output k's contribution to parameter p's gradient.
    total_grad_norm, update_norm, weight_norm, update_ratio : (S, P)
    shared_cosine : (S, O, O)
        Cosine between outputs' gradients over the shared parameters (nan when either is 0).
    coverage : (S, O)
        Fraction of the batch's samples that output k's loss gradient reaches.
    gate_saturation : (S, L, 4)
        Per LSTM and gate (i, f, c, o): fraction of pre-activations beyond ±5.
    head_saturation : (S, K)
        Per sigmoid head: fraction of logits beyond ±5.
    nonfinite : (S,) bool
        NaN or inf in the loss, a gradient or an update.
    param_names, output_names, shared_names, lstm_names, head_names : list of str
        The axes' labels.

    Examples
    --------
    >>> import os, tempfile
    >>> from mlstm.demo import build_demo_model
    >>> from mlstm.data import make_demo_data
    >>> d = make_demo_data(n_samples=64, timesteps=5, features=(3, 2))
    >>> model = build_demo_model(timesteps=5, features=(3, 2), units=4)
    >>> model.compile("adam", loss=["mse", "binary_crossentropy"])
    >>> history = model.fit([d["x1"], d["x2"]], [d["y1"], d["y2"]], epochs=2,
    ...                     batch_size=32, verbose=0, trace=True)
    >>> history.trace.update_ratio.shape          # 2 epochs x 2 batches, 10 parameters
    (4, 10)
    >>> history.trace.grad_norm.shape             # steps, outputs, parameters
    (4, 2, 10)
    >>> path = os.path.join(tempfile.mkdtemp(), "trace.npz")
    >>> history.trace.save(path)
    >>> len(Trace.load(path))
    4
    """

    def __init__(self) -> None:
        super().__init__()
        self._rows: dict[str, list[Any]] = {field: [] for field in _STEP_FIELDS}
        self.param_names: list[str] = []
        self.output_names: list[str] = []
        self.shared_names: list[str] = []
        self.lstm_names: list[str] = []
        self.head_names: list[str] = []
        # (per-output gradients, weight norms) of this step
        self._before_update: tuple[dict[str, dict[str, Array]], Array] | None = None

    # ------------------------------------------------------------------ callback hooks
    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        model = self._model()
        names = dict(param_names=list(model.trainable_params), output_names=model.output_names,
                     shared_names=[n for n in G.shared_parameters(model)
                                   if n in model.trainable_params],
                     lstm_names=[l.name for l in model.layers if l.recurrent])
        if self.param_names and names["param_names"] != self.param_names:
            raise ValueError("Trace: this trace was recorded on a model with parameters "
                             f"{self.param_names}; the new model has {names['param_names']}")
        for key, value in names.items():       # head_names: from the first step's tape
            setattr(self, key, list(value))

    def _model(self) -> TrainableModel:
        if self.model is None:
            raise RuntimeError("Trace records steps made by fit: pass it in fit(callbacks=[...]) "
                               "or use fit(trace=True)")
        return self.model

    def on_before_update_step(self, step: int, info: dict[str, Any]) -> None:
        model = self._model()
        if not self.param_names:            # hooks called by hand: name the axes now
            self.on_train_begin()
        params = model.trainable_params
        self._before_update = (
            G.contributions_from_tape(model, info["tape"], info["result"]),
            np.array([np.linalg.norm(params[p]) for p in self.param_names]))

    def on_after_update_step(self, step: int, info: dict[str, Any]) -> None:
        model = self._model()
        if self._before_update is None:
            raise RuntimeError("Trace records steps made by fit (it needs "
                               "on_before_update_step, called before the optimizer changes "
                               "the weights)")
        tape, result, grads, updates = info["tape"], info["result"], info["grads"], info["updates"]
        P, O = len(self.param_names), len(self.output_names)
        per_output, weight_norm = self._before_update
        self._before_update = None
        grad_norm = np.full((O, P), np.nan)
        for k, name in enumerate(self.output_names):
            if name in per_output:
                grad_norm[k] = [np.linalg.norm(per_output[name][p]) for p in self.param_names]
        update_norm = np.array([np.linalg.norm(updates[p]) for p in self.param_names])
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(weight_norm > 0, update_norm / np.where(weight_norm > 0,
                                                                       weight_norm, 1), np.nan)
        coverage = G.sample_coverage(model, result)
        gates = G.gate_saturation(model, tape)
        heads = G.head_saturation(model, tape)
        if not self.head_names:
            self.head_names = list(heads)
        row = self._rows
        assert model.optimizer is not None      # fit: compiled
        row["iteration"].append(model.optimizer.iterations)
        row["epoch"].append(info.get("epoch", 0))
        row["batch"].append(step)
        row["loss"].append(result.total)
        lr = info.get("learning_rate")
        row["learning_rate"].append(np.nan if lr is None else float(lr))
        row["output_loss"].append([np.nan if v is None else v for v in result.per_output])
        row["grad_norm"].append(grad_norm)
        row["total_grad_norm"].append([np.linalg.norm(grads[p]) for p in self.param_names])
        row["update_norm"].append(update_norm)
        row["weight_norm"].append(weight_norm)
        row["update_ratio"].append(ratio)
        row["shared_cosine"].append(G.shared_cosines(per_output, self.output_names,
                                                     self.shared_names))
        # an output with a loss always seeds a gradient, so its coverage is an array
        row["coverage"].append([float(np.mean(cast("BoolArray", coverage[n])))
                                if n in coverage else np.nan
                                for n in self.output_names])
        row["gate_saturation"].append([[gates[l][g] for g in G.GATES] for l in self.lstm_names])
        row["head_saturation"].append([heads[h] for h in self.head_names])
        row["nonfinite"].append(not (np.isfinite(result.total)
                                     and all(map(all_finite, grads.values()))
                                     and all(map(all_finite, updates.values()))))

    # ------------------------------------------------------------------ arrays
    def __len__(self) -> int:
        return len(self._rows["iteration"])

    def array(self, field: str) -> Array:
        """One recorded field as an array (see the class docstring for shapes)."""
        if field not in self._rows:
            raise KeyError(f"Trace has no field {field!r}; fields are {list(_STEP_FIELDS)}")
        rows = self._rows[field]
        if field in ("iteration", "epoch", "batch"):
            return np.asarray(rows, dtype=np.int64)
        if field == "nonfinite":
            return np.asarray(rows, dtype=bool)
        shapes = {"output_loss": (len(self.output_names),),
                  "grad_norm": (len(self.output_names), len(self.param_names)),
                  "shared_cosine": (len(self.output_names),) * 2,
                  "coverage": (len(self.output_names),),
                  "gate_saturation": (len(self.lstm_names), len(G.GATES)),
                  "head_saturation": (len(self.head_names),)}
        tail = shapes.get(field, (len(self.param_names),)
                          if field not in ("loss", "learning_rate") else ())
        return np.asarray(rows, dtype=np.float64).reshape((len(rows),) + tail)

    def __getattr__(self, name: str) -> Array:
        # Fields read as arrays: trace.update_ratio, trace.grad_norm, ...
        if name in _STEP_FIELDS:
            return self.array(name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def to_arrays(self) -> dict[str, Array]:
        """``{field: ndarray}``, names included as string arrays (what :meth:`save` writes)."""
        out = {field: self.array(field) for field in _STEP_FIELDS}
        for field in _NAME_FIELDS:
            out[field] = np.array(getattr(self, field), dtype=str)
        return out

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write every field to a ``.npz`` file (plain arrays; no pickle)."""
        # ** of str -> array: mypy also matches it against savez's allow_pickle: bool
        np.savez(path, **self.to_arrays())  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Trace:
        """Read a trace written by :meth:`save` (``allow_pickle=False``)."""
        trace = cls()
        with np.load(path, allow_pickle=False) as data:
            for field in _NAME_FIELDS:
                setattr(trace, field, [str(s) for s in data[field]])
            for field in _STEP_FIELDS:
                if field == "learning_rate" and field not in data.files:
                    # written before the learning rate was recorded
                    trace._rows[field] = [np.nan] * len(data["iteration"])
                    continue
                trace._rows[field] = list(data[field])
        return trace

    def __repr__(self) -> str:
        return (f"<Trace {len(self)} steps, {len(self.param_names)} parameters, "
                f"outputs {self.output_names}>")
