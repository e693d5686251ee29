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
- An LSTM whose per-step GEMM is small (:data:`RECURRENT_MULTITHREAD_MIN_MACS`) runs its
  own forward and backward passes with single-threaded BLAS, and a lone one (no partner
  to run beside) adds its weight gradients on a helper thread meanwhile
  (:func:`lstm_forward_threads`, :func:`lstm_backward_threads`): OpenBLAS's threads cost
  more than they give on its many small GEMMs as soon as the machine has other work.
- The BLAS is single-threaded only while layers run concurrently
  (:func:`single_threaded_blas`), then restored; threadpoolctl finds it
  (:class:`_NumpyBLAS`). Where NumPy's BLAS is not an OpenBLAS that can be told so for
  the whole process (MKL, Accelerate, an OpenBLAS built on OpenMP), nothing runs
  concurrently: threads on top of a multi-threaded BLAS oversubscribe the cores.

The results are the same as one after the other: each layer runs the same code on its own
arrays; only the order in which independent work happens changes.
"""
from __future__ import annotations

import contextlib
import contextvars
import ctypes
import functools
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any, Iterator, Literal, TypeVar, cast

import numpy as np

from .ops import _lstm_threads

T = TypeVar("T")

__all__ = ["MIN_STEP_ELEMENTS", "RECURRENT_MULTITHREAD_MIN_MACS", "get_num_threads",
           "set_num_threads", "blas_controllable", "single_threaded_blas", "blas_threads_for",
           "lstm_forward_threads", "lstm_backward_threads", "backward_helper_worth_it",
           "run_concurrently"]

#: A layer joins a concurrent group only when one of its sequential steps touches at least
#: this many elements (LSTM: N·4H). Measured: no gain at N·4H = 4096 (S), a clear one from
#: 16384 on.
MIN_STEP_ELEMENTS = 16384

#: An LSTM runs its GEMMs with NumPy's BLAS threads only when its per-step GEMM
#: (N, H) @ (H, 4H) has at least this many multiply-adds (N·H·4H); below, its forward and
#: backward passes run with single-threaded BLAS (:func:`lstm_forward_threads`,
#: :func:`lstm_backward_threads`). The demo's M (4.2 M) is below, its L (33.6 M) above.
RECURRENT_MULTITHREAD_MIN_MACS = 1 << 24


class _NumpyBLAS:
    """``get()`` / ``set(n)`` of the thread count of the OpenBLAS that NumPy calls, found by
    threadpoolctl; both None when there is none mlstm can make single-threaded.

    threadpoolctl lists the BLAS libraries the process has loaded and opens them; the one
    in NumPy's own directories (``numpy.libs``, ``numpy/.dylibs``) comes first, any other
    OpenBLAS after it. Not usable: MKL, BLIS, Accelerate, and an OpenBLAS built on OpenMP,
    whose limit holds only for the thread that sets it.

    The thread count is then read and set through the library's own
    ``openblas_get/set_num_threads`` entry points on threadpoolctl's handle
    (``LibController.dynlib``), resolved once: 1.6 µs per :class:`single_threaded_blas`
    (read, set to 1, set back), where threadpoolctl's ``set_num_threads``, which adds its
    own per-thread bookkeeping and needs its control released after every call, took
    10.4 µs (docs/performance.md).
    """

    # NumPy wheels bundle scipy-openblas (``scipy_openblas_set_num_threads64_``); a NumPy
    # built against a system OpenBLAS calls ``openblas_set_num_threads``.
    SYMBOLS = [(f"{prefix}openblas_get_num_threads{suffix}",
                f"{prefix}openblas_set_num_threads{suffix}")
               for prefix in ("scipy_", "") for suffix in ("64_", "_64", "")]

    def __init__(self) -> None:
        # ctypes entry points: openblas_get_num_threads() -> int, ..._set_num_threads(int)
        self.get: Callable[[], int] | None = None
        self.set: Callable[[int], None] | None = None
        self.path: str | None = None
        for lib in self._candidates():
            for get_name, set_name in self.SYMBOLS:
                getter = getattr(lib.dynlib, get_name, None)
                setter = getattr(lib.dynlib, set_name, None)
                if getter is not None and setter is not None:
                    getter.restype, getter.argtypes = ctypes.c_int, []
                    setter.restype, setter.argtypes = None, [ctypes.c_int]
                    self.get, self.set, self.path = getter, setter, lib.filepath
                    return

    @staticmethod
    def _candidates() -> list[Any]:
        """threadpoolctl's controllers of the OpenBLAS libraries mlstm may use, NumPy's
        first."""
        from threadpoolctl import ThreadpoolController   # (a scan of loaded libraries)

        site = os.path.dirname(os.path.dirname(os.path.abspath(np.__file__)))
        openblas = [lib for lib in ThreadpoolController().lib_controllers
                    if lib.internal_api == "openblas"
                    and getattr(lib, "threading_layer", None) != "openmp"]
        ours = [lib for lib in openblas if os.path.abspath(lib.filepath).startswith(site)
                and "numpy" in os.path.relpath(lib.filepath, site)]
        return ours + [lib for lib in openblas if lib not in ours]


_blas: _NumpyBLAS | None = None
_blas_lock = threading.Lock()
_single_threaded_depth = 0
_saved_blas_threads: int | None = None
_num_threads: int | None = None
_pool: ThreadPoolExecutor | None = None
_pool_pid: int | None = None
_pool_workers = 0
_concurrent_calls = 0                  # calls of run_concurrently under way (any thread)
_helper: ThreadPoolExecutor | None = None   # the one-thread pool of lstm_backward_threads
_helper_pid: int | None = None


def _numpy_blas() -> _NumpyBLAS:
    global _blas
    if _blas is None:
        _blas = _NumpyBLAS()
    return _blas


def blas_controllable() -> bool:
    """Whether mlstm can set the thread count of NumPy's BLAS (an OpenBLAS it found)."""
    return _numpy_blas().set is not None


