"""Which model inputs hold token ids, decided from the graph, and the checks on their values.

An input holds token ids when it is an integer Input (``Input(dtype="int32")``), or a float
Input every reader of which reads it as ids: a layer declares that through the hook
``token_id_inputs() -> {position of the node input: vocabulary size V}`` (Embedding:
``{0: input_dim}``). The float case is the Keras guides' ``keras.Input(shape=(None,))``
(float32 by default) into ``Embedding``, which Keras 3.15 casts to int32 inside its
``call``. Such an input is not a float sequence: it gets no gradient, the gradient check
does not perturb it, it is not standardized, and its values are checked as ids (whole
numbers in [0, V), named by their position in the user's array) rather than as floats.

A float input read both as ids (by an Embedding) and as values (by an LSTM, say) is
refused: perturbing it for a gradient check would change the ids, and Keras would give it
the values' gradient only. Declare two Inputs.

This module imports only NumPy: the layers and the model are read through their
attributes (``model.nodes``, ``node.layer``, ``node.inputs``, ``model.inputs``).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from .finite import _describe_nonfinite, all_finite

__all__ = ["token_id_inputs", "id_vocabulary", "as_token_ids", "check_whole_ids"]


def _readers(model: Any, tensor: Any) -> list[tuple[Any, bool, int | None]]:
    """``[(layer, reads it as ids, vocabulary)]`` for every node reading ``tensor``."""
    found = []
    for node in model.nodes:
        hook = getattr(node.layer, "token_id_inputs", None)
        ids = hook() if hook is not None else {}
        for position, t in enumerate(node.inputs):
            if t is tensor:
                found.append((node.layer, position in ids, ids.get(position)))
    return found


def token_id_inputs(model: Any) -> list[bool]:
    """Per model input (in ``model.inputs`` order), whether it holds token ids.

    True for an integer input, and for a float input read only by layers that declare it
    as ids (``token_id_inputs`` hook). ValueError for a float input read both as ids and
    as values, naming the layers.
    """
    out = []
    for name, tensor in zip(model.input_names, model.inputs):
        if np.dtype(tensor.dtype).kind in "iu":
            out.append(True)
            continue
        readers = _readers(model, tensor)
        as_ids = [layer for layer, ids, _ in readers if ids]
        as_values = [layer for layer, ids, _ in readers if not ids]
        if as_ids and as_values:
            raise ValueError(
                f"input {name!r} ({tensor.dtype}) is read as token ids by "
                + ", ".join(f"{type(l).__name__} {l.name!r}" for l in as_ids)
                + " and as values by "
                + ", ".join(f"{type(l).__name__} {l.name!r}" for l in as_values)
                + "; mlstm needs one or the other (ids get no gradient and are never "
                  "perturbed): give the ids their own Input")
        out.append(bool(as_ids))
    return out


def id_vocabulary(model: Any, tensor: Any) -> int | None:
    """The smallest vocabulary size among the layers reading ``tensor`` as ids (ids must
    lie in [0, V) for each of them), or None when no reader declares one."""
    sizes = [v for _, ids, v in _readers(model, tensor) if ids and v is not None]
    return min(sizes) if sizes else None


def _shortest(value: Any) -> str:
    """``2.7`` for a float32 2.7 even when it came as float64 (2.700000047683716)."""
    v = float(value)
    return str(np.float32(v)) if float(np.float32(v)) == v else repr(v)


def check_whole_ids(ids: NDArray[Any], label: str, dtype: str | None = None,
                    where: Any = None) -> None:
    """Refuse float ``ids`` that are not whole numbers (NaN, inf, 2.7), naming the first by
    its index, sample and position (``where(index) -> index`` maps a batch index to the
    user's; ``dtype`` names the ids' dtype in the message, by default their own).

    Keras casts float ids with ``ops.cast(inputs, "int32")``, which truncates toward zero
    (2.7 -> 2, -0.5 -> 0): mlstm refuses them instead of guessing what was meant.
    """
    if ids.dtype.kind != "f":
        return
    name = dtype or ids.dtype.name
    if not all_finite(ids):
        raise ValueError(f"{label} holds token ids ({name}), and {_describe_nonfinite(ids)}")
    fractional = ids != np.trunc(ids)
    if not fractional.any():
        return
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(fractional)), ids.shape))
    shown = list(index if where is None else where(index))
    at = f"sample {shown[0]}" + (f", position {shown[1]}" if len(shown) > 1 else "")
    count = int(np.count_nonzero(fractional))
    raise ValueError(f"{label} holds token ids ({name}), got {_shortest(ids[index])} at index "
                     f"{shown} ({at}), not a whole number ({count} in all). Keras would "
                     f"truncate it toward zero (to {int(np.trunc(ids[index]))}); mlstm refuses "
                     "it: pass whole-number ids")


def as_token_ids(a: NDArray[Any], dtype: str, label: str) -> NDArray[Any]:
    """``a`` as token ids of ``dtype`` (an input's int32/int64, or float32/float64 for a
    float Input read as ids), refusing what would change: booleans, NaN/inf, values that
    are not whole numbers, and values that do not fit ``dtype`` (an integer dtype's range;
    for a float dtype, ids the cast would round: beyond 2**24 in float32).

    Positions are the user's array's (``a`` is the whole array).
    """
    target = np.dtype(dtype)
    if a.dtype.kind == "b":
        raise TypeError(f"{label} holds token ids ({target.name}), got booleans")
    if a.dtype.kind == "f":
        check_whole_ids(a, label, target.name)
    if target.kind in "iu":
        info = np.iinfo(target)
        bad = (a < info.min) | (a > info.max)
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            bad = a.astype(target).astype(np.float64) != a.astype(np.float64)
    if a.size and bad.any():
        index = [int(i) for i in np.unravel_index(int(np.argmax(bad)), a.shape)]
        raise ValueError(f"{label}: token id {a[tuple(index)].item()!r} at index {index} does "
                         f"not fit its dtype {target.name}"
                         + ("" if target.kind in "iu" else
                            " exactly (the cast would round it: Keras would read another id)"))
    return a.astype(target, copy=False)
