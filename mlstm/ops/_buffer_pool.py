"""The buffer pool behind the LSTM ops: large arrays recycled across calls (private).

The first write to a freshly allocated large array costs a page fault per 4 KB page; on the
benchmark machine that was 13-20 % of a training step at size M. So the LSTM ops take their
large arrays from here, and get back, at the next call, the arrays of the previous one.

What the pool keeps, and for how long:

- **Per LSTM.** Arrays belong to the LSTM whose weights they serve, known by its
  ``recurrent_kernel`` array (the layer's own weight array). When that array is freed —
  the layer, the model is gone — its arrays are released with it.
- **One call at a time.** A *call* of an LSTM lasts from its forward pass until its cache
  (and so any backward pass on it) is gone; forward passes that start while an earlier
  cache of the same LSTM is alive (a layer shared by two inputs, the next step of ``fit``
  while the previous step's tape is still referenced) belong to the same call. When a new
  call starts, the arrays that neither of the last two calls used are released; while it
  allocates new arrays (a new sequence length, a new batch size), free arrays of earlier
  calls are released, oldest first, until all are no more than the largest of this call
  and the two before it. Between calls, an LSTM therefore keeps at most the large arrays
  of one call: the largest of its last three.
- **Never an array in use.** An array is handed out again only when nothing but the pool
  references it (``sys.getrefcount``): an array held by a cache, a tape, a returned
  gradient or any view of them is never reused, so results are never overwritten behind
  anyone's back. An array that someone still holds when its call is over is theirs: the
  pool forgets it at the next call.

``BUFFERS.clear()`` releases everything, ``BUFFERS.enabled = False`` turns recycling off
(every array is a fresh ``np.empty``), and ``BUFFERS.max_bytes`` caps the pool as a whole.
"""
from __future__ import annotations

import math
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from .._typing import Array, DTypeLike, Shape

__all__ = ["BufferPool", "LayerBuffers", "CallCache", "BUFFERS"]


class CallCache(dict[str, Any]):
    """The cache of an LSTM call: a plain ``dict`` that the pool can see being freed."""

    __slots__ = ("__weakref__",)


class _Entry:
    __slots__ = ("array", "call")

    def __init__(self, array: Array, call: int) -> None:
        self.array, self.call = array, call


class LayerBuffers:
    """The pooled arrays of one LSTM (see the module docstring); from :class:`BufferPool`."""

    #: sets of gate constants (one per batch size) kept per LSTM
    MAX_CONSTANTS = 4

    def __init__(self, pool: BufferPool, owner_ref: weakref.ref[Array] | None = None) -> None:
        self.pool, self.owner_ref = pool, owner_ref
        self.entries: list[_Entry] = []               # _Entry, oldest first
        self.call = 0                   # calls started so far
        # id -> weak reference, of the current call's caches
        self.live_caches: dict[int, weakref.ref[CallCache]] = {}
        self.recent_call_bytes = (0, 0)  # bytes each of the last two calls used
        self.constants: dict[Any, Any] = {}

    def empty(self, shape: Shape, dtype: DTypeLike) -> Array:
        """An uninitialized array; one of the pool's when one of this shape and dtype is
        free (referenced by nothing else)."""
        pool = self.pool
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize      # (np.prod costs ~2 µs)
        if not pool.enabled or nbytes < pool.min_bytes:
            return np.empty(shape, dtype)
        shape = tuple(shape)
        with pool.lock:
            for entry in self.entries:
                if entry.array.shape == shape and entry.array.dtype == dtype and pool.idle(entry):
                    entry.call = self.call
                    return entry.array
            array = np.empty(shape, dtype)
            self._release_unused(nbytes)
            pool.make_room(nbytes)
            if pool.nbytes + nbytes <= pool.max_bytes:
                self.entries.append(_Entry(array, self.call))
            return array

    def _release_unused(self, nbytes: int) -> None:
        """Before adding ``nbytes``: release free arrays of earlier calls, least recently
        used first, until this call's arrays and those together fit in the largest of this
        call and the two before it."""
        this_call = sum(e.array.nbytes for e in self.entries if e.call == self.call)
        earlier = sorted((e for e in self.entries if e.call != self.call and self.pool.idle(e)),
                         key=lambda e: e.call)          # least recently used first
        earlier_bytes = sum(e.array.nbytes for e in earlier)
        excess = this_call + nbytes + earlier_bytes - max(*self.recent_call_bytes,
                                                          this_call + nbytes)
        released = set()
        for entry in earlier:
            if excess <= 0:
                break
            released.add(id(entry))
            excess -= entry.array.nbytes
        if released:
            self.entries = [e for e in self.entries if id(e) not in released]

    def start_call(self, cache: CallCache) -> None:
        """A forward pass begins whose cache is ``cache``: a new call when no cache of the
        previous one is alive. Then the arrays that neither of the last two calls used are
        released (two, so that alternating kinds of calls, a training step and a forward
        pass, keep the arrays of both)."""
        with self.pool.lock:
            if not self.live_caches:
                finished = self.call
                self.entries = [e for e in self.entries if e.call >= finished - 1]
                used = sum(e.array.nbytes for e in self.entries if e.call == finished)
                self.recent_call_bytes = (self.recent_call_bytes[1], used)
                self.call += 1
            ref = weakref.ref(cache, self._cache_freed)
            self.live_caches[id(ref)] = ref

    def _cache_freed(self, ref: weakref.ref[CallCache]) -> None:
        with self.pool.lock:
            self.live_caches.pop(id(ref), None)

    def constant(self, key: Any, make: Callable[[], Any]) -> Any:
        """``make()``, computed once per ``key`` and kept with this LSTM's arrays."""
        value = self.constants.get(key)
        if value is None:
            with self.pool.lock:
                if len(self.constants) >= self.MAX_CONSTANTS:
                    self.constants.pop(next(iter(self.constants)))
                value = self.constants[key] = make()
        return value

    @property
    def nbytes(self) -> int:
        return sum(e.array.nbytes for e in self.entries)


