"""Is an array finite, and where is it not: the one-pass test and the words for the culprit."""
from __future__ import annotations

import math

from typing import Any

import numpy as np

from .._typing import Array

__all__ = ["all_finite"]


def all_finite(a: Array) -> bool:
    """True when no entry of ``a`` is NaN or ±inf.

    Small arrays (parameters, gradients) take ``isfinite(a).all()``, the fastest there. For
    large ones (data), one sum avoids a temporary the size of ``a``: a sum is NaN or inf
    whenever an entry is; only when the sum itself overflows are the entries looked at.
    """
    if a.dtype.kind not in "fc":          # ints and bools are always finite
        return True
    if a.size <= _SMALL:
        return bool(np.isfinite(a).all())
    with np.errstate(over="ignore", invalid="ignore"):
        if math.isfinite(np.add.reduce(a, axis=None)):
            return True
    return bool(np.isfinite(a).all())


_SMALL = 1 << 16


def _first_nonfinite(a: Array) -> tuple[tuple[int, ...], str, int]:
    """``(index tuple, kind, count)`` of the first NaN/inf entry of ``a``."""
    bad = ~np.isfinite(a)
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), a.shape))
    value = a[index]
    kind = "NaN" if np.isnan(value) else ("inf" if value > 0 else "-inf")
    return index, kind, int(np.count_nonzero(bad))


def _describe_nonfinite(a: Array) -> str:
    index, kind, count = _first_nonfinite(a)
    return (f"{kind} at index {list(index)}" +
            (f" ({count} non-finite values in all)" if count > 1 else ""))


def _describe_entries(a: Array) -> str:
    """``"NaN at index [0, 3], 12 of 96 entries"``: for parameters and gradients."""
    index, kind, count = _first_nonfinite(a)
    return f"{kind} at index {list(index)}, {count} of {a.size} entries"