def get_num_threads() -> int:
    """How many independent layers mlstm runs at once (1: one after the other)."""
    if _num_threads is not None:
        return _num_threads
    blas = _numpy_blas()
    if blas.get is None:
        return 1
    with _blas_lock:
        # Inside single_threaded_blas the live value is 1: report the one it will restore.
        # (_saved_blas_threads is set whenever the depth is above 0)
        return max(1, cast(int, _saved_blas_threads) if _single_threaded_depth else blas.get())


def set_num_threads(n: int | None) -> None:
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

    def __enter__(self) -> single_threaded_blas:
        global _single_threaded_depth, _saved_blas_threads
        blas = _numpy_blas()
        if blas.set is None or blas.get is None:        # (found together, or neither)
            return self
        with _blas_lock:
            if _single_threaded_depth == 0:
                _saved_blas_threads = blas.get()
                blas.set(1)
            _single_threaded_depth += 1
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        global _single_threaded_depth
        blas = _numpy_blas()
        if blas.set is None:
            return False
        with _blas_lock:
            _single_threaded_depth -= 1
            if _single_threaded_depth == 0:
                blas.set(cast(int, _saved_blas_threads))   # (saved on entering depth 1)
        return False


def blas_threads_for(heavy_layers: Any) -> AbstractContextManager[Any]:
    """The BLAS threading to run a model's pass in: :func:`single_threaded_blas` when none
    of its layers is worth a thread (``heavy_layers`` empty), else unchanged.

    A small model's GEMMs gain little from a second BLAS thread, and waking OpenBLAS's idle
    threads for them costs more: at size S, 20 training steps after a 0.3 s pause took
    2.47 ms (median) with OpenBLAS's 2 threads and 2.08 ms with 1; in a tight loop,
    1.94-2.10 either way.
    """
    return contextlib.nullcontext() if heavy_layers else single_threaded_blas()


def lstm_forward_threads(N: int, H: int) -> AbstractContextManager[Any]:
    """The BLAS threading of one LSTM forward pass (batch N, H units): the rule that
    :mod:`mlstm.ops._lstm_threads` applies around the GEMMs of ``lstm_forward``.

    :func:`single_threaded_blas` when a step's GEMM has fewer than
    :data:`RECURRENT_MULTITHREAD_MIN_MACS` multiply-adds, else unchanged. A pass makes a
    small GEMM per time step (``h_{t-1} U`` forward, ``dz_t Uᵀ`` backward); split over
    OpenBLAS's threads, each is a fork and a join, and on a machine shared with other work
    a descheduled OpenBLAS thread stalls every join, as it stalls the few whole-sequence
    GEMMs (OpenBLAS splits the work evenly and waits for the last part). Measured with
    the classification model CLS-M (one LSTM at N 64, H 128) under a load average of 7-9
    on 2 cores: training step 1211 ms (median) with OpenBLAS's 2 threads everywhere,
    386 ms with the steps' GEMMs single-threaded, 103 ms with everything single-threaded
    (docs/performance.md). The count is set once per pass, not per step: a switch costs
    a few µs. Inside concurrent work (:func:`run_concurrently`) BLAS is single-threaded
    already and this changes nothing.
    """
    if N * H * 4 * H >= RECURRENT_MULTITHREAD_MIN_MACS:
        return contextlib.nullcontext()
    return single_threaded_blas()


