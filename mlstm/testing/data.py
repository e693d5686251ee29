"""Strategies for data: input sequences with padding masks, targets, whole drawn cases."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from hypothesis import strategies as st

from .. import losses as losses_module
from .. import validation
from .builders import _as_model, build_model
from .strategies import _may, model_configs

if TYPE_CHECKING:
    from .._typing import Array, DTypeLike
    from ..model import Model

#: Padding modes of :func:`sequences`.
Padding = Literal["none", "right", "left", "scattered"]

__all__ = ["sequences", "targets", "cases", "Case"]


def _input_specs(model: Model,
                 ) -> list[tuple[str, tuple[int | None, ...], float | None, DTypeLike]]:
    """Per model input: ``(name, shape without N, mask_value or None, dtype)``."""
    mask_values: dict[int, float] = {}
    for node in model.nodes:
        if node.layer.mask_value is not None:          # a masking layer
            mask_values[id(node.inputs[0])] = node.layer.mask_value
    return [(name, t.shape, mask_values.get(id(t)), t.dtype)
            for name, t in zip(model.input_names, model.inputs)]


@st.composite
def _inputs_and_description(draw: st.DrawFn, model: Model | dict[str, Any], max_batch: int = 3,
                            max_timesteps: int = 4, padding: Sequence[Padding] | None = None,
                            fully_masked_row: bool | Literal["always"] = True,
                            ) -> tuple[list[Array], str]:
    model = _as_model(model)
    specs = _input_specs(model)
    N = draw(st.integers(1, max_batch))
    free_T = draw(st.integers(1, max_timesteps))     # for inputs declared with T = None
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    xs: list[Array] = []
    notes = [f"N={N}"]
    ids = validation.token_id_inputs(model)
    for (name, declared, mask_value, dtype), tensor, is_ids in zip(specs, model.inputs, ids):
        shape = tuple(free_T if d is None else d for d in declared)
        if is_ids:
            # token ids (an integer input, or a float one only an Embedding reads): whole
            # numbers in [0, V) of the smallest vocabulary reading them
            vocabulary = validation.id_vocabulary(model, tensor) or 2
            xs.append(rng.integers(0, vocabulary, size=(N,) + shape).astype(dtype))
            notes.append(f"{name}: token ids in [0, {vocabulary})")
            continue
        x = rng.standard_normal((N,) + shape)
        if mask_value is not None and len(shape) == 2:
            T = shape[0]
            mode = draw(st.sampled_from(padding or ("none", "right", "left", "scattered")))
            if mode == "scattered":
                valid = rng.random((N, T)) < 0.6
            else:
                lengths = np.array(draw(st.lists(st.integers(1, T), min_size=N, max_size=N)))
                steps = np.arange(T)
                if mode == "right":      # valid steps first, padding at the end
                    valid = steps[None, :] < lengths[:, None]
                elif mode == "left":     # padding first, valid steps at the end
                    valid = steps[None, :] >= T - lengths[:, None]
                else:
                    valid = np.ones((N, T), dtype=bool)
            note = f"{name}: T={T}, {mode} padding"
            if _may(fully_masked_row, draw):
                row = draw(st.integers(0, N - 1))
                valid[row] = False
                note += f", row {row} fully masked"
            x[~valid] = mask_value
            note += f", valid steps per row {valid.sum(axis=1).tolist()}"
            notes.append(note)
        elif len(shape) == 2:
            notes.append(f"{name}: T={shape[0]}")
        xs.append(x.astype(dtype))
    return xs, "; ".join(notes)


def sequences(model: Model | dict[str, Any], max_batch: int = 3, max_timesteps: int = 4,
              padding: Sequence[Padding] | None = None,
              fully_masked_row: bool | Literal["always"] = True,
              ) -> st.SearchStrategy[list[Array]]:
    """Strategy: a list of input arrays for ``model``, in model input order.

    Values are standard normal (from a drawn seed, so no accidental zeros). An input that
    feeds a ``Masking`` layer gets padded steps set to its ``mask_value``: drawn per input
    from ``padding`` (default all of ``"none"``, ``"right"`` (valid steps first),
    ``"left"`` (valid steps last), ``"scattered"``), with drawn lengths, and possibly one
    fully masked row.

    Parameters
    ----------
    model : Model, or a :func:`model_configs` / :func:`lstm_configs` dict
    max_batch : int
        N is drawn in [1, max_batch].
    max_timesteps : int
        T for inputs declared with ``timesteps=None``.
    padding : sequence of str, optional
    fully_masked_row : bool or "always"
        Whether one row of each masked input may be (always be) fully masked.
    """
    return _inputs_and_description(model, max_batch, max_timesteps, padding,
                                   fully_masked_row).map(lambda pair: pair[0])


def _loss_kind(model: Model, k: int) -> str:
    loss = model._losses[k] if getattr(model, "compiled", False) else None
    return "bce" if isinstance(loss, losses_module.BinaryCrossentropy) else "mse"


@st.composite
def targets(draw: st.DrawFn, model: Model, x: Any) -> list[Array]:
    """Strategy: a list of target arrays for ``model``'s outputs on inputs ``x``.

    Shapes come from a forward pass on ``x``. Outputs with binary cross-entropy get labels
    in [0, 1] (hard 0/1 or soft, drawn); others standard normal.
    """
    outputs = model.forward(model._inputs(x)).outputs
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    ys: list[Array] = []
    for k, out in enumerate(outputs):
        if _loss_kind(model, k) == "bce":
            y = (rng.random(out.shape) if draw(st.booleans())
                 else (rng.random(out.shape) < 0.5).astype(float))
        else:
            y = rng.standard_normal(out.shape)
        ys.append(y.astype(out.dtype))
    return ys


class Case:
    """One drawn test case: ``config``, compiled ``model``, inputs ``x``, targets ``y``.

    ``description`` says N, T and how each masked input is padded. The repr shows the config
    and the description (the model and arrays are rebuilt from them).
    """

    def __init__(self, config: dict[str, Any], model: Model, x: list[Array], y: list[Array],
                 description: str, seed: int, weights: str) -> None:
        self.config, self.model, self.x, self.y = config, model, x, y
        self.description, self.seed, self.weights = description, seed, weights

    def __repr__(self) -> str:
        return (f"Case(config={self.config!r}, seed={self.seed}, weights={self.weights!r}, "
                f"data: {self.description})")


@st.composite
def cases(draw: st.DrawFn, configs: st.SearchStrategy[dict[str, Any]] | None = None,
          max_batch: int = 3, weights: Sequence[Literal["keras", "random"]] = ("keras", "random"),
          padding: Sequence[Padding] | None = None,
          fully_masked_row: bool | Literal["always"] = True) -> Case:
    """Strategy: a :class:`Case` — config, compiled float64 model, inputs and targets.

    Parameters
    ----------
    configs : strategy, optional
        Of model configs; :func:`model_configs` by default.
    max_batch : int
    weights : sequence of {"keras", "random"}
        How the weights are set (see :func:`build_model`).
    padding, fully_masked_row
        As for :func:`sequences`.
    """
    config = draw(configs if configs is not None else model_configs())
    seed = draw(st.integers(0, 2 ** 16))
    weight_mode = draw(st.sampled_from(tuple(weights)))
    model = build_model(config, seed=seed, weights=weight_mode)
    x, description = draw(_inputs_and_description(model, max_batch=max_batch, padding=padding,
                                                  fully_masked_row=fully_masked_row))
    y = draw(targets(model, x))
    return Case(config, model, x, y, description, seed, weight_mode)


