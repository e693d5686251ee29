"""``assert_matches``: another LSTM implementation against mlstm, on drawn weights and
inputs, failing with the output or parameter, the time step, the gate block and, for a
gate-order slip, the order that would make it match."""
from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from .. import validation
from ..gradcheck.describe import GATES, describe_entry
from .builders import _as_model, randomize_weights
from .data import _inputs_and_description

if TYPE_CHECKING:
    from .._typing import Array, BoolArray, Float64Array
    from ..model import Model

#: ``other_forward(params, inputs) -> outputs`` (an array, a list, or a dict by output name).
OtherForward = Callable[[dict[str, "Array"], list["Array"]], Any]
#: ``other_backward(params, inputs, d_outputs) -> {"layer/weight": gradient, ...}``.
OtherBackward = Callable[[dict[str, "Array"], list["Array"], list["Array"]], Any]

__all__ = ["assert_matches"]


def _output_list(result: Any, model: Model, label: str) -> list[Float64Array]:
    names = model.output_names
    if isinstance(result, dict):
        missing = [n for n in names if n not in result]
        if missing:
            raise AssertionError(f"{label} returned a dict without outputs {missing} "
                                 f"(outputs are {names})")
        result = [result[n] for n in names]
    elif not isinstance(result, (list, tuple)):
        result = [result]
    result = list(result)
    if len(result) != len(names):
        raise AssertionError(f"{label} returned {len(result)} outputs, mlstm has "
                             f"{len(names)}: {names}")
    return [np.asarray(r, dtype=np.float64) for r in result]


def _output_entry(index: Sequence[Any]) -> str:
    index = [int(i) for i in index]
    if len(index) == 3:
        return f"[{index[0]}, {index[1]}, {index[2]}]: sample {index[0]}, time step " \
               f"{index[1]}, unit {index[2]}"
    return f"{index}: sample {index[0]}" + (f", unit {index[-1]}" if len(index) > 1 else "")


def _first_mismatch(ours: Array, theirs: Array, rtol: float, atol: float,
                    describe: Callable[[Sequence[Any]], str] = _output_entry) -> str | None:
    """``None`` when close, else where they differ: the worst entry and the time steps."""
    if ours.shape != theirs.shape:
        return f"has shape {theirs.shape}, mlstm's has {ours.shape}"
    bad = ~np.isclose(theirs, ours, rtol=rtol, atol=atol)
    if not bad.any():
        return None
    error = np.where(bad, np.abs(theirs - ours), 0)
    error[np.isnan(theirs)] = np.inf
    worst = np.unravel_index(int(np.argmax(error)), ours.shape)
    text = (f"max abs error {float(np.max(error)):.3g} at {describe(worst)} (mlstm "
            f"{ours[worst]:.6g}, other {theirs[worst]:.6g})")
    if ours.ndim == 3:
        steps = np.flatnonzero(bad.any(axis=(0, 2))).tolist()
        text = f"differs from time step {steps[0]} on (time steps {steps}); {text}"
    return text


def _permuted_params(model: Model, params: Mapping[str, Array],
                     order: Sequence[str]) -> dict[str, Array]:
    """Params with every LSTM's gate blocks rearranged so that block k holds gate order[k]."""
    out = dict(params)
    for layer in model.layers:
        for weight in layer.param_names:
            blocks = layer.gate_columns(weight)        # None: not a gated weight
            key = f"{layer.name}/{weight}"
            if blocks is None or key not in out:
                continue
            columns = np.concatenate([blocks[g] for g in order])
            out[key] = np.ascontiguousarray(params[key][..., columns])
    return out


