"""How a Bidirectional layer combines its two directions (Keras 3.15's ``merge_mode``).

``y`` is the forward direction's output, ``r`` the backward direction's, already in time
order (a returned sequence is flipped back before merging)::

    concat:  out = [y | r]        (last axis)   dy = dout[..., :H_f]   dr = dout[..., H_f:]
    sum:     out = y + r                        dy = dout              dr = dout
    ave:     out = (y + r) / 2                  dy = dout / 2          dr = dout / 2
    mul:     out = y ⊙ r                        dy = dout ⊙ r          dr = dout ⊙ y
    None:    [y, r], two outputs                dy, dr as given

Masked steps of a returned sequence are zero in both directions before the merge (Keras'
Bidirectional sets ``zero_output_for_mask = return_sequences`` on its layers):
``y_t = m_t y_t``; backward, ``dy_t = m_t dy_t``.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import overload

import numpy as np

from .._typing import BoolArray, Cache, FloatArray

__all__ = ["MERGE_MODES", "merge_forward", "merge_backward", "zero_masked_steps"]

MERGE_MODES = ("concat", "sum", "ave", "mul", None)


def merge_forward(y: FloatArray, r: FloatArray, mode: str | None
                  ) -> tuple[list[FloatArray], Cache]:
    """Combine ``y`` and ``r`` (same leading axes) by ``mode``; returns ``(outputs, cache)``
    where ``outputs`` is a list: one array, or ``[y, r]`` for ``mode=None``."""
    if mode == "concat":
        out = np.concatenate([y, r], axis=-1)
    elif mode == "sum":
        out = y + r
    elif mode == "ave":
        out = (y + r) / 2
    elif mode == "mul":
        out = y * r
    elif mode is None:
        return [y, r], {"mode": None}
    else:
        raise ValueError(f"merge_mode must be one of {MERGE_MODES}, got {mode!r}")
    cache = {"mode": mode, "split": y.shape[-1]}
    if mode == "mul":
        cache.update(y=y, r=r)
    return [out], cache


def merge_backward(d_outputs: Sequence[FloatArray | None], cache: Cache
                   ) -> tuple[FloatArray | None, FloatArray | None]:
    """``(dy, dr)`` from the gradients of :func:`merge_forward`'s outputs (None: none)."""
    mode = cache["mode"]
    if mode is None:
        return d_outputs[0], d_outputs[1]
    d = d_outputs[0]
    if d is None:
        return None, None
    if mode == "concat":
        return d[..., :cache["split"]], d[..., cache["split"]:]
    if mode == "sum":
        return d, d
    if mode == "ave":
        half = d / 2
        return half, half
    return d * cache["r"], d * cache["y"]          # mul


@overload
def zero_masked_steps(seq: FloatArray, step_valid: BoolArray | None) -> FloatArray: ...
@overload
def zero_masked_steps(seq: None, step_valid: BoolArray | None) -> None: ...
def zero_masked_steps(seq: FloatArray | None, step_valid: BoolArray | None
                      ) -> FloatArray | None:
    """``seq`` (N, T, H) with the steps where ``step_valid`` (N, T) is False set to 0 (a new
    array); ``seq`` itself when there is no mask. Its own backward: the same with ``dseq``."""
    if step_valid is None or seq is None:
        return seq
    return np.where(step_valid[:, :, None], seq, 0).astype(seq.dtype, copy=False)