class _Helper:
    """``submit(function, *args)``: run on the helper thread, in the order submitted, in a
    copy of the caller's context (np.errstate); a future for each. The call goes through a
    slot (:func:`_call_in_slot`) so that the thread keeps no reference to its arrays."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.pool = pool

    def submit(self, function: Callable[..., Any], *args: Any) -> Future[Any]:
        slot = [functools.partial(function, *args)]
        return self.pool.submit(contextvars.copy_context().run, _call_in_slot, slot)


@contextlib.contextmanager
def lstm_backward_threads(N: int, H: int, chunked: bool) -> Iterator[_Helper | None]:
    """The threading of one LSTM backward pass (batch N, H units): the rule that
    :mod:`mlstm.ops._lstm_threads` applies around ``lstm_backward``. Gives a helper or None.

    At or above :data:`RECURRENT_MULTITHREAD_MIN_MACS` per step: nothing changes (None).
    Below, the whole pass runs with single-threaded BLAS (:func:`single_threaded_blas`;
    why: :func:`lstm_forward_threads`), and, when a second thread is free, its weight
    gradients (dW, dU, db, dx: one GEMM each per chunk of steps) are added on a helper
    thread while the calling thread runs the next chunk's steps. A thread is free when mlstm may use two (:func:`get_num_threads`),
    it controls the BLAS, no concurrent work is under way (:func:`run_concurrently`, e.g.
    the directions of a Bidirectional: both cores are busy then), the layer is worth a
    thread (:data:`MIN_STEP_ELEMENTS`) and its gradients come in more than one chunk
    (``chunked``). The helper runs the same calls in the same order on the same arrays,
    with single-threaded BLAS either way, so the results are the same bits with or without
    it.
    """
    if N * H * 4 * H >= RECURRENT_MULTITHREAD_MIN_MACS:
        yield None
        return
    helper = None
    if (chunked and _concurrent_calls == 0 and backward_helper_worth_it(N, H)
            and blas_controllable() and get_num_threads() >= 2):
        helper = _Helper(_helper_pool())
    with single_threaded_blas():
        yield helper


def backward_helper_worth_it(N: int, H: int) -> bool:
    """Whether an LSTM of batch N and H units is one whose backward pass may add its weight
    gradients on a helper thread (:func:`lstm_backward_threads`), threads permitting: below
    :data:`RECURRENT_MULTITHREAD_MIN_MACS` per step and worth a thread
    (:data:`MIN_STEP_ELEMENTS`). The helper needs a second dz buffer of one chunk of steps,
    which the memory estimate counts (``LSTM.activation_bytes``)."""
    return N * H * 4 * H < RECURRENT_MULTITHREAD_MIN_MACS and N * 4 * H >= MIN_STEP_ELEMENTS


def _helper_pool() -> ThreadPoolExecutor:
    """The helper's pool of one thread, made anew after a fork."""
    global _helper, _helper_pid
    if _helper is None or _helper_pid != os.getpid():
        _helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlstm-helper")
        _helper_pid = os.getpid()
    return _helper


_lstm_threads.install(lstm_forward_threads, lstm_backward_threads)


def _executor(workers: int) -> ThreadPoolExecutor:
    """A pool of ``workers`` threads, made anew after a fork (its threads do not survive)."""
    global _pool, _pool_pid, _pool_workers
    if _pool is None or _pool_pid != os.getpid() or _pool_workers < workers:
        if _pool is not None and _pool_pid == os.getpid():
            _pool.shutdown(wait=False)      # a smaller pool: let its idle threads end
        _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlstm")
        _pool_pid, _pool_workers = os.getpid(), workers
    return _pool


def _concurrent_threads(count: int) -> int:
    """How many threads ``count`` independent heavy layers would use now (1: sequential)."""
    if count < 2 or not blas_controllable():
        return 1
    return min(count, get_num_threads())


def _call_in_slot(slot: list[Any]) -> None:
    """Run the call in ``slot`` (a one-item list) and leave its result there instead.

    A pool thread keeps its work item — the function, its arguments and the future with
    its result — until it next gets the GIL, which can be after the caller's next step has
    begun. Passing the call and its result through ``slot``, which the caller empties,
    leaves nothing there: a layer's cache is freed as soon as the caller drops it, and the
    LSTM buffer pool (which reuses only arrays nothing references) can reuse its arrays.
    """
    call = slot.pop()
    slot.append(call())


@contextlib.contextmanager
def _counted_concurrent_call() -> Iterator[None]:
    global _concurrent_calls
    with _blas_lock:
        _concurrent_calls += 1
    try:
        yield
    finally:
        with _blas_lock:
            _concurrent_calls -= 1


def run_concurrently(calls: Iterable[Callable[[], T]]) -> list[T]:
    """Call each of ``calls`` (functions of no argument) and return their results in order.

    With more than one thread available (:func:`_concurrent_threads`) they run at the same
    time, the calling thread taking the first one, under :func:`single_threaded_blas`.
    Every call finishes before an exception (the first in order) is raised.
    """
    calls = list(calls)
    threads = _concurrent_threads(len(calls))
    if threads < 2:
        return [call() for call in calls]
    with single_threaded_blas(), _counted_concurrent_call():
        pool = _executor(threads - 1)
        # The calling thread works too: calls[0], then whatever the pool has not started.
        # Each call runs in a copy of the caller's context, so that np.errstate (a context
        # variable) and the like hold in the pool's threads as well.
        slots: list[list[Any]] = [[call] for call in calls[1:]]
        futures = [pool.submit(contextvars.copy_context().run, _call_in_slot, slot)
                   for slot in slots]
        results: list[Any] = [None] * len(calls)
        errors: list[BaseException | None] = [None] * len(calls)
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
    for failure in errors:
        if failure is not None:
            raise failure
    return results
