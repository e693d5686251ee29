"""Independent layers at the same time: the input LSTMs of a multi-input model.

A model with two inputs has two LSTMs that do not depend on each other, forward or
backward. Run one after the other, each step of each LSTM is a small GEMM that BLAS
splits over the cores (at ~60 % of their rate at the demo's medium size) followed by
elementwise gate math on one core. Run in two Python threads, each with a single-threaded
BLAS, both cores stay busy with whole GEMMs and with elementwise work alike: NumPy
releases the GIL inside GEMMs and inside ufuncs over more than a few hundred elements.
Measured on the 2-core benchmark machine (docs/performance.md), two LSTMs, float32:

==========  =====================  =====================
size        forward, ms            forward + backward, ms
==========  =====================  =====================
M           12.6 → 10.3            36.9 → 30.2
L           139 → 112              388 → 334
==========  =====================  =====================

At the small size (N·4H = 4096 elements per step) every NumPy call is ~1 µs and handing
the GIL between threads costs more than the overlap gains, so small layers run one after
the other (:data:`MIN_STEP_ELEMENTS`).

Control:

- :func:`get_num_threads` / :func:`set_num_threads`: how many layers may run at once.
  The default is the number of threads NumPy's OpenBLAS was given (``OPENBLAS_NUM_THREADS``
  or the core count), so mlstm uses as many cores as NumPy alone would; 1 turns this off.
- The BLAS is single-threaded only while layers run concurrently
  (:func:`single_threaded_blas`), then restored. Where NumPy's BLAS is not an OpenBLAS
  that can be told so (MKL, Accelerate), nothing runs concurrently: threads on top of a
  multi-threaded BLAS oversubscribe the cores.

The results are the same as one after the other: each layer runs the same code on its own
arrays; only the order in which independent work happens changes.
"""
from __future__ import annotations

import contextlib
import contextvars
import ctypes
import glob
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["MIN_STEP_ELEMENTS", "get_num_threads", "set_num_threads", "blas_controllable",
           "single_threaded_blas", "blas_threads_for", "run_concurrently"]

#: A layer joins a concurrent group only when one of its sequential steps touches at least
#: this many elements (LSTM: N·4H). Measured: no gain at N·4H = 4096 (S), a clear one from
#: 16384 on.
MIN_STEP_ELEMENTS = 16384


class _OpenBLAS:
    """``get``/``set`` of the thread count of the OpenBLAS that NumPy calls, through ctypes.

    NumPy wheels bundle ``libscipy_openblas64_*.so`` (symbols ``scipy_openblas_*64_``);
    NumPy built against a system OpenBLAS uses ``openblas_*``. The library is found among
    the shared objects this process has loaded that sit in NumPy's directories, else any
    loaded OpenBLAS.
    """

    SYMBOLS = [(f"{prefix}_get_num_threads{suffix}", f"{prefix}_set_num_threads{suffix}")
               for prefix in ("scipy_openblas", "openblas") for suffix in ("64_", "_64", "")]

    def __init__(self):
        self.get = self.set = None
        self.path = None
        for path in self._candidates():
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for get_name, set_name in self.SYMBOLS:
                getter, setter = getattr(lib, get_name, None), getattr(lib, set_name, None)
                if getter is not None and setter is not None:
                    getter.restype, getter.argtypes = ctypes.c_int, []
                    setter.restype, setter.argtypes = None, [ctypes.c_int]
                    self.get, self.set, self.path = getter, setter, path
                    return

    @staticmethod
    def _candidates():
        numpy_dir = os.path.dirname(os.path.dirname(os.path.abspath(np.__file__)))
        loaded = []
        try:
            with open("/proc/self/maps") as maps:
                for line in maps:
                    path = line.split()[-1] if "/" in line else ""
                    if "openblas" in os.path.basename(path).lower() and path not in loaded:
                        loaded.append(path)
        except OSError:            # not Linux: look where NumPy's wheels put their BLAS
            pass
        bundled = glob.glob(os.path.join(numpy_dir, "numpy.libs", "*openblas*")) + glob.glob(
            os.path.join(numpy_dir, "numpy", ".dylibs", "*openblas*"))
        ours = [p for p in loaded if p.startswith(numpy_dir) and "numpy" in p]
        return ours + [p for p in bundled if p not in ours] + [p for p in loaded if p not in ours]


_blas = None
_blas_lock = threading.Lock()
_single_threaded_depth = 0
_saved_blas_threads = None
_num_threads = None
_pool = None
_pool_pid = None
_pool_workers = 0


def _openblas():
    global _blas
    if _blas is None:
        _blas = _OpenBLAS()
    return _blas


def blas_controllable():
    """Whether mlstm can set the thread count of NumPy's BLAS (an OpenBLAS it found)."""
    return _openblas().set is not None