class BufferPool:
    """The arrays the LSTM ops recycle, kept per LSTM (see the module docstring).

    Parameters
    ----------
    max_bytes : int
        Cap on everything the pool keeps (free arrays of any LSTM are released first).
    min_bytes : int
        Arrays smaller than this are plain ``np.empty`` (their page faults cost little).
    """

    def __init__(self, max_bytes: int = 1 << 30, min_bytes: int = 1 << 16) -> None:
        self.max_bytes, self.min_bytes, self.enabled = max_bytes, min_bytes, True
        # Re-entrant: a cache or a weight array may be freed (and call back) while the
        # same thread is inside the pool.
        self.lock = threading.RLock()
        self._layers: dict[int, LayerBuffers] = {}  # id(owner) -> LayerBuffers
        self._unowned = LayerBuffers(self)
        probe = _Entry(np.empty(1), 0)
        self._unreferenced = sys.getrefcount(probe.array)   # the entry's + the call's

    def idle(self, entry: _Entry) -> bool:
        """Whether nothing but the pool references ``entry``'s array."""
        return sys.getrefcount(entry.array) == self._unreferenced

    def for_layer(self, recurrent_kernel: Array) -> LayerBuffers:
        """The :class:`LayerBuffers` of the LSTM whose recurrent kernel is this array."""
        buffers = self._layers.get(id(recurrent_kernel))
        if (buffers is not None and buffers.owner_ref is not None
                and buffers.owner_ref() is recurrent_kernel):
            return buffers
        key = id(recurrent_kernel)
        with self.lock:
            try:
                owner_ref = weakref.ref(recurrent_kernel,
                                        lambda ref: self._owner_freed(key, ref))
            except TypeError:           # not weakly referenceable: one shared pool for those
                return self._unowned
            buffers = self._layers[key] = LayerBuffers(self, owner_ref)
            return buffers

    def _owner_freed(self, key: int, owner_ref: weakref.ref[Array]) -> None:
        with self.lock:
            buffers = self._layers.get(key)
            if buffers is not None and buffers.owner_ref is owner_ref:
                del self._layers[key]

    def start_call(self, recurrent_kernel: Array, cache: CallCache) -> LayerBuffers:
        """The :class:`LayerBuffers` of this LSTM, for a forward pass whose cache (a
        :class:`CallCache`) is ``cache``."""
        buffers = self.for_layer(recurrent_kernel)
        buffers.start_call(cache)
        return buffers

    def _all(self) -> list[LayerBuffers]:
        return list(self._layers.values()) + [self._unowned]

    @property
    def nbytes(self) -> int:
        """Bytes of every array the pool holds (free or in use)."""
        with self.lock:
            return sum(buffers.nbytes for buffers in self._all())

    def make_room(self, nbytes: int) -> None:
        """Release free arrays, earlier calls' first, until ``nbytes`` more fit under
        ``max_bytes``."""
        excess = self.nbytes + nbytes - self.max_bytes
        for earlier_calls_only in (True, False):
            for buffers in self._all():
                for entry in [e for e in buffers.entries if self.idle(e) and not (
                        earlier_calls_only and e.call == buffers.call)]:
                    if excess <= 0:
                        return
                    buffers.entries.remove(entry)
                    excess -= entry.array.nbytes

    def clear(self) -> None:
        """Forget every recycled array (memory is freed once nothing else holds it)."""
        with self.lock:
            self._layers = {}
            self._unowned = LayerBuffers(self)


#: The pool the LSTM ops draw their large arrays from.
BUFFERS = BufferPool()
