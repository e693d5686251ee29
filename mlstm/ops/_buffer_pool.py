"""The buffer pool behind the LSTM ops: large arrays recycled across calls (private)."""
from __future__ import annotations

import math
import sys
import threading

import numpy as np

__all__ = ["BufferPool", "BUFFERS"]


class BufferPool:
    """Recycles the large arrays of the LSTM ops (:mod:`mlstm.ops.lstm`) across calls.

    The first write to a freshly allocated large array costs a page fault per 4 KB page; on
    the benchmark machine that was 13-20 % of a training step at size M. ``empty`` hands out
    again an array of the same shape and dtype *that nothing references any more* (its only
    reference is this pool): an array held by a cache, a tape, a returned gradient or any
    view of them is never reused, so results are never overwritten behind anyone's back.

    The pool keeps at most ``max_bytes`` of arrays (unreferenced ones are dropped first when
    over); arrays below ``min_bytes`` are plain ``np.empty``. ``clear()`` releases everything;
    ``enabled = False`` turns recycling off. Peak memory within a call is unchanged; between
    calls the pool keeps up to one call's large arrays resident.
    """

    def __init__(self, max_bytes=1 << 30, min_bytes=1 << 16):
        self.max_bytes, self.min_bytes, self.enabled = max_bytes, min_bytes, True
        self._arrays = []                 # oldest first
        self._lock = threading.Lock()
        probe = [np.empty(1)]
        self._unreferenced = sys.getrefcount(probe[0])   # the list's reference + the call's

    def empty(self, shape, dtype):
        """An uninitialized array, recycled when one of this shape and dtype is free."""
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize      # (np.prod costs ~2 µs)
        if not self.enabled or nbytes < self.min_bytes:
            return np.empty(shape, dtype)
        shape = tuple(shape)
        with self._lock:
            for k in range(len(self._arrays)):
                candidate = self._arrays[k]
                if candidate.shape == shape and candidate.dtype == dtype:
                    del candidate
                    if sys.getrefcount(self._arrays[k]) == self._unreferenced:
                        return self._arrays[k]
            array = np.empty(shape, dtype)
            self._make_room(nbytes)
            if self.nbytes + nbytes <= self.max_bytes:
                self._arrays.append(array)
            return array

    @property
    def nbytes(self):
        return sum(a.nbytes for a in self._arrays)

    def _make_room(self, nbytes):
        k = 0
        while self.nbytes + nbytes > self.max_bytes and k < len(self._arrays):
            if sys.getrefcount(self._arrays[k]) == self._unreferenced:
                del self._arrays[k]
            else:
                k += 1

    def clear(self):
        """Forget every recycled array (memory is freed once nothing else holds it)."""
        with self._lock:
            self._arrays = []


#: The pool the LSTM ops draw their large arrays from.
BUFFERS = BufferPool()