def get_num_threads():
    """How many independent layers mlstm runs at once (1: one after the other)."""
    if _num_threads is not None:
        return _num_threads
    blas = _openblas()
    if blas.get is None:
        return 1
    with _blas_lock:
        # Inside single_threaded_blas the live value is 1: report the one it will restore.
        return max(1, _saved_blas_threads if _single_threaded_depth else blas.get())


def set_num_threads(n):
    """Run up to ``n`` independent layers at once (``None``: NumPy's BLAS thread count).

    With ``n > 1`` and a BLAS mlstm cannot make single-threaded, layers still run one
    after the other (see the module docstring).
    """
    global _num_threads
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1):
        raise ValueError(f"set_num_threads: expected a positive int or None, got {n!r}")
    _num_threads = None if n is None else int(n)


class single_threaded_blas:
    """Context: NumPy's OpenBLAS runs each call on the calling thread only, then goes back
    to its previous thread count. Nested and concurrent uses share one saved value."""

    def __enter__(self):
        global _single_threaded_depth, _saved_blas_threads
        blas = _openblas()
        if blas.set is None:
            return self
        with _blas_lock:
            if _single_threaded_depth == 0:
                _saved_blas_threads = blas.get()
                blas.set(1)
            _single_threaded_depth += 1
        return self

    def __exit__(self, *exc):
        global _single_threaded_depth
        blas = _openblas()
        if blas.set is None:
            return False
        with _blas_lock:
            _single_threaded_depth -= 1
            if _single_threaded_depth == 0:
                blas.set(_saved_blas_threads)
        return False


def blas_threads_for(heavy_layers):
    """The BLAS threading to run a model's pass in: :func:`single_threaded_blas` when none
    of its layers is worth a thread (``heavy_layers`` empty), else unchanged.

    A small model's GEMMs gain little from a second BLAS thread, and waking OpenBLAS's idle
    threads for them costs more: at size S, 20 training steps after a 0.3 s pause took
    2.47 ms (median) with OpenBLAS's 2 threads and 2.08 ms with 1; in a tight loop,
    1.94-2.10 either way.
    """
    return contextlib.nullcontext() if heavy_layers else single_threaded_blas()


def _executor(workers):
    """A pool of ``workers`` threads, made anew after a fork (its threads do not survive)."""
    global _pool, _pool_pid, _pool_workers
    if _pool is None or _pool_pid != os.getpid() or _pool_workers < workers:
        if _pool is not None and _pool_pid == os.getpid():
            _pool.shutdown(wait=False)      # a smaller pool: let its idle threads end
        _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlstm")
        _pool_pid, _pool_workers = os.getpid(), workers
    return _pool


def _concurrent_threads(count):
    """How many threads ``count`` independent heavy layers would use now (1: sequential)."""
    if count < 2 or not blas_controllable():
        return 1
    return min(count, get_num_threads())


def _call_in_slot(slot):
    """Run the call in ``slot`` (a one-item list) and leave its result there instead.

    A pool thread keeps its work item — the function, its arguments and the future with
    its result — until it next gets the GIL, which can be after the caller's next step has
    begun. Passing the call and its result through ``slot``, which the caller empties,
    leaves nothing there: a layer's cache is freed as soon as the caller drops it, and the
    LSTM buffer pool (which reuses only arrays nothing references) can reuse its arrays.
    """
    call = slot.pop()
    slot.append(call())


def run_concurrently(calls):
    """Call each of ``calls`` (functions of no argument) and return their results in order.

    With more than one thread available (:func:`_concurrent_threads`) they run at the same
    time, the calling thread taking the first one, under :func:`single_threaded_blas`.
    Every call finishes before an exception (the first in order) is raised.
    """
    calls = list(calls)
    threads = _concurrent_threads(len(calls))
    if threads < 2:
        return [call() for call in calls]
    with single_threaded_blas():
        pool = _executor(threads - 1)
        # The calling thread works too: calls[0], then whatever the pool has not started.
        # Each call runs in a copy of the caller's context, so that np.errstate (a context
        # variable) and the like hold in the pool's threads as well.
        slots = [[call] for call in calls[1:]]
        futures = [pool.submit(contextvars.copy_context().run, _call_in_slot, slot)
                   for slot in slots]
        results, errors = [None] * len(calls), [None] * len(calls)
        try:
            results[0] = calls[0]()
        except BaseException as error:      # noqa: BLE001 - re-raised below, after the rest
            errors[0] = error
        for k, (future, slot) in enumerate(zip(futures, slots), start=1):
            try:
                if future.cancel():
                    slot.clear()
                    results[k] = calls[k]()
                else:
                    future.result()
                    results[k] = slot.pop()
            except BaseException as error:  # noqa: BLE001
                errors[k] = error
    for error in errors:
        if error is not None:
            raise error
    return results
