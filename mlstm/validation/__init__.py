"""Checks at mlstm's public boundaries, and the error raised when training meets NaN/inf.

Every refusal here is a ``ValueError`` or ``TypeError`` whose message names the input,
output, layer or parameter concerned and gives the expected and the given shape (or the
position of the offending value), so that a user can act on it. Checks run *before*
anything changes: a refused call leaves the model, its weights and its optimizer state as
they were.

What is checked where (see ``docs/reliability.md`` for the full table):

=============================  ==============================================================
data (fit, evaluate, predict,  dtype real (ints and bools are cast to the model's dtype as
train_on_batch, gradients)     Keras does), shape against the Input / output, no empty axis,
                               equal batch sizes, every value finite after the cast
BCE targets                    in [0, 1] (``BinaryCrossentropy(invalid_targets=...)``:
                               ``"raise"`` by default, ``"warn"`` or ``"ignore"``)
run-time shapes                free dimensions (``None``) that must agree at run time:
                               Concatenate's other axes, Reshape's element count
a training step                loss, gradients and weights finite before the update is
                               applied, and the new weights and optimizer state before
                               they are committed (:class:`NonFiniteError`, in
                               :mod:`mlstm.validation.nonfinite`)
weights from outside           finite (:func:`check_finite_weights`): ``load_model``,
                               ``set_weights``
=============================  ==============================================================

This package imports only NumPy; the rest of mlstm imports it.
"""
from __future__ import annotations

import contextvars
import math
import warnings
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Literal

import numpy as np

from .._typing import Array, ArrayLike, BoolArray, DTypeLike, IntArray

from .finite import _describe_entries, _describe_nonfinite, _first_nonfinite, all_finite
from .ids import as_token_ids, check_whole_ids, id_vocabulary, token_id_inputs
from .nonfinite import NonFiniteError, check_finite_weights, describe_nonfinite_entries

__all__ = ["NonFiniteError", "as_real_array", "all_finite", "check_finite", "cast_finite",
           "rank_hint", "feeds", "check_choice", "check_targets", "check_masked_targets",
           "check_target_range", "check_concatenate_inputs", "check_reshape_input",
           "check_fit_options", "as_weight_list", "loss_arrays",
           "prefixed", "POLICIES", "batch_rows", "user_index", "check_finite_weights",
           "describe_nonfinite_entries", "token_id_inputs", "id_vocabulary", "as_token_ids",
           "check_whole_ids"]

#: What to do with data that is usable but suspicious (BCE targets outside [0, 1]).
POLICIES = ("raise", "warn", "ignore")


# --------------------------------------------------------------------------- arrays
def as_real_array(a: ArrayLike, label: str) -> Array:
    """``np.asarray(a)``, refusing what is not an array of real numbers.

    Bools and integers pass (callers cast them to the model's dtype, as Keras does);
    strings, objects, ragged nested lists, datetimes and complex numbers raise TypeError
    naming ``label``.
    """
    try:
        arr = np.asarray(a)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{label} could not be converted to an array: {exc}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number)
                                   or arr.dtype == np.bool_):
        raise TypeError(f"{label} must hold real numbers, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{label} must hold real numbers, got complex dtype {arr.dtype}")
    return arr


def check_finite(a: Array, label: str) -> None:
    """Raise ValueError naming ``label`` and the first position of a NaN/inf in ``a``."""
    if not all_finite(a):
        raise ValueError(f"{label} holds {_describe_nonfinite(a)}; mlstm refuses NaN and inf "
                         "in data: clean them, or replace padding by a Masking value")