def _gate_order_hint(model: Model, other_forward: OtherForward, params: Mapping[str, Array],
                     xs: Sequence[Array], ours: Sequence[Array], rtol: float,
                     atol: float) -> str | None:
    if not any(layer.gate_columns("kernel") is not None for layer in model.layers):
        return None
    for order in itertools.permutations(GATES):
        if order == GATES:
            continue
        try:
            theirs = _output_list(other_forward(_permuted_params(model, params, order),
                                                [a.copy() for a in xs]), model, "other_forward")
        except Exception:  # the hint is best effort; the mismatch itself is reported anyway
            continue
        if all(_first_mismatch(o, t, rtol, atol) is None for o, t in zip(ours, theirs)):
            swapped = [g for g, h in zip(GATES, order) if g != h]
            return (f"gate order: the other implementation matches mlstm when the gate "
                    f"blocks are handed to it in the order {', '.join(order)} (Keras' order "
                    f"is {', '.join(GATES)}): it reads gate blocks {', '.join(swapped)} of the "
                    f"kernel, recurrent kernel and bias in each other's places")
    return ("gate order: no rearrangement of the gate blocks i, f, c, o makes it match, so "
            "the difference is not (only) a gate-order slip")


def _check_case(model: Model, other_forward: OtherForward, other_backward: OtherBackward | None,
                xs: list[Array], weight_seed: int, rtol: float, atol: float, description: str,
                weight_scale: float) -> None:
    randomize_weights(model, weight_seed, weight_scale)
    params = {k: v.copy() for k, v in model.params.items()}
    header = (f"other implementation does not match mlstm (weights: randomize_weights(seed="
              f"{weight_seed}, scale={weight_scale}); data: {description})")
    tape = model.forward(xs)
    ours = tape.outputs
    theirs = _output_list(other_forward({k: v.copy() for k, v in params.items()},
                                        [a.copy() for a in xs]), model, "other_forward")
    problems: list[str] = []
    for name, o, t in zip(model.output_names, ours, theirs):
        where = _first_mismatch(o, t, rtol, atol)
        if where is not None:
            problems.append(f"  forward: output {name!r} {where}")
    if problems:
        hint = _gate_order_hint(model, other_forward, params, xs, ours, rtol, atol)
        raise AssertionError("\n".join([header] + problems + ([f"  {hint}"] if hint else [])))
    if other_backward is None:
        return
    rng = np.random.default_rng([weight_seed, 1])
    seeds = [rng.standard_normal(o.shape) for o in ours]
    grads, d_inputs = model.backward(tape, dict(enumerate(seeds)), input_grads=True)
    their_grads = other_backward({k: v.copy() for k, v in params.items()}, [a.copy() for a in xs],
                            [s.copy() for s in seeds])
    if not isinstance(their_grads, dict):
        raise AssertionError("other_backward must return a dict {'layer/weight': gradient, "
                             "optionally 'input:<name>': gradient}, got "
                             f"{type(their_grads).__name__}")
    missing = [name for name in grads if name not in their_grads]
    if missing:
        raise AssertionError(f"{header}\n  backward: no gradient returned for {missing}")
    expected = dict(grads)
    for name, g in zip(model.input_names, d_inputs):
        key = f"input:{name}" if f"input:{name}" in their_grads else name
        if key in their_grads and g is not None:        # token ids (integers) have none
            expected[f"input:{name}"] = g
            their_grads = dict(their_grads, **{f"input:{name}": their_grads[key]})
    for name, g in expected.items():
        t = np.asarray(their_grads[name], dtype=np.float64)
        where = _first_mismatch(g, t, rtol, atol,
                                describe=functools.partial(describe_entry, model, name))
        if where is None:
            continue
        layer = model.get_layer(name.partition("/")[0]) if "/" in name else None
        gates = (layer.gate_columns(name.partition("/")[2]) if layer is not None
                 else None)
        if gates is not None and g.shape == t.shape:
            bad_columns = (~np.isclose(t, g, rtol=rtol, atol=atol)).reshape(-1, g.shape[-1])
            wrong = cast("BoolArray", bad_columns.any(axis=0))     # per column: an array
            blocks = ", ".join(gate for gate in GATES if wrong[gates[gate]].any())
            where += f"; gate blocks with wrong entries: {blocks}"
        problems.append(f"  backward: {name} {where}")
    if problems:
        raise AssertionError("\n".join([header] + problems))


