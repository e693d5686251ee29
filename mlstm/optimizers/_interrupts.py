"""Defer Ctrl-C (SIGINT) over a block of code that must run to its end.

An optimizer commits a step by copying several new arrays into the live parameters and
swapping in its new state. A ``KeyboardInterrupt`` raised between two of those copies would
leave a half-applied step. Python runs signal handlers only in the main thread, between
bytecodes; inside :func:`deferred_sigint` the SIGINT handler only records the signal, and
the previous handler is called once the block is over (``KeyboardInterrupt`` for the
default one), so an interrupt lands before the block or after it, never inside.

Elsewhere than in the main thread the block runs as it is: SIGINT is delivered to the main
thread only, so it cannot interrupt another thread's block.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

try:        # the C functions under signal.signal/getsignal: a tenth of their time per call
    import _signal as _handlers  # type: ignore[import-not-found]  # (CPython's, no stub)
except ImportError:     # pragma: no cover - not CPython
    _handlers = signal

__all__ = ["deferred_sigint"]


@contextlib.contextmanager
def deferred_sigint() -> Iterator[None]:
    """``with deferred_sigint():`` the block is not interrupted by SIGINT; see the module."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = _handlers.getsignal(signal.SIGINT)
    if previous is None:        # installed outside Python: it could not be put back
        yield
        return
    received: list[tuple[int, FrameType | None]] = []

    def record(signum: int, frame: FrameType | None) -> None:
        received.append((signum, frame))

    _handlers.signal(signal.SIGINT, record)
    try:
        yield
    finally:
        _handlers.signal(signal.SIGINT, previous)
        if received:
            _deliver(previous, *received[0])


def _deliver(handler: Any, signum: int, frame: FrameType | None) -> None:
    """Do what ``handler`` would have done with the signal received inside the block."""
    if callable(handler):
        handler(signum, frame)          # default_int_handler raises KeyboardInterrupt
    elif handler == signal.SIG_DFL:
        signal.raise_signal(signum)     # the default action (the handler is back in place)
    # SIG_IGN: the signal is dropped, as it would have been without the block.
