"""Shared type aliases for mlstm's annotations (NumPy only, importable from every level).

``FloatArray`` is any floating ndarray (float32 or float64: the models run in either),
``Float64Array`` one whose dtype is fixed to float64 (gradient checks, statistics),
``IntArray`` integer indices or labels, ``BoolArray`` masks, ``Array`` any ndarray.
``ArrayLike`` is NumPy's: what a public function accepts and converts with ``np.asarray``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

__all__ = ["Array", "ArrayLike", "BoolArray", "DTypeLike", "Float64Array", "FloatArray",
           "IntArray", "JSONDict", "Shape"]

#: Any floating-point array (the compute dtype: float32 or float64).
FloatArray = NDArray[np.floating[Any]]
#: A float64 array (fixed dtype).
Float64Array = NDArray[np.float64]
#: An integer array (indices, labels, token ids).
IntArray = NDArray[np.integer[Any]]
#: A boolean array (masks).
BoolArray = NDArray[np.bool_]
#: An ndarray of any dtype.
Array = NDArray[Any]
#: A shape: a tuple of dimension sizes.
Shape = tuple[int, ...]
#: A JSON object as Python sees it (configs, headers).
JSONDict = dict[str, Any]
