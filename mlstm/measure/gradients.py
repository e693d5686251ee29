"""Who pushes which weight: per-output, per-sample and through-time gradients.

Backward is linear in the gradients that seed it, and the total loss is a weighted sum
over outputs, ``L = Σ_k w_k L_k``. One forward pass and one backward pass per output, seeded
with that output's part of the loss gradient only (:meth:`LossResult.for_output`), give

    ∇θ L = Σ_k ∇θ (w_k L_k)                      (the per-output contributions)

exactly, up to rounding. Within an output, the network treats every sample on its own (no
layer mixes samples), so the batch gradient is also a sum over samples,

    ∇θ (w_k L_k) = Σ_n g_{k,n},       g_{k,n} = what flows back from sample n's seed,

and for a layer ``z = a W`` the sample's term is ``g_{k,n}(W) = Σ_s a_{n,s} ⊗ dz_{n,s}``
(s the time steps a shared weight is applied at). Its Frobenius norm is computed for all
samples at once, either from the outer products or from the Gram matrices over s::

    ||Σ_s a_s ⊗ b_s||² = Σ_{s,r} (a_s · a_r)(b_s · b_r)

For a loss that averages over the batch, ``g_{k,n}`` is ``1/N`` of the gradient the
sample would give in a batch of its own. A sample whose seed row is zero receives no
gradient at all: that is how a loss that reads only part of the batch shows itself.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..graph import takes_extras
from ..layers.lstm import GATES

if TYPE_CHECKING:
    from .._typing import Array, BoolArray, Float64Array
    from ..graph import Tape
    from ..layers.base import Layer, SymbolicTensor
    from ..model_protocol import LossSeeds, TrainableModel

#: ``{output index k: (grads of w_k L_k, the layers' extras)}`` from :func:`output_passes`.
Passes = dict[int, tuple[dict[str, "Array"], dict[str, Any]]]

__all__ = ["forward_with_loss", "output_backward", "contributions_from_tape", "output_passes",
           "gradient_contributions", "per_sample_gradient_norms", "per_sample_from_tape",
           "sample_coverage", "gradient_through_time", "through_time_from_tape",
           "time_step_tracks", "time_step_masks", "time_step_reversed", "track_names",
           "shared_parameters", "shared_cosines", "layer_norms", "GATES", "gate_saturation",
           "head_saturation", "SATURATION_THRESHOLD"]

#: |pre-activation| beyond which a sigmoid/tanh counts as saturated (σ'(5) = 0.0066).
SATURATION_THRESHOLD = 5.0


# --------------------------------------------------------------------------- plumbing
def forward_with_loss(model: TrainableModel, x: Any, y: Any) -> tuple[Tape, LossSeeds]:
    """Check and standardize ``x``, ``y``; one forward pass and the loss seeds.

    Returns
    -------
    tape : Tape
    result : LossResult
    """
    model._require_compiled("gradient inspection")
    xs = model._inputs(x)
    ys = model._targets(y, xs[0].shape[0])
    tape = model.forward(xs, training=True)
    return tape, model.loss_and_output_grads(tape, ys)


def _loss_outputs(model: TrainableModel) -> list[int]:
    """Indices of outputs that have a loss."""
    return [k for k, loss in enumerate(model._losses) if loss is not None]


def output_backward(model: TrainableModel, tape: Tape, result: LossSeeds, k: int,
                    extras: dict[str, Any] | None = None) -> dict[str, Array]:
    """The gradient of ``w_k L_k`` alone: one backward pass seeded by output ``k``.

    Returns
    -------
    dict "layer/weight" -> ndarray
    """
    d_outputs, d_logits = result.for_output(k)
    return model.backward(tape, d_outputs, d_logits, extras=extras)


def contributions_from_tape(model: TrainableModel, tape: Tape,
                            result: LossSeeds) -> dict[str, dict[str, Array]]:
    """``{output name: {"layer/weight": ndarray}}`` from a forward pass already made."""
    return {model.output_names[k]: output_backward(model, tape, result, k)
            for k in _loss_outputs(model)}


def output_passes(model: TrainableModel, tape: Tape, result: LossSeeds) -> Passes:
    """One backward pass per output with a loss, keeping the layers' intermediate gradients.

    What :func:`per_sample_from_tape` and :func:`through_time_from_tape` read; compute it
    once and pass it to both (its gradients are :func:`contributions_from_tape`'s).

    Returns
    -------
    dict output index k -> (grads, extras)
        ``grads``: ``{"layer/weight": ndarray}`` of ``w_k L_k``; ``extras``: the
        ``{layer name: {...}}`` that :meth:`Model.backward` filled.
    """
    passes: Passes = {}
    for k in _loss_outputs(model):
        extras: dict[str, Any] = {}
        passes[k] = (output_backward(model, tape, result, k, extras=extras), extras)
    return passes


def gradient_contributions(model: TrainableModel, x: Any, y: Any,
                           per_sample: bool = False) -> dict[str, dict[str, Array]]:
    """Each output's share of the gradient, ``∇θ (loss_weight_k · loss_k)``.

    Parameters
    ----------
    model : Model
        Compiled.
    x, y : arrays, lists or dicts, as for ``fit``
        One batch (N samples).
    per_sample : bool
        Return per-sample gradient norms instead (see :func:`per_sample_gradient_norms`).

    Returns
    -------
    dict output name -> dict "layer/weight" -> ndarray
        Outputs without a loss are left out. Summed over outputs, these equal
        ``model.gradients(x, y)``. With ``per_sample``, each array has shape (N,).
    """
    tape, result = forward_with_loss(model, x, y)
    if per_sample:
        return per_sample_from_tape(model, tape, result)
    return contributions_from_tape(model, tape, result)


# --------------------------------------------------------------------------- per sample
def _single_node_layers(model: TrainableModel) -> dict[str, int]:
    """``{layer name: node position}`` for layers called exactly once in the model."""
    count: dict[str, int] = {}
    position: dict[str, int] = {}
    for pos, node in enumerate(model.nodes):
        count[node.layer.name] = count.get(node.layer.name, 0) + 1
        position[node.layer.name] = pos
    return {name: position[name] for name, c in count.items() if c == 1}


def _seed_row(seeds: Mapping[int, Array], n: int) -> dict[int, Array]:
    """Seeds with every sample's row zeroed except sample ``n``."""
    out: dict[int, Array] = {}
    for k, g in seeds.items():
        only = np.zeros_like(g)
        only[n] = g[n]
        out[k] = only
    return out


def _per_sample_by_loop(model: TrainableModel, tape: Tape, result: LossSeeds, k: int,
                        names: Sequence[str]) -> dict[str, Array]:
    """Per-sample norms for ``names`` by N backward passes, each seeded by one sample.

    Used only for layers without a vectorized rule (``Layer.per_sample_grad_norms`` returns
    None, as for a user's layer) or called at several places in the graph.
    """
    d_outputs, d_logits = result.for_output(k)
    N = tape.outputs[0].shape[0]
    out = {name: np.empty(N, dtype=model.params[name].dtype) for name in names}
    for n in range(N):
        grads = model.backward(tape, _seed_row(d_outputs, n), _seed_row(d_logits, n))
        for name in names:
            out[name][n] = np.linalg.norm(grads[name])
    return out


def per_sample_from_tape(model: TrainableModel, tape: Tape, result: LossSeeds,
                         passes: Passes | None = None) -> dict[str, dict[str, Array]]:
    """``{output: {"layer/weight": (N,) norms}}`` of each sample's gradient term.

    Vectorized for LSTM and Dense layers (one backward pass per output, or none when
    ``passes`` from :func:`output_passes` is given); see the module docstring for the
    definition. Outputs without a loss are left out.
    """
    N = tape.outputs[0].shape[0]
    single = _single_node_layers(model)
    if passes is None:
        passes = output_passes(model, tape, result)
    out: dict[str, dict[str, Array]] = {}
    for k, (_, extras) in passes.items():
        norms: dict[str, Array] = {}
        leftover: list[str] = []
        for layer in model.layers:
            if not layer.params:
                continue
            names = [f"{layer.name}/{p}" for p in layer.param_names if p in layer.params]
            pos = single.get(layer.name)
            # a layer whose backward takes ``extras`` is listed there whenever it ran
            if pos is None or not takes_extras(layer):
                leftover += names
                continue
            got = extras.get(layer.name)
            if got is None:                    # no gradient from this output reaches it
                for name in names:
                    norms[name] = np.zeros(N, dtype=model.params[name].dtype)
                continue
            layer_norms_ = layer.per_sample_grad_norms(tape.caches[pos], got)
            if layer_norms_ is None:
                leftover += names
                continue
            for p, v in layer_norms_.items():
                norms[f"{layer.name}/{p}"] = v
        if leftover:
            norms.update(_per_sample_by_loop(model, tape, result, k, leftover))
        out[model.output_names[k]] = {name: norms[name] for name in model.params}
    return out


def per_sample_gradient_norms(model: TrainableModel, x: Any,
                              y: Any) -> dict[str, dict[str, Array]]:
    """Per-sample gradient norms per output and parameter, ``{output: {param: (N,)}}``.

    ``out[k][p][n] = ||g_{k,n}(p)||``: the norm of sample n's term in output k's
    contribution to parameter p's gradient (the batch gradient is the sum of the terms).
    """
    return gradient_contributions(model, x, y, per_sample=True)


def sample_coverage(model: TrainableModel, result: LossSeeds) -> dict[str, BoolArray | None]:
    """Which samples each output's loss gradient reaches: ``{output: bool (N,)}``.

    A sample is reached when its row of the loss gradient (with respect to the output or
    its logits) has a non-zero entry; the network keeps samples apart, so a sample whose
    row is zero contributes nothing to any weight.
    """
    out: dict[str, BoolArray | None] = {}
    for k in _loss_outputs(model):
        reached: BoolArray | None = None
        for seeds in (result.d_outputs, result.d_logits):
            if k in seeds:
                g = seeds[k]
                row = np.any(g.reshape(g.shape[0], -1) != 0, axis=1)
                reached = row if reached is None else reached | row
        out[model.output_names[k]] = reached
    return out


# --------------------------------------------------------------------------- through time
def time_step_tracks(layer: Layer, extras: Mapping[str, Any]) -> dict[str, Array]:
    """``{track: (T, N, H) dL/dh}`` of a recurrent layer from one backward pass's extras,
    each in its processing order.

    A layer with one direction gives one track named after it; a Bidirectional gives
    ``"<name> forward"`` and ``"<name> backward"`` (``Layer.time_step_grads`` returns them
    per direction). An empty dict when the pass did not reach the layer.
    """
    grads = layer.time_step_grads(extras)
    if grads is None:
        return {}
    if isinstance(grads, dict):
        return {f"{layer.name} {direction}": g for direction, g in grads.items()}
    return {layer.name: grads}


def time_step_masks(layer: Layer, cache: Any) -> dict[str, BoolArray | None]:
    """``{track: (T, N) bool or None}``: the valid steps of each track of
    :func:`time_step_tracks`, in its processing order."""
    masks = layer.step_mask(cache)
    if isinstance(masks, dict):
        return {f"{layer.name} {direction}": m for direction, m in masks.items()}
    return {layer.name: masks}


def time_step_reversed(model: TrainableModel) -> dict[str, bool]:
    """``{track: bool}`` for every track of every recurrent layer of ``model``: True where
    the track's processing order runs from the last time step to the first (the backward
    direction of a Bidirectional, ``Layer.time_step_directions``; a layer with Keras'
    ``go_backwards=True``)."""
    out: dict[str, bool] = {}
    for layer in model.layers:
        if not layer.recurrent:
            continue
        directions = layer.time_step_directions()
        if directions is None:
            out[layer.name] = bool(getattr(layer, "go_backwards", False))
        else:
            out.update({f"{layer.name} {d}": bool(back) for d, back in directions.items()})
    return out


def track_names(layer: Layer) -> list[str]:
    """The track names of a recurrent layer (:func:`time_step_tracks`), without running it."""
    directions = layer.time_step_directions()
    if directions is None:
        return [layer.name]
    return [f"{layer.name} {direction}" for direction in directions]


def through_time_from_tape(model: TrainableModel, tape: Tape, result: LossSeeds,
                           passes: Passes | None = None
                           ) -> dict[str, dict[str, Array | None]]:
    """``{output: {track: (T,) norms}}`` of dL/dh'_t, ``||·||`` over the batch and units.

    A track is a recurrent layer, or one direction of a Bidirectional (``"bi forward"``,
    ``"bi backward"``: :func:`time_step_tracks`). Steps are in processing order (reversed
    for ``go_backwards`` and a Bidirectional's backward direction,
    :func:`time_step_reversed`): index 0 is the first step the track ran, T-1 the last.
    For an LSTM that returns only its last output, the loss gradient enters at T-1 and what
    reaches step 0 has travelled through all of them. A track an output does not reach
    maps to None. ``passes`` (from :func:`output_passes`) saves the backward pass per output.
    """
    if passes is None:
        passes = output_passes(model, tape, result)
    out: dict[str, dict[str, Array | None]] = {}
    for k, (_, extras) in passes.items():
        tracks: dict[str, Array | None] = {}
        for layer in model.layers:
            if not layer.recurrent:
                continue
            reached = time_step_tracks(layer, extras[layer.name]) if layer.name in extras else {}
            for track in track_names(layer):
                tracks[track] = _step_norms(reached.get(track))
        out[model.output_names[k]] = tracks
    return out


def _step_norms(d_h_steps: Array | None) -> Array | None:
    return None if d_h_steps is None else np.linalg.norm(d_h_steps, axis=(1, 2))


def gradient_through_time(model: TrainableModel, x: Any,
                          y: Any) -> dict[str, dict[str, Array | None]]:
    """Gradient through time: ``{output: {lstm name: (T,) ||dL/dh_t||}}``, per output.

    See :func:`through_time_from_tape`. An LSTM that an output does not reach maps to None.
    """
    tape, result = forward_with_loss(model, x, y)
    return through_time_from_tape(model, tape, result)


# --------------------------------------------------------------------------- structure
def _ancestor_layers(tensor: SymbolicTensor) -> set[str]:
    seen: set[str] = set()
    stack = [tensor]
    while stack:
        t = stack.pop()
        layer = t.node.layer
        if layer.name in seen:
            continue
        seen.add(layer.name)
        stack.extend(t.node.inputs)
    return seen


def shared_parameters(model: TrainableModel) -> list[str]:
    """Names of parameters that two or more outputs with a loss depend on.

    These are the weights the outputs compete for (the LSTMs and anything before the
    heads split); each head's own weights are not shared.
    """
    used_by: dict[str, int] = {}
    for k in _loss_outputs(model):
        for name in _ancestor_layers(model.outputs[k]):
            used_by[name] = used_by.get(name, 0) + 1
    return [f"{layer.name}/{p}" for layer in model.layers if used_by.get(layer.name, 0) >= 2
            for p in layer.param_names if p in layer.params]


def shared_cosines(per_output: Mapping[str, Mapping[str, Array]], output_names: Sequence[str],
                   shared_names: Sequence[str]) -> Float64Array:
    """(O, O) cosines between outputs' gradients, flattened over ``shared_names``.

    ``per_output``: ``{output name: {"layer/weight": ndarray}}``; an output missing from it,
    or whose gradient there is zero, has nan in its row and column (all nan without
    ``shared_names``).
    """
    O = len(output_names)
    out = np.full((O, O), np.nan)
    if not shared_names:
        return out
    vectors = [np.concatenate([per_output[n][p].ravel() for p in shared_names])
               .astype(np.float64) if n in per_output else None for n in output_names]
    norms = [None if v is None else np.linalg.norm(v) for v in vectors]
    for a in range(O):
        for b in range(O):
            va, vb, na, nb = vectors[a], vectors[b], norms[a], norms[b]
            if (va is not None and vb is not None and na is not None and nb is not None
                    and na > 0 and nb > 0):
                out[a, b] = float(va @ vb / (na * nb))
    return out


def layer_norms(grads: Mapping[str, Array]) -> dict[str, float]:
    """``{layer name: sqrt(Σ_weights ||g||²)}`` from ``{"layer/weight": ndarray}``."""
    squares: dict[str, float] = {}
    for name, g in grads.items():
        layer = name.split("/", 1)[0]
        squares[layer] = squares.get(layer, 0.0) + float(np.sum(np.square(g, dtype=np.float64)))
    return {layer: float(np.sqrt(s)) for layer, s in squares.items()}


# --------------------------------------------------------------------------- saturation
def gate_saturation(model: TrainableModel, tape: Tape,
                    threshold: float = SATURATION_THRESHOLD) -> dict[str, dict[str, float]]:
    """Fraction of each LSTM gate's pre-activations beyond ``±threshold``.

    Counted over every valid (unmasked) step, sample and unit, from the activated gates
    the forward pass kept (σ and tanh are monotone, so ``|z| > 5`` is ``σ(z) > σ(5)`` or
    ``σ(z) < σ(-5)``, and ``|tanh z| > tanh 5``).

    Returns
    -------
    dict layer name -> dict gate ("i", "f", "c", "o") -> float (nan for relu gates)
        For every layer with gates (``Layer.gate_saturation``).
    """
    out: dict[str, dict[str, float]] = {}
    for pos, node in enumerate(model.nodes):
        fractions = node.layer.gate_saturation(tape.caches[pos], threshold)
        if fractions is not None:
            out[node.layer.name] = fractions
    return out


def head_saturation(model: TrainableModel, tape: Tape,
                    threshold: float = SATURATION_THRESHOLD) -> dict[str, float]:
    """``{output name: fraction of |logit| > threshold}`` for every sigmoid head."""
    out: dict[str, float] = {}
    for k, name in enumerate(model.output_names):
        logits = model.output_logits(tape, k, "sigmoid")
        if logits is not None:
            mask = tape.output_masks[k]
            hit = np.abs(logits) > threshold
            if mask is not None and mask.shape == hit.shape[:mask.ndim]:
                valid = np.broadcast_to(mask.reshape(mask.shape + (1,) * (hit.ndim - mask.ndim)),
                                        hit.shape)
                count = np.count_nonzero(valid)
                out[name] = float(np.count_nonzero(hit & valid) / count) if count else 0.0
            else:
                out[name] = float(np.mean(hit))
    return out