def cast_finite(a: Array, dtype: DTypeLike, label: str) -> Array:
    """``a`` cast to ``dtype`` (no copy when it already is), refused if not all finite.

    A value finite in ``a`` but beyond the range of ``dtype`` (1e300 into float32) becomes
    inf in the cast; the message says so rather than letting NumPy warn.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        cast = a.astype(dtype, copy=False)
    if not all_finite(cast):
        index, kind, count = _first_nonfinite(cast)
        original = a[index]
        if np.isfinite(original):
            raise ValueError(f"{label} holds {float(original)!r} at index {list(index)}, "
                             f"beyond the range of {np.dtype(dtype).name} (it would become "
                             f"{kind})")
        check_finite(cast, label)
    return cast


def rank_hint(given: Sequence[int], expected: Sequence[int | None]) -> str:
    """A hint when ``given`` and ``expected`` differ only by a trailing axis of size 1.

    Keras silently adds or drops such an axis; mlstm asks for the exact shape, and says
    how to get it. ``expected`` may hold None (any size). Returns "" when no hint applies.
    """
    given, expected = tuple(given), tuple(expected)
    if len(given) == len(expected) + 1 and given[-1] == 1:
        candidate = given[:-1]
    elif len(given) + 1 == len(expected) and expected[-1] == 1:
        candidate = given + (1,)
    else:
        return ""
    if len(candidate) == len(expected) and all(e is None or e == c
                                               for e, c in zip(expected, candidate)):
        return (f" (Keras would add or drop the trailing axis of size 1 itself; mlstm wants "
                f"the exact shape: pass array.reshape{candidate})")
    return ""


def feeds(model: Any, tensor: Any) -> str:
    """``"LSTM 'lstm_a'"``: the layers that read ``tensor`` in ``model`` (for messages)."""
    names = [f"{type(node.layer).__name__} {node.layer.name!r}" for node in model.nodes
             if any(t is tensor for t in node.inputs)]
    return ", ".join(dict.fromkeys(names))


def check_choice(value: Any, choices: Sequence[str], label: str) -> str:
    """``value`` if it is one of ``choices``, else ValueError listing them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{label} must be one of {list(choices)}, got {value!r}")
    return value


def as_weight_list(weights: Any, label: str) -> list[Any]:
    """``list(weights)``, or TypeError naming ``label`` when it is not a sequence."""
    if isinstance(weights, (str, bytes, dict)) or not hasattr(weights, "__iter__"):
        raise TypeError(f"{label} takes a list of arrays (as get_weights returns), got "
                        f"{type(weights).__name__}")
    return list(weights)


# --------------------------------------------------------------------------- targets
def check_target_range(loss: Any, y_true: Array, label: str, mask: BoolArray | None = None
                       ) -> None:
    """Targets of a loss with a ``target_range`` (BCE: [0, 1]) must lie in it.

    What happens otherwise follows the loss's ``invalid_targets`` policy ("raise",
    "warn", "ignore"). With ``mask`` (N, T) only valid steps count: padded steps of a
    masked sequence may hold anything, as they do not enter the loss.
    """
    target_range = getattr(loss, "target_range", None)
    policy = getattr(loss, "invalid_targets", "raise")
    if target_range is None or policy == "ignore":
        return
    low, high = target_range
    if mask is not None:
        valid = mask.reshape(mask.shape + (1,) * (y_true.ndim - mask.ndim))
        outside = ((y_true < low) | (y_true > high)) & valid
    else:
        outside = (y_true < low) | (y_true > high)
    if not outside.any():
        return
    if policy == "warn":
        # One text per output, so Python shows it once rather than once per batch.
        warnings.warn(f"{label}: targets outside [{low:g}, {high:g}] for loss {loss.name!r}, "
                      "allowed by invalid_targets='warn' (the loss is unbounded below)",
                      RuntimeWarning, stacklevel=4)
        return
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(outside)), outside.shape))
    raise ValueError(f"{label}: loss {loss.name!r} needs targets in [{low:g}, {high:g}], got "
                     f"{float(y_true[index])!r} at index {list(user_index(index))} "
                     f"({int(np.count_nonzero(outside))} outside in all); a target outside "
                     f"makes the loss unbounded below. Pass "
                     f"{type(loss).__name__}(invalid_targets='warn') "
                     "or 'ignore' to allow them")


def check_targets(model: Any, ys: Sequence[Array]) -> None:
    """Range checks for every output whose loss has one (see :func:`check_target_range`).

    Outputs that may carry a mask are checked per batch, once the mask is known
    (:func:`check_masked_targets`).
    """
    for tensor, name, loss, y in zip(model.outputs, model.output_names, model._losses, ys):
        if loss is not None and not tensor.has_mask:
            check_target_range(loss, y, f"targets {name!r}")


def check_masked_targets(model: Any, k: int, y_true: Array, mask: BoolArray | None) -> None:
    """Range check of output ``k``'s targets at the valid steps of ``mask`` (None: no-op)."""
    loss = model._losses[k]
    if mask is not None and loss is not None:
        check_target_range(loss, y_true, f"targets {model.output_names[k]!r}", mask)


# --------------------------------------------------------------------------- batches
_BATCH_ROWS: contextvars.ContextVar[Sequence[int] | IntArray | None] = contextvars.ContextVar(
    "mlstm_batch_rows", default=None)


