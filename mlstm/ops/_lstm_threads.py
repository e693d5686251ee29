"""The BLAS threading of the fast LSTM's forward and backward passes (private).

An LSTM's passes make one small GEMM per time step, (N, H) @ (H, 4H), with elementwise
work between them, and a few whole-sequence GEMMs (input projection, weight gradients).
How many BLAS threads they get, and whether the backward pass may add its weight gradients
on a helper thread, is decided by :func:`mlstm.parallel.lstm_forward_threads` and
:func:`mlstm.parallel.lstm_backward_threads` (the rule and its measurements are there).
The ops (level 0) may not import :mod:`mlstm.parallel` (level 1), so parallel installs
its rules here when it is imported (:func:`install`), which ``import mlstm`` always does.
Without rules the passes run with whatever BLAS threading the caller has set, and
without a helper.
"""
from __future__ import annotations

import contextlib
from typing import Callable, ContextManager, Optional

__all__ = ["install", "forward_threads", "backward_threads"]

_forward_rule: Optional[Callable[[int, int], ContextManager]] = None
_backward_rule: Optional[Callable[[int, int, bool], ContextManager]] = None


def install(forward_rule: Optional[Callable[[int, int], ContextManager]],
            backward_rule: Optional[Callable[[int, int, bool], ContextManager]]) -> None:
    """Use ``forward_rule(N, H)`` around every forward pass and ``backward_rule(N, H,
    chunked)`` around every backward pass: context manager factories (None: no rule)."""
    global _forward_rule, _backward_rule
    _forward_rule, _backward_rule = forward_rule, backward_rule


def forward_threads(N: int, H: int) -> ContextManager:
    """The context the GEMMs of a forward pass (batch N, H units) run in."""
    return contextlib.nullcontext() if _forward_rule is None else _forward_rule(N, H)


def backward_threads(N: int, H: int, chunked: bool) -> ContextManager:
    """The context a backward pass (batch N, H units; ``chunked``: its weight gradients
    come a chunk of steps at a time) runs in. It gives a helper, an object whose
    ``submit(function, *args)`` runs the calls in order on another thread and returns
    futures, or None: do everything on the calling thread."""
    return contextlib.nullcontext() if _backward_rule is None else _backward_rule(N, H, chunked)