def assert_matches(model: Model | dict[str, Any], other_forward: OtherForward,
                   other_backward: OtherBackward | None = None, *, x: Any = None,
                   max_examples: int = 20, rtol: float = 1e-6, atol: float = 1e-8,
                   seed: int | None = None, weight_scale: float = 0.6, max_batch: int = 3,
                   max_timesteps: int = 4, weight_seed: int = 0) -> None:
    """Check another implementation against mlstm on drawn weights and inputs.

    For each case, every parameter of a float64 copy of ``model`` is drawn
    (:func:`randomize_weights`: distinct values in every gate block) and inputs are drawn
    with :func:`sequences`; then the other implementation must reproduce mlstm's outputs
    and, when ``other_backward`` is given, its gradients for random output gradients.
    hypothesis searches up to ``max_examples`` cases and shrinks a failure to the smallest
    one (set ``timesteps=None`` in a config to let it shrink T as well).

    Parameters
    ----------
    model : Model, or an :func:`lstm_configs` / :func:`model_configs` dict
        The mlstm model the other implementation claims to compute. An LSTM config gives
        parameters ``lstm/kernel`` (D, 4H), ``lstm/recurrent_kernel`` (H, 4H),
        ``lstm/bias`` (4H,) and inputs ``x`` (and ``h0``, ``c0``); see :func:`lstm_model`.
    other_forward : callable ``(params, inputs) -> outputs``
        ``params``: ``{"layer/weight": ndarray}`` in Keras layout (gate blocks i, f, c, o);
        ``inputs``: list of arrays in model input order (padded steps hold the Masking
        layer's ``mask_value``). Returns one array, a list in output order, or a dict by
        output name.
    other_backward : callable ``(params, inputs, d_outputs) -> grads``, optional
        ``d_outputs``: list of dL/d(output). Returns ``{"layer/weight": dL/dθ}`` for every
        parameter, optionally ``"input:<name>"`` (or ``"<name>"``) entries for inputs.
    x : list of arrays, optional
        Check this one input instead of drawing. Inside your own ``@given`` test, pass it
        (draw it with :func:`sequences`): hypothesis refuses a search nested in another
        (its ``nested_given`` health check).
    max_examples : int
    rtol, atol : float
        Tolerances of the comparison (``numpy.isclose``).
    seed : int, optional
        Seed of the hypothesis search; by default the search is derandomized (the same
        cases every run).
    weight_scale : float
    max_batch, max_timesteps : int
        Bounds for drawn inputs (``max_timesteps`` for inputs with T = None).
    weight_seed : int
        Weight seed used with ``x``.

    Raises
    ------
    AssertionError
        Naming the output (first differing time step, sample, unit) or the parameter (gate
        block and unit; input gradients: the time steps), and, for a forward mismatch, the
        gate order under which the other implementation would match, if there is one.
    """
    reference = _as_model(model).clone(dtype="float64")
    if x is not None:
        xs = [a if ids else np.asarray(a, dtype=np.float64)     # token ids stay as they are
              for a, ids in zip(reference._inputs(x), validation.token_id_inputs(reference))]
        _check_case(reference, other_forward, other_backward, xs, weight_seed, rtol, atol,
                    f"given inputs of shapes {[a.shape for a in xs]}", weight_scale)
        return

    @settings(max_examples=max_examples, deadline=None, database=None,
              derandomize=seed is None, suppress_health_check=list(HealthCheck),
              print_blob=False)
    @given(weights=st.integers(0, 2 ** 32 - 1),
           data=_inputs_and_description(reference, max_batch=max_batch,
                                        max_timesteps=max_timesteps))
    def check_against_mlstm(weights: int, data: tuple[list[Array], str]) -> None:
        xs, description = data
        _check_case(reference, other_forward, other_backward, xs, weights, rtol, atol,
                    description, weight_scale)

    if seed is not None:
        check_against_mlstm = hypothesis_seed(seed)(check_against_mlstm)
    check_against_mlstm()