class batch_rows:
    """``with batch_rows(rows):`` positions in refusals raised inside are the user's.

    ``fit`` and ``evaluate`` check some things per batch (BCE targets at the valid steps of
    a mask); a refusal must give the index into the user's array (``targets[70, 3, 0]``),
    not the position within the batch (``[6, 3, 0]``). ``rows[k]`` is the row of the
    user's arrays that is row k of the batch (the shuffled indices, or a ``range``). Per
    thread and per context (a :class:`contextvars.ContextVar`).
    """

    def __init__(self, rows: Sequence[int] | IntArray) -> None:
        self.rows = rows

    def __enter__(self) -> batch_rows:
        self.token = _BATCH_ROWS.set(self.rows)
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        _BATCH_ROWS.reset(self.token)
        return False


def user_index(index: Sequence[int]) -> tuple[int, ...]:
    """``index`` (a tuple into a batch) with its first entry mapped through the enclosing
    :class:`batch_rows`, if any: the same entry's index in the user's array."""
    rows = _BATCH_ROWS.get()
    if rows is None or not index:
        return tuple(index)
    return (int(rows[index[0]]),) + tuple(index[1:])


# --------------------------------------------------------------------------- run-time shapes
def check_concatenate_inputs(layer: Any, arrays: Sequence[Array], axis: int) -> None:
    """Arrays to concatenate agree on every axis but ``axis`` (free dims are checked here)."""
    shapes = [a.shape for a in arrays]
    axis = axis % len(shapes[0])
    if any(len(s) != len(shapes[0]) or
           any(d != d0 for k, (d, d0) in enumerate(zip(s, shapes[0])) if k != axis)
           for s in shapes):
        raise ValueError(f"{type(layer).__name__} {layer.name!r}: inputs must match except on "
                         f"axis {axis}, got shapes {[tuple(s) for s in shapes]}")


def check_reshape_input(layer: Any, x: Array, target_shape: Sequence[int]) -> None:
    """``x`` (N, ...) has as many values per sample as ``target_shape`` asks for."""
    size = int(np.prod(x.shape[1:]))
    known = int(np.prod([d for d in target_shape if d != -1]))
    if (size % known) if -1 in target_shape else (size != known):
        raise ValueError(f"{type(layer).__name__} {layer.name!r}: input of shape {x.shape} "
                         f"({size} values per sample) cannot become {tuple(target_shape)}")


# --------------------------------------------------------------------------- fit options
def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_fit_options(initial_epoch: Any, seed: Any, shuffle: Any) -> None:
    """``initial_epoch`` a non-negative int, ``seed`` None or an int, ``shuffle`` a bool."""
    if not _is_int(initial_epoch) or initial_epoch < 0:
        raise ValueError(f"fit: initial_epoch must be a non-negative int, got {initial_epoch!r}")
    if seed is not None and (not _is_int(seed) or seed < 0):
        raise ValueError(f"fit: seed must be None or a non-negative int, got {seed!r}")
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"fit: shuffle must be True or False, got {shuffle!r}")


def loss_arrays(loss: Any, y_true: ArrayLike, y_pred: ArrayLike) -> tuple[Array, Array]:
    """``(y_true, y_pred)`` for a standalone loss call: real, same shape, one float dtype.

    ``y_pred`` keeps its float dtype (float32 when given integers, Keras' floatx) and
    ``y_true`` is cast to it, as Keras does. Shapes must be equal: NumPy would broadcast
    (N,) against (N, 1) into an (N, N) loss.
    """
    label = f"loss {getattr(loss, 'name', type(loss).__name__)!r}"
    y_pred = as_real_array(y_pred, f"{label}: y_pred")
    y_true = as_real_array(y_true, f"{label}: y_true")
    if not np.issubdtype(y_pred.dtype, np.floating):
        y_pred = y_pred.astype(np.float32)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{label}: y_true has shape {y_true.shape}, y_pred has shape "
                         f"{y_pred.shape}; they must be equal"
                         + rank_hint(y_true.shape, y_pred.shape))
    if y_pred.ndim == 0:
        raise ValueError(f"{label}: y_pred must have at least one axis, got a scalar")
    y_true = cast_finite(y_true, y_pred.dtype, f"{label}: y_true")
    check_target_range(loss, y_true, f"{label}: y_true")
    return y_true, y_pred


class prefixed:
    """``with prefixed("validation_data"):`` prefixes the message of a refusal raised inside.

    The exception keeps its type (ValueError or TypeError); only its message gains the
    prefix, so that the same check can say which argument of a call it is looking at.
    """

    def __init__(self, label: str) -> None:
        self.label = label

    def __enter__(self) -> prefixed:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Literal[False]:
        if kind in (ValueError, TypeError):
            raise kind(f"{self.label}: {exc}").with_traceback(tb) from None
        return False


# The stop on NaN/inf in training lives in its own module; its names are part of this one.
