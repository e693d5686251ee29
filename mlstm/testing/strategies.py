"""Hypothesis strategies: one LSTM layer's config, a whole multi-input / multi-output graph's
config (plain dicts; the format is in :mod:`mlstm.testing`'s docstring)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from hypothesis import strategies as st

from ..ops.activations import ACTIVATIONS

__all__ = ["HEAD_LOSSES", "lstm_configs", "model_configs"]

#: Head losses a model config may use, and the head activations each one accepts.
HEAD_LOSSES = {
    "mse": ("linear", "sigmoid", "tanh", "relu"),
    "bce": ("sigmoid",),
    "bce_from_logits": ("linear",),
    "bce_probabilities": ("sigmoid",),
}

_ACTIVATION_NAMES = tuple(ACTIVATIONS)  # linear, sigmoid, tanh, relu


def _activations(default: str) -> st.SearchStrategy[str]:
    # Mostly the Keras default, but every activation is reachable (and shrinks to the default).
    return st.one_of(st.just(default), st.sampled_from(_ACTIVATION_NAMES))


def _may(flag: object, draw: st.DrawFn) -> bool:
    """A three-way switch: False never, "always" always, anything else drawn."""
    if flag is False or flag is None:
        return False
    if flag == "always":
        return True
    return draw(st.booleans())


@st.composite
def _lstm_options(draw: st.DrawFn, max_units: int,
                  force: dict[str, Any] | None) -> dict[str, Any]:
    options = {
        "units": draw(st.integers(1, max_units)),
        "activation": draw(_activations("tanh")),
        "recurrent_activation": draw(_activations("sigmoid")),
        "use_bias": draw(st.booleans().map(lambda b: not b)),   # shrinks to True
        "return_sequences": draw(st.booleans()),
        "return_state": draw(st.booleans()),
        "go_backwards": draw(st.booleans()),
    }
    unknown = sorted(set(force or {}) - set(options))
    if unknown:
        raise ValueError(f"cannot force LSTM options {unknown}; forceable: {sorted(options)}")
    options.update(force or {})
    return options


@st.composite
def lstm_configs(draw: st.DrawFn, max_units: int = 3, max_features: int = 3,
                 max_timesteps: int = 4, masking: bool | Literal["always"] = True,
                 initial_state: bool | Literal["always"] = True,
                 force: dict[str, Any] | None = None, dtype: str = "float64") -> dict[str, Any]:
    """Strategy: one LSTM layer's shapes and options, as a dict.

    Keys: ``units`` (H), ``features`` (D), ``timesteps`` (T), ``activation``,
    ``recurrent_activation``, ``use_bias``, ``return_sequences``, ``return_state``,
    ``go_backwards``, ``masking`` (a ``Masking(0.0)`` in front), ``initial_state``
    (``"input"`` or None) and ``dtype``. Every size starts at 1. Turn it into a model with
    :func:`lstm_model`.

    Parameters
    ----------
    max_units, max_features, max_timesteps : int
        Upper bounds of H, D and T.
    masking, initial_state : bool or "always"
        Drawn (True), never (False) or always.
    force : dict, optional
        LSTM options to fix instead of drawing, e.g. ``{"go_backwards": True}``.
    dtype : str

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> @settings(max_examples=20, deadline=None)
    ... @given(lstm_configs(force={"units": 1}))
    ... def test_h_is_one(config):
    ...     assert config["units"] == 1
    >>> test_h_is_one()
    """
    config = draw(_lstm_options(max_units, force))
    config.update(
        features=draw(st.integers(1, max_features)),
        timesteps=draw(st.integers(1, max_timesteps)),
        masking=_may(masking, draw),
        initial_state="input" if _may(initial_state, draw) else None,
        dtype=dtype)
    return config


def _sources(config: dict[str, Any]) -> list[tuple[str, list[tuple[int, int]]]]:
    """What heads can read: ``[(kind, [(input index, output index), ...]), ...]``.

    kind is ``"vec"`` (N, H) or ``"seq"`` (N, T, H); output index 0 is an input's last LSTM
    output, 1 and 2 its h and c states (with ``return_state``). With ``merge``, all vector
    members form one source and all sequence members another (when there are two or more).
    """
    members: dict[str, list[tuple[int, int]]] = {"vec": [], "seq": []}
    for b, branch in enumerate(config["inputs"]):
        last = branch["lstms"][-1]
        members["seq" if last["return_sequences"] else "vec"].append((b, 0))
        if last["return_state"]:
            members["vec"] += [(b, 1), (b, 2)]
    sources: list[tuple[str, list[tuple[int, int]]]] = []
    for kind in ("vec", "seq"):
        if config.get("merge") and len(members[kind]) >= 2:
            sources.append((kind, members[kind]))
        else:
            sources += [(kind, [m]) for m in members[kind]]
    return sources


@st.composite
def _lstm_stack(draw: st.DrawFn, depth: int, max_units: int, initial_state: object,
                force: dict[str, Any] | None) -> list[dict[str, Any]]:
    stack: list[dict[str, Any]] = []
    for k in range(depth):
        layer = draw(_lstm_options(max_units, force))
        layer["initial_state"] = None
        if k < depth - 1:
            layer["return_sequences"] = True      # feeds the next LSTM
            if initial_state == "previous" and k == 0:
                layer["return_state"] = True
        if k == 0:
            if initial_state in ("input", "always") or (
                    initial_state is True and draw(st.booleans())):
                layer["initial_state"] = "input"
        elif stack[-1]["return_state"]:
            # The states of the layer below seed this one (encoder -> decoder).
            layer["initial_state"] = "previous"
            layer["units"] = stack[-1]["units"]
        stack.append(layer)
    return stack


@st.composite
def model_configs(draw: st.DrawFn, max_inputs: int = 2, max_depth: int = 2, max_units: int = 3,
                  max_features: int = 3, max_timesteps: int = 4, max_output_units: int = 2,
                  max_extra_heads: int = 1, min_inputs: int = 1, min_depth: int = 1,
                  masking: bool | Literal["always"] = True,
                  initial_state: bool | Literal["input", "previous"] = True,
                  merge: bool | None = None, force: dict[str, Any] | None = None,
                  losses: Sequence[str] = tuple(HEAD_LOSSES),
                  head_activations: Sequence[str] = _ACTIVATION_NAMES,
                  dtype: str = "float64") -> dict[str, Any]:
    """Strategy: a multi-input / multi-output LSTM graph within size bounds, as a dict.

    Draws ``min_inputs``..``max_inputs`` inputs (shared T, own D), each with an optional
    Masking and a stack of ``min_depth``..``max_depth`` LSTMs with drawn options; whether to
    concatenate; one head per source plus up to ``max_extra_heads`` more; each head's units,
    activation, loss and loss weight. The format is described in the module docstring; build
    the model with :func:`build_model`. Every size starts at 1.

    Parameters
    ----------
    max_inputs, max_depth, max_units, max_features, max_timesteps, max_output_units : int
        Size bounds.
    max_extra_heads, min_inputs, min_depth : int
    masking : bool or "always"
        Drawn per input (True), never, or on every input.
    initial_state : bool, "input" or "previous"
        Drawn (True), never, the first LSTM of every input starts from model inputs
        h0/c0 (``"input"``), or the second LSTM of every stack starts from the first's
        final states (``"previous"``, implies stacks of at least 2).
    merge : bool, optional
        Concatenate the sources (drawn when None).
    force : dict, optional
        LSTM options fixed on every LSTM, e.g. ``{"go_backwards": True}``.
    losses : sequence of str
        Head losses to draw from (:data:`HEAD_LOSSES`).
    head_activations : sequence of str
        Head activations to draw from (a loss is only drawn with an activation it accepts).
    dtype : str
    """
    losses = tuple(losses)
    unknown = sorted(set(losses) - set(HEAD_LOSSES))
    if not losses or unknown:
        raise ValueError(f"losses must be a non-empty subset of {sorted(HEAD_LOSSES)}, "
                         f"got {list(losses)}")
    pairs = [(loss, act) for loss in losses for act in HEAD_LOSSES[loss]
             if act in head_activations]
    if not pairs:
        raise ValueError(f"no head loss in {list(losses)} accepts an activation in "
                         f"{list(head_activations)}")
    if initial_state == "previous":
        min_depth = max(min_depth, 2)
        max_depth = max(max_depth, min_depth)
    timesteps = draw(st.integers(1, max_timesteps))
    n_inputs = draw(st.integers(min_inputs, max(min_inputs, max_inputs)))
    branches: list[dict[str, Any]] = []
    for b in range(n_inputs):
        depth = draw(st.integers(min_depth, max(min_depth, max_depth)))
        branches.append({
            "name": f"x{b}",
            "features": draw(st.integers(1, max_features)),
            "masking": _may(masking, draw),
            "lstms": draw(_lstm_stack(depth, max_units, initial_state, force)),
        })
    config = {"dtype": dtype, "timesteps": timesteps, "inputs": branches,
              "merge": draw(st.booleans()) if merge is None else bool(merge)}
    sources = _sources(config)
    picks = list(range(len(sources)))
    picks += draw(st.lists(st.integers(0, len(sources) - 1), max_size=max_extra_heads))
    heads: list[dict[str, Any]] = []
    for k, source in enumerate(picks):
        loss, activation = draw(st.sampled_from(pairs))
        heads.append({
            "name": f"out{k}",
            "source": source,
            "units": draw(st.integers(1, max_output_units)),
            "activation": activation,
            "loss": loss,
            "loss_weight": draw(st.sampled_from([1.0, 0.7, 0.3, 2.5])),
        })
    config["heads"] = heads
    return config


